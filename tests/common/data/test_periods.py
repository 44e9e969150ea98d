import pandas as pd
import pytest

from common.data.periods import Periods

START = pd.Timestamp("2026-01-05", tz="UTC")


def day(d: int) -> pd.Timestamp:
    return START + pd.Timedelta(days=d)


def test_daily_periods_counted_back_from_the_end_after_the_warmup():
    # 21 days (0..20): test = the last 3 days, validation the 3 before, train the rest after day 0.
    periods = Periods.from_config(START, 21, {"warmup_days": 1, "days": {"train": None, "validation": 3, "test": 3}})
    assert periods.starts == {"train": day(1), "validation": day(15), "test": day(18)}
    assert periods.end == day(21) and periods.stop("validation") == day(18) and periods.stop("test") == day(21)
    times = pd.DatetimeIndex([day(0), day(1), day(14) + pd.Timedelta(hours=23), day(15), day(20), day(30)])
    assert periods.mask("train", times).tolist() == [False, True, True, False, False, False]
    assert periods.mask("validation", times).tolist() == [False, False, False, True, False, False]
    assert periods.mask("test", times).tolist() == [False, False, False, False, True, True]


def test_boundaries_fall_on_snapshot_days():
    # Weekly snapshots over 180 days: each boundary is rounded down to a multiple of 7.
    config = {"days": {"two_tower": None, "train": 28, "validation": 14, "test": 28}}
    periods = Periods.from_config(START, 180, config, every=7)
    assert periods.starts == {"two_tower": day(0), "train": day(105), "validation": day(133), "test": day(147)}
    assert periods.end == day(182)  # the first snapshot after the last event


def test_too_few_days_and_malformed_lengths_are_clear_errors():
    with pytest.raises(ValueError, match="too few"):
        Periods.from_config(START, 6, {"warmup_days": 1, "days": {"train": None, "validation": 3, "test": 3}})
    with pytest.raises(ValueError, match="the first takes the rest"):
        Periods.from_config(START, 30, {"days": {"train": 5, "test": 3}})
    with pytest.raises(ValueError, match="the first takes the rest"):
        Periods.from_config(START, 30, {"days": {"train": None, "test": 0}})
