from types import SimpleNamespace

import numpy as np
import pytest

from common.funnel.reranking import (
    Slate,
    age_allowed,
    build_steps,
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


def test_diversify_step_puts_a_different_item_before_a_near_duplicate():
    # Rows 0 and 1 are near-duplicates with the best keys; row 2 differs, a little less relevant.
    vectors = np.array([[1.0, 0.0], [0.999, 0.0447], [0.0, 1.0], [0.7071, 0.7071]], dtype=np.float32)
    catalog = SimpleNamespace(vectors=vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    slate = Slate(np.array([0, 1, 2, 3]), np.array([1.0, 0.99, 0.9, 0.1]), np.array([1.0, 0.99, 0.9, 0.1]))
    steps = dict(build_steps([{"step": "diversify", "trade_off": 0.7, "pool": 4}], catalog))
    result = steps["diversify"](None, catalog, slate)
    assert result.rows.tolist() == [0, 2, 1, 3]  # the near-duplicate waits behind a different item
    assert result.by_key().rows.tolist() == [0, 2, 1, 3] and result.scores.tolist() == [1.0, 0.9, 0.99, 0.1]
    pool_of_two = dict(build_steps([{"step": "diversify", "pool": 2}], catalog))
    assert pool_of_two["diversify"](None, catalog, slate).rows.tolist() == [0, 1, 2, 3]  # beyond the pool: by key
    relevance_only = dict(build_steps([{"step": "diversify", "trade_off": 1.0, "pool": 4}], catalog))
    assert relevance_only["diversify"](None, catalog, slate).rows.tolist() == [0, 1, 2, 3]


def test_unknown_step_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown re-ranking step"):
        build_steps([{"step": "shuffle"}], None)


def test_upcoming_keeps_items_that_start_after_the_request_within_the_horizon():
    day = 86_400.0
    catalog = SimpleNamespace(columns={"start_s": np.array([-1.0, 0.0, 0.5, 3.0, 40.0]) * day})
    slate = Slate(np.arange(5), np.zeros(5), np.zeros(5))
    request = SimpleNamespace(now_s=0.0, attributes={})
    steps = dict(build_steps([{"step": "upcoming", "horizon_days": 30}], catalog))
    assert steps["upcoming"](request, catalog, slate).rows.tolist() == [2, 3]  # not started, not too far
    unbounded = dict(build_steps([{"step": "upcoming"}], catalog))
    assert unbounded["upcoming"](request, catalog, slate).rows.tolist() == [2, 3, 4]


def test_demote_lowers_the_listed_authors_whatever_the_sign_of_their_keys():
    catalog = SimpleNamespace(columns={"author_id": np.array([7, 8, 7, 9])})
    keys = np.array([2.0, 1.0, -0.5, 0.5])
    slate = Slate(np.arange(4), keys.copy(), keys.copy())
    request = SimpleNamespace(now_s=0.0, attributes={"hidden_author_ids": [7]})
    config = [{"step": "demote", "user": "hidden_author_ids", "item": "author_id", "factor": 0.1}]
    steps = dict(build_steps(config, catalog))
    demoted = steps["demote"](request, catalog, slate)
    np.testing.assert_allclose(demoted.keys, [0.2, 1.0, -5.0, 0.5])
    assert demoted.by_key().rows.tolist() == [1, 3, 0, 2]
    assert steps["demote"](SimpleNamespace(now_s=0.0, attributes={}), catalog, slate).keys.tolist() == keys.tolist()


def test_near_duplicates_keep_the_best_keyed_copy_of_similar_content():
    vectors = np.array([[1.0, 0.0], [0.995, 0.0999], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    catalog = SimpleNamespace(vectors=vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    slate = Slate(np.array([0, 1, 2, 3]), np.zeros(4), np.array([0.5, 0.9, 0.4, 0.3]))
    steps = dict(build_steps([{"step": "near_duplicates", "threshold": 0.95}], catalog))
    kept = steps["near_duplicates"](None, catalog, slate)
    assert kept.rows.tolist() == [1, 2, 3]  # 0 copies 1 (cosine 0.995), which has the better key


def test_near_duplicates_compare_with_the_kept_items_only():
    """A chain: B is close to A and to C, A is not close to C. B goes (A is kept); C stays,
    since the only better item it is close to was dropped."""
    angles = np.radians([0.0, 20.0, 40.0])
    vectors = np.column_stack([np.cos(angles), np.sin(angles)]).astype(np.float32)
    catalog = SimpleNamespace(vectors=vectors)
    slate = Slate(np.array([2, 0, 1]), np.zeros(3), np.array([0.1, 0.9, 0.5]))
    steps = dict(build_steps([{"step": "near_duplicates", "threshold": float(np.cos(np.radians(25)))}], catalog))
    assert steps["near_duplicates"](None, catalog, slate).rows.tolist() == [0, 2]
