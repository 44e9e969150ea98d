"""Neighbourhood proximity on the social graph: the classic link-prediction scores, friends of
friends (the candidate generator) and personalized PageRank (the chapter's baseline).

    A = adjacency(n_users, src, dst, weights=discount)     # symmetric CSR, one entry per friendship
    common_neighbours(A, u, v)       # per pair: (time-discounted) mutual-friend count
    adamic_adar(A, u, v), resource_allocation(A, u, v), jaccard(A, u, v)
    candidates = friends_of_friends(A, users)              # (len(users), n): mutual-friend counts
    ppr = personalized_pagerank(A, users)                  # (len(users), n) random walk with restart
    Neighbourhood(A).scores(u, v)    # the four structural scores of many pairs at once (what a ranker reads)

The graph is an n x n scipy CSR matrix, symmetric, without self loops, whose stored values are
positive edge weights (1, or e.g. a time discount of the friendship's age). Stored entries are the
neighbours: degree = the number of neighbours whatever the weights, and the structural scores
(Adamic-Adar, resource allocation, Jaccard, friends of friends) read the pattern only; the weights
enter common_neighbours and the walk of personalized_pagerank.

Pair scores are vectorised over arrays of pairs (u[i], v[i]): the rows A[u] and A[v] are gathered as
sparse matrices and multiplied elementwise, so a pair costs about deg(u) + deg(v), in batches of
PAIR_BATCH pairs to bound memory. Pairs are assumed distinct (u != v); a pair (u, u) scores u's whole
neighbourhood.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.sparse as sp

PAIR_BATCH = 1 << 17  # pairs per sparse product: ~deg x 2^17 stored entries at a time


# ---------------------------------------------------------------------------
# Building the graph
# ---------------------------------------------------------------------------


def adjacency(n: int, src, dst, weights=None) -> sp.csr_matrix:
    """Symmetric (n, n) CSR adjacency of the undirected edges (src[i], dst[i]).

    An edge given in both directions or several times is one friendship: duplicates collapse to
    their largest weight (summing them would count a friendship twice). Self loops are dropped.
    `weights` (default 1) must be positive, since a stored entry is what makes a neighbour.
    """
    src, dst = _pairs(src, dst)
    weights = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if len(weights) != len(src):
        raise ValueError(f"{len(weights)} weights for {len(src)} edges")
    if (weights <= 0).any():
        raise ValueError("edge weights must be positive")
    keep = src != dst
    low, high, weights = np.minimum(src, dst)[keep], np.maximum(src, dst)[keep], weights[keep]
    low, high, weights = _max_per_pair(low, high, weights, n)
    rows, cols = np.concatenate([low, high]), np.concatenate([high, low])
    matrix = sp.csr_matrix((np.concatenate([weights, weights]), (rows, cols)), shape=(n, n))
    matrix.sort_indices()  # canonical: the elementwise products below take the fast path
    return matrix


def _max_per_pair(low: np.ndarray, high: np.ndarray, weights: np.ndarray, n: int):
    """One (low, high, weight) per distinct pair, keeping its largest weight."""
    keys = low * n + high
    order = np.lexsort((weights, keys))  # by pair, then weight: the last of each run is the max
    keys, weights = keys[order], weights[order]
    last = np.append(keys[1:] != keys[:-1], True) if len(keys) else np.zeros(0, dtype=bool)
    return keys[last] // n, keys[last] % n, weights[last]


# ---------------------------------------------------------------------------
# Pair scores
# ---------------------------------------------------------------------------


def common_neighbours(adjacency, u, v) -> np.ndarray:
    """Per pair: sum over common neighbours w of A[u, w] * A[w, v]; the mutual-friend count on an
    unweighted graph, the time-discounted mutual-friend count when the weights are discounts."""
    matrix = _csr(adjacency)
    return _sum_over_common(matrix, matrix, *_pairs(u, v))


def adamic_adar(adjacency, u, v) -> np.ndarray:
    """Per pair: sum over common neighbours w of 1 / log(deg(w)): a mutual friend with few friends
    says more than a celebrity everyone follows."""
    return Neighbourhood(adjacency).scores(u, v)["adamic_adar"]


def resource_allocation(adjacency, u, v) -> np.ndarray:
    """Per pair: sum over common neighbours w of 1 / deg(w) (the share of a unit of resource u
    sends to v through w); discounts hubs harder than Adamic-Adar."""
    return Neighbourhood(adjacency).scores(u, v)["resource_allocation"]


def jaccard(adjacency, u, v) -> np.ndarray:
    """Per pair: |N(u) & N(v)| / |N(u) | N(v)|, 0 when both have no neighbours."""
    return Neighbourhood(adjacency).scores(u, v)["jaccard"]


class Neighbourhood:
    """One graph's structural pair scores, its per-node weights computed once: a ranker scoring many
    pairs against the same snapshot gathers each pair's rows once for all four scores."""

    def __init__(self, adjacency):
        self.pattern = _pattern(_csr(adjacency), dtype=np.float32)  # 0/1: float32 is exact, half the memory
        self.degree = _degrees(self.pattern)

    @cached_property
    def inverse_log_degree(self) -> np.ndarray:
        # deg(w) = 1 makes log 0: such a w has a single neighbour, so it is never common to two distinct
        # nodes; giving it 0 keeps the division finite for the pair (w's friend, w's friend).
        d = self.degree
        return np.divide(1.0, np.log(np.maximum(d, 1)), out=np.zeros(len(d)), where=d > 1)

    @cached_property
    def inverse_degree(self) -> np.ndarray:
        return np.divide(1.0, self.degree, out=np.zeros(len(self.degree)), where=self.degree > 0)

    def scores(self, u, v) -> dict[str, np.ndarray]:
        """Per pair: common_neighbours (the count), adamic_adar, resource_allocation, jaccard."""
        u, v = _pairs(u, v)
        out = {name: np.zeros(len(u)) for name in ("common_neighbours", "adamic_adar", "resource_allocation")}
        for start in range(0, len(u), PAIR_BATCH):
            batch = slice(start, start + PAIR_BATCH)
            common = self.pattern[u[batch]].multiply(self.pattern[v[batch]]).tocsr()  # 1 at each common w
            out["common_neighbours"][batch] = np.asarray(common.sum(axis=1)).ravel()
            out["adamic_adar"][batch] = common @ self.inverse_log_degree
            out["resource_allocation"][batch] = common @ self.inverse_degree
        union = self.degree[u] + self.degree[v] - out["common_neighbours"]
        out["jaccard"] = np.divide(out["common_neighbours"], union, out=np.zeros(len(u)), where=union > 0)
        return out


