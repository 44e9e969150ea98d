"""The items a funnel serves, as arrays by catalogue row: a request maps its candidates' ids to rows
once, then every step and the scorer gather columns by row (no pandas on the serving path)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class ItemTable:
    item_ids: np.ndarray  # (n,) int64
    columns: dict[str, np.ndarray]  # column -> (n,) values

    def __post_init__(self) -> None:
        # Sorted ids (the usual case) are looked up by binary search: no hash table of the whole
        # catalogue in every server process.
        self._sorted = bool(np.all(self.item_ids[1:] > self.item_ids[:-1]))
        self._index = None if self._sorted else pd.Index(self.item_ids)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, key: str) -> ItemTable:
        return cls(frame[key].to_numpy(np.int64), {c: frame[c].to_numpy() for c in frame.columns})

    def __len__(self) -> int:
        return len(self.item_ids)

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        """(n,) row of each id; -1 for ids not in the catalogue."""
        item_ids = np.asarray(item_ids, dtype=np.int64)
        if self._index is not None:
            return self._index.get_indexer(item_ids)
        rows = np.minimum(np.searchsorted(self.item_ids, item_ids), max(len(self.item_ids) - 1, 0))
        found = len(self.item_ids) > 0 and self.item_ids[rows] == item_ids
        return np.where(found, rows, -1)


def candidate_columns(catalog: ItemTable, rows: np.ndarray, user: dict, skip: tuple[str, ...] = ()) -> dict:
    """One row per candidate: the catalogue's columns at `rows`, and the user's scalar features (lists
    in `skip` left out) repeated on every row, without broadcasting anything per element."""
    columns = {name: values[rows] for name, values in catalog.columns.items()}
    for name, value in user.items():
        if name not in skip:
            columns[name] = np.full(len(rows), value, dtype=object if isinstance(value, str) else None)
    return columns
