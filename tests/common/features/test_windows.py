import numpy as np
import pandas as pd
import pytest

from common.features.windows import (
    Count,
    Rate,
    activity_snapshots,
    cumulative_snapshots,
    daily_counts,
    list_column,
    smoothed_rate,
    trailing_window_sums,
)


def test_trailing_window_sums_known_answer():
    # One key, events per day: day0=1, day1=2, day2=3, day3=4.
    per_day = np.array([[1.0, 2.0, 3.0, 4.0]])
    # Snapshot d covers days [d-2, d): d0=0, d1=1, d2=1+2, d3=2+3, d4=3+4.
    assert trailing_window_sums(per_day, 2).tolist() == [[0, 1, 3, 5, 7]]
    # All history before d.
    assert trailing_window_sums(per_day, None).tolist() == [[0, 1, 3, 6, 10]]


def test_daily_counts_with_weights():
    keys = np.array([0, 0, 1, 1])
    days = np.array([0, 0, 1, 2])
    assert daily_counts(keys, days, 2, 3).tolist() == [[2, 0, 0], [0, 1, 1]]
    assert daily_counts(keys, days, 2, 3, np.array([1.0, 0.0, 1.0, 0.0])).tolist() == [[1, 0, 0], [0, 1, 0]]


def test_smoothed_rate_shrinks_toward_prior():
    # 1 click in 2 impressions with 8 pseudo-impressions at 10%: (1 + 0.8) / (2 + 8) = 0.18.
    assert np.isclose(smoothed_rate(np.array(1.0), np.array(2.0), 0.1, 8.0), 0.18)
    assert smoothed_rate(np.array(0.0), np.array(0.0), 0.03, 50.0) == 0.03


def test_list_column_gives_every_owner_a_list():
    lists = list_column(np.array([2, 0, 2]), np.array([7, 8, 9]), n_owners=4).to_pylist()
    assert lists == [[8], [], [7, 9], []]


def test_snapshots_change_only_with_the_past():
    """A snapshot at day d is a function of days < d only."""
    rng = np.random.default_rng(0)
    per_day = rng.integers(0, 5, (3, 10)).astype(float)
    changed = per_day.copy()
    changed[:, 6:] += 100  # rewrite days 6..9
    before, after = trailing_window_sums(per_day, 3), trailing_window_sums(changed, 3)
    np.testing.assert_array_equal(before[:, :7], after[:, :7])  # snapshots 0..6 only see days < 6
    assert (before[:, 7:] != after[:, 7:]).any()


START = pd.Timestamp("2026-01-05", tz="UTC")


def _events(rows: list[tuple[int, int, int, float]]) -> pd.DataFrame:
    """(key, day, clicked, dwell) rows, each at noon of its day."""
    keys, days, clicked, dwell = zip(*rows, strict=True)
    times = START + pd.to_timedelta(np.array(days), unit="D") + pd.Timedelta(hours=12)
    return pd.DataFrame({"key": keys, "event_timestamp": times, "clicked": clicked, "dwell": dwell})


def test_activity_snapshots_known_answer():
    # Key 7: 2 events on day 0 (1 click), 1 on day 1 (a click); key 9: 1 event on day 1, no click.
    events = _events([(7, 0, 1, 2.5), (7, 0, 0, 0.5), (7, 1, 1, 1.0), (9, 1, 0, 4.0)])
    counts = [Count("shown_1d", 1), Count("clicks_all", None, "clicked"), Count("dwell_all", None, "dwell")]
    rates = [Rate("ctr", "clicks_all", "shown_all", 2.0)]
    frame = activity_snapshots(
        events, "key", np.array([7, 9]), START, np.arange(3), [*counts, Count("shown_all", None)], rates
    )
    # Snapshot-major, every key at every snapshot, stamped at the snapshot's midnight.
    assert frame["key"].tolist() == [7, 9, 7, 9, 7, 9]
    assert frame["event_timestamp"].tolist() == [START + pd.Timedelta(days=d) for d in (0, 0, 1, 1, 2, 2)]
    assert frame["shown_1d"].tolist() == [0, 0, 2, 0, 1, 1]  # only the day before each snapshot
    assert frame["clicks_all"].tolist() == [0, 0, 1, 0, 2, 0] and frame["clicks_all"].dtype == np.int64
    assert frame["dwell_all"].tolist() == [0.0, 0.0, 3.0, 0.0, 4.0, 4.0]  # a fractional sum stays float
    # Rates shrink toward the platform's rate before the snapshot: day 1 prior 1/2, day 2 prior 2/4.
    np.testing.assert_allclose(frame["ctr"], [0, 0, (1 + 0.5 * 2) / (2 + 2), 0.5, (2 + 1) / (3 + 2), 1 / 3])


