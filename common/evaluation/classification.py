"""Offline evaluation of click models: every model beside the simple baseline and the
world's oracle on the same rows, with the share of the oracle's lift each one reaches."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no screen here; figures go to MLflow as files
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from common.evaluation.metrics import (
    auc,
    calibration_curve,
    expected_calibration_error,
    log_loss,
    normalized_cross_entropy,
    roc_curve,
)


def classification_metrics(y: np.ndarray, p: np.ndarray, base_rate: float, prefix: str) -> dict[str, float]:
    """AUC, log loss, NCE (against the training CTR) and ECE under `<prefix>_<metric>` names."""
    return {
        f"{prefix}_auc": auc(y, p),
        f"{prefix}_logloss": log_loss(y, p),
        f"{prefix}_nce": normalized_cross_entropy(y, p, base_rate=base_rate),
        f"{prefix}_ece": expected_calibration_error(y, p),
    }


def oracle_lift_share(model: dict[str, float], oracle: dict[str, float], prefix: str) -> dict[str, float]:
    """How much of the oracle's improvement over knowing nothing the model reaches:
    AUC over 0.5 and NCE under 1.0 (both 'knowing nothing' values)."""
    return {
        f"{prefix}_auc_oracle_share": (model[f"{prefix}_auc"] - 0.5) / (oracle[f"{prefix}_auc"] - 0.5),
        f"{prefix}_nce_oracle_share": (1 - model[f"{prefix}_nce"]) / (1 - oracle[f"{prefix}_nce"]),
    }


def roc_figure(y: np.ndarray, curves: dict[str, np.ndarray]):
    figure, axis = plt.subplots(figsize=(5, 5))
    for label, p in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        axis.plot(fpr, tpr, label=f"{label} (AUC {auc(y, p):.3f})")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, test set")
    axis.legend(loc="lower right")
    plt.close(figure)
    return figure


def reliability_figure(y: np.ndarray, curves: dict[str, np.ndarray], n_bins: int = 20):
    figure, axis = plt.subplots(figsize=(5, 5))
    top = 0.0
    for label, p in curves.items():
        predicted, observed, _ = calibration_curve(y, p, n_bins=n_bins)
        axis.plot(predicted, observed, marker="o", markersize=3, label=label)
        top = max(top, predicted.max(), observed.max())
    axis.plot([0, top], [0, top], color="grey", linestyle=":")
    axis.set(xlabel="mean predicted CTR", ylabel="observed CTR", title="Reliability, test set (equal-count bins)")
    axis.legend(loc="upper left")
    plt.close(figure)
    return figure


def markdown_table(rows: list[dict], columns: list[str], floatfmt: str = ".4f") -> str:
    header = "| " + " | ".join(columns) + " |\n|" + "|".join("---" for _ in columns) + "|\n"
    body = "".join(
        "| "
        + " | ".join(format(row[c], floatfmt) if isinstance(row[c], float) else str(row[c]) for c in columns)
        + " |\n"
        for row in rows
    )
    return header + body


def linear_probe_auc(vectors: np.ndarray, labels: np.ndarray, random_state: int = 0) -> float:
    """How plainly fixed vectors show a binary property: a logistic regression fitted on a random half of the
    rows, its ROC-AUC on the other half (0.5: not at all; 1: perfectly, along one direction)."""
    labels = np.asarray(labels, dtype=bool)
    if len(vectors) != len(labels) or labels.all() or not labels.any():
        raise ValueError("a probe needs one label per vector, and both classes")
    order = np.random.default_rng(random_state).permutation(len(labels))
    fit, held = order[: len(order) // 2], order[len(order) // 2 :]
    if labels[fit].all() or not labels[fit].any() or labels[held].all() or not labels[held].any():
        raise ValueError("too few rows of one class to split in two")
    model = LogisticRegression(max_iter=1_000).fit(vectors[fit], labels[fit])
    return float(roc_auc_score(labels[held], model.predict_proba(vectors[held])[:, 1]))
