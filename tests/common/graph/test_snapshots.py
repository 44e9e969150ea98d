import numpy as np
import pandas as pd
import pytest

from common.graph.snapshots import DAY_S, EdgeLog, NodeIndex, rows_in, seconds

T0 = pd.Timestamp("2026-03-02", tz="UTC")


def at(days: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=days)


@pytest.fixture
def log() -> EdgeLog:
    # ids are not rows: 10, 20, 30, 40 -> rows 0..3; (20, 10) repeats (10, 20) later and a self loop is dropped
    edges = pd.DataFrame(
        {
            "src": [10, 20, 30, 20, 40, 40],
            "dst": [20, 30, 10, 10, 10, 40],
            "timestamp": [at(0), at(1), at(2), at(5), at(3), at(0)],
        }
    )
    return EdgeLog.from_frame(edges, NodeIndex([40, 10, 30, 20]))


def test_node_index_maps_ids_to_sorted_rows():
    nodes = NodeIndex([40, 10, 30, 20, 10])
    assert nodes.ids.tolist() == [10, 20, 30, 40]
    assert nodes.rows([30, 10]).tolist() == [2, 0]
    assert nodes.rows([30, 99], strict=False).tolist() == [2, -1]
    with pytest.raises(KeyError):
        nodes.rows([99])
    assert rows_in(np.array([10, 20]), [5, 20, 25]).tolist() == [-1, 1, -1]
    assert rows_in(np.zeros(0, np.int64), [1]).tolist() == [-1]


def test_a_pair_forms_once_at_its_first_time_and_self_loops_drop(log):
    assert len(log.src) == 4
    assert log.formed_s.tolist() == sorted(log.formed_s.tolist())
    assert (log.src < log.dst).all()
    pair = (log.src == 0) & (log.dst == 1)
    assert log.formed_s[pair].tolist() == [seconds([at(0)])[0]]


def test_snapshot_holds_only_the_edges_formed_before_it(log):
    A = log.adjacency(seconds([at(2)])[0]).toarray()
    expected = np.zeros((4, 4))
    for a, b in ((0, 1), (1, 2)):  # (10, 20) on day 0, (20, 30) on day 1; (30, 10) forms on day 2 itself
        expected[a, b] = expected[b, a] = 1
    np.testing.assert_array_equal(A, expected)
    assert log.degree(seconds([at(2)])[0]).tolist() == [1, 2, 1, 0]
    assert log.edges_at(seconds([at(2)])[0]).shape == (2, 2)


def test_labels_are_the_edges_formed_in_the_window(log):
    low, high = log.formed_between(*seconds([at(2), at(4)]))
    assert sorted(zip(low.tolist(), high.tolist(), strict=True)) == [(0, 2), (0, 3)]


def test_time_discount_halves_a_friendship_per_half_life(log):
    now = seconds([at(2)])[0]
    W = log.adjacency(now, half_life_days=1.0)
    assert W[0, 1] == pytest.approx(0.25)  # formed 2 days before
    assert W[1, 2] == pytest.approx(0.5)
    assert DAY_S == 86_400.0
