"""List-valued features: built in batch, one list per (snapshot, key), and read at request time
against the candidates (a user's clicks per category, the items shown to them lately).

Batch lists are snapshot-major, like common.features.windows.activity_snapshots, with keys
0..n_keys-1, so they append to that frame's rows as columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from common.features.windows import daily_counts, list_column, trailing_window_sums


def category_count_lists(
    keys: np.ndarray,
    categories: np.ndarray,
    days: np.ndarray,
    n_keys: int,
    n_categories: int,
    n_snapshots: int,
    window_days: int,
    weights: np.ndarray | None = None,
) -> pa.ListArray:
    """Per (snapshot, key), the events (or the sum of `weights`) in each category over the trailing
    window: a list of n_categories counts, indexed by category code."""
    per_day = daily_counts(keys * n_categories + categories, days, n_keys * n_categories, n_snapshots - 1, weights)
    counts = trailing_window_sums(per_day, window_days)  # (key x category, snapshot)
    per_row = counts.reshape(n_keys, n_categories, n_snapshots).transpose(2, 0, 1).reshape(-1, n_categories)
    offsets = pa.array(np.arange(0, per_row.size + 1, n_categories, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(per_row.ravel().astype(np.int64)))


def ids_in_window(
    keys: np.ndarray, days: np.ndarray, ids: np.ndarray, n_keys: int, n_snapshots: int, window_days: int | None
) -> pa.ListArray:
    """Per (snapshot, key), the ids of the key's events in the window before the snapshot (all history
    when `window_days` is None), one entry per event."""
    owners, values = [], []
    for snapshot in range(n_snapshots):
        in_window = (days < snapshot) & ((days >= snapshot - window_days) if window_days else True)
        owners.append(snapshot * n_keys + keys[in_window])
        values.append(ids[in_window])
    return list_column(np.concatenate(owners), np.concatenate(values), n_snapshots * n_keys)


def counts_or_zeros(values, width: int) -> np.ndarray:
    """A list of counts as an array; a missing list (an unknown key) reads as zeros."""
    return np.asarray(values, dtype=np.int64) if values is not None and len(values) else np.zeros(width, np.int64)


def pick_per_row(lists: pd.Series, index: np.ndarray, width: int) -> np.ndarray:
    """lists[i][index[i]] for lists of `width` counts; missing lists read 0."""
    return np.stack([counts_or_zeros(v, width) for v in lists])[np.arange(len(index)), index]


def matches_per_row(lists: pd.Series, targets: np.ndarray) -> np.ndarray:
    """How often targets[i] occurs in lists[i], without a Python loop over elements."""
    lengths = np.fromiter((0 if v is None else len(v) for v in lists), dtype=np.int64, count=len(lists))
    if lengths.sum() == 0:
        return np.zeros(len(lists), dtype=np.int64)
    flat = np.concatenate([np.asarray(v, dtype=np.int64) for v in lists if v is not None and len(v)])
    owner = np.repeat(np.arange(len(lists)), lengths)
    return np.bincount(owner, weights=flat == targets[owner], minlength=len(lists)).astype(np.int64)


def distinct_ids_by_key(keys, values) -> dict[int, np.ndarray]:
    """key -> the sorted distinct values of its rows (friends per user, registrants per event), without
    a Python call per group."""
    pairs = pd.DataFrame({"k": np.asarray(keys, dtype=np.int64), "v": np.asarray(values, dtype=np.int64)})
    pairs = pairs.drop_duplicates().sort_values(["k", "v"])
    keys, values = pairs["k"].to_numpy(), pairs["v"].to_numpy()
    if len(keys) == 0:
        return {}
    distinct, starts = np.unique(keys, return_index=True)
    return dict(zip(distinct.tolist(), np.split(values, starts[1:]), strict=True))


class ListLookup:
    """Many (row, value) questions against one list per row at once: is the value in the row's list,
    how often, and where (to read a column aligned with the list). A news feed asks it of each
    impression: is the post's author among the user's followees (since when, as a friend?), how often
    did the user react to that author. One vectorised search, the same for a training set of millions
    of rows and for one served request.

        lookup = ListLookup([np.array([7, 9, 7]), np.array([3])])
        lookup.count([0, 0, 1], [7, 3, 3])   # [2, 0, 1]
        lookup.first([0, 1], [9, 9])          # [1, -1]: the position in row 0's list; -1 where absent
    """

    def __init__(self, lists) -> None:
        lengths = np.fromiter((len(v) for v in lists), dtype=np.int64, count=len(lists))
        flat = np.concatenate([np.asarray(v) for v in lists]) if lengths.sum() else np.zeros(0, dtype=np.int64)
        self.offsets = np.r_[0, np.cumsum(lengths)]
        codes, self.values = pd.factorize(flat, sort=True)
        rows = np.repeat(np.arange(len(lists), dtype=np.int64), lengths)
        keys = rows * max(len(self.values), 1) + codes
        self.order = np.argsort(keys, kind="stable")  # stable: the first occurrence comes first
        self.keys = keys[self.order]

    def _query(self, rows, values) -> np.ndarray:
        codes = pd.Index(self.values).get_indexer(np.asarray(values))
        keys = np.asarray(rows, dtype=np.int64) * max(len(self.values), 1) + codes
        return np.where(codes >= 0, keys, -1)

    def count(self, rows, values) -> np.ndarray:
        keys = self._query(rows, values)
        counts = np.searchsorted(self.keys, keys, side="right") - np.searchsorted(self.keys, keys)
        return np.where(keys >= 0, counts, 0)

    def first(self, rows, values) -> np.ndarray:
        """The position of the value's first occurrence within its row's list, -1 where absent."""
        keys = self._query(rows, values)
        if len(self.keys) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        found = (keys >= 0) & (self.keys[at] == keys)
        return np.where(found, self.order[at] - self.offsets[np.asarray(rows, dtype=np.int64)], -1)
