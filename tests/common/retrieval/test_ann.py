"""common.retrieval.ann: the index ranks as the model's inner products do, reaches its
recall against exact search, never pads with -1, adds items, and round-trips to disk."""

import logging

import faiss
import numpy as np
import pytest

from common.retrieval.ann import ANNIndex, IndexSpec, choose_spec, recall_against_exact

DIM = 32
# Small graphs and lists keep the suite fast; the build still has to reach recall 0.95.
SPECS = {
    "flat": IndexSpec("flat", {}),
    "ivf": IndexSpec("ivf", {"nlist": 128, "nprobe": 4}),
    "hnsw": IndexSpec("hnsw", {"M": 16, "efConstruction": 64, "efSearch": 64}),
}


def _normalise(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _clustered(n, seed, n_clusters=50):
    """Unit vectors around cluster centres, like trained item embeddings, with arbitrary ids."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, DIM))
    vectors = _normalise(centres[rng.integers(0, n_clusters, n)] + 0.4 * rng.standard_normal((n, DIM)))
    ids = rng.choice(10**12, size=n, replace=False).astype(np.int64)
    return ids, vectors


def _queries(vectors, n, seed):
    """Held out from the build's own probes: items plus noise, renormalised."""
    rng = np.random.default_rng(seed)
    return _normalise(vectors[rng.integers(0, len(vectors), n)] + 0.3 * rng.standard_normal((n, DIM)))


@pytest.fixture(scope="module")
def items():
    return _clustered(10_000, seed=0)


@pytest.fixture(scope="module")
def built(items):
    ids, vectors = items
    return {kind: ANNIndex.build(ids, vectors, spec=spec) for kind, spec in SPECS.items()}


# --- ranking and recall -------------------------------------------------------


def test_flat_ranks_exactly_as_the_models_inner_products(caplog):
    # Unnormalised vectors, as a dot-product model emits: here inner product and L2
    # rank differently, so an L2 index would fail.
    rng = np.random.default_rng(1)
    vectors = (rng.standard_normal((3_000, DIM)) * rng.uniform(0.5, 2.0, (3_000, 1))).astype(np.float32)
    ids = np.arange(3_000, dtype=np.int64) * 7 + 11
    queries = rng.standard_normal((20, DIM)).astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="common.retrieval.ann"):
        index = ANNIndex.build(ids, vectors, spec=SPECS["flat"])
    assert "not L2-normalised" in caplog.text

    scores, found = index.search(queries, 10)

    model_scores = queries @ vectors.T
    expected = np.argsort(-model_scores, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(found, ids[expected])
    np.testing.assert_allclose(scores, np.take_along_axis(model_scores, expected, axis=1), rtol=1e-5, atol=1e-5)
    l2_order = np.argsort(((queries[:, None, :] - vectors[None]) ** 2).sum(-1), axis=1)[:, :10]
    assert not np.array_equal(ids[l2_order], found)


def test_default_spec_on_small_catalog_is_flat_with_recall_one(items):
    ids, vectors = items
    index = ANNIndex.build(ids, vectors)
    assert index.spec.kind == "flat"
    assert index.recall == 1.0


def _exact_recall(index, ids, vectors, queries, k=100):
    """recall@k of the index against an exact search done here: numpy inner products with every item."""
    exact = ids[np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]]
    found = index.search(queries, k)[1]
    return float(np.mean([np.intersect1d(f, e).size for f, e in zip(found, exact, strict=True)]) / k)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_kinds_reach_recall_at_100_against_exact(built, items, kind):
    ids, vectors = items
    index = built[kind]
    if kind == "ivf":  # still approximate: probing every list would be an exhaustive scan
        assert index.spec.params["nprobe"] < index.spec.params["nlist"]
    # On queries the build never saw (it tuned its search on its own probes).
    assert _exact_recall(index, ids, vectors, _queries(vectors, 200, seed=5)) >= 0.95


def test_build_widens_the_search_when_recall_is_short(items):
    ids, vectors = items
    users = _queries(vectors, 200, seed=8)
    one_list = IndexSpec("ivf", {"nlist": 128, "nprobe": 1})
    narrow = ANNIndex.build(ids, vectors, spec=one_list, queries=users, target_recall=0.0)
    assert narrow.spec.params["nprobe"] == 1
    assert _exact_recall(narrow, ids, vectors, users) < 0.95  # one list is too few for these users

    index = ANNIndex.build(ids, vectors, spec=one_list, queries=users)

    assert 1 < index.spec.params["nprobe"] < index.spec.params["nlist"]
    assert _exact_recall(index, ids, vectors, users) >= 0.95


def test_build_measures_recall_on_the_given_user_queries(items):
    ids, vectors = items
    users = _queries(vectors, 100, seed=9)
    index = ANNIndex.build(ids, vectors, spec=SPECS["hnsw"], queries=users)
    recall = _exact_recall(index, ids, vectors, users)
    # The build's figure, and recall_against_exact's, are the true recall on those users.
    assert index.recall == pytest.approx(recall, abs=1e-3)
    assert recall_against_exact(index, vectors, ids, users, k=100) == pytest.approx(recall, abs=1e-3)
    assert recall >= 0.95


# --- search results -------------------------------------------------------------


@pytest.mark.parametrize("kind", list(SPECS))
def test_search_returns_k_distinct_valid_ids(built, items, kind):
    ids, vectors = items
    scores, found = built[kind].search(_queries(vectors, 50, seed=6), 100)
    assert found.shape == scores.shape == (50, 100)
    assert np.isin(found, ids).all()
    assert all(len(set(row)) == 100 for row in found)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first


