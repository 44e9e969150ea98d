"""common.retrieval.ann's "ivfpq" kind: IVF lists of product-quantised codes. It is sized by choose_spec, answers
with the caller's ids from a fraction of a flat index's bytes, keeps a high recall on clustered data, takes new
items after the build, round-trips to disk (memory-mapped too), and widens its search only while that still
buys recall (past that the codes, not the probes, cap it)."""

import logging

import faiss
import numpy as np
import pytest

from common.retrieval.ann import PQ_RECALL_GAIN, ANNIndex, IndexSpec, choose_spec, overlap_recall, recall_against_exact

DIM = 32
N_ITEMS = 20_000
N_CLUSTERS = 200
CODE_BYTES = 16
K = 100


def _normalise(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _clustered(n: int, n_new: int, seed: int, n_clusters: int = N_CLUSTERS):
    """n + n_new unit vectors around cluster centres, like trained item embeddings, with arbitrary distinct ids;
    the last n_new stand for items uploaded after the build."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, DIM))
    total = n + n_new
    vectors = _normalise(centres[rng.integers(0, n_clusters, total)] + 0.4 * rng.standard_normal((total, DIM)))
    ids = rng.choice(10**12, size=total, replace=False).astype(np.int64)
    return (ids[:n], vectors[:n]), (ids[n:], vectors[n:])


def _queries(vectors, n, seed):
    """Users near items: an item plus noise, renormalised."""
    rng = np.random.default_rng(seed)
    return _normalise(vectors[rng.integers(0, len(vectors), n)] + 0.3 * rng.standard_normal((n, DIM)))


@pytest.fixture(scope="module", autouse=True)
def one_faiss_thread():
    """k-means and PQ training run several times faster on one thread than on two cores shared with other test
    workers (OpenMP's waiting threads spin against them). ANNIndex never raises the count it finds."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    return _clustered(N_ITEMS, 1_000, seed=0)


@pytest.fixture(scope="module")
def items(data):
    return data[0]


@pytest.fixture(scope="module")
def users(items):
    return _queries(items[1], 300, seed=5)


@pytest.fixture(scope="module")
def built(items, users, caplog_module):
    """Built with a target recall the codes cannot reach, so the PQ stop rule, not the target, ends the widening."""
    ids, vectors = items
    return ANNIndex.build(
        ids, vectors, spec=choose_spec(N_ITEMS, "ivfpq", CODE_BYTES), queries=users, target_recall=0.99
    )


@pytest.fixture(scope="module")
def caplog_module():
    """The build's log lines (a module-scoped build cannot use the function-scoped caplog)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("common.retrieval.ann")
    handler, level = Collect(level=logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def _exact(ids, vectors, queries, k):
    return ids[np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]]


def _recall_at_nprobe(index: ANNIndex, queries, truth, nprobe: int) -> float:
    """recall@K of the faiss index alone at this nprobe (no exact fallback): every row must come back full."""
    found = index.faiss_index.search(queries, K, params=faiss.SearchParametersIVF(nprobe=nprobe))[1]
    assert (found >= 0).all(), f"lists short of {K} items at nprobe {nprobe}"
    return overlap_recall(found, truth)


# --- the spec --------------------------------------------------------------------


def test_choose_spec_sizes_ivfpq_lists_and_codes():
    # nlist = min(4 sqrt(20k) = 566, 20k // 39 = 512); nprobe = nlist / 128; m = code_bytes sub-vectors of 8 bits.
    assert choose_spec(20_000, "ivfpq", code_bytes=16) == IndexSpec(
        "ivfpq", {"nlist": 512, "nprobe": 4, "m": 16, "nbits": 8}
    )
    # 1M items: nlist 4 * 1000 = 4000 (1M // 39 leaves room), nprobe ceil(4000 / 128) = 32.
    assert choose_spec(1_000_000, "ivfpq", code_bytes=8).params == {"nlist": 4000, "nprobe": 32, "m": 8, "nbits": 8}
    # A small catalogue: 39 training points a list caps nlist at 1000 // 39 = 25.
    assert choose_spec(1_000, "ivfpq").params == {"nlist": 25, "nprobe": 1, "m": 16, "nbits": 8}


def test_ivfpq_is_only_chosen_by_name():
    """It trades recall for memory: the factory's own choice by size is never IVF-PQ."""
    assert {choose_spec(n).kind for n in (10, 49_999, 50_000, 2_000_000, 3_000_000)} == {"flat", "ivf", "hnsw"}


def test_ivfpq_spec_needs_its_code_parameters():
    with pytest.raises(ValueError, match=r"lacks params \['m', 'nbits'\]"):
        IndexSpec("ivfpq", {"nlist": 16, "nprobe": 1})


def test_a_dim_that_is_no_multiple_of_m_is_refused(items):
    ids, vectors = items
    spec = choose_spec(N_ITEMS, "ivfpq", code_bytes=12)  # 32 dims do not split into 12 parts
    with pytest.raises(ValueError, match="multiple"):
        ANNIndex(spec, DIM)
    with pytest.raises(ValueError, match="multiple"):
        ANNIndex.build(ids[:2_000], vectors[:2_000], spec=spec)


# --- the built index ---------------------------------------------------------------


def test_search_answers_with_the_callers_ids_best_first(built, items):
    ids, vectors = items
    scores, found = built.search(_queries(vectors, 50, seed=6), 10)
    assert found.shape == scores.shape == (50, 10)
    assert np.isin(found, ids).all()
    assert all(len(set(row)) == 10 for row in found)
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    assert built.ntotal == N_ITEMS and built.spec.kind == "ivfpq"


def test_serialized_index_is_a_fraction_of_a_flat_index(built, items):
    """Per item: 16 bytes of codes and its id (in its list and in the id map) against 4 bytes a dimension and
    the id: about 0.27 of a flat index once the codebooks and list centroids are counted."""
    ids, vectors = items
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    flat.add_with_ids(vectors, ids)
    pq_bytes = len(faiss.serialize_index(built.faiss_index))
    flat_bytes = len(faiss.serialize_index(flat))
    assert flat_bytes > N_ITEMS * DIM * 4
    assert pq_bytes < 0.3 * flat_bytes
    assert pq_bytes < N_ITEMS * (CODE_BYTES + 2 * 8) + 200_000  # codes + ids, plus fixed tables under 200 kB


def test_recall_at_10_against_exact_search_is_high_on_clustered_data(built, items):
    """On queries the build never saw. The codes keep ~0.9 of the exact top 10 on this data."""
    ids, vectors = items
    queries = _queries(vectors, 300, seed=11)
    assert recall_against_exact(built, vectors, ids, queries, k=10) >= 0.85


def test_build_stops_widening_when_doubling_nprobe_gains_too_little(built, items, users, caplog_module):
    """The target (0.99) is out of the codes' reach: the build doubles nprobe while that gains at least
    PQ_RECALL_GAIN of recall@100 and keeps the last nprobe worth it, far short of probing every list."""
    ids, vectors = items
    nprobe, nlist = built.spec.params["nprobe"], built.spec.params["nlist"]
    start = choose_spec(N_ITEMS, "ivfpq", CODE_BYTES).params["nprobe"]
    truth = _exact(ids, vectors, users, K)

    chosen = _recall_at_nprobe(built, users, truth, nprobe)

    assert start < nprobe < nlist
    assert built.recall == pytest.approx(chosen, abs=1e-9)  # the figure kept is the chosen search's
    assert _recall_at_nprobe(built, users, truth, 2 * nprobe) - chosen < PQ_RECALL_GAIN
    assert chosen - _recall_at_nprobe(built, users, truth, nprobe // 2) >= PQ_RECALL_GAIN
    assert chosen < 0.99
    assert any("widest useful search" in record.getMessage() for record in caplog_module)


# --- after the build -------------------------------------------------------------------


@pytest.fixture()
def copy_of_built(built, tmp_path):
    """An independent copy (saved and loaded), so adding to it leaves the shared index as built."""
    built.save(tmp_path / "copy.faiss")
    return ANNIndex.load(tmp_path / "copy.faiss")


def test_added_items_are_found_by_their_own_vectors(copy_of_built, data):
    (old_ids, old_vectors), (new_ids, new_vectors) = data
    copy_of_built.add(new_ids, new_vectors)

    assert copy_of_built.ntotal == N_ITEMS + len(new_ids)
    found = copy_of_built.search(new_vectors, 10)[1]
    assert np.mean([i in row for i, row in zip(new_ids, found, strict=True)]) >= 0.9
    found_old = copy_of_built.search(old_vectors[:500], 10)[1]
    assert np.mean([i in row for i, row in zip(old_ids[:500], found_old, strict=True)]) >= 0.9
    with pytest.raises(ValueError, match="already in the index"):
        copy_of_built.add(new_ids[:3], new_vectors[:3])


@pytest.mark.parametrize("mmap", [False, True], ids=["read", "mmap"])
def test_save_and_load_answer_the_same(built, items, tmp_path, mmap):
    _, vectors = items
    path = tmp_path / "index" / "ivfpq.faiss"
    built.save(path)

    loaded = ANNIndex.load(path, mmap=mmap)

    assert loaded.spec == built.spec and loaded.dim == DIM and loaded.recall == built.recall
    queries = _queries(vectors, 100, seed=12)
    scores, found = loaded.search(queries, 20)
    expected_scores, expected = built.search(queries, 20)
    np.testing.assert_array_equal(found, expected)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-6, atol=1e-6)


# --- a known defect --------------------------------------------------------------------


def test_build_does_not_settle_where_most_queries_fall_back_to_exhaustive_search():
    """10k items in 256 lists hold ~39 items a list: at the starting nprobe 2 most queries' probed lists hold
    fewer than 100 items, so search() answers them by probing every list. The build must widen past that."""
    (ids, vectors), _ = _clustered(10_000, 0, seed=0, n_clusters=100)
    users = _queries(vectors, 300, seed=5)
    index = ANNIndex.build(ids, vectors, spec=choose_spec(10_000, "ivfpq", CODE_BYTES), queries=users)

    short = (index.faiss_index.search(users, K)[1] < 0).any(axis=1)

    assert short.mean() < 0.5, (index.spec.params, short.mean())
