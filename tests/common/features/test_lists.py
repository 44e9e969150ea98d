import numpy as np
import pandas as pd

from common.features.lists import (
    category_count_lists,
    counts_or_zeros,
    ids_in_window,
    matches_per_row,
    pick_per_row,
)


def test_category_count_lists_known_answer():
    # Key 0: category 1 on day 0 and day 1, category 0 on day 1 (weight 2); key 1: category 1 on day 0.
    keys, categories, days = np.array([0, 0, 0, 1]), np.array([1, 1, 0, 1]), np.array([0, 1, 1, 0])
    lists = category_count_lists(keys, categories, days, 2, 2, 3, window_days=1).to_pylist()
    # Snapshot-major rows (snapshot, key); each a count per category over the day before the snapshot.
    assert lists == [[0, 0], [0, 0], [0, 1], [0, 1], [1, 1], [0, 0]]
    weighted = category_count_lists(keys, categories, days, 2, 2, 3, None, np.array([1.0, 1.0, 2.0, 0.0]))
    assert weighted.to_pylist()[4] == [2, 2]  # all history before day 2, weights summed


def test_ids_in_window_keeps_one_entry_per_event():
    keys, days, ids = np.array([0, 0, 1, 0]), np.array([0, 1, 1, 1]), np.array([10, 10, 20, 11])
    assert ids_in_window(keys, days, ids, 2, 3, window_days=1).to_pylist() == [[], [], [10], [], [10, 11], [20]]
    assert ids_in_window(keys, days, ids, 2, 3, None).to_pylist()[4] == [10, 10, 11]


def test_request_time_readers():
    lists = pd.Series([[3, 4, 5], None, [1, 1, 1]])
    assert pick_per_row(lists, np.array([2, 0, 1]), 3).tolist() == [5, 0, 1]
    assert counts_or_zeros(None, 2).tolist() == [0, 0]
    recent = pd.Series([[7, 8, 7], [], None])
    assert matches_per_row(recent, np.array([7, 7, 7])).tolist() == [2, 0, 0]
    assert matches_per_row(pd.Series([None, []]), np.array([1, 2])).tolist() == [0, 0]


def test_distinct_ids_by_key():
    from common.features.lists import distinct_ids_by_key

    grouped = distinct_ids_by_key([3, 1, 3, 3, 1], [9, 5, 2, 9, 4])
    assert {k: v.tolist() for k, v in grouped.items()} == {1: [4, 5], 3: [2, 9]}
    assert distinct_ids_by_key([], []) == {}
