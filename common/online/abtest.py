"""The statistics of an A/B test, as the chapters' "online testing" sections run one: users split between
control and treatment by a hash of their id, the metric's difference with a confidence interval, the sample
size a minimum detectable effect needs before the test starts, and a check that the split came out as
planned (a sample ratio mismatch means the assignment or the logging is broken, and the result is void).

    treated = assign(user_ids, experiment="ranker-v2")           # bool per user, stable across runs
    n = sample_size_per_arm(mean=0.05, sd=0.22, mde=0.005)         # users per arm for 80% power
    result = compare(control_values, treatment_values)            # difference, 95% CI, p-value
    srm_p = sample_ratio_mismatch(n_control, n_treatment)         # small: do not trust the result
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.power import TTestIndPower

SRM_ALPHA = 0.001  # the usual threshold: a split this unlikely under the plan is a bug, not chance


def assign(user_ids, experiment: str, treatment_share: float = 0.5) -> np.ndarray:
    """Whether each user is in the treatment: a hash of "experiment:user id" in [0, 1) below the share.
    The same user lands in the same arm every time, and experiments with different names split users
    independently of each other. pandas' stable SipHash of the text: its hash of integers ignores the key, so
    the experiment's name must be part of what is hashed."""
    if not 0.0 < treatment_share < 1.0:
        raise ValueError(f"treatment_share must be in (0, 1), got {treatment_share}")
    return _hash_fraction(user_ids, experiment) < treatment_share


def assign_arms(user_ids, experiment: str, n_arms: int) -> np.ndarray:
    """Each user's arm, 0 .. n_arms - 1 in equal shares, by the same hash as `assign` (an A/B/n test)."""
    if n_arms < 1:
        raise ValueError(f"n_arms must be at least 1, got {n_arms}")
    return np.minimum((_hash_fraction(user_ids, experiment) * n_arms).astype(np.int64), n_arms - 1)


def _hash_fraction(user_ids, experiment: str) -> np.ndarray:
    """A number in [0, 1) per user, uniform over users and independent across experiments."""
    names = np.char.add(f"{experiment}:", np.asarray(user_ids, dtype=np.int64).astype(str)).astype(object)
    return pd.util.hash_array(names, categorize=False) / 2.0**64


@dataclass(frozen=True)
class Comparison:
    control_mean: float
    treatment_mean: float
    difference: float  # treatment minus control
    low: float  # the confidence interval of the difference
    high: float
    p_value: float
    confidence: float

    @property
    def relative(self) -> float:
        """The difference as a share of the control's mean (the "lift")."""
        return self.difference / self.control_mean if self.control_mean else float("nan")

    @property
    def significant(self) -> bool:
        return not self.low <= 0.0 <= self.high


def compare(control, treatment, confidence: float = 0.95) -> Comparison:
    """The difference of the per-user metric's means (Welch's t-test: the arms' variances may differ), with its
    two-sided confidence interval and p-value."""
    control, treatment = np.asarray(control, float), np.asarray(treatment, float)
    if len(control) < 2 or len(treatment) < 2:
        raise ValueError("each arm needs at least two users")
    test = stats.ttest_ind(treatment, control, equal_var=False)
    interval = test.confidence_interval(confidence_level=confidence)
    return Comparison(
        control_mean=float(control.mean()),
        treatment_mean=float(treatment.mean()),
        difference=float(treatment.mean() - control.mean()),
        low=float(interval.low),
        high=float(interval.high),
        p_value=float(test.pvalue),
        confidence=confidence,
    )


def compare_ratio(control: tuple, treatment: tuple, confidence: float = 0.95) -> Comparison:
    """The difference of a ratio metric (CTR: clicks over impressions) between arms whose units are users:
    each arm is (numerator per user, denominator per user), its value sum(numerator) / sum(denominator). A
    user's impressions are not independent of each other, so the variance comes from the per-user sums by
    the delta method (Deng et al., "Applying the Delta Method in Metric Analytics", 2018), and the interval
    is normal: the arms hold hundreds of users or more."""
    arms = [_ratio_and_variance(*arm) for arm in (control, treatment)]
    (control_ratio, control_variance), (treatment_ratio, treatment_variance) = arms
    difference = treatment_ratio - control_ratio
    se = float(np.sqrt(control_variance + treatment_variance))
    z = stats.norm.ppf(0.5 + confidence / 2)
    if se > 0:
        p_value = float(2 * stats.norm.sf(abs(difference) / se))
    else:  # no variation at all: the difference is exact
        p_value = 1.0 if difference == 0 else 0.0
    low, high = float(difference - z * se), float(difference + z * se)
    return Comparison(control_ratio, treatment_ratio, difference, low, high, p_value, confidence)


def ratio_per_user_sd(numerator, denominator) -> tuple[float, float]:
    """A ratio metric's value over users and its standard deviation per user (the delta method's variance times
    the number of users): what sample_size_per_arm needs, measured on the logs before a test."""
    ratio, variance = _ratio_and_variance(numerator, denominator)
    return ratio, float(np.sqrt(variance * len(numerator)))


def _ratio_and_variance(numerator, denominator) -> tuple[float, float]:
    """sum(x) / sum(y) over users and its delta-method variance: Var(x - r y) / (n mean(y)^2)."""
    x, y = np.asarray(numerator, float), np.asarray(denominator, float)
    if len(x) != len(y) or len(x) < 2:
        raise ValueError("each arm needs a numerator and a denominator for at least two users")
    if y.sum() <= 0:
        raise ValueError("a ratio metric's denominator sums to zero in an arm")
    ratio = x.sum() / y.sum()
    variance = np.var(x - ratio * y, ddof=1) / (len(x) * y.mean() ** 2)
    return float(ratio), float(variance)


def sample_size_per_arm(sd: float, mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Users per arm for a two-sided test at `alpha` to detect an absolute difference `mde` in a metric of
    standard deviation `sd` with probability `power` (equal arms)."""
    if sd <= 0 or mde <= 0:
        raise ValueError("sd and mde must be positive")
    n = TTestIndPower().solve_power(effect_size=mde / sd, alpha=alpha, power=power, ratio=1.0)
    return int(np.ceil(n))


def sample_ratio_mismatch(n_control: int, n_treatment: int, treatment_share: float = 0.5) -> float:
    """The p-value of the observed split under the planned share (chi-square goodness of fit): below
    SRM_ALPHA, the assignment or the logging lost users from one arm."""
    total = n_control + n_treatment
    expected = [total * (1 - treatment_share), total * treatment_share]
    return float(stats.chisquare([n_control, n_treatment], f_exp=expected).pvalue)