def test_activity_snapshots_refuses_unknown_keys():
    with pytest.raises(ValueError, match="missing from its table"):
        activity_snapshots(_events([(5, 0, 1, 0.0)]), "key", np.array([7]), START, np.arange(2), [Count("n", 1)])


def test_cumulative_snapshots_known_answer():
    start = pd.Timestamp("2026-01-01", tz="UTC")
    at = [start + pd.Timedelta(hours=h) for h in (1, 5, 30, 2, 26, 50)]
    events = pd.DataFrame(
        {
            "user_id": [7, 7, 7, 9, 9, 9],
            "event_timestamp": at,
            "liked": np.array([1, 0, 1, 0, 1, 1], dtype=np.int8),
            "price": [2.5, 1.0, 0.5, 4.0, 0.0, 1.0],
            "item_id": [70, 71, 72, 90, 91, 92],
        }
    )
    table = cumulative_snapshots(
        events.sample(frac=1.0, random_state=0),  # any order in
        "user_id",
        start,
        every=1,
        sums={"n": None, "likes": "liked", "spent": "price"},
        lists={"recent": ("item_id", 2)},
    ).to_pandas()
    # user 7: two events on day 0 (seen from day 1), one on day 1; user 9: day 0, day 1, day 2.
    assert table["user_id"].tolist() == [7, 7, 9, 9, 9]
    assert [t.day for t in table["event_timestamp"]] == [2, 3, 2, 3, 4]
    assert table["n"].tolist() == [2, 3, 1, 2, 3]
    assert table["likes"].tolist() == [1, 2, 0, 1, 2] and table["likes"].dtype == np.int64
    np.testing.assert_allclose(table["spent"], [3.5, 4.0, 4.0, 4.0, 5.0])
    assert [list(r) for r in table["recent"]] == [[70, 71], [71, 72], [90], [90, 91], [91, 92]]
    weekly = cumulative_snapshots(events, "user_id", start, every=7, sums={"n": None}).to_pandas()
    assert weekly["n"].tolist() == [3, 3] and [t.day for t in weekly["event_timestamp"]] == [8, 8]


def test_cumulative_snapshots_filtered_lists_and_minute_snapshots():
    start = pd.Timestamp("2026-01-01", tz="UTC")
    events = pd.DataFrame(
        {
            "post_id": [1, 1, 1, 2],
            "event_timestamp": [start + pd.Timedelta(minutes=m) for m in (3, 7, 25, 12)],
            "liked": np.array([1, 0, 1, 1], dtype=np.int8),
            "user_id": [10, 11, 12, 13],
        }
    )
    table = cumulative_snapshots(
        events,
        "post_id",
        start,
        every=pd.Timedelta(minutes=10),
        sums={"impressions": None, "likes": "liked"},
        lists={"likers": ("user_id", 5, "liked")},
    ).to_pandas()
    assert table["post_id"].tolist() == [1, 1, 2]
    assert [(t - start).seconds // 60 for t in table["event_timestamp"]] == [10, 30, 20]
    assert table["impressions"].tolist() == [2, 3, 1] and table["likes"].tolist() == [1, 2, 1]
    assert [list(v) for v in table["likers"]] == [[10], [10, 12], [13]]
