"""The continual line's promotion rule (common/online/continual.py): a challenger that passed the offline gate
is promoted unless the day's A/B test finds it significantly worse, in the primary metric's direction."""

import pytest

from common.online.abtest import Comparison
from common.online.continual import significantly_worse
from common.online.simulator import Metric

CLICKS = Metric("clicks", "requests", "higher is better")
PREVALENCE = Metric("harmful_impressions", "impressions", "lower is better", lower_is_better=True)


def challenger_minus_champion(low: float, high: float) -> Comparison:
    return Comparison(1.0, 1.0 + (low + high) / 2, (low + high) / 2, low, high, 0.01, 0.95)


@pytest.mark.parametrize(
    ("low", "high", "worse_if_higher_is_better", "worse_if_lower_is_better"),
    [
        (-0.3, -0.1, True, False),  # significantly lower
        (0.1, 0.3, False, True),  # significantly higher
        (-0.1, 0.2, False, False),  # the interval covers zero: no evidence either way
    ],
)
def test_a_challenger_stays_out_only_when_significantly_worse_in_the_metrics_direction(
    low, high, worse_if_higher_is_better, worse_if_lower_is_better
):
    ab = challenger_minus_champion(low, high)
    assert significantly_worse(ab, CLICKS) is worse_if_higher_is_better
    assert significantly_worse(ab, PREVALENCE) is worse_if_lower_is_better
