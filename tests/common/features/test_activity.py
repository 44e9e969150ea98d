"""Known-answer tests of common.features.activity (and Dataset's checks) on hand-built logs.

Daily logs (every=1), three items, three users (user 3 never acts), a 2-day item window:

    event  time           user  item  engaged  positive
      1    day 0 09:00     1     10      1        1
      2    day 0 10:00     2     10      0        0
      3    day 1 00:00     1     20      1        0      <- exactly midnight: belongs to day 1
      4    day 1 12:00     2     20      1        1
      5    day 2 08:00     1     30      0        0
      6    day 2 15:00     2     30      1        1
      7    day 3 05:00     2     10      1        1
      8    day 3 23:59     1     30      1        1

A snapshot stamped at day D covers the events of days < D: the midnight event of day 1 is not in
the day-1 snapshot.
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from common.data.dataset import Dataset, Schema
from common.features.activity import (
    ITEM_ACTIVITY,
    PRIOR_EVENTS,
    STATIC_OFFSET,
    USER_ACTIVITY_LISTS,
    USER_ACTIVITY_SCALARS,
    build_feature_tables,
    item_activity,
    item_metadata,
    snapshot_days,
    user_activity,
)

START = pd.Timestamp("2024-01-01", tz="UTC")
SCHEMA = Schema(
    item_name="thing",
    group_column="genre",
    user_categorical=("country",),
    user_numeric=("age",),
    item_categorical=("genre",),
)
WINDOW = 2


def at(day: int, hour: int = 0, minute: int = 0) -> pd.Timestamp:
    return START + pd.Timedelta(days=day, hours=hour, minutes=minute)


def seconds(timestamp: pd.Timestamp) -> int:
    return int(timestamp.timestamp())


def make_users(ids=(1, 2, 3)) -> pd.DataFrame:
    return pd.DataFrame(
        {"user_id": list(ids), "country": ["us", "de", "fr"][: len(ids)], "age": [30, 40, 50][: len(ids)]}
    )


def make_items(ids=(10, 20, 30)) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": list(ids),
            "title": [f"title {i}" for i in ids],
            "genre": ["a", "b", "a"][: len(ids)],
            "release_timestamp": [at(-30), at(-20, 6), at(-10)][: len(ids)],
        }
    )


def make_events(rows) -> pd.DataFrame:
    user, item, time, engaged, positive = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "user_id": np.asarray(user, dtype=np.int64),
            "item_id": np.asarray(item, dtype=np.int64),
            "event_timestamp": pd.DatetimeIndex(time),
            "engaged": np.asarray(engaged, dtype=np.int8),
            "positive": np.asarray(positive, dtype=np.int8),
            "value": np.asarray(engaged, dtype=np.float32),
        }
    )


EVENT_TIMES = {
    1: at(0, 9),
    2: at(0, 10),
    3: at(1),
    4: at(1, 12),
    5: at(2, 8),
    6: at(2, 15),
    7: at(3, 5),
    8: at(3, 23, 59),
}
DAILY_EVENTS = [
    (1, 10, EVENT_TIMES[1], 1, 1),
    (2, 10, EVENT_TIMES[2], 0, 0),
    (1, 20, EVENT_TIMES[3], 1, 0),
    (2, 20, EVENT_TIMES[4], 1, 1),
    (1, 30, EVENT_TIMES[5], 0, 0),
    (2, 30, EVENT_TIMES[6], 1, 1),
    (2, 10, EVENT_TIMES[7], 1, 1),
    (1, 30, EVENT_TIMES[8], 1, 1),
]


@pytest.fixture(scope="module")
def daily() -> Dataset:
    return Dataset(make_users(), make_items(), make_events(DAILY_EVENTS), START, SCHEMA)


# ---- snapshots --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "n_days, every, expected",
    [
        (4, 1, [0, 1, 2, 3, 4]),
        (14, 7, [0, 7, 14]),  # a whole number of weeks: the last snapshot is the day after the logs
        (16, 7, [0, 7, 14, 21]),  # otherwise the first snapshot after the last day
        (1, 7, [0, 7]),
        (7, 7, [0, 7]),
        (8, 7, [0, 7, 14]),
    ],
)
def test_snapshot_days(n_days, every, expected):
    assert snapshot_days(n_days, every).tolist() == expected


def test_recdata_properties(daily):
    assert daily.n_days == 4  # the last event is on day 3
    assert daily.day_start(2) == at(2)
    assert daily.has_negatives  # events 2 and 5 are impressions without engagement
    engaged_only = make_events([row for row in DAILY_EVENTS if row[3] == 1])
    assert not Dataset(make_users(), make_items(), engaged_only, START, SCHEMA).has_negatives


# ---- item activity ------------------------------------------------------------------------------
# (item, snapshot day) -> (events in the window, engaged in the window, positive in the window,
#                          engaged in all history, positive in all history)
ITEM_EXPECTED = {
    (10, 0): (0, 0, 0, 0, 0),
    (10, 1): (2, 1, 1, 1, 1),
    (10, 2): (2, 1, 1, 1, 1),
    (10, 3): (0, 0, 0, 1, 1),  # day 0 has left the 2-day window [1, 3)
    (10, 4): (1, 1, 1, 2, 2),
    (20, 0): (0, 0, 0, 0, 0),
    (20, 1): (0, 0, 0, 0, 0),  # event 3 happened at 00:00 on day 1: not before the day-1 snapshot
    (20, 2): (2, 2, 1, 2, 1),
    (20, 3): (2, 2, 1, 2, 1),
    (20, 4): (0, 0, 0, 2, 1),
    (30, 0): (0, 0, 0, 0, 0),
    (30, 1): (0, 0, 0, 0, 0),
    (30, 2): (0, 0, 0, 0, 0),
    (30, 3): (2, 1, 1, 1, 1),
    (30, 4): (3, 2, 2, 2, 2),  # event 8 at 23:59 on day 3 is in
}
COUNT_COLUMNS = [
    "item_events_window",
    "item_engaged_window",
    "item_positive_window",
    "item_engaged_total",
    "item_positive_total",
]


def test_item_activity_is_dense_with_the_snapshot_stamps(daily):
    frame = item_activity(daily, every=1, window_days=WINDOW)
    assert list(frame.columns) == ["item_id", "event_timestamp", *ITEM_ACTIVITY]
    assert len(frame) == 3 * 5  # every item at every snapshot, zeros included
    assert set(zip(frame["item_id"], frame["event_timestamp"], strict=True)) == {
        (item, at(day)) for item in (10, 20, 30) for day in range(5)
    }


def test_item_activity_counts_only_events_before_each_snapshot(daily):
    frame = item_activity(daily, every=1, window_days=WINDOW)
    day = (frame["event_timestamp"] - START) // pd.Timedelta(days=1)
    got = {
        (int(item), int(d)): tuple(row)
        for item, d, row in zip(frame["item_id"], day, frame[COUNT_COLUMNS].to_numpy().tolist(), strict=True)
    }
    assert got == {key: tuple(float(v) for v in value) for key, value in ITEM_EXPECTED.items()}


def test_item_activity_rates_are_smoothed_toward_the_platform_rate(daily):
    frame = item_activity(daily, every=1, window_days=WINDOW).set_index(["item_id", "event_timestamp"])
    # Snapshot 0: nothing before it, the priors are 0 and so are the rates.
    assert (
        (frame.xs(at(0), level="event_timestamp")[["item_engage_rate_window", "item_positive_rate"]] == 0).all().all()
    )
    # Snapshot 2: the window (days 0-1) holds 4 events, 3 engaged: engage prior 3/4.
    # All history holds 3 engagements, 2 positive: positive prior 2/3.
    engage_prior, positive_prior = 3 / 4, 2 / 3
    row = frame.loc[(10, at(2))]
    assert row["item_engage_rate_window"] == pytest.approx((1 + engage_prior * PRIOR_EVENTS) / (2 + PRIOR_EVENTS))
    assert row["item_positive_rate"] == pytest.approx((1 + positive_prior * PRIOR_EVENTS) / (1 + PRIOR_EVENTS))
    row = frame.loc[(20, at(2))]
    assert row["item_engage_rate_window"] == pytest.approx((2 + engage_prior * PRIOR_EVENTS) / (2 + PRIOR_EVENTS))
    assert row["item_positive_rate"] == pytest.approx((1 + positive_prior * PRIOR_EVENTS) / (2 + PRIOR_EVENTS))
    # An item without events yet reads exactly the priors.
    row = frame.loc[(30, at(2))]
    assert row["item_engage_rate_window"] == pytest.approx(engage_prior)
    assert row["item_positive_rate"] == pytest.approx(positive_prior)


def test_item_activity_never_sees_events_of_its_own_day(daily):
    """Moving every event of day d later within the day changes no snapshot (the day is all
    after the snapshot at d); moving one to the next midnight changes only later snapshots."""
    base = item_activity(daily, every=1, window_days=WINDOW)
    later = daily.events.assign(event_timestamp=daily.events["event_timestamp"].dt.floor("D") + pd.Timedelta(hours=23))
    moved = item_activity(Dataset(daily.users, daily.items, later, START, SCHEMA), 1, WINDOW)
    pd.testing.assert_frame_equal(base, moved)


# ---- user activity ------------------------------------------------------------------------------
# (user, snapshot day) -> events, engaged, positive totals, last engagement, history, seen
# (history_length=2, seen_length=2).
USER_EXPECTED = {
    (1, 1): (1, 1, 1, EVENT_TIMES[1], [10], [10]),
    (1, 2): (2, 2, 1, EVENT_TIMES[3], [10], [10, 20]),
    (1, 3): (3, 2, 1, EVENT_TIMES[3], [10], [10, 20]),  # event 5 was not engaged
    (1, 4): (4, 3, 2, EVENT_TIMES[8], [10, 30], [20, 30]),  # seen keeps the last 2 engaged, oldest first
    (2, 1): (1, 0, 0, None, [], []),  # an impression only: never engaged
    (2, 2): (2, 1, 1, EVENT_TIMES[4], [20], [20]),
    (2, 3): (3, 2, 2, EVENT_TIMES[6], [20, 30], [20, 30]),
    (2, 4): (4, 3, 3, EVENT_TIMES[7], [30, 10], [30, 10]),  # history keeps the last 2 positives, oldest first
}


def user_rows(table: pa.Table) -> dict:
    frame = table.to_pandas()
    day = (frame["event_timestamp"] - START) // pd.Timedelta(days=1)
    return {
        (int(row.user_id), int(d)): (
            int(row.user_events_total),
            int(row.user_engaged_total),
            int(row.user_positive_total),
            int(row.last_engaged_s),
            list(row.history_item_ids),
            list(row.seen_item_ids),
        )
        for row, d in zip(frame.itertuples(), day, strict=True)
    }


def expected_user_rows(expected: dict) -> dict:
    return {
        key: (events, engaged, positive, -1 if last is None else seconds(last), history, seen)
        for key, (events, engaged, positive, last, history, seen) in expected.items()
    }


def test_user_activity_one_row_per_user_and_snapshot_after_events(daily):
    table = user_activity(daily, every=1, history_length=2, seen_length=2)
    assert table.column_names == ["user_id", *USER_ACTIVITY_SCALARS, *USER_ACTIVITY_LISTS, "event_timestamp"]
    assert table.schema.field("history_item_ids").type == pa.list_(pa.int64())
    assert table.schema.field("seen_item_ids").type == pa.list_(pa.int64())
    assert table.schema.field("last_engaged_s").type == pa.int64()
    assert user_rows(table) == expected_user_rows(USER_EXPECTED)  # user 3 has no events: no row


def test_user_activity_lists_are_bounded_but_totals_are_not(daily):
    got = user_rows(user_activity(daily, every=1, history_length=1, seen_length=10))
    assert got[(2, 4)][4] == [10]  # the single most recent positive
    assert got[(2, 4)][5] == [20, 30, 10]
    assert got[(1, 4)][4:] == ([30], [10, 20, 30])
    assert got[(2, 4)][:3] == (4, 3, 3)


def test_user_activity_row_at_midnight_does_not_see_that_days_events(daily):
    """Event 3 (user 1) happened at 00:00 of day 1: the day-1 row must not count it."""
    got = user_rows(user_activity(daily, every=1, history_length=5, seen_length=5))
    assert got[(1, 1)][0] == 1 and got[(1, 1)][5] == [10]
    assert got[(1, 2)][0] == 2 and got[(1, 2)][5] == [10, 20]


def test_user_activity_does_not_depend_on_the_input_order(daily):
    shuffled = daily.events.sample(frac=1.0, random_state=3).reset_index(drop=True)
    data = Dataset(daily.users, daily.items, shuffled, START, SCHEMA)
    assert user_rows(user_activity(data, 1, 2, 2)) == user_rows(user_activity(daily, 1, 2, 2))


# ---- weekly cadence -----------------------------------------------------------------------------
# One user, 16 days of logs (n_days is not a multiple of 7): snapshots at days 0, 7, 14, 21.
WEEKLY_TIMES = [at(0, 10), at(6, 23), at(7), at(13, 12), at(15, 1)]
WEEKLY_EVENTS = [
    (1, 10, WEEKLY_TIMES[0], 1, 1),
    (1, 20, WEEKLY_TIMES[1], 1, 0),
    (1, 10, WEEKLY_TIMES[2], 1, 0),  # midnight of day 7: after the day-7 snapshot
    (1, 30, WEEKLY_TIMES[3], 1, 1),
    (1, 20, WEEKLY_TIMES[4], 0, 0),
]


@pytest.fixture(scope="module")
def weekly() -> Dataset:
    return Dataset(make_users(), make_items(), make_events(WEEKLY_EVENTS), START, SCHEMA)


def test_weekly_user_activity_is_stamped_at_the_next_weekly_snapshot(weekly):
    assert weekly.n_days == 16
    got = user_rows(user_activity(weekly, every=7, history_length=5, seen_length=3))
    assert got == expected_user_rows(
        {
            (1, 7): (2, 2, 1, WEEKLY_TIMES[1], [10], [10, 20]),
            (1, 14): (4, 4, 2, WEEKLY_TIMES[3], [10, 30], [20, 10, 30]),  # the last 3 engaged, 10 twice
            (1, 21): (5, 4, 2, WEEKLY_TIMES[3], [10, 30], [20, 10, 30]),
        }
    )


def test_weekly_item_activity_stamps_and_totals(weekly):
    frame = item_activity(weekly, every=7, window_days=7)
    day = ((frame["event_timestamp"] - START) // pd.Timedelta(days=1)).to_numpy()
    assert sorted(set(day.tolist())) == [0, 7, 14, 21]
    got = {
        (int(i), int(d)): (events, engaged)
        for i, d, events, engaged in zip(
            frame["item_id"], day, frame["item_events_window"], frame["item_engaged_total"], strict=True
        )
    }
    assert got[(10, 7)] == (1, 1) and got[(10, 14)] == (1, 2) and got[(10, 21)][1] == 2
    assert got[(20, 7)] == (1, 1)  # 23:00 on day 6 is before the day-7 snapshot
    assert got[(20, 14)] == (0, 1) and got[(20, 21)] == (1, 1)  # the day-15 impression: an event, no engagement
    assert got[(30, 14)] == (1, 1)


def test_weekly_item_window_at_the_serving_snapshot_covers_only_the_window(weekly):
    """The snapshot at day 21 covers the window [14, 21): item 30's only event (day 13) is out of it."""
    frame = item_activity(weekly, every=7, window_days=7).set_index(["item_id", "event_timestamp"])
    assert frame.loc[(30, at(21)), "item_engaged_total"] == 1
    assert frame.loc[(30, at(21)), "item_events_window"] == 0


