"""Known-answer tests of the list fusions."""

import numpy as np
import pytest

from common.search.fusion import min_max, reciprocal_rank_fusion, weighted_score_fusion


def test_rrf_known_answer():
    ids, scores = reciprocal_rank_fusion({"bm25": [10, 20, 30], "semantic": [30, 40]}, k=60)
    # 30: 1/63 + 1/61; 10: 1/61; 40: 1/62; 20: 1/62 (20 appeared first: ties by first appearance)
    assert ids.tolist() == [30, 10, 20, 40]
    np.testing.assert_allclose(scores, [1 / 63 + 1 / 61, 1 / 61, 1 / 62, 1 / 62])


def test_rrf_k_zero_and_edge_cases():
    ids, scores = reciprocal_rank_fusion({"a": [1, 2], "b": [2, 1]}, k=0)
    assert ids.tolist() == [1, 2] and scores.tolist() == [1.5, 1.5]
    assert reciprocal_rank_fusion({})[0].tolist() == []
    assert reciprocal_rank_fusion({"a": []})[0].tolist() == []
    with pytest.raises(ValueError, match="twice"):
        reciprocal_rank_fusion({"a": [1, 1]})
    with pytest.raises(ValueError, match="k must"):
        reciprocal_rank_fusion({"a": [1]}, k=-1)


def test_weighted_fusion_scales_each_source_then_weighs():
    # text scores 10, 5, 0 -> 1, 0.5, 0; visual cosines 0.9, 0.1 -> 1, 0
    ids, scores = weighted_score_fusion(
        {"text": ([1, 2, 3], [10.0, 5.0, 0.0]), "visual": ([3, 4], [0.9, 0.1])}, weights={"text": 0.4, "visual": 0.6}
    )
    assert ids.tolist() == [3, 1, 2, 4]
    np.testing.assert_allclose(scores, [0.6, 0.4, 0.2, 0.0])
    with pytest.raises(ValueError, match="no weight"):
        weighted_score_fusion({"text": ([1], [1.0])}, weights={})
    with pytest.raises(ValueError, match="ids for"):
        weighted_score_fusion({"text": ([1, 2], [1.0])}, weights={"text": 1.0})


def test_min_max():
    assert min_max(np.array([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    assert min_max(np.array([7.0, 7.0])).tolist() == [1.0, 1.0]
    assert min_max(np.array([])).tolist() == []
