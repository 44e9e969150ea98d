"""Daily batch features: counts over trailing windows, snapshotted at the start of each day.

A snapshot stamped at day d (00:00) sees only events strictly before it, so a training row
that reads the snapshot valid at its own timestamp never sees its own label or the future.
Snapshots are dense (every key, every day, zeros included): a point-in-time join must find
today's zero, not an older non-zero row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa


def day_index(timestamps: pd.Series, start: pd.Timestamp) -> np.ndarray:
    """Whole days since `start` (day 0 begins at `start`)."""
    return ((timestamps - start) // pd.Timedelta(days=1)).to_numpy(np.int64)


def snapshot_times(start: pd.Timestamp, n_snapshots: int) -> pd.DatetimeIndex:
    """Snapshot d is stamped at start + d days and covers events before it."""
    return pd.date_range(start, periods=n_snapshots, freq="D")


def daily_counts(keys: np.ndarray, days: np.ndarray, n_keys: int, n_days: int, weights=None) -> np.ndarray:
    """(n_keys, n_days) sum of `weights` (default 1 per event) per key and day; keys are 0..n_keys-1."""
    counts = np.zeros(n_keys * n_days)
    np.add.at(counts, keys * n_days + days, 1.0 if weights is None else weights)
    return counts.reshape(n_keys, n_days)


def trailing_window_sums(per_day: np.ndarray, window_days: int | None) -> np.ndarray:
    """(n_keys, n_days + 1): column d sums days [d - window, d), the snapshot at day d.
    `window_days=None` sums all history before d."""
    n_keys, n_days = per_day.shape
    before = np.zeros((n_keys, n_days + 1))
    before[:, 1:] = np.cumsum(per_day, axis=1)  # before[:, d] = sum of days < d
    if window_days is None:
        return before
    shifted = np.zeros_like(before)
    shifted[:, window_days:] = before[:, : n_days + 1 - window_days]
    return before - shifted


def smoothed_rate(
    successes: np.ndarray, trials: np.ndarray, prior_rate: np.ndarray | float, prior_trials: float
) -> np.ndarray:
    """Rate shrunk toward `prior_rate` with the weight of `prior_trials` pseudo-trials, so a
    key seen twice with one click does not read as a 50% CTR."""
    return (successes + prior_rate * prior_trials) / (trials + prior_trials)


def list_column(owner: np.ndarray, values: np.ndarray, n_owners: int, dtype=pa.int64()) -> pa.ListArray:
    """A list per owner 0..n_owners-1 (empty where it owns nothing), from (owner, value) rows."""
    order = np.argsort(owner, kind="stable")
    offsets = np.searchsorted(owner[order], np.arange(n_owners + 1), side="left").astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values[order], type=dtype))


@dataclass(frozen=True)
class Count:
    """A sum over each key's events in a trailing window before each snapshot."""

    name: str
    window_days: int | None  # None: all history before the snapshot
    weight: str | None = None  # the event column summed (a label); None counts the events


@dataclass(frozen=True)
class Rate:
    """successes / trials of two Counts, shrunk toward the platform's rate before the snapshot (the same
    two counts summed over every key) with the weight of `prior_trials` pseudo-trials."""

    name: str
    successes: str
    trials: str
    prior_trials: float


