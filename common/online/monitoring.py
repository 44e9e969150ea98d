"""Monitoring a served model, as the chapters' deployment sections run it: each simulated day, the model's
inputs and outputs are compared with the training data, and alerts raised when a threshold is crossed. Drift
is the population stability index (PSI) of each feature and of the model's scores; calibration is the served
probabilities against the outcomes that came back (ads teams watch the ratio of predicted to observed CTR).

    report = monitor_day(day, train_x, served_x, train_scores, served_scores, clicks, served_p)
    report.alerts()                                 # ["feature user_ctr_7d PSI 0.31 > 0.2", ...]
    mlflow.log_metrics(report.metrics(), step=day)  # psi_<feature>, prediction_psi, calibration_ratio, ece
    drift_figure(reports), calibration_figure(reports)  # one line per day over the whole simulation
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no screen here; figures go to MLflow as files
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from common.evaluation.metrics import expected_calibration_error

# The usual rule of thumb: PSI < 0.1 stable, 0.1-0.2 a moderate shift worth a look, > 0.2 a significant one.
PSI_ALERT = 0.2
# Predicted over observed positive rate: outside this band the served probabilities are off by a quarter or
# more (the band is symmetric in log space: 0.8 = 1 / 1.25), which moves bids and thresholds that use them.
CALIBRATION_BAND = (0.8, 1.25)
# A bin's share is floored here, so a bin empty on one side costs a large but finite amount.
PSI_EPSILON = 1e-4


def _psi(expected_counts: np.ndarray, actual_counts: np.ndarray) -> float:
    expected = np.maximum(expected_counts / expected_counts.sum(), PSI_EPSILON)
    actual = np.maximum(actual_counts / actual_counts.sum(), PSI_EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _numeric_sample(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sample, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or infinite values; impute them (or monitor the missing rate) first")
    return values


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin 0 holds values below the training minimum, the last bin values above the training maximum, and the
    ones between are the quantile bins [edge, next edge), the top one closed at the maximum. Dedicated
    out-of-range bins make a shift beyond the training range count even when the training feature has one
    value (with the outer quantile bins open to infinity, a constant feature moving up would go unnoticed)."""
    interior = edges[1:-1]
    index = 1 + np.searchsorted(interior, values, side="right")
    index[values < edges[0]] = 0
    index[values > edges[-1]] = len(interior) + 2
    return index


def population_stability_index(expected, actual, n_bins: int = 10) -> float:
    """PSI = sum over bins of (a - e) * ln(a / e), with e and a the shares of the expected (training) and
    actual (serving) samples per bin. The bins are the expected sample's quantiles, with duplicate edges
    dropped so a feature with few distinct values gets fewer bins instead of empty ones, plus one bin on each
    side for serving values outside the training range."""
    expected = _numeric_sample(expected, "expected")
    actual = _numeric_sample(actual, "actual")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    edges = np.unique(np.quantile(expected, np.linspace(0.0, 1.0, n_bins + 1)))
    n_all_bins = max(len(edges) - 2, 0) + 3
    return _psi(
        np.bincount(_bin_index(expected, edges), minlength=n_all_bins),
        np.bincount(_bin_index(actual, edges), minlength=n_all_bins),
    )


def categorical_psi(expected, actual) -> float:
    """PSI over the categories of both samples together: a category never seen in training is a bin whose
    training share is floored at PSI_EPSILON, so it counts heavily rather than being dropped."""
    expected, actual = pd.Series(np.asarray(expected, dtype=object)), pd.Series(np.asarray(actual, dtype=object))
    for name, sample in (("expected", expected), ("actual", actual)):
        if sample.empty:
            raise ValueError(f"{name} is empty")
        if sample.isna().any():
            raise ValueError(f"{name} contains missing values; fill them with a category of their own first")
    categories = pd.Index(expected.unique()).union(pd.Index(actual.unique()))
    return _psi(
        expected.value_counts().reindex(categories, fill_value=0).to_numpy(float),
        actual.value_counts().reindex(categories, fill_value=0).to_numpy(float),
    )


def _is_numeric(column: pd.Series) -> bool:
    # Booleans are flags, not quantities: two categories read more plainly than quantile bins of 0 and 1.
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def feature_drift(training: pd.DataFrame, serving: pd.DataFrame, columns=None) -> pd.DataFrame:
    """One row per column (all of training's by default): column, psi, kind ("numeric" or "categorical", from
    the training column's dtype), the most drifted first."""
    columns = list(training.columns if columns is None else columns)
    missing = [c for c in columns if c not in serving.columns]
    if missing:
        raise ValueError(f"serving data lacks the column(s) {missing}")
    rows = []
    for column in columns:
        if _is_numeric(training[column]):
            rows.append((column, population_stability_index(training[column], serving[column]), "numeric"))
        else:
            rows.append((column, categorical_psi(training[column], serving[column]), "categorical"))
    table = pd.DataFrame(rows, columns=["column", "psi", "kind"])
    return table.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


