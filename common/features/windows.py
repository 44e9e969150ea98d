"""Daily batch features: counts over trailing windows, snapshotted at the start of each day.

A snapshot stamped at day d (00:00) sees only events strictly before it, so a training row
that reads the snapshot valid at its own timestamp never sees its own label or the future.
Snapshots are dense (every key, every day, zeros included): a point-in-time join must find
today's zero, not an older non-zero row.
"""

from __future__ import annotations

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
