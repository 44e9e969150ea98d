"""Tests for common.bench.ann: a tiny run end to end, and its pure helpers."""

import numpy as np
import pytest

from common.bench import ann as bench
from common.bench.ann import clustered_embeddings, run_ann_benchmark, unit_centres
from common.retrieval.ann import overlap_recall


def _row(report: str, kind: str) -> list[str]:
    return next(line.split() for line in report.splitlines() if line.startswith(kind + " "))


def _exact_recall(found: np.ndarray, items: np.ndarray, queries: np.ndarray, k: int) -> float:
    """Mean |found ∩ exact top k| / k, exact by numpy inner products (the bench's ids are row numbers)."""
    exact = np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :k]
    return float(np.mean([np.intersect1d(f, e).size for f, e in zip(found, exact, strict=True)]) / k)


@pytest.fixture
def measured(monkeypatch):
    """kind -> (items, queries, ids found) of every index the benchmark measures."""
    seen = {}
    measure = bench._measure

    def spy(kind, ids, items, queries, tune_queries, k):
        result, found = measure(kind, ids, items, queries, tune_queries, k)
        np.testing.assert_array_equal(ids, np.arange(len(items)))
        seen[kind] = (items, queries, found)
        return result, found

    monkeypatch.setattr(bench, "_measure", spy)
    return seen


@pytest.mark.parametrize("kinds", [("flat", "auto", "ivf"), ("ivf",)])
def test_tiny_run_reports_the_recall_of_an_approximate_index_against_exact_search(measured, kinds):
    """The report's recall is checked against a numpy exact search of the same items and queries, for
    IVF (approximate at these sizes: below 1, above 0.9 as the build tunes it on other queries), with
    and without a flat row in the run (with one, the bench takes flat's results as the truth)."""
    k = 100
    report = run_ann_benchmark(n_items=20_000, dim=16, n_queries=200, k=k, kinds=kinds, n_clusters=50)
    items, queries, found = measured["ivf"]
    recall = _exact_recall(found, items, queries, k)
    ivf = _row(report, "ivf")
    assert ivf[1] == "ivf" and float(ivf[-1]) == pytest.approx(recall, abs=5e-5)
    assert 0.9 <= recall < 1.0
    if "flat" in kinds:
        flat, auto = _row(report, "flat"), _row(report, "auto")
        assert _exact_recall(measured["flat"][2], items, queries, k) == 1.0 and flat[-1] == "1.0000"
        assert auto[1] == "flat"  # choose_spec picks exact search below 50k items
        assert "auto p99 / flat p99 =" in report
        # flat memory: 20k x 16 float32 vectors plus 8-byte ids, and a small header
        assert float(flat[-5]) == pytest.approx(20_000 * (16 * 4 + 8) / 2**20, abs=0.05)  # printed to 0.1 MB


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown kind"):
        run_ann_benchmark(n_items=100, dim=4, n_queries=2, k=1, kinds=("lsh",), n_clusters=2)


def test_clustered_embeddings_are_seeded_unit_float32_and_clustered():
    centres = unit_centres(5, 64, np.random.default_rng(0))
    a = clustered_embeddings(1_001, centres, np.random.default_rng(1), chunk=300)
    b = clustered_embeddings(1_001, centres, np.random.default_rng(1), chunk=300)
    assert a.dtype == np.float32 and a.shape == (1_001, 64)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    # clustered: on average ~0.75 cosine to the nearest centre, where random directions in 64-d give ~0.2
    assert (a @ centres.T).max(axis=1).mean() > 0.6


def test_overlap_recall_counts_overlap_per_row():
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = np.array([[4, 3, 2, 1], [5, 6, 0, 9]])
    assert overlap_recall(found, truth) == pytest.approx((4 / 4 + 2 / 4) / 2)
    with pytest.raises(ValueError):
        overlap_recall(found[:1], truth)