def calibration(y, p, n_bins: int = 10) -> dict[str, float]:
    """Mean predicted probability, observed positive rate, their ratio (predicted / observed: above 1 the
    model over-predicts; NaN when no outcome is positive) and the expected calibration error over `n_bins`
    equal-count bins."""
    ece = expected_calibration_error(y, p, n_bins)  # first: it checks y is 0/1 and p in [0, 1]
    mean_predicted, observed_rate = float(np.mean(p)), float(np.mean(y))
    return {
        "mean_predicted": mean_predicted,
        "observed_rate": observed_rate,
        "calibration_ratio": mean_predicted / observed_rate if observed_rate > 0 else float("nan"),
        "ece": ece,
    }


@dataclass(frozen=True)
class DayReport:
    day: int
    features: pd.DataFrame  # feature_drift's table: column, psi, kind
    prediction_psi: float  # the served scores against the scores of the training rows
    calibration: dict[str, float]  # calibration()'s dict, on the day's served probabilities and outcomes

    def alerts(self) -> list[str]:
        """One message per threshold crossed; an empty list is a quiet day."""
        messages = [
            f"feature {row.column} PSI {row.psi:.2f} > {PSI_ALERT}"
            for row in self.features.itertuples()
            if row.psi > PSI_ALERT
        ]
        if self.prediction_psi > PSI_ALERT:
            messages.append(f"prediction PSI {self.prediction_psi:.2f} > {PSI_ALERT}")
        ratio, (low, high) = self.calibration["calibration_ratio"], CALIBRATION_BAND
        if np.isnan(ratio):
            # With a mean prediction well above zero, a day without one positive outcome is a broken label feed.
            messages.append("calibration ratio undefined: no positive outcomes")
        elif not low <= ratio <= high:
            messages.append(f"calibration ratio {ratio:.2f} outside [{low}, {high}]")
        return messages

    def metrics(self) -> dict[str, float]:
        """Flat float metrics for mlflow.log_metrics(..., step=day)."""
        metrics = {f"psi_{row.column}": float(row.psi) for row in self.features.itertuples()}
        metrics["prediction_psi"] = float(self.prediction_psi)
        metrics.update({name: float(value) for name, value in self.calibration.items()})
        return metrics


def monitor_day(
    day: int,
    training_features: pd.DataFrame,
    serving_features: pd.DataFrame,
    training_scores,
    serving_scores,
    outcomes,
    served_probabilities,
    columns=None,
) -> DayReport:
    """A day's report: each feature's and the scores' drift from training, and the calibration of the
    probabilities served that day against the outcomes logged for them."""
    return DayReport(
        day=day,
        features=feature_drift(training_features, serving_features, columns),
        prediction_psi=population_stability_index(training_scores, serving_scores),
        calibration=calibration(outcomes, served_probabilities),
    )


def _days(reports: list[DayReport]) -> tuple[list[DayReport], list[int]]:
    if not reports:
        raise ValueError("no reports to plot")
    reports = sorted(reports, key=lambda report: report.day)
    return reports, [report.day for report in reports]


def drift_figure(reports: list[DayReport], top: int = 5):
    """PSI per day of the `top` features that drifted most on any day, and of the model's scores, under the
    alert threshold (dashed)."""
    reports, days = _days(reports)
    psi = pd.DataFrame([report.features.set_index("column")["psi"] for report in reports], index=days)
    figure, axis = plt.subplots(figsize=(7, 4))
    for column in psi.max().sort_values(ascending=False, kind="stable").index[:top]:
        axis.plot(days, psi[column], marker="o", markersize=3, label=column)
    axis.plot(days, [r.prediction_psi for r in reports], color="black", marker="s", markersize=3, label="prediction")
    axis.axhline(PSI_ALERT, color="red", linestyle="--", label=f"alert ({PSI_ALERT})")
    axis.set(xlabel="day", ylabel="PSI against training", title="Drift of features and predictions")
    axis.legend(loc="upper left", fontsize="small")
    plt.close(figure)
    return figure


def calibration_figure(reports: list[DayReport]):
    """Predicted over observed positive rate per day, 1.0 dotted and the alert band shaded."""
    reports, days = _days(reports)
    low, high = CALIBRATION_BAND
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.axhspan(low, high, color="green", alpha=0.1, label=f"no alert [{low}, {high}]")
    axis.axhline(1.0, color="grey", linestyle=":")
    ratios = [report.calibration["calibration_ratio"] for report in reports]
    axis.plot(days, ratios, marker="o", markersize=3, label="predicted / observed")
    axis.set(xlabel="day", ylabel="calibration ratio", title="Calibration of served probabilities")
    axis.legend(loc="upper left", fontsize="small")
    plt.close(figure)
    return figure