def test_ivf_rows_short_of_k_are_answered_by_exact_search(items):
    ids, vectors = items
    index = ANNIndex.build(ids, vectors, spec=IndexSpec("ivf", {"nlist": 128, "nprobe": 1}), target_recall=0.0)
    queries = _queries(vectors, 20, seed=7)
    k = 500  # more than one list of ~80 items holds
    assert (index._index.search(queries, k)[1] == -1).any()  # faiss alone pads these rows

    scores, found = index.search(queries, k)

    assert (found >= 0).all()
    assert all(len(set(row)) == k for row in found)
    exact = faiss.IndexFlatIP(DIM)
    exact.add(vectors)
    exact_scores, exact_positions = exact.search(queries, k)
    np.testing.assert_array_equal(found, ids[exact_positions])
    np.testing.assert_allclose(scores, exact_scores, rtol=1e-5)


@pytest.mark.parametrize("kind", list(SPECS))
def test_k_beyond_the_catalog_returns_every_item(kind):
    ids, vectors = _clustered(60, seed=2, n_clusters=3)
    spec = {"ivf": IndexSpec("ivf", {"nlist": 1, "nprobe": 1})}.get(kind, SPECS[kind])
    scores, found = ANNIndex.build(ids, vectors, spec=spec).search(_queries(vectors, 5, seed=3), 1_000)
    assert found.shape == scores.shape == (5, 60)
    assert all(set(row) == set(ids) for row in found)


# --- add, save, load ----------------------------------------------------------


@pytest.mark.parametrize("kind", list(SPECS))
def test_added_item_is_its_own_top_1(kind):
    ids, vectors = _clustered(3_000, seed=3)
    spec = {"ivf": IndexSpec("ivf", {"nlist": 32, "nprobe": 2})}.get(kind, SPECS[kind])
    index = ANNIndex.build(ids, vectors, spec=spec)
    params_before = index.spec.params
    new_ids = np.array([10**13, 10**13 + 1], dtype=np.int64)
    new_vectors = _queries(vectors, 2, seed=4)

    index.add(new_ids, new_vectors)

    assert index.ntotal == 3_002
    assert index.spec.params == params_before  # no retraining, nothing rebuilt
    scores, found = index.search(new_vectors, 1)
    np.testing.assert_array_equal(found[:, 0], new_ids)
    np.testing.assert_allclose(scores[:, 0], 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="already in the index"):
        index.add(new_ids[:1], new_vectors[:1])


@pytest.mark.parametrize("kind", list(SPECS))
def test_save_load_round_trip(built, items, tmp_path, kind):
    index = built[kind]
    path = tmp_path / kind / "items.faiss"
    index.save(path)
    queries = _queries(items[1], 50, seed=8)
    for mmap in (False, True):  # memory-mapped (IVF's lists stay in the file): the same answers
        loaded = ANNIndex.load(path, mmap=mmap)
        assert (loaded.spec, loaded.dim, loaded.ntotal, loaded.recall) == (index.spec, DIM, index.ntotal, index.recall)
        for got, want in zip(loaded.search(queries, 20), index.search(queries, 20), strict=True):
            np.testing.assert_array_equal(got, want)


# --- the factory and input checks -----------------------------------------------


def test_choose_spec_by_catalog_size():
    assert choose_spec(1_000).kind == "flat"
    assert choose_spec(49_999).kind == "flat"
    ivf = choose_spec(1_000_000)
    assert ivf.kind == "ivf"
    assert ivf.params["nlist"] == 4_000  # 4 sqrt(n)
    assert 1 <= ivf.params["nprobe"] < ivf.params["nlist"]
    assert choose_spec(5_000_000).kind == "hnsw"
    assert choose_spec(1_000, kind="hnsw").kind == "hnsw"
    # Forced onto a small catalog, IVF keeps enough training points per list.
    assert choose_spec(1_000, kind="ivf").params["nlist"] <= 1_000 // 39


def _bad(items):
    ids, vectors = items
    return {
        "1-D vectors": (ids[:1], vectors[0]),
        "length mismatch": (ids[:5], vectors[:4]),
        "duplicate ids": (np.array([1, 1]), vectors[:2]),
        "float ids": (np.array([1.0, 2.0]), vectors[:2]),
        "negative ids": (np.array([-1, 2]), vectors[:2]),
        "NaN vector": (ids[:2], np.full((2, DIM), np.nan, np.float32)),
        "strings": (ids[:2], [["a"] * DIM] * 2),
        "empty": (ids[:0], vectors[:0]),
    }


@pytest.mark.parametrize("case", list(_bad(_clustered(10, seed=0))))
def test_bad_items_raise_value_error(case):
    ids, vectors = _bad(_clustered(10, seed=0))[case]
    with pytest.raises(ValueError):
        ANNIndex.build(ids, vectors)


def test_bad_queries_specs_and_dims_raise_value_error(built, items):
    ids, vectors = items
    index = built["flat"]
    with pytest.raises(ValueError, match="2-D with 32 columns"):
        index.search(vectors[:3, :16], 5)
    with pytest.raises(ValueError, match="k must be"):
        index.search(vectors[:3], 0)
    with pytest.raises(ValueError, match="2-D with 32 columns"):
        index.add(np.array([10**13]), vectors[:1, :16])
    with pytest.raises(ValueError, match="unknown index kind"):
        IndexSpec("lsh", {})
    with pytest.raises(ValueError, match="lacks params"):
        IndexSpec("ivf", {"nlist": 8})
    with pytest.raises(ValueError, match="training vectors"):
        ANNIndex.build(ids[:50], vectors[:50], spec=IndexSpec("ivf", {"nlist": 100, "nprobe": 1}))
