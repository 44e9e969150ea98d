"""Tests for common.graph.proximity: known answers on a hand-drawn graph, agreement with networkx on a
random one (structural scores, personalized PageRank with and without weights), friends of friends
excluding self and friends, and the edge cases (duplicates, self loops, degree-1 nodes, empty input)."""

import math

import networkx as nx
import numpy as np
import pytest

from common.graph.proximity import (
    adamic_adar,
    adjacency,
    common_neighbours,
    friends_of_friends,
    jaccard,
    personalized_pagerank,
    resource_allocation,
)

# 0 - 1 - 3 - 4 - 5       degrees: 0:2  1:3  2:3  3:3  4:2  5:1
#  \  |  /
#    2                    (0-2, 1-2 and 2-3 too)
EDGES = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (3, 4), (4, 5)]
LN2, LN3 = math.log(2), math.log(3)
# pair: (common neighbours, Adamic-Adar, resource allocation, Jaccard), by hand
HAND = {
    (0, 3): (2, 2 / LN3, 2 / 3, 2 / 3),  # via 1 and 2 (degree 3 each); union {1, 2, 4}
    (1, 4): (1, 1 / LN3, 1 / 3, 1 / 4),  # via 3; union {0, 2, 3, 5}
    (3, 5): (1, 1 / LN2, 1 / 2, 1 / 3),  # via 4 (degree 2); union {1, 2, 4}
    (1, 2): (2, 1 / LN2 + 1 / LN3, 1 / 2 + 1 / 3, 2 / 4),  # friends too: via 0 and 3
    (0, 5): (0, 0.0, 0.0, 0.0),  # nothing in common
}


@pytest.fixture(scope="module")
def hand():
    src, dst = np.array(EDGES).T
    return adjacency(6, src, dst)


def test_adjacency_is_symmetric_without_self_loops_or_duplicates():
    # 0-1 three times (both directions), a self loop on 2, then 1-2.
    a = adjacency(3, [0, 1, 0, 2, 1], [1, 0, 1, 2, 2], weights=[0.2, 0.7, 0.5, 1.0, 0.3])
    assert a.shape == (3, 3) and a.nnz == 4
    assert (a != a.T).nnz == 0
    assert a[0, 1] == 0.7 and a[2, 2] == 0  # the largest duplicate weight; no self loop
    with pytest.raises(ValueError):
        adjacency(3, [0], [1], weights=[0.0])


@pytest.mark.parametrize(
    "score, column", [(common_neighbours, 0), (adamic_adar, 1), (resource_allocation, 2), (jaccard, 3)]
)
def test_pair_scores_on_the_hand_drawn_graph(hand, score, column):
    u, v = np.array(list(HAND)).T
    expected = [values[column] for values in HAND.values()]
    np.testing.assert_allclose(score(hand, u, v), expected)
    np.testing.assert_allclose(score(hand, v, u), expected)  # symmetric


def test_weighted_common_neighbours_discount_each_path():
    src, dst = np.array(EDGES).T
    weights = {(0, 1): 0.5, (1, 3): 0.25, (0, 2): 1.0, (2, 3): 0.5}
    a = adjacency(6, src, dst, [weights.get(edge, 1.0) for edge in EDGES])
    # Paths 0-1-3 and 0-2-3: 0.5 * 0.25 + 1.0 * 0.5.
    assert common_neighbours(a, [0], [3])[0] == pytest.approx(0.625)
    # The structural scores ignore weights: degree is the number of neighbours.
    assert adamic_adar(a, [0], [3])[0] == pytest.approx(2 / LN3)


def test_degree_one_and_empty_inputs(hand):
    # Node 5 has degree 1 (log 1 = 0); the pair (4, 4) is the one that would reach it.
    assert np.isfinite(adamic_adar(hand, [4], [4])).all()
    for score in (common_neighbours, adamic_adar, resource_allocation, jaccard):
        assert score(hand, [], []).shape == (0,)
    assert friends_of_friends(hand, []).shape == (0, 6)
    assert personalized_pagerank(hand, []).shape == (0, 6)
    with pytest.raises(ValueError):
        jaccard(hand, [0, 1], [2])


def test_friends_of_friends_excludes_self_and_friends(hand):
    fof = friends_of_friends(hand, [0, 3, 5]).toarray()
    expected = np.array(
        [
            [0, 0, 0, 2, 0, 0],  # 0: friends 1, 2; 3 through both
            [2, 0, 0, 0, 0, 1],  # 3: friends 1, 2, 4; 0 through 1 and 2, 5 through 4
            [0, 0, 0, 1, 0, 0],  # 5: friend 4; 3 through 4
        ]
    )
    np.testing.assert_array_equal(fof, expected)


def test_personalized_pagerank_known_answers():
    # One edge 0-1 and an isolated node 2. From 0: r0 = (1 - a) + a r1 and r1 = a r0.
    a = adjacency(3, [0], [1])
    ranks = personalized_pagerank(a, [0, 2], alpha=0.85, iterations=200)
    np.testing.assert_allclose(ranks[0], [1 / 1.85, 0.85 / 1.85, 0.0], atol=1e-6)
    np.testing.assert_allclose(ranks[1], [0.0, 0.0, 1.0], atol=1e-6)  # a dangling seed keeps its mass
    assert ranks.dtype == np.float32


@pytest.fixture(scope="module")
def random_graph():
    """A sparse G(n, p) with isolated and degree-1 nodes, positive random weights, and its adjacency."""
    graph = nx.gnp_random_graph(60, 0.06, seed=3)
    rng = np.random.default_rng(3)
    for a, b in graph.edges:
        graph[a][b]["weight"] = rng.uniform(0.1, 1.0)
    src, dst, weights = np.array([(a, b, w) for a, b, w in graph.edges(data="weight")]).T
    return graph, adjacency(60, src.astype(int), dst.astype(int), weights)


def test_pair_scores_agree_with_networkx(random_graph):
    graph, a = random_graph
    pairs = [(i, j) for i in range(60) for j in range(i + 1, 60)]
    u, v = np.array(pairs).T
    nx_scores = {
        adamic_adar: [s for *_, s in nx.adamic_adar_index(graph, pairs)],
        resource_allocation: [s for *_, s in nx.resource_allocation_index(graph, pairs)],
        jaccard: [s for *_, s in nx.jaccard_coefficient(graph, pairs)],
    }
    for score, expected in nx_scores.items():
        np.testing.assert_allclose(score(a, u, v), expected, atol=1e-12, err_msg=score.__name__)
    unweighted = adjacency(60, *np.array(graph.edges).T)
    counts = [len(list(nx.common_neighbors(graph, i, j))) for i, j in pairs]
    np.testing.assert_array_equal(common_neighbours(unweighted, u, v), counts)
    assert max(counts) >= 2  # the comparison covers more than 0 and 1


@pytest.mark.parametrize("weighted", [False, True])
def test_personalized_pagerank_agrees_with_networkx(random_graph, weighted):
    graph, a = random_graph
    if not weighted:
        a = adjacency(60, *np.array(graph.edges).T)
    seeds = [0, 7, next(node for node in graph if graph.degree(node) == 0)]
    ranks = personalized_pagerank(a, seeds, alpha=0.7, iterations=100, batch=2)  # two batches
    for row, seed in zip(ranks, seeds, strict=True):
        expected = nx.pagerank(
            graph, alpha=0.7, personalization={seed: 1}, weight="weight" if weighted else None, tol=1e-12
        )
        np.testing.assert_allclose(row, [expected[node] for node in range(60)], atol=1e-6)
    np.testing.assert_allclose(ranks.sum(axis=1), 1.0, atol=1e-5)
