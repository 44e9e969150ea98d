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
