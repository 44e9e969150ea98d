"""Batch features of the recommendation systems, written as Feast sources.

  user_profile    static: the profile columns of the users table
  item_metadata   static: the metadata columns of the items table
  item_activity   dense snapshots every `snapshot_every_days` days: the item's events, engagements
                  and positives over the trailing window and in all history, smoothed rates
  user_activity   sparse snapshots: one row per user and snapshot after which the user had events;
                  every value is cumulative (totals, the last engagement time, the most recent
                  positives, the engaged items), so the latest row before a time is the state at that
                  time and Feast needs no TTL for it

A snapshot stamped at day D covers events strictly before D (common.features.windows): a row read
at its own timestamp never sees its label.
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from common.data.dataset import Dataset
from common.features.views import View
from common.features.windows import Count, Rate, activity_snapshots, day_index

USER_VIEWS = ("user_profile", "user_activity")
ITEM_VIEWS = ("item_metadata", "item_activity")
STATIC_OFFSET = pd.Timedelta(days=1)  # static rows are stamped a day before the logs begin
ITEM_ACTIVITY = [
    "item_events_window",
    "item_engaged_window",
    "item_positive_window",
    "item_engaged_total",
    "item_positive_total",
    "item_engage_rate_window",
    "item_positive_rate",
]
USER_ACTIVITY_SCALARS = ["user_events_total", "user_engaged_total", "user_positive_total", "last_engaged_s"]
USER_ACTIVITY_LISTS = ["history_item_ids", "seen_item_ids"]
PRIOR_EVENTS = 20.0  # pseudo-events behind every smoothed rate


def feature_views(every: int) -> list[View]:
    """The four views; item_activity is dense, so a snapshot is valid until the next one (plus a day for
    a late batch); the others hold static or cumulative rows, valid until replaced."""
    return [
        View("user_profile", "user_id"),
        View("user_activity", "user_id"),
        View("item_metadata", "item_id"),
        View("item_activity", "item_id", ttl=timedelta(days=every + 1)),
    ]


def ranker_service(system: str) -> dict[str, dict[str, None]]:
    """One FeatureService, `<system>_ranker`, with every feature of the four views."""
    return {
        f"{system}_ranker": {view: None for view in ("user_profile", "user_activity", "item_metadata", "item_activity")}
    }


def snapshot_days(n_days: int, every: int) -> np.ndarray:
    """Days (since start) of the snapshots: 0, every, 2 every... through the first one after the last day,
    which is what serving reads."""
    return np.arange(0, every * math.ceil(n_days / every) + 1, every)


def build_feature_tables(data: Dataset, config: dict) -> dict[str, pd.DataFrame | pa.Table]:
    every = config["snapshot_every_days"]
    schema = data.schema
    static_time = data.start - STATIC_OFFSET
    profile_columns = ["user_id", *schema.user_categorical, *schema.user_numeric]
    return {
        "user_profile": data.users[profile_columns].assign(event_timestamp=static_time),
        "item_metadata": item_metadata(data).assign(event_timestamp=static_time),
        "item_activity": item_activity(data, every, config["activity_window_days"]),
        "user_activity": user_activity(data, every, config["history_length"], config["seen_length"]),
    }


def item_metadata(data: Dataset) -> pd.DataFrame:
    """The items table with the release time as whole seconds (`release_s`), a type every store keeps."""
    column = data.schema.release_column
    release_s = (data.items[column] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return data.items.drop(columns=[column]).assign(release_s=release_s.astype(np.int64))


def item_activity(data: Dataset, every: int, window_days: int) -> pd.DataFrame:
    """Dense snapshots of every item's events, engagements and positives over the trailing window and in
    all history, with smoothed rates (engagements per event, positives per engagement)."""
    counts = [
        Count("item_events_window", window_days),
        Count("item_engaged_window", window_days, "engaged"),
        Count("item_positive_window", window_days, "positive"),
        Count("item_engaged_total", None, "engaged"),
        Count("item_positive_total", None, "positive"),
    ]
    rates = [
        Rate("item_engage_rate_window", "item_engaged_window", "item_events_window", PRIOR_EVENTS),
        Rate("item_positive_rate", "item_positive_total", "item_engaged_total", PRIOR_EVENTS),
    ]
    snapshots = snapshot_days(data.n_days, every)
    items = data.items["item_id"].to_numpy(np.int64)
    return activity_snapshots(data.events, "item_id", items, data.start, snapshots, counts, rates)


def user_activity(data: Dataset, every: int, history_length: int, seen_length: int) -> pa.Table:
    """One row per (user, snapshot after a period in which the user had events)."""
    events = data.events.sort_values(["user_id", "event_timestamp"], kind="stable", ignore_index=True)
    day = day_index(events["event_timestamp"], data.start)
    stamp_day = every * np.ceil((day + 1) / every).astype(np.int64)  # the first snapshot that sees the event
    user = events["user_id"].to_numpy(np.int64)
    engaged = events["engaged"].to_numpy(bool)
    positive = events["positive"].to_numpy(bool)
    items = events["item_id"].to_numpy(np.int64)
    seconds = (events["event_timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)

    # The last event of each (user, snapshot): the state after it is the snapshot's row.
    last = np.flatnonzero(np.r_[(user[1:] != user[:-1]) | (stamp_day[1:] != stamp_day[:-1]), True])
    user_start = np.searchsorted(user, user[last])  # first event of each row's user
    cum_events = np.arange(len(user)) + 1 - np.searchsorted(user, user)
    cum_engaged = _cumulative_within_user(engaged, user)
    cum_positive = _cumulative_within_user(positive, user)
    last_engaged = pd.Series(np.where(engaged, seconds.to_numpy(), np.nan)).groupby(user).ffill().to_numpy()

    # Positions of each user's engaged / positive events, to slice "the last n up to this event".
    engaged_at, positive_at = np.flatnonzero(engaged), np.flatnonzero(positive)
    history, seen = [], []
    for row_end, first in zip(last, user_start, strict=True):
        history.append(_last_n(items, positive_at, first, row_end, history_length))
        seen.append(_last_n(items, engaged_at, first, row_end, seen_length))
    return pa.table(
        {
            "user_id": pa.array(user[last]),
            "user_events_total": pa.array(cum_events[last].astype(np.int64)),
            "user_engaged_total": pa.array(cum_engaged[last]),
            "user_positive_total": pa.array(cum_positive[last]),
            "last_engaged_s": pa.array(np.nan_to_num(last_engaged[last], nan=-1).astype(np.int64)),
            "history_item_ids": pa.array(history, type=pa.list_(pa.int64())),
            "seen_item_ids": pa.array(seen, type=pa.list_(pa.int64())),
            "event_timestamp": pa.array(data.start + pd.to_timedelta(stamp_day[last], unit="D")),
        }
    )


def _cumulative_within_user(flags: np.ndarray, user: np.ndarray) -> np.ndarray:
    """(n,) count of flagged events of the same user up to and including each one (users sorted)."""
    total = np.cumsum(flags, dtype=np.int64)
    first = np.searchsorted(user, user)
    before_user = np.where(first > 0, total[first - 1], 0)
    return total - before_user


def _last_n(items: np.ndarray, positions: np.ndarray, first: int, end: int, n: int) -> np.ndarray:
    """Items of the flagged positions in [first, end], the most recent n, oldest first."""
    lo, hi = np.searchsorted(positions, first), np.searchsorted(positions, end, side="right")
    return items[positions[max(lo, hi - n) : hi]]
