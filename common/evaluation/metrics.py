"""Offline evaluation metrics for classification and ranking systems (numpy only).

Binary classification metrics take ``y`` (labels in {0, 1}) and ``p`` (predicted
probabilities in [0, 1]; AUC and the ROC curve accept any real-valued scores).

Ranking metrics take ``ranked``, a sequence of item ids best-first and assumed free
of duplicates, and either ``relevant``, a collection of relevant ids, or ``gains``,
a mapping id -> graded relevance. Ranks are 1-based throughout.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Hashable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

# ---------------------------------------------------------------------------
# Binary classification
# ---------------------------------------------------------------------------


def _check_binary(y: ArrayLike, p: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if y.ndim != 1 or y.shape != p.shape:
        raise ValueError(f"y and p must be 1-D of equal length, got {y.shape} and {p.shape}")
    if y.size == 0:
        raise ValueError("y and p are empty")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must contain only 0 and 1")
    return y, p


def _check_probabilities(y: ArrayLike, p: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y, p = _check_binary(y, p)
    # Out-of-range values usually mean logits were passed; clipping would hide that.
    if p.min() < 0.0 or p.max() > 1.0:
        raise ValueError("p must be probabilities in [0, 1]")
    return y, p


def _check_both_classes(y: np.ndarray) -> None:
    if y.min() == y.max():
        raise ValueError("y contains only one class; AUC/ROC is undefined")


def auc(y: ArrayLike, p: ArrayLike) -> float:
    """ROC AUC: probability a random positive scores above a random negative (ties count 1/2).

    Computed as the Mann-Whitney U statistic over ranks of ``p``, tied scores getting
    their average rank, so it is O(n log n) and exact under ties.
    """
    y, p = _check_binary(y, p)
    _check_both_classes(y)
    _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    # 1-based average rank of each distinct score: last rank in its tie group minus
    # half the group's extra width.
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = avg_rank[inverse]
    n_pos = y.sum()
    n_neg = y.size - n_pos
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(y: ArrayLike, p: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve points (fpr, tpr, thresholds), one per distinct score, highest first.

    Point i classifies ``p >= thresholds[i]`` as positive; the first point is
    (0, 0) at threshold +inf. No intermediate points are dropped.
    """
    y, p = _check_binary(y, p)
    _check_both_classes(y)
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    # Last index of each run of equal scores: a threshold admits a whole tie group.
    last_of_group = np.r_[np.flatnonzero(np.diff(p_sorted)), p_sorted.size - 1]
    tps = np.cumsum(y_sorted)[last_of_group]
    fps = last_of_group + 1 - tps
    fpr = np.r_[0.0, fps / fps[-1]]
    tpr = np.r_[0.0, tps / tps[-1]]
    thresholds = np.r_[np.inf, p_sorted[last_of_group]]
    return fpr, tpr, thresholds


def log_loss(y: ArrayLike, p: ArrayLike, eps: float = 1e-7) -> float:
    """Mean binary cross entropy: -mean(y log p + (1 - y) log(1 - p)), natural log.

    ``p`` is clipped to [eps, 1 - eps] so a confident mistake costs a large finite
    amount instead of infinity.
    """
    y, p = _check_probabilities(y, p)
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def normalized_cross_entropy(y: ArrayLike, p: ArrayLike, base_rate: float | None = None) -> float:
    """Normalized cross entropy (He et al. 2014, ads click prediction at Facebook).

    NCE = log_loss(y, p) / log_loss(y, base_rate for every row). Lower is better;
    1.0 means no better than always predicting the background CTR. ``base_rate``
    defaults to mean(y); pass the training CTR when known, as the paper does.
    """
    y, p = _check_probabilities(y, p)
    if base_rate is None:
        base_rate = float(y.mean())
    if not 0.0 <= base_rate <= 1.0:
        raise ValueError(f"base_rate must be in [0, 1], got {base_rate}")
    # The denominator goes through log_loss too, so clipping is identical in both terms
    # and predicting the base rate everywhere yields exactly 1.0.
    return log_loss(y, p) / log_loss(y, np.full_like(p, base_rate))


