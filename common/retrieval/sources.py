"""Candidate sources behind one interface, and the merge that de-duplicates them while
remembering which source found each candidate (so recall can be attributed per source).

    sources = [popularity_source(...), trending_source(...)]; merged = merge_candidates(request, sources, k=500)

A source answers a RetrievalRequest with item ids, best first. Sources here are the
non-personalised ones (global or per-segment popularity, trending); the two-tower ANN
source lives beside the index it queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class RetrievalRequest:
    """Who asks, with what the sources and the re-ranking steps read."""

    user_id: int
    user_vector: np.ndarray | None = None  # (d,) from the user tower; None when there is no model
    # The user's attributes: segments ({"country": "de"}), targeting ({"gender": "female"}), filters (age),
    # recent exposures (fatigue).
    attributes: Mapping[str, Any] = field(default_factory=dict)
    exclude: np.ndarray | None = None  # ids never to return: already seen / owned / hidden
    now_s: float = 0.0  # the request's time, seconds since the epoch
    context: Any = None  # what the system's scorer reads beyond these (the user's feature state)


class CandidateSource(Protocol):
    name: str

    def retrieve(self, request: RetrievalRequest, k: int) -> np.ndarray:
        """Up to k item ids (int64), best first, no duplicates."""


@dataclass(frozen=True)
class RankedList:
    """A precomputed ranking: the same answer for every request."""

    name: str
    item_ids: np.ndarray

    def retrieve(self, request: RetrievalRequest, k: int) -> np.ndarray:
        return self.item_ids[:k]


@dataclass(frozen=True)
class SegmentedRankedList:
    """A precomputed ranking per value of one request attribute (region, language...),
    with a fallback ranking for values it has not seen."""

    name: str
    attribute: str
    by_value: Mapping[str, np.ndarray]
    fallback: np.ndarray

    def retrieve(self, request: RetrievalRequest, k: int) -> np.ndarray:
        ranked = self.by_value.get(request.attributes.get(self.attribute), self.fallback)
        return ranked[:k]


def popularity_source(
    events: pd.DataFrame,
    item_column: str = "item_id",
    name: str = "popularity",
    segment_column: str | None = None,
    max_items: int = 5000,
) -> RankedList | SegmentedRankedList:
    """Items by engagement count in `events` (one row per engagement); per segment when
    `segment_column` is given (the segment value is a request attribute of the same name)."""
    overall = _top_items(events, item_column, max_items)
    if segment_column is None:
        return RankedList(name, overall)
    by_value = {
        str(value): _top_items(group, item_column, max_items)
        for value, group in events.groupby(segment_column, observed=True)
    }
    return SegmentedRankedList(name, segment_column, by_value, overall)


def trending_source(
    events: pd.DataFrame,
    now: pd.Timestamp,
    item_column: str = "item_id",
    timestamp_column: str = "event_timestamp",
    recent: pd.Timedelta = pd.Timedelta(days=1),
    baseline: pd.Timedelta = pd.Timedelta(days=7),
    prior: float = 5.0,
    name: str = "trending",
    max_items: int = 5000,
) -> RankedList:
    """Items by engagement velocity: their recent rate against their own baseline rate,
    weighted by recent volume, so a new item taking off outranks an old hit at cruise speed.
    Only events before `now` count."""
    past = events[events[timestamp_column] < now]
    age = now - past[timestamp_column]
    recent_counts = past.loc[age < recent, item_column].value_counts()
    baseline_counts = past.loc[(age >= recent) & (age < recent + baseline), item_column].value_counts()
    counts = pd.DataFrame({"recent": recent_counts, "baseline": baseline_counts}).fillna(0.0)
    expected_recent = counts["baseline"] * (recent / baseline)
    # Velocity (smoothed ratio of recent to expected) times volume: a single event never trends.
    score = (counts["recent"] + 1.0) / (expected_recent + prior) * counts["recent"]
    ranked = score[score > 0].sort_values(ascending=False, kind="stable")
    return RankedList(name, ranked.index.to_numpy(np.int64)[:max_items])


def _top_items(events: pd.DataFrame, item_column: str, max_items: int) -> np.ndarray:
    counts = events[item_column].value_counts(sort=False)
    order = np.lexsort((counts.index.to_numpy(), -counts.to_numpy()))  # ties by id: deterministic
    return counts.index.to_numpy(np.int64)[order][:max_items]


@dataclass(frozen=True)
class MergedCandidates:
    item_ids: np.ndarray  # (n,) distinct ids, in merge order
    per_source: dict[str, np.ndarray]  # each source's own list, for recall attribution

    def sources_of(self, item_ids: np.ndarray) -> list[tuple[str, ...]]:
        """Per id: every source that returned it, in source order. Asked only for the few ids a
        request returns: for every candidate it would cost more than the merge itself."""
        found = [np.isin(item_ids, ids) for ids in self.per_source.values()]
        names = list(self.per_source)
        return [tuple(name for name, hit in zip(names, hits, strict=True) if hit) for hits in zip(*found, strict=True)]


def merge_candidates(
    request: RetrievalRequest, sources: Sequence[CandidateSource], k_per_source: int, exclude: np.ndarray | None = None
) -> MergedCandidates:
    """Ask every source for k_per_source ids and interleave them round-robin (each source's
    best first), dropping duplicates and excluded ids (already watched / owned)."""
    per_source = {}
    for source in sources:
        ids = np.asarray(source.retrieve(request, k_per_source), dtype=np.int64)
        per_source[source.name] = ids[~np.isin(ids, exclude)] if exclude is not None and len(exclude) else ids
    lists = list(per_source.values())
    if not lists or not sum(len(ids) for ids in lists):
        return MergedCandidates(np.zeros(0, dtype=np.int64), per_source)
    all_ids = np.concatenate(lists)
    rank = np.concatenate([np.arange(len(ids)) for ids in lists])
    source = np.concatenate([np.full(len(ids), j) for j, ids in enumerate(lists)])
    interleaved = all_ids[np.lexsort((source, rank))]  # rank by rank, sources in order within a rank
    _, first = np.unique(interleaved, return_index=True)
    return MergedCandidates(interleaved[np.sort(first)], per_source)
