import numpy as np
import pytest

from common.evaluation.retrieval import recall_by_source
from common.retrieval.sources import RankedList, RetrievalRequest, merge_candidates


def test_recall_by_source_known_answer():
    # User 1: relevant {1, 2, 3, 4}. Source a finds 1, 2; source b finds 3; the merge finds all three.
    a, b = RankedList("a", np.array([1, 2, 9])), RankedList("b", np.array([3, 8]))
    merged = {
        1: merge_candidates(RetrievalRequest(1), [a, b], k_per_source=3),
        2: merge_candidates(RetrievalRequest(2), [a, b], k_per_source=3),
    }
    relevant = {1: np.array([1, 2, 3, 4]), 2: np.array([], dtype=np.int64)}  # user 2 is skipped
    table = recall_by_source(merged, relevant, ks=(1, 5)).set_index("source")
    assert table.loc["a", "recall@5"] == pytest.approx(2 / 4)
    assert table.loc["b", "recall@5"] == pytest.approx(1 / 4)
    assert table.loc["merged", "recall@5"] == pytest.approx(3 / 4)
    assert table.loc["a", "recall@1"] == pytest.approx(1 / 4)  # only item 1 in the top 1
    assert (table["users"] == 1).all()


def test_no_relevant_items_is_an_error():
    merged = {1: merge_candidates(RetrievalRequest(1), [RankedList("a", np.array([1]))], k_per_source=1)}
    with pytest.raises(ValueError, match="no user"):
        recall_by_source(merged, {1: np.array([], dtype=np.int64)})
