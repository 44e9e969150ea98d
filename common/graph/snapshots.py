"""A graph that grows over time, read as snapshots: the chapter's "graph at t" for features and message
passing, and "the edges that form in (t, t + 1]" for labels.

    nodes = NodeIndex(users["user_id"])
    log = EdgeLog.from_frame(edges, nodes)               # src, dst, timestamp: one row per friendship
    A = log.adjacency(t)                                 # symmetric CSR of the edges formed before t
    W = log.adjacency(t, half_life_days=90)              # ... each weighted by 0.5 ** (age / half-life)
    u, v = log.formed_between(t, t + day)                # the labels: node rows of the new edges

Nodes are rows 0..n-1 of a sorted id index, so a public edge list's arbitrary ids work as the world's do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

DAY_S = 86_400.0


def seconds(timestamps) -> np.ndarray:
    """Unix seconds (float) of tz-aware timestamps."""
    return pd.DatetimeIndex(timestamps).as_unit("ns").asi8 / 1e9


@dataclass(frozen=True)
class NodeIndex:
    """Node ids <-> rows 0..n-1 (ids sorted)."""

    ids: np.ndarray

    def __init__(self, ids) -> None:
        object.__setattr__(self, "ids", np.unique(np.asarray(ids, dtype=np.int64)))

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, ids, strict: bool = True) -> np.ndarray:
        """Rows of `ids`; unknown ids raise (strict) or read -1."""
        rows = rows_in(self.ids, ids)
        if strict and (rows < 0).any():
            unknown = np.asarray(ids, dtype=np.int64)[rows < 0]
            raise KeyError(f"{len(unknown)} ids are not nodes, e.g. {unknown[:3].tolist()}")
        return rows


def rows_in(sorted_ids: np.ndarray, ids) -> np.ndarray:
    """Positions of `ids` in the sorted, distinct `sorted_ids`; -1 for an id it lacks."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(sorted_ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    rows = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return np.where(sorted_ids[rows] == ids, rows, -1)


@dataclass(frozen=True)
class EdgeLog:
    """Undirected edges with the time each formed, sorted by that time."""

    n: int  # number of nodes
    src: np.ndarray  # (m,) node rows
    dst: np.ndarray  # (m,)
    formed_s: np.ndarray  # (m,) unix seconds

    @classmethod
    def from_frame(cls, edges: pd.DataFrame, nodes: NodeIndex) -> EdgeLog:
        """`edges`: src, dst (node ids), timestamp. Self loops are dropped; a pair listed twice keeps its
        first time (a friendship forms once)."""
        src, dst = nodes.rows(edges["src"]), nodes.rows(edges["dst"])
        formed = seconds(edges["timestamp"])
        keep = src != dst
        low, high, formed = np.minimum(src, dst)[keep], np.maximum(src, dst)[keep], formed[keep]
        order = np.lexsort((formed, high, low))
        low, high, formed = low[order], high[order], formed[order]
        first = np.ones(len(low), bool)
        first[1:] = (low[1:] != low[:-1]) | (high[1:] != high[:-1])
        low, high, formed = low[first], high[first], formed[first]
        by_time = np.argsort(formed, kind="stable")
        return cls(len(nodes), low[by_time], high[by_time], formed[by_time])

    def _before(self, at_s: float) -> int:
        return int(np.searchsorted(self.formed_s, at_s, side="left"))

    def adjacency(self, at_s: float, half_life_days: float | None = None) -> sp.csr_matrix:
        """The symmetric adjacency of the edges formed before `at_s`: 1 per edge, or its time discount
        0.5 ** (age / half-life) (the chapter's "mutual connections, time discounted")."""
        m = self._before(at_s)
        src, dst = self.src[:m], self.dst[:m]
        weight = np.ones(m, dtype=np.float32)
        if half_life_days is not None:
            weight = (0.5 ** ((at_s - self.formed_s[:m]) / (half_life_days * DAY_S))).astype(np.float32)
        rows, cols = np.concatenate([src, dst]), np.concatenate([dst, src])
        return sp.csr_matrix((np.concatenate([weight, weight]), (rows, cols)), shape=(self.n, self.n))

    def edges_at(self, at_s: float) -> np.ndarray:
        """(2, m) node rows of the edges formed before `at_s`, each once."""
        m = self._before(at_s)
        return np.stack([self.src[:m], self.dst[:m]])

    def formed_between(self, start_s: float, stop_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Node rows (low, high) of the edges formed in [start_s, stop_s)."""
        lo, hi = self._before(start_s), self._before(stop_s)
        return self.src[lo:hi], self.dst[lo:hi]

    def degree(self, at_s: float) -> np.ndarray:
        m = self._before(at_s)
        return np.bincount(np.concatenate([self.src[:m], self.dst[:m]]), minlength=self.n)