# ---- feature tables -----------------------------------------------------------------------------
def test_build_feature_tables(daily):
    config = {"snapshot_every_days": 1, "activity_window_days": WINDOW, "history_length": 2, "seen_length": 2}
    tables = build_feature_tables(daily, config)
    assert set(tables) == {"user_profile", "item_metadata", "item_activity", "user_activity"}
    profile = tables["user_profile"]
    assert list(profile.columns) == ["user_id", "country", "age", "event_timestamp"]
    assert (profile["event_timestamp"] == START - STATIC_OFFSET).all() and len(profile) == 3
    metadata = tables["item_metadata"]
    assert "release_timestamp" not in metadata and (metadata["event_timestamp"] == START - STATIC_OFFSET).all()
    assert metadata["release_s"].dtype == np.int64
    assert metadata["release_s"].tolist() == [seconds(at(-30)), seconds(at(-20, 6)), seconds(at(-10))]
    assert user_rows(tables["user_activity"]) == expected_user_rows(USER_EXPECTED)
    pd.testing.assert_frame_equal(tables["item_activity"], item_activity(daily, 1, WINDOW))


def test_item_metadata_keeps_the_other_columns(daily):
    metadata = item_metadata(daily)
    assert list(metadata.columns) == ["item_id", "title", "genre", "release_s"]
    assert metadata["title"].tolist() == ["title 10", "title 20", "title 30"]