def _sum_over_common(left: sp.csr_matrix, right: sp.csr_matrix, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Per pair i: sum over w of left[u[i], w] * right[v[i], w], nonzero only on common neighbours."""
    scores = np.zeros(len(u))
    for start in range(0, len(u), PAIR_BATCH):
        batch = slice(start, start + PAIR_BATCH)
        product = left[u[batch]].multiply(right[v[batch]])
        scores[batch] = np.asarray(product.sum(axis=1)).ravel()
    return scores


# ---------------------------------------------------------------------------
# Candidate generation and the random-walk baseline
# ---------------------------------------------------------------------------


def friends_of_friends(adjacency, rows) -> sp.csr_matrix:
    """(len(rows), n) int32: entry (i, w) = the number of mutual friends of rows[i] and w, for every w
    two hops from rows[i] that is neither rows[i] itself nor already its friend."""
    pattern = _pattern(_csr(adjacency), dtype=np.int32)
    rows = np.asarray(rows, dtype=np.int64).ravel()
    friends = pattern[rows]
    counts = (friends @ pattern).tocsr()  # paths of length 2 = mutual friends
    own = sp.csr_matrix((np.ones(len(rows), dtype=np.int32), (np.arange(len(rows)), rows)), shape=counts.shape)
    # Zero the entries at self and at friends (the mask is 1 there: no self loops, so they never
    # overlap), then drop them: masking keeps the product sparse.
    counts = counts - counts.multiply(friends + own)
    counts.eliminate_zeros()
    counts.sort_indices()
    return sp.csr_matrix(counts, dtype=np.int32)


def personalized_pagerank(adjacency, seeds, alpha: float = 0.85, iterations: int = 30, batch: int = 256) -> np.ndarray:
    """(len(seeds), n) float32: row i is the stationary distribution of a walk that follows an edge
    with probability `alpha` (in proportion to its weight) and jumps back to seeds[i] otherwise.

    Power iteration, `batch` seeds at a time as the columns of one dense (n, batch) matrix, so each step
    is one sparse-dense product. A node without neighbours sends its mass back to the seed (networkx's
    default for dangling nodes). The error after k steps is at most alpha^k (0.0076 in L1 for 30)."""
    matrix = _csr(adjacency).astype(np.float32)
    seeds = np.asarray(seeds, dtype=np.int64).ravel()
    strength = np.asarray(matrix.sum(axis=1)).ravel()
    dangling = strength == 0
    inverse_strength = np.divide(1.0, strength, out=np.zeros(len(strength)), where=~dangling)
    inverse_strength = inverse_strength.astype(np.float32)[:, None]  # float32 throughout: half the memory
    ranks = np.zeros((len(seeds), matrix.shape[0]), dtype=np.float32)
    for start in range(0, len(seeds), batch):
        ranks[start : start + batch] = _walk_with_restart(
            matrix, inverse_strength, dangling, seeds[start : start + batch], alpha, iterations
        ).T
    return ranks


def _walk_with_restart(
    matrix: sp.csr_matrix,
    inverse_strength: np.ndarray,
    dangling: np.ndarray,
    seeds: np.ndarray,
    alpha: float,
    iterations: int,
) -> np.ndarray:
    """(n, len(seeds)): power iteration of r <- alpha P^T r + (alpha dangling mass + 1 - alpha) e_seed,
    where P = D^-1 A; A symmetric makes P^T r = A (D^-1 r)."""
    columns = np.arange(len(seeds))
    restart = np.zeros((matrix.shape[0], len(seeds)), dtype=np.float32)
    restart[seeds, columns] = 1.0
    ranks = restart.copy()
    for _ in range(iterations):
        stuck = ranks[dangling].sum(axis=0)  # mass on nodes without edges: it restarts
        ranks = alpha * (matrix @ (ranks * inverse_strength))
        ranks[seeds, columns] += alpha * stuck + (1.0 - alpha)
    return ranks


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _csr(adjacency) -> sp.csr_matrix:
    """The adjacency as a canonical CSR matrix (no copy when it already is one)."""
    matrix = adjacency if isinstance(adjacency, sp.csr_matrix) else sp.csr_matrix(adjacency)
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"adjacency must be square, got {matrix.shape}")
    if not matrix.has_sorted_indices:
        matrix = matrix.sorted_indices()
    return matrix


def _pattern(matrix: sp.csr_matrix, dtype=np.float64) -> sp.csr_matrix:
    """The 0/1 matrix of the stored entries, sharing the index arrays."""
    return sp.csr_matrix((np.ones(matrix.nnz, dtype=dtype), matrix.indices, matrix.indptr), shape=matrix.shape)


def _degrees(matrix: sp.csr_matrix) -> np.ndarray:
    """Number of neighbours of each node, whatever the weights."""
    return np.diff(matrix.indptr).astype(np.float64)


def _pairs(u, v) -> tuple[np.ndarray, np.ndarray]:
    u = np.asarray(u, dtype=np.int64).ravel()
    v = np.asarray(v, dtype=np.int64).ravel()
    if u.shape != v.shape:
        raise ValueError(f"u and v must have the same length, got {len(u)} and {len(v)}")
    return u, v
