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


def test_list_lookup_counts_and_finds_values_in_each_rows_list():
    from common.features.lists import ListLookup

    lookup = ListLookup([np.array([7, 9, 7]), np.array([3]), np.array([], dtype=np.int64)])
    assert lookup.count([0, 0, 1, 2, 0], [7, 3, 3, 7, 42]).tolist() == [2, 0, 1, 0, 0]
    assert lookup.first([0, 0, 1, 1, 2], [9, 7, 3, 9, 9]).tolist() == [1, 0, 0, -1, -1]
    empty = ListLookup([np.array([], dtype=np.int64)])
    assert empty.count([0], [1]).tolist() == [0] and empty.first([0], [1]).tolist() == [-1]
    # Against a plain Python answer on random lists.
    rng = np.random.default_rng(0)
    lists = [rng.integers(0, 20, rng.integers(0, 8)) for _ in range(50)]
    rows, values = rng.integers(0, 50, 400), rng.integers(0, 25, 400)
    lookup = ListLookup(lists)
    assert lookup.count(rows, values).tolist() == [list(lists[r]).count(v) for r, v in zip(rows, values, strict=True)]
    expected = [list(lists[r]).index(v) if v in lists[r] else -1 for r, v in zip(rows, values, strict=True)]
    assert lookup.first(rows, values).tolist() == expected
