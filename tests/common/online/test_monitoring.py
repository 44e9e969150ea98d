"""Known answers for drift and calibration monitoring (common/online/monitoring.py)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from common.online.monitoring import (
    CALIBRATION_BAND,
    PSI_ALERT,
    PSI_EPSILON,
    DayReport,
    calibration,
    calibration_figure,
    categorical_psi,
    drift_figure,
    feature_drift,
    monitor_day,
    population_stability_index,
)

N = 100_000


def test_psi_by_hand_on_tiny_samples():
    # Quantiles of [1, 2, 3, 4] at 0, 0.5, 1 are 1, 2.5, 4: bins [1, 2.5) and [2.5, 4] hold 2 and 2 in training,
    # 3 and 1 in serving.
    expected = 0.25 * math.log(0.75 / 0.5) + (-0.25) * math.log(0.25 / 0.5)
    assert population_stability_index([1, 2, 3, 4], [1, 1, 1, 4], n_bins=2) == pytest.approx(expected)
    assert expected == pytest.approx(0.25 * math.log(3))
    # Two distinct values: the deciles of [1, 1, 2, 2] are 1, 1, 1, 1, 1.2, 1.5, 1.8, 2, 2, 2, 2; the bins
    # between 1.2 and 1.8 are empty on both sides and add nothing, so the shares are 1/2, 1/2 against 1/4, 3/4.
    assert population_stability_index([1, 1, 2, 2], [1, 2, 2, 2]) == pytest.approx(expected)
    # Quartiles 1, 1, 1.5, 2, 2: bins <1, [1, 1.5), [1.5, 2], >2. Training: 0, 1/2, 1/2, 0. Serving [0, 2, 2, 2]:
    # 1/4 below the training range, 0, 3/4, 0; empty shares are floored at the epsilon.
    eps = PSI_EPSILON
    by_hand = (0.25 - eps) * math.log(0.25 / eps) + (eps - 0.5) * math.log(eps / 0.5) + 0.25 * math.log(0.75 / 0.5)
    assert population_stability_index([1, 1, 2, 2], [0, 2, 2, 2], n_bins=4) == pytest.approx(by_hand)
    # A value on an edge belongs to the bin above it: the median of [1, 2, 3, 4, 5] is 3, so the bins [1, 3) and
    # [3, 5] hold 2/5 and 3/5 of training, and serving [2, 3] puts one value in each.
    on_edge = 0.1 * math.log(0.5 / 0.4) + (-0.1) * math.log(0.5 / 0.6)
    assert population_stability_index([1, 2, 3, 4, 5], [2, 3], n_bins=2) == pytest.approx(on_edge)


def test_psi_of_a_sample_against_itself_and_an_independent_one():
    rng = np.random.default_rng(0)
    training = rng.normal(size=N)
    assert population_stability_index(training, training) == pytest.approx(0.0, abs=1e-12)
    assert population_stability_index(training, rng.normal(size=N)) < 0.01
    # Order and scale of the sample sizes do not matter, only the shares.
    assert population_stability_index(training, rng.permutation(training)[: N // 10]) < 0.01


def test_a_one_sd_mean_shift_matches_the_analytic_psi():
    """Training deciles of N(0, 1) hold 0.1 each; N(1, 1) puts Phi(z_{i+1} - 1) - Phi(z_i - 1) in each."""
    z = stats.norm.ppf(np.linspace(0, 1, 11))
    shifted = np.diff(stats.norm.cdf(z - 1))
    analytic = float(np.sum((shifted - 0.1) * np.log(shifted / 0.1)))  # 0.926
    rng = np.random.default_rng(1)
    psi = population_stability_index(rng.normal(size=N), rng.normal(1.0, 1.0, size=N))
    assert psi == pytest.approx(analytic, abs=0.03)
    assert psi > 4 * PSI_ALERT


def test_values_outside_the_training_range_count():
    training = np.arange(1000.0)  # deciles at 0, 99.9, ..., 899.1, 999: exactly 100 values in each bin
    eps = PSI_EPSILON
    empty = (eps - 0.1) * math.log(eps / 0.1)  # a decile that serving left empty
    out_of_range = (1 - eps) * math.log(1 / eps)  # the bin beyond the training range, holding everything
    above = population_stability_index(training, 1000.0 + np.arange(50))
    assert above == pytest.approx(10 * empty + out_of_range)
    assert population_stability_index(training, -1.0 - np.arange(50)) == pytest.approx(above)
    # The training maximum itself is inside the range: the top decile, not the bin above it.
    at_max = population_stability_index(training, np.full(50, 999.0))
    assert at_max == pytest.approx(9 * empty + 0.9 * math.log(1 / 0.1))


def test_a_constant_training_feature_still_detects_a_shift_either_way():
    constant = np.full(100, 5.0)
    assert population_stability_index(constant, np.full(10, 5.0)) == 0.0
    both_floored = 2 * (1 - PSI_EPSILON) * math.log(1 / PSI_EPSILON)  # all mass moves from one bin to another
    assert population_stability_index(constant, np.full(10, 6.0)) == pytest.approx(both_floored)
    assert population_stability_index(constant, np.full(10, 4.0)) == pytest.approx(both_floored)


def test_psi_rejects_empty_and_nan():
    with pytest.raises(ValueError, match="expected"):
        population_stability_index([], [1.0])
    with pytest.raises(ValueError, match="actual.*NaN"):
        population_stability_index([1.0, 2.0], [1.0, np.nan])
    with pytest.raises(ValueError, match="empty"):
        categorical_psi(["a"], [])
    with pytest.raises(ValueError, match="missing"):
        categorical_psi(["a", None], ["a"])


def test_categorical_psi_by_hand_and_with_an_unseen_category():
    assert categorical_psi(["a", "b", "a", "b"], ["b", "a"]) == pytest.approx(0.0)
    # a: 1/2 -> 1/4, b: 1/2 -> 3/4.
    assert categorical_psi(["a", "a", "b", "b"], ["a", "b", "b", "b"]) == pytest.approx(0.25 * math.log(3))
    unseen = categorical_psi(["a", "b"] * 50, ["a", "b", "c", "c"])  # c: training share floored at the epsilon
    eps = PSI_EPSILON
    assert math.isfinite(unseen)
    assert unseen == pytest.approx(2 * (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.5 - eps) * math.log(0.5 / eps))
    assert unseen > 10 * PSI_ALERT


def _features(rng, n, shift=0.0, mobile_share=0.3):
    return pd.DataFrame(
        {
            "user_ctr_7d": rng.beta(2, 50, n) + shift,
            "age": rng.integers(18, 70, n),
            "device": np.where(rng.random(n) < mobile_share, "mobile", "desktop"),
            "is_new": rng.random(n) < 0.1,
        }
    )


def test_feature_drift_finds_the_drifted_columns_and_their_kinds():
    rng = np.random.default_rng(2)
    training = _features(rng, 20_000)
    table = feature_drift(training, _features(rng, 20_000, shift=0.02, mobile_share=0.6))
    assert list(table.columns) == ["column", "psi", "kind"]
    assert table["psi"].is_monotonic_decreasing
    assert set(table.loc[table["psi"] > PSI_ALERT, "column"]) == {"user_ctr_7d", "device"}
    kinds = dict(zip(table["column"], table["kind"], strict=True))
    assert kinds == {"user_ctr_7d": "numeric", "age": "numeric", "device": "categorical", "is_new": "categorical"}
    # device: 0.3 -> 0.6 mobile, computed by hand (sampling moves it a little).
    by_hand = 0.3 * math.log(0.6 / 0.3) + (-0.3) * math.log(0.4 / 0.7)
    assert table.set_index("column").loc["device", "psi"] == pytest.approx(by_hand, abs=0.02)
    assert list(feature_drift(training, training, columns=["age"])["column"]) == ["age"]
    with pytest.raises(ValueError, match="device"):
        feature_drift(training, training.drop(columns="device"))


def test_calibration_of_calibrated_and_doubled_predictions():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.01, 0.2, N)
    y = (rng.random(N) < p).astype(int)  # y ~ Bernoulli(p): calibrated by construction
    calibrated = calibration(y, p)
    assert calibrated["mean_predicted"] == pytest.approx(p.mean())
    assert calibrated["observed_rate"] == pytest.approx(y.mean())
    assert abs(calibrated["calibration_ratio"] - 1) < 0.05
    assert calibrated["ece"] < 0.01
    doubled = calibration(y, 2 * p)
    assert doubled["calibration_ratio"] == pytest.approx(2.0, abs=0.1)
    assert doubled["ece"] > 0.08  # about the mean prediction, 0.105
    assert math.isnan(calibration(np.zeros(10), np.full(10, 0.1))["calibration_ratio"])
    with pytest.raises(ValueError):
        calibration(y, 10 * p)  # not probabilities


def _day(day, rng, drifted=False, miscalibrated=False):
    training = _features(rng, 5_000)
    serving = _features(rng, 5_000, shift=0.02 if drifted else 0.0)
    p = rng.uniform(0.01, 0.2, 5_000)
    y = (rng.random(5_000) < p).astype(int)
    served = 2 * p if miscalibrated else p
    training_scores = rng.uniform(0.01, 0.2, 5_000)
    return monitor_day(day, training, serving, training_scores, served, y, served)


def test_alerts_name_what_drifted_and_stay_quiet_otherwise():
    rng = np.random.default_rng(4)
    quiet = _day(0, rng)
    assert quiet.alerts() == []
    drifted = _day(1, rng, drifted=True)
    messages = drifted.alerts()
    assert len(messages) == 1 and messages[0].startswith("feature user_ctr_7d PSI ")
    assert messages[0].endswith(f"> {PSI_ALERT}")
    off = _day(2, rng, miscalibrated=True)
    messages = off.alerts()  # doubled scores: the prediction distribution moved too
    assert any(m.startswith("prediction PSI ") for m in messages)
    assert any(m.startswith("calibration ratio ") and str(CALIBRATION_BAND[1]) in m for m in messages)
    assert not any(m.startswith("feature") for m in messages)


def test_alert_messages_and_metrics_of_a_hand_made_report():
    report = DayReport(
        day=3,
        features=pd.DataFrame({"column": ["user_ctr_7d", "age"], "psi": [0.31, 0.05], "kind": ["numeric"] * 2}),
        prediction_psi=0.21,
        calibration={"mean_predicted": 0.06, "observed_rate": 0.1, "calibration_ratio": 0.6, "ece": 0.04},
    )
    assert report.alerts() == [
        "feature user_ctr_7d PSI 0.31 > 0.2",
        "prediction PSI 0.21 > 0.2",
        "calibration ratio 0.60 outside [0.8, 1.25]",
    ]
    metrics = report.metrics()
    assert metrics == {
        "psi_user_ctr_7d": 0.31,
        "psi_age": 0.05,
        "prediction_psi": 0.21,
        "mean_predicted": 0.06,
        "observed_rate": 0.1,
        "calibration_ratio": 0.6,
        "ece": 0.04,
    }
    assert all(type(value) is float for value in metrics.values())
    # At the threshold and on the band's edges nothing fires: the alerts are for crossing them.
    edge = DayReport(3, report.features.assign(psi=[0.2, 0.0]), 0.2, {**report.calibration, "calibration_ratio": 1.25})
    assert edge.alerts() == []
    no_positives = DayReport(3, edge.features, 0.0, {**report.calibration, "calibration_ratio": float("nan")})
    assert no_positives.alerts() == ["calibration ratio undefined: no positive outcomes"]


def test_figures_have_a_line_per_feature_shown():
    rng = np.random.default_rng(5)
    reports = [_day(day, rng, drifted=day >= 2) for day in (3, 0, 1, 2)]  # out of order: plotted by day
    figure = drift_figure(reports, top=3)
    (axis,) = figure.axes
    labels = [line.get_label() for line in axis.lines]
    assert len(axis.lines) == 3 + 2  # three features, the predictions and the threshold
    assert labels[0] == "user_ctr_7d" and "prediction" in labels
    assert list(axis.lines[0].get_xdata()) == [0, 1, 2, 3]
    threshold = axis.lines[-1]
    assert threshold.get_linestyle() == "--" and list(threshold.get_ydata()) == [PSI_ALERT, PSI_ALERT]
    assert len(drift_figure(reports).axes[0].lines) == 4 + 2  # top=5 but only four features

    figure = calibration_figure(reports)
    (axis,) = figure.axes
    assert len(axis.lines) == 2 and len(axis.patches) == 1  # 1.0, the ratio per day; the shaded band
    ratios = [r.calibration["calibration_ratio"] for r in sorted(reports, key=lambda r: r.day)]
    assert list(axis.lines[1].get_ydata()) == pytest.approx(ratios)
    with pytest.raises(ValueError):
        drift_figure([])
