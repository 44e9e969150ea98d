"""Offline evaluation of harmful-content detection (chapter section 2), and the served decision.

Offline, per category, on the hand-labelled test posts: PR-AUC (average precision: the rare categories'
metric), ROC-AUC, F1 at the threshold that maximised it on the validation posts, and the removal threshold's
precision and recall. Thresholds come from the validation posts only: `remove` is the lowest score at and
above which the removals' validation precision reaches its target (the pipeline's 0.97, a margin over the
promise of 0.95: a few thousand hand-labelled posts hold a few dozen removals per category, and a threshold
set at 0.95 on them misses 0.95 on new posts about as often as it meets it), or, given remove_confidence,
where its one-sided Clopper-Pearson lower bound does; `demote` is the lowest score whose validation precision
reaches demote_precision. removal_reliability measures how often a rule keeps its promise, on posts the truth
judges.

The online metrics (prevalence, proactive rate, reversed appeals) are the simulator's: systems/harmful/online.py.

What the image encoder lets the models see: linear probes of the frozen image vectors (image_probes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import beta, binomtest
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from common.evaluation.classification import linear_probe_auc
from common.images.render import COLOUR_NAMES, SHAPES
from systems.harmful.world import CATEGORIES, VERMIN_MARK, WEAPON_SHAPES, motifs_shown

COUNTS = ("positives", "removals", "removals_right")  # category_metrics' counts, beside its rates
NEVER = float("inf")  # a threshold no score reaches: the category is never acted on


@dataclass(frozen=True)
class Thresholds:
    remove: np.ndarray  # (n_categories,)
    demote: np.ndarray
    f1: np.ndarray  # the validation's best-F1 threshold, for the offline F1


def choose_thresholds(
    y: np.ndarray,
    p: np.ndarray,
    remove_precision: float,
    demote_precision: float,
    remove_confidence: float | None = None,
) -> Thresholds:
    """Per category, from the validation posts' labels y and scores p, both (n, n_categories). Without
    remove_confidence, the removal threshold is the point estimate's (like demote's)."""
    remove, demote, f1 = [], [], []
    for c in range(y.shape[1]):
        if y[:, c].sum() == 0:
            remove.append(NEVER), demote.append(NEVER), f1.append(NEVER)
            continue
        precision, recall, thresholds = precision_recall_curve(y[:, c], p[:, c])
        precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
        if remove_confidence is None:
            remove.append(_lowest_reaching(precision, thresholds, remove_precision))
        else:
            remove.append(_lowest_vouched(y[:, c], p[:, c], remove_precision, remove_confidence))
        demote.append(min(_lowest_reaching(precision, thresholds, demote_precision), remove[-1]))
        scores = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        f1.append(float(thresholds[np.argmax(scores)]))
    return Thresholds(np.asarray(remove), np.asarray(demote), np.asarray(f1))


def _lowest_reaching(precision: np.ndarray, thresholds: np.ndarray, target: float) -> float:
    """The lowest threshold at and above which precision stays at or above target (a threshold whose
    precision dips again further up would let a later tweak break the promise)."""
    ok = precision >= target
    # Precision at every higher threshold must hold too: scan from the top.
    holds = np.flip(np.cumprod(np.flip(ok))).astype(bool)
    return float(thresholds[holds].min()) if holds.any() else NEVER


def _lowest_vouched(truth: np.ndarray, score: np.ndarray, target: float, confidence: float) -> float:
    """The lowest threshold down to which every threshold's posts (those at or above it) are harmful with a
    precision of at least target, at the given confidence: the Clopper-Pearson lower bound of k right among n
    flagged. The thresholds are tested in a fixed order, from the top down, and the first that fails ends the
    walk (fixed-sequence testing, as in Learn then Test, Angelopoulos et al. 2021): taking the lowest that
    passes anywhere would pick one whose bound passed by luck among many tried. The walk starts at the fewest
    posts that could vouch (all right: 59 for 0.95 at 95%), since none above can."""
    order = np.argsort(-score, kind="stable")
    ranked, right = score[order], truth[order]
    last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]  # a threshold takes every post tied with it
    flagged = np.arange(1, len(ranked) + 1)[last_of_tie]
    correct = np.cumsum(right)[last_of_tie]
    lower = np.nan_to_num(beta.ppf(1 - confidence, correct, flagged - correct + 1))  # NaN where none is right
    testable = flagged >= np.log(1 - confidence) / np.log(target)  # n of n right vouches from here down
    passed = (lower >= target)[testable]
    walked = int(np.cumprod(passed).sum())  # the thresholds passed before the first failure
    return float(ranked[last_of_tie][testable][walked - 1]) if walked else NEVER


def removal_reliability(
    truth: np.ndarray,
    p: np.ndarray,
    categories,
    validation_size: int,
    remove_precision: float,
    remove_confidence: float | None,
    draws: int,
    seed: int,
    promise: float | None = None,
) -> dict[str, dict]:
    """How often a removal threshold chosen on validation_size hand-labelled posts keeps its promise on new
    posts: `draws` times, thresholds from a random validation_size of the posts (truth, p), judged on the rest.
    Per category: the share of draws with a threshold, the share of those whose removals on the rest reach
    the promise (remove_precision unless given) and their mean precision there, and the mean recall of the
    removals (0 without one)."""
    promise = remove_precision if promise is None else promise
    rng = np.random.default_rng(seed)
    found, kept, precisions, recalls = (np.zeros(truth.shape[1]) for _ in range(4))
    for _ in range(draws):
        chosen = np.zeros(len(truth), dtype=bool)
        chosen[rng.choice(len(truth), validation_size, replace=False)] = True
        thresholds = choose_thresholds(truth[chosen], p[chosen], remove_precision, 0.5, remove_confidence).remove
        removed = p[~chosen] >= thresholds
        rest = truth[~chosen].astype(bool)
        for c in np.flatnonzero(removed.any(axis=0)):
            precision = rest[removed[:, c], c].mean()
            found[c] += 1
            kept[c] += precision >= promise
            precisions[c] += precision
            recalls[c] += rest[removed[:, c], c].sum() / max(rest[:, c].sum(), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            category: {
                "with a threshold": found[c] / draws,
                "precision reached": kept[c] / found[c],
                "mean precision": precisions[c] / found[c],
                "mean recall": recalls[c] / draws,
            }
            for c, category in enumerate(categories)
        }


def category_metrics(y: np.ndarray, p: np.ndarray, thresholds: Thresholds, categories) -> dict[str, dict]:
    """Per category: pr_auc, roc_auc, f1, remove_precision, remove_recall (NaN where undefined); the counts
    (COUNTS) positives, removals (the posts the removal threshold takes) and removals_right (of them, positives)."""
    out = {}
    for c, category in enumerate(categories):
        truth, score = y[:, c], p[:, c]
        both = 0 < truth.sum() < len(truth)
        removed = score >= thresholds.remove[c]
        flagged = score >= thresholds.f1[c]
        precision = truth[flagged].mean() if flagged.any() else np.nan
        recall = truth[flagged].sum() / truth.sum() if truth.sum() else np.nan
        out[category] = {
            "pr_auc": float(average_precision_score(truth, score)) if both else np.nan,
            "roc_auc": float(roc_auc_score(truth, score)) if both else np.nan,
            "f1": float(2 * precision * recall / (precision + recall)) if precision + recall > 0 else 0.0,
            "remove_precision": float(truth[removed].mean()) if removed.any() else np.nan,
            "remove_recall": float(truth[removed].sum() / truth.sum()) if truth.sum() else np.nan,
            "removals": int(removed.sum()),
            "removals_right": int(truth[removed].sum()),
            "positives": int(truth.sum()),
        }
    return out


def precision_interval(right: int, removals: int, confidence: float = 0.95) -> tuple[float, float]:
    """The two-sided Clopper-Pearson interval of a precision of `right` in `removals` posts: how far from the truth
    the few dozen removals of a category among a few thousand test posts may leave it. NaN without a removal."""
    if removals == 0:
        return (np.nan, np.nan)
    interval = binomtest(right, removals).proportion_ci(confidence, method="exact")
    return (float(interval.low), float(interval.high))


def actions(p: np.ndarray, thresholds: Thresholds) -> tuple[np.ndarray, np.ndarray]:
    """(action per post: 2 remove, 1 demote, 0 allow; the reason: the category furthest past its threshold)."""
    over_remove = p / np.where(np.isfinite(thresholds.remove), thresholds.remove, np.inf)
    over_demote = p / np.where(np.isfinite(thresholds.demote), thresholds.demote, np.inf)
    removed = (over_remove >= 1).any(axis=1)
    demoted = ~removed & (over_demote >= 1).any(axis=1)
    reason = np.where(removed, over_remove.argmax(axis=1), over_demote.argmax(axis=1))
    return np.where(removed, 2, np.where(demoted, 1, 0)), reason


def image_probes(posts: pd.DataFrame, vectors: np.ndarray, max_rows: int = 20_000) -> dict[str, float]:
    """How plainly the frozen image vectors show what the harm rests on, among posts with an image: a linear
    probe's ROC-AUC (common/evaluation/classification.py) for each half of a pair (the vermin sticker, a
    weapon-like shape in any colour) and each category's motif. 0.5: the models cannot see it."""
    shown = posts["has_image"].to_numpy()
    table, vectors = posts[shown].iloc[:max_rows], vectors[shown][:max_rows]
    vermin = (table["image_mark"] == SHAPES.index(VERMIN_MARK[0])) & (
        table["image_mark_colour"] == COLOUR_NAMES.index(VERMIN_MARK[1])
    )
    properties = {
        "vermin sticker": vermin.to_numpy(),
        "weapon-like shape": table["image_shape"].isin([SHAPES.index(s) for s in WEAPON_SHAPES]).to_numpy(),
    }
    motifs = motifs_shown(table)
    properties |= {f"{category} motif": motifs[:, c] for c, category in enumerate(CATEGORIES)}
    return {name: linear_probe_auc(vectors, labels) for name, labels in properties.items() if 0 < labels.sum()}