# ---- Dataset checks -----------------------------------------------------------------------------
def test_recdata_rejects_a_positive_that_was_not_engaged():
    events = make_events([(1, 10, at(0), 1, 1), (2, 20, at(1), 0, 1)])
    with pytest.raises(ValueError, match="positive event must be an engaged one"):
        Dataset(make_users(), make_items(), events, START, SCHEMA)


@pytest.mark.parametrize("missing", ["user_id", "item_id", "event_timestamp", "engaged", "positive", "value"])
def test_recdata_rejects_events_without_a_column(missing):
    events = make_events(DAILY_EVENTS).drop(columns=[missing])
    with pytest.raises(ValueError, match=f"events lack the columns \\['{missing}'\\]"):
        Dataset(make_users(), make_items(), events, START, SCHEMA)


@pytest.mark.parametrize(
    "users, items, key",
    [
        (make_users((1, 2, 2)), make_items(), "user_id"),
        (make_users(), make_items((10, 20, 10)), "item_id"),
        (make_users().drop(columns=["user_id"]), make_items(), "user_id"),
        (make_users(), make_items().rename(columns={"item_id": "id"}), "item_id"),
    ],
)
def test_recdata_rejects_missing_or_repeated_ids(users, items, key):
    with pytest.raises(ValueError, match=f"{key} must be a unique column"):
        Dataset(users, items, make_events(DAILY_EVENTS), START, SCHEMA)


def test_events_of_unknown_items_are_rejected_or_ignored():
    events = make_events([(1, 10, at(0, 1), 1, 0), (1, 99, at(0, 2), 1, 0)])  # 99 is not in the catalogue
    try:
        data = Dataset(make_users(), make_items(), events, START, SCHEMA)
    except ValueError:
        return  # rejecting the logs is a fix too
    frame = item_activity(data, every=1, window_days=WINDOW).set_index(["item_id", "event_timestamp"])
    assert frame.loc[(10, at(1)), "item_engaged_total"] == 1
    assert frame.loc[(30, at(1)), "item_engaged_total"] == 0
