"""Re-ranking rules shared by the systems' funnels."""

from __future__ import annotations

import numpy as np


def top_k_with_group_cap(scores: np.ndarray, groups: np.ndarray, k: int, max_per_group: int) -> np.ndarray:
    """Indices of the k best scores, best first, taking at most `max_per_group` items of any
    group (advertiser, genre...); fewer than k when the cap runs the pool dry."""
    chosen: list[int] = []
    taken: dict = {}
    for index in np.argsort(-scores, kind="stable"):
        group = groups[index]
        if taken.get(group, 0) < max_per_group:
            chosen.append(int(index))
            taken[group] = taken.get(group, 0) + 1
            if len(chosen) == k:
                break
    return np.asarray(chosen, dtype=np.int64)


# ---- filters: boolean keep-masks over the candidates ---------------------------------------
def age_allowed(user_age: int | None, minimum_ages: np.ndarray) -> np.ndarray:
    """Items whose minimum age the user meets; an unknown age only sees unrestricted items."""
    minimum_ages = np.asarray(minimum_ages)
    return minimum_ages <= (user_age if user_age is not None else 0)


def region_allowed(region: str | None, available_regions: list) -> np.ndarray:
    """Items available in the user's region; an empty availability list means everywhere."""
    return np.array([not regions or region in regions for regions in available_regions], dtype=bool)


def not_seen(item_ids: np.ndarray, seen_ids) -> np.ndarray:
    """Drop what the user already watched / owns."""
    return ~np.isin(np.asarray(item_ids), np.asarray(list(seen_ids), dtype=np.asarray(item_ids).dtype))


def first_occurrence(keys: np.ndarray) -> np.ndarray:
    """De-duplication: keep the first candidate of each key (an id, a near-duplicate cluster)."""
    keep = np.zeros(len(keys), dtype=bool)
    keep[np.unique(np.asarray(keys), return_index=True)[1]] = True
    return keep


# ---- score adjustments and orderings -------------------------------------------------------
def freshness_boost(scores: np.ndarray, age_days: np.ndarray, weight: float, half_life_days: float) -> np.ndarray:
    """scores + weight * 2^(-age / half-life): new items get a lift that halves every half-life."""
    return np.asarray(scores, dtype=float) + weight * np.exp2(
        -np.maximum(np.asarray(age_days, float), 0) / half_life_days
    )


def maximal_marginal_relevance(scores: np.ndarray, vectors: np.ndarray, k: int, trade_off: float = 0.7) -> np.ndarray:
    """Indices of k items chosen greedily by trade_off * score - (1 - trade_off) * max cosine
    to the items already chosen (Carbonell & Goldstein 1998): relevant, but not all alike.
    `vectors` are L2-normalised item embeddings, one row per candidate."""
    scores = np.asarray(scores, dtype=float)
    k = min(k, len(scores))
    chosen: list[int] = []
    closest = np.full(len(scores), -np.inf)  # max similarity to anything chosen so far
    available = np.ones(len(scores), dtype=bool)
    for _ in range(k):
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        value = np.where(available, trade_off * scores - (1 - trade_off) * penalty, -np.inf)
        best = int(np.argmax(value))
        chosen.append(best)
        available[best] = False
        closest = np.maximum(closest, vectors @ vectors[best])
    return np.asarray(chosen, dtype=np.int64)