def calibration_curve(y: ArrayLike, p: ArrayLike, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reliability curve over equal-count bins of ``p``.

    Returns (mean predicted probability, observed positive rate, row count) per bin,
    bins ordered by increasing ``p``.
    """
    y, p = _check_probabilities(y, p)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    # Equal-count bins rather than equal-width: CTR-style predictions cluster near 0,
    # so equal-width bins would put almost every row in the first bin. Splitting the
    # sorted rows by position (not by quantile edges) keeps bins equal-sized even when
    # many scores are tied; capping at n rows avoids empty bins on tiny inputs.
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, min(n_bins, p.size))
    mean_pred = np.array([p[b].mean() for b in bins])
    observed = np.array([y[b].mean() for b in bins])
    counts = np.array([b.size for b in bins])
    return mean_pred, observed, counts


def expected_calibration_error(y: ArrayLike, p: ArrayLike, n_bins: int = 10) -> float:
    """ECE: count-weighted mean over equal-count bins of |mean(p) - mean(y)|."""
    mean_pred, observed, counts = calibration_curve(y, p, n_bins)
    return float(np.sum(counts * np.abs(mean_pred - observed)) / counts.sum())


# ---------------------------------------------------------------------------
# Ranking
# ---------------------------------------------------------------------------


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def _hits(ranked: Sequence[Hashable], relevant: Collection[Hashable]) -> np.ndarray:
    """Boolean array: whether each ranked position holds a relevant item."""
    relevant = set(relevant)
    return np.array([item in relevant for item in ranked], dtype=bool)


def precision_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Precision@k: relevant items among the first k / k.

    Divides by k even when ``ranked`` is shorter than k: empty slots count as misses,
    so a system is not rewarded for returning fewer results.
    """
    _check_k(k)
    return float(_hits(ranked[:k], relevant).sum() / k)


def recall_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Recall@k: relevant items among the first k / total relevant items."""
    _check_k(k)
    if len(relevant) == 0:
        raise ValueError("recall is undefined with no relevant items")
    return float(_hits(ranked[:k], relevant).sum() / len(set(relevant)))


def hit_rate_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Hit rate@k: 1.0 if any of the first k items is relevant, else 0.0."""
    _check_k(k)
    return float(_hits(ranked[:k], relevant).any())


def reciprocal_rank(ranked: Sequence[Hashable], relevant: Collection[Hashable]) -> float:
    """1 / (rank of the first relevant item), 0.0 if no relevant item is ranked."""
    hit_positions = np.flatnonzero(_hits(ranked, relevant))
    return 1.0 / float(hit_positions[0] + 1) if hit_positions.size else 0.0


def shuffled_reciprocal_rank(n_relevant: int, depth: int | None = None) -> float:
    """Expected reciprocal rank of one target among `n_relevant` equally relevant items ranked first in random
    order (the best list that cannot tell them apart), counted to `depth`: H(min(n, depth)) / n."""
    if n_relevant < 1:
        raise ValueError(f"n_relevant must be >= 1, got {n_relevant}")
    counted = n_relevant if depth is None else min(n_relevant, depth)
    return float((1.0 / np.arange(1, counted + 1)).sum() / n_relevant)


def paired_bootstrap_interval(
    a: ArrayLike, b: ArrayLike, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean of a - b, low, high): the mean difference of paired per-query values (two lists' nDCG of the
    same queries) and its percentile bootstrap interval, queries resampled with replacement."""
    difference = np.asarray(a, float) - np.asarray(b, float)
    if difference.ndim != 1 or difference.size == 0:
        raise ValueError("a and b must be 1-D, of the same non-zero length")
    rng = np.random.default_rng(seed)
    means = difference[rng.integers(0, len(difference), (n_resamples, len(difference)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(difference.mean()), float(low), float(high)


def _check_same_length(list_of_ranked: Sequence, list_of_relevant: Sequence) -> None:
    if len(list_of_ranked) != len(list_of_relevant):
        raise ValueError(f"got {len(list_of_ranked)} ranked lists but {len(list_of_relevant)} relevant sets")
    if len(list_of_ranked) == 0:
        raise ValueError("no queries to average over")


def mean_reciprocal_rank(
    list_of_ranked: Sequence[Sequence[Hashable]],
    list_of_relevant: Sequence[Collection[Hashable]],
) -> float:
    """MRR: mean of reciprocal_rank over queries."""
    _check_same_length(list_of_ranked, list_of_relevant)
    return float(np.mean([reciprocal_rank(r, rel) for r, rel in zip(list_of_ranked, list_of_relevant, strict=True)]))


def average_precision(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int | None = None) -> float:
    """AP@k: sum of precision@i over hit positions i <= k, / min(len(relevant), k).

    With k=None the whole list is scored and the divisor is len(relevant), so relevant
    items that were never ranked count as misses (the standard, non-truncated AP).
    """
    n_relevant = len(set(relevant))
    if n_relevant == 0:
        raise ValueError("average precision is undefined with no relevant items")
    if k is None:
        denominator = n_relevant
    else:
        _check_k(k)
        ranked = ranked[:k]
        # A list of k items can hold at most k hits, so a perfect top-k scores 1.0.
        denominator = min(n_relevant, k)
    hits = _hits(ranked, relevant)
    precision_at_i = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float(precision_at_i[hits].sum() / denominator)


def mean_average_precision(
    list_of_ranked: Sequence[Sequence[Hashable]],
    list_of_relevant: Sequence[Collection[Hashable]],
    k: int | None = None,
) -> float:
    """MAP@k: mean of average_precision over queries."""
    _check_same_length(list_of_ranked, list_of_relevant)
    return float(
        np.mean([average_precision(r, rel, k) for r, rel in zip(list_of_ranked, list_of_relevant, strict=True)])
    )


def dcg_at_k(gains_in_ranked_order: ArrayLike, k: int, linear: bool = False) -> float:
    """DCG@k = sum_{i=1..k} (2^g_i - 1) / log2(i + 1), with exponential gain 2^g - 1.

    Exponential gain (Burges et al. 2005) stresses highly relevant items; for binary
    relevance it equals linear gain. `linear` sums g_i / log2(i + 1) instead: the gains are
    already the values to discount (the ESCI benchmark's 1 / 0.1 / 0.01 / 0).
    """
    _check_k(k)
    gains = np.asarray(gains_in_ranked_order, dtype=float)[:k]
    discounts = np.log2(np.arange(2, gains.size + 2))
    return float(np.sum((gains if linear else 2.0**gains - 1.0) / discounts))


def ndcg_at_k(ranked: Sequence[Hashable], gains: Mapping[Hashable, float], k: int, linear: bool = False) -> float:
    """NDCG@k = DCG@k of ``ranked`` / DCG@k of the ideal ordering of all ``gains``.

    Ids missing from ``gains`` have gain 0. Returns 0.0 when the ideal DCG is 0
    (no relevant items), rather than NaN, so the query still averages cleanly.
    """
    _check_k(k)
    ideal = dcg_at_k(sorted(gains.values(), reverse=True), k, linear)
    if ideal == 0.0:
        return 0.0
    return dcg_at_k([gains.get(item, 0.0) for item in ranked], k, linear) / ideal


def catalog_coverage(list_of_ranked: Sequence[Sequence[Hashable]], catalog_size: int) -> float:
    """Catalog coverage: distinct items recommended across all lists / catalog_size."""
    if catalog_size < 1:
        raise ValueError(f"catalog_size must be >= 1, got {catalog_size}")
    distinct = set().union(*list_of_ranked)
    return len(distinct) / catalog_size


def intra_list_diversity(ranked: Sequence[Hashable], group_of: Mapping[Hashable, Hashable]) -> float:
    """Share of item pairs in the list whose groups differ (1.0 all different, 0.0 all same).

    Lists shorter than 2 have no pairs; they return 0.0 (no diversity shown) rather
    than NaN so per-list values can be averaged directly.
    """
    n = len(ranked)
    if n < 2:
        return 0.0
    # Pairs within the same group = sum over groups of C(size, 2); O(n) instead of O(n^2).
    sizes = Counter(group_of[item] for item in ranked).values()
    same_group_pairs = sum(s * (s - 1) // 2 for s in sizes)
    total_pairs = n * (n - 1) // 2
    return 1.0 - same_group_pairs / total_pairs