def activity_snapshots(
    events: pd.DataFrame,
    key: str,
    key_values: np.ndarray,
    start: pd.Timestamp,
    snapshot_days: np.ndarray,
    counts: list[Count],
    rates: list[Rate] = (),
) -> pd.DataFrame:
    """Dense snapshots: one row per (snapshot, key), snapshot-major, with `key`, `event_timestamp` (the
    snapshot's time) and each count and rate as of it. Counts are whole numbers (int64) unless they sum
    a fractional column. One implementation for every entity's activity: ads' users, ads, campaigns and
    advertisers, the recommenders' items."""
    rows = pd.Index(key_values).get_indexer(events[key])
    if (rows < 0).any():
        raise ValueError(f"{int((rows < 0).sum())} events name a {key} missing from its table")
    day = day_index(events["event_timestamp"], start)
    snapshot_days = np.asarray(snapshot_days, dtype=np.int64)
    n_keys, n_days = len(key_values), max(int(snapshot_days[-1]), int(day.max(initial=0)) + 1)
    columns: dict[str, np.ndarray] = {}
    for count in counts:
        weights = None if count.weight is None else events[count.weight].to_numpy(float)
        per_day = daily_counts(rows, day, n_keys, n_days, weights)
        values = trailing_window_sums(per_day, count.window_days)[:, snapshot_days]  # (n_keys, n_snapshots)
        whole = count.weight is None or not pd.api.types.is_float_dtype(events[count.weight])
        columns[count.name] = values.astype(np.int64) if whole else values
    for rate in rates:
        successes, trials = columns[rate.successes], columns[rate.trials]
        total_successes, total_trials = successes.sum(0).astype(float), trials.sum(0).astype(float)
        prior = np.divide(total_successes, total_trials, out=np.zeros_like(total_trials), where=total_trials > 0)
        columns[rate.name] = smoothed_rate(successes, trials, prior[None, :], rate.prior_trials)
    frame = pd.DataFrame(
        {
            key: np.tile(np.asarray(key_values), len(snapshot_days)),
            "event_timestamp": np.repeat(start + pd.to_timedelta(snapshot_days, unit="D"), n_keys),
        }
    )
    for name, values in columns.items():
        frame[name] = values.T.ravel()  # snapshot-major
    return frame


def cumulative_snapshots(
    events: pd.DataFrame,
    key: str,
    start: pd.Timestamp,
    every: int | pd.Timedelta,
    sums: dict[str, str | None],
    lists: dict[str, tuple] | None = None,
) -> pa.Table:
    """Sparse cumulative snapshots: one row per (key, snapshot after a period in which the key had
    events), stamped at that snapshot, with every value as of it: `sums` (name -> the event column
    summed, None counts events) and `lists` (name -> (event column, n) or (event column, n, flag
    column): its last n values, oldest first, over the rows whose flag is set when one is named). The
    latest row before a time is the key's state at that time, so a view over it needs no TTL, and a
    key with no row yet has no history (zeros, empty lists). `every`: days between snapshots, or a
    Timedelta (a post's reaction counts every few minutes: a streaming feature's batch backfill)."""
    lists = lists or {}
    period = every if isinstance(every, pd.Timedelta) else pd.Timedelta(days=every)
    events = events.sort_values([key, "event_timestamp"], kind="stable", ignore_index=True)
    keys = events[key].to_numpy()
    bucket = ((events["event_timestamp"] - start) // period).to_numpy(np.int64)
    stamp = bucket + 1  # the first snapshot that sees the event, in periods since `start`
    new_key = np.r_[True, keys[1:] != keys[:-1]]
    last = np.flatnonzero(np.r_[(keys[1:] != keys[:-1]) | (stamp[1:] != stamp[:-1]), True])
    first_of_key = np.maximum.accumulate(np.where(new_key, np.arange(len(keys)), 0))
    columns: dict[str, pa.Array] = {key: pa.array(keys[last])}
    for name, column in sums.items():
        values = np.ones(len(events)) if column is None else events[column].to_numpy(float)
        total = np.cumsum(values)
        before_key = np.where(first_of_key > 0, total[first_of_key - 1], 0.0)
        cumulative = (total - before_key)[last]
        whole = column is None or not pd.api.types.is_float_dtype(events[column])
        columns[name] = pa.array(np.rint(cumulative).astype(np.int64) if whole else cumulative)
    for name, (column, n, *flag) in lists.items():
        values = events[column].to_numpy()
        flagged = np.flatnonzero(events[flag[0]].to_numpy(bool)) if flag else np.arange(len(events))
        # Per output row: the flagged positions in [first of its key, its last event], the last n of them.
        hi = np.searchsorted(flagged, last, side="right")
        lo = np.maximum(np.searchsorted(flagged, first_of_key[last]), hi - n)
        items = [values[flagged[a:b]] for a, b in zip(lo, hi, strict=True)]
        columns[name] = pa.array(items, type=pa.list_(pa.from_numpy_dtype(values.dtype)))
    columns["event_timestamp"] = pa.array(start + stamp[last] * period)
    return pa.table(columns)
