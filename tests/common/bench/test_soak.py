"""common.bench.soak's memory trend, on known samples (the soak itself needs a server: `make bench SOAK=`)."""

import numpy as np
import pytest

from common.bench.soak import memory_trend

MB = 2**20
MINUTES = np.arange(0, 600, 5.0)  # a 10-minute soak sampled every 5 s


def test_flat_memory_with_noise_is_flat():
    rss = (500 + np.random.default_rng(0).normal(0, 2, len(MINUTES))) * MB
    trend = memory_trend(MINUTES, rss)
    assert not trend.grew and abs(trend.slope_mb_per_min) < 0.5
    assert "flat" in trend.describe()


def test_steady_growth_is_caught_with_its_slope():
    rss = (500 + 10 * MINUTES / 60) * MB  # 10 MB a minute: 100 MB over the soak
    trend = memory_trend(MINUTES, rss)
    assert trend.grew and trend.slope_mb_per_min == pytest.approx(10.0)
    assert trend.last_mb - trend.first_mb == pytest.approx(75.0, abs=1.0)  # medians of the quarters
    assert "GREW" in trend.describe()


def test_a_few_megabytes_settling_is_not_growth():
    rss = np.where(MINUTES < 60, 500, 512) * MB  # allocators settle once, then stay
    assert not memory_trend(MINUTES, rss).grew


def test_too_few_samples_to_judge():
    with pytest.raises(ValueError, match="at least 4"):
        memory_trend(MINUTES[:3], np.full(3, 500 * MB))
