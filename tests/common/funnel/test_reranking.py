import numpy as np

from common.funnel.reranking import (
    age_allowed,
    first_occurrence,
    freshness_boost,
    maximal_marginal_relevance,
    region_allowed,
    top_k_with_group_cap,
)


def test_top_k_with_group_cap_takes_the_best_of_each_group():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    groups = np.array(["a", "a", "b", "a", "c"])
    assert top_k_with_group_cap(scores, groups, k=3, max_per_group=1).tolist() == [0, 2, 4]
    assert top_k_with_group_cap(scores, groups, k=10, max_per_group=2).tolist() == [0, 1, 2, 4]  # pool runs dry


def test_filters():
    assert age_allowed(15, np.array([0, 13, 18])).tolist() == [True, True, False]
    assert age_allowed(None, np.array([0, 13])).tolist() == [True, False]
    assert region_allowed("de", [["de", "fr"], [], ["us"]]).tolist() == [True, True, False]
    assert first_occurrence(np.array([5, 7, 5, 9, 7])).tolist() == [True, True, False, True, False]


def test_freshness_boost_halves_every_half_life():
    boosted = freshness_boost(np.zeros(3), np.array([0.0, 7.0, 14.0]), weight=0.2, half_life_days=7.0)
    np.testing.assert_allclose(boosted, [0.2, 0.1, 0.05])


def test_mmr_trades_relevance_for_diversity():
    # Items 0 and 1 are near-duplicates and the most relevant; item 2 is different, a bit less relevant.
    vectors = np.array([[1.0, 0.0], [0.999, 0.0447], [0.0, 1.0]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = np.array([1.0, 0.99, 0.8])
    assert maximal_marginal_relevance(scores, vectors, k=2, trade_off=1.0).tolist() == [0, 1]  # pure relevance
    assert maximal_marginal_relevance(scores, vectors, k=2, trade_off=0.7).tolist() == [0, 2]  # diversified
    assert maximal_marginal_relevance(scores, vectors, k=10).tolist() == [0, 2, 1]  # k beyond the pool
