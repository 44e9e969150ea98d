"""Offline evaluation of harmful-content detection (chapter section 2), and the served decision.

Offline, per category, on the hand-labelled test posts: PR-AUC (average precision: the rare categories'
metric), ROC-AUC, F1 at the threshold that maximised it on the validation posts, and the removal threshold's
precision and recall. Thresholds come from the validation posts only: `remove` is the lowest score whose
validation precision reaches remove_precision (0.95: a removal must rarely be wrong), `demote` the lowest
reaching demote_precision.

The online metrics (prevalence, proactive rate, reversed appeals) are the simulator's: systems/harmful/online.py.

What the image encoder lets the models see: linear probes of the frozen image vectors (image_probes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from common.evaluation.classification import linear_probe_auc
from common.images.render import COLOUR_NAMES, SHAPES
from systems.harmful.world import CATEGORIES, VERMIN_MARK, WEAPON_SHAPES, motifs_shown

NEVER = float("inf")  # a threshold no score reaches: the category is never acted on


@dataclass(frozen=True)
class Thresholds:
    remove: np.ndarray  # (n_categories,)
    demote: np.ndarray
    f1: np.ndarray  # the validation's best-F1 threshold, for the offline F1


def choose_thresholds(y: np.ndarray, p: np.ndarray, remove_precision: float, demote_precision: float) -> Thresholds:
    """Per category, from the validation posts' labels y and scores p, both (n, n_categories)."""
    remove, demote, f1 = [], [], []
    for c in range(y.shape[1]):
        if y[:, c].sum() == 0:
            remove.append(NEVER), demote.append(NEVER), f1.append(NEVER)
            continue
        precision, recall, thresholds = precision_recall_curve(y[:, c], p[:, c])
        precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
        remove.append(_lowest_reaching(precision, thresholds, remove_precision))
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


def category_metrics(y: np.ndarray, p: np.ndarray, thresholds: Thresholds, categories) -> dict[str, dict]:
    """Per category: pr_auc, roc_auc, f1, remove_precision, remove_recall (NaN where undefined)."""
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
            "positives": int(truth.sum()),
        }
    return out


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
