"""Fusing the ranked lists of several candidate sources (inverted index, semantic ANN, visual ANN) into one.

    reciprocal_rank_fusion({"bm25": ids_a, "semantic": ids_b}, k=60)          # product search
    weighted_score_fusion({"text": (ids, scores), "visual": (ids, scores)},   # video search (the chapter:
                          weights={"text": 0.4, "visual": 0.6})               # a weighted sum of relevance)

Reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009) needs no calibration between the
sources: an item's fused score is sum over the lists that hold it of 1 / (k + rank), rank from 1, so a
document near the top of either list rises, and one both lists hold rises most. Scores from different
sources are not comparable (BM25 is unbounded, cosine is in [-1, 1]), so the weighted fusion first
min-max scales each source's scores over its own list.

Both return (ids, fused scores), best first; ties keep the order of first appearance across the lists
(the first list's order first), so the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

RRF_K = 60  # the constant of the original paper: damps the weight of the very first ranks


def _fuse(contributions: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Sum the (ids, values) contributions per id; best first, ties by first appearance."""
    if not contributions:
        return np.zeros(0, np.int64), np.zeros(0)
    ids = np.concatenate([np.asarray(i, np.int64) for i, _ in contributions])
    values = np.concatenate([np.asarray(v, float) for _, v in contributions])
    unique, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    totals = np.bincount(inverse, weights=values, minlength=len(unique))
    order = np.lexsort((first, -totals))
    return unique[order], totals[order]


def reciprocal_rank_fusion(lists: Mapping[str, Sequence[int]], k: int = RRF_K) -> tuple[np.ndarray, np.ndarray]:
    """Fused (ids, scores) of ranked id lists (best first, no duplicates within a list)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    contributions = []
    for name, ids in lists.items():
        ids = np.asarray(ids, np.int64)
        if len(np.unique(ids)) != len(ids):
            raise ValueError(f"list {name!r} holds an id twice")
        contributions.append((ids, 1.0 / (k + np.arange(1, len(ids) + 1))))
    return _fuse(contributions)


def min_max(scores: np.ndarray) -> np.ndarray:
    """Scores scaled to [0, 1] over their own list; a list of equal scores reads 1 (all equally good)."""
    scores = np.asarray(scores, float)
    if len(scores) == 0:
        return scores
    low, high = scores.min(), scores.max()
    return np.ones(len(scores)) if high == low else (scores - low) / (high - low)


def weighted_score_fusion(
    lists: Mapping[str, tuple[Sequence[int], Sequence[float]]], weights: Mapping[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Fused (ids, scores): sum over sources of weight x the source's min-max scaled score; an id a
    source did not return gets 0 from it. Every source needs a weight."""
    missing = set(lists) - set(weights)
    if missing:
        raise ValueError(f"no weight for the sources {sorted(missing)}")
    contributions = []
    for name, (ids, scores) in lists.items():
        ids, scores = np.asarray(ids, np.int64), np.asarray(scores, float)
        if len(ids) != len(scores):
            raise ValueError(f"source {name!r}: {len(ids)} ids for {len(scores)} scores")
        contributions.append((ids, weights[name] * min_max(scores)))
    return _fuse(contributions)
