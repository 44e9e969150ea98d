"""Approximate nearest neighbours over item embeddings with faiss, on inner product: the
similarity the two towers were trained with (cosine on L2-normalised vectors).

    index = ANNIndex.build(item_ids, item_vectors)   # flat / IVF / HNSW by catalog size
    scores, ids = index.search(user_vectors, k=100)  # the caller's item ids, best first
    index.add(new_ids, new_vectors)                  # no retraining
    index.save(path); ANNIndex.load(path)            # path plus path.json with the spec

Every build measures its recall@100 against exact search (on sample user vectors when
given, else on probe queries made from the items) and, below the target, widens the search
(IVF nprobe, HNSW efSearch) until it is reached; the figure is kept in `index.recall` and
saved with the index.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import faiss
import numpy as np

log = logging.getLogger(__name__)

KINDS = ("flat", "ivf", "ivfpq", "hnsw")
REQUIRED_PARAMS = {
    "flat": (),
    "ivf": ("nlist", "nprobe"),
    "ivfpq": ("nlist", "nprobe", "m", "nbits"),
    "hnsw": ("M", "efSearch"),
}
# Inverted-list kinds: trained (k-means), searched over nprobe of nlist lists, memory-mappable.
IVF_KINDS = ("ivf", "ivfpq")
# Exact search costs n*d multiply-adds per query: ~0.3 ms measured at 50k x 64 on one
# core, as fast as any ANN index there, with recall 1 and nothing to train.
FLAT_MAX_ITEMS = 50_000
# IVF-Flat trains in seconds and stores just the vectors, but a query scans
# nprobe * n / nlist of them, a number that grows with sqrt(n) at nlist ~ 4 sqrt(n); past
# ~2M items HNSW's graph walk is cheaper per query, which pays for its slow build
# (10-30 s per 100k items measured on 2 cores) and its links (2*M 4-byte ids an item).
IVF_MAX_ITEMS = 2_000_000
# k-means wants at least this many training points per list (faiss warns below it).
MIN_POINTS_PER_LIST = 39
RECALL_K = 100
PROBE_QUERIES = 500
HNSW_MAX_EF_SEARCH = 4096
# IVF-PQ stops widening its search when doubling nprobe gains less recall than this.
PQ_RECALL_GAIN = 0.005


@dataclass(frozen=True)
class IndexSpec:
    """How the factory chose: `kind` in KINDS, `params` its faiss parameters
    (ivf: nlist, nprobe; ivfpq: those and m, nbits; hnsw: M, efSearch and optionally efConstruction)."""

    kind: str
    params: dict

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown index kind {self.kind!r}, expected one of {KINDS}")
        missing = [name for name in REQUIRED_PARAMS[self.kind] if name not in self.params]
        if missing:
            raise ValueError(f"{self.kind} index spec lacks params {missing}")


def choose_spec(n_items: int, kind: str | None = None, code_bytes: int = 16) -> IndexSpec:
    """Exact search below FLAT_MAX_ITEMS, IVF-Flat up to IVF_MAX_ITEMS, HNSW beyond
    (see the constants for why). `kind` forces a kind, with parameters sized for n_items.

    IVF: nlist ~ 4 sqrt(n), capped so each list gets MIN_POINTS_PER_LIST training points;
    nprobe starts at nlist / 128 (0.99 recall@100 at nlist / 200 on 200k clustered vectors)
    and the build doubles it until the target recall is reached, so a search scans no more
    lists than the data needs (uniformly random vectors need ~nlist / 2; the product-search
    two-tower at 1M, nlist 4000: 0.98 at nprobe 125, the former start).
    IVF-PQ (asked for by name: it trades recall for memory): IVF's lists, each vector stored as
    `code_bytes` bytes of product-quantisation codes (m sub-vectors of 8 bits each) instead of 4 bytes a
    dimension; the vector's dimension must be a multiple of m.
    HNSW: M=32, efConstruction=128, efSearch=128, likewise widened by the build."""
    if n_items < 1:
        raise ValueError(f"n_items must be positive, got {n_items}")
    if kind is None:
        kind = "flat" if n_items < FLAT_MAX_ITEMS else "ivf" if n_items <= IVF_MAX_ITEMS else "hnsw"
    if kind in IVF_KINDS:
        nlist = max(1, min(round(4 * math.sqrt(n_items)), n_items // MIN_POINTS_PER_LIST))
        params = {"nlist": nlist, "nprobe": math.ceil(nlist / 128)}
        if kind == "ivfpq":
            params |= {"m": code_bytes, "nbits": 8}
        return IndexSpec(kind, params)
    if kind == "hnsw":
        return IndexSpec("hnsw", {"M": 32, "efConstruction": 128, "efSearch": 128})
    return IndexSpec(kind, {})


class ANNIndex:
    """A faiss index over (item id, vector) pairs, searched by inner product.

    Every kind sits in an IndexIDMap2 so search answers with the caller's int64 ids.
    `recall` is the recall@100 measured by `build` (None for an index filled by `add` only)."""

    def __init__(self, spec: IndexSpec, dim: int):
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        # faiss's OpenMP pool defaults to every core it sees; never more than the machine has.
        faiss.omp_set_num_threads(max(1, min(faiss.omp_get_max_threads(), os.cpu_count() or 1)))
        self.spec = spec
        self.dim = dim
        self.recall: float | None = None
        self._index = faiss.IndexIDMap2(_inner_index(spec, dim))
        self._apply_search_params()

    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        spec: IndexSpec | None = None,
        train_sample: int = 100_000,
        seed: int = 0,
        target_recall: float = 0.95,
        queries: np.ndarray | None = None,
        recall_k: int = RECALL_K,
    ) -> ANNIndex:
        """Index the items (IVF first trains its lists on a seeded sample of at most
        `train_sample` vectors), then measure recall@`recall_k` on `queries` and widen the search
        to `target_recall` where the kind allows (IVF-PQ's codes cap its recall however wide it searches).

        Pass a sample of real user vectors as `queries` when there is one: recall depends
        on where the queries fall, and the default probes (midpoints of random item
        pairs) only stand in for them."""
        ids, vectors = _check_items(ids, vectors)
        started = time.perf_counter()
        index = cls(spec or choose_spec(len(ids)), vectors.shape[1])
        rng = np.random.default_rng(seed)
        if index.spec.kind in IVF_KINDS:
            index._train(vectors, train_sample, rng)
        index.add(ids, vectors)
        if queries is None:
            queries = _probe_queries(vectors, rng)
        index._reach_recall(ids, vectors, _check_vectors(queries, index.dim, "queries"), target_recall, recall_k)
        log.info(
            "built %s index %s over %d items in %.1f s, recall@%d %.3f",
            index.spec.kind,
            index.spec.params,
            index.ntotal,
            time.perf_counter() - started,
            min(recall_k, index.ntotal),
            index.recall,
        )
        return index

    @property
    def ntotal(self) -> int:
        return self._index.ntotal

    @property
    def faiss_index(self) -> faiss.Index:
        """The faiss index itself (an IndexIDMap2 around the kind's index), to measure it (size, lists)."""
        return self._index

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add new items; IVF assigns them to its trained lists, HNSW links them in."""
        ids, vectors = _check_items(ids, vectors, self.dim)
        if not self._index.is_trained:
            raise ValueError("the IVF index is untrained: create it with ANNIndex.build")
        existing = np.isin(ids, faiss.vector_to_array(self._index.id_map))
        if existing.any():
            raise ValueError(f"ids already in the index: {ids[existing][:10].tolist()}")
        self._index.add_with_ids(vectors, ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (n_queries, min(k, ntotal)), best first.

        IVF can come back with fewer than k hits when the probed lists hold fewer items
        (faiss pads with id -1); such rows are answered again by exact search, so every
        row holds exactly min(k, ntotal) distinct ids."""
        queries = _check_vectors(queries, self.dim, "queries")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = min(int(k), self.ntotal)
        if k == 0:
            return np.empty((len(queries), 0), np.float32), np.empty((len(queries), 0), np.int64)
        scores, ids = self._faiss_search(queries, k)
        short = (ids < 0).any(axis=1)
        if short.any():
            scores[short], ids[short] = self._exact_search(queries[short], k)
        return scores, ids

    def save(self, path: Path) -> None:
        """The faiss index at `path`, the spec, dim and recall in `path`.json beside it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(path))
        meta = {"kind": self.spec.kind, "params": self.spec.params, "dim": self.dim, "recall": self.recall}
        _meta_path(path).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: Path, mmap: bool = False) -> ANNIndex:
        """`mmap`: an IVF index's inverted lists (its vectors) stay in the file, memory-mapped, so the worker
        processes of a server share one copy in the page cache (read-only: no `add`)."""
        path = Path(path)
        meta = json.loads(_meta_path(path).read_text())
        index = cls(IndexSpec(meta["kind"], meta["params"]), meta["dim"])
        flags = faiss.IO_FLAG_MMAP if mmap and index.spec.kind in IVF_KINDS else 0
        index._index = faiss.read_index(str(path), flags)
        if index._index.d != index.dim:
            raise ValueError(f"{path} holds {index._index.d}-d vectors, its metadata says {index.dim}")
        index.recall = meta["recall"]
        index._apply_search_params()
        return index

    def _train(self, vectors: np.ndarray, train_sample: int, rng: np.random.Generator) -> None:
        nlist = self.spec.params["nlist"]
        # At least MIN_POINTS_PER_LIST points per list: past ~640k items a fixed sample of 100k
        # would leave k-means undertrained (faiss warns), so the sample grows with nlist.
        size = min(len(vectors), max(train_sample, MIN_POINTS_PER_LIST * nlist))
        sample = vectors[rng.choice(len(vectors), size=size, replace=False)]
        if len(sample) < nlist:
            raise ValueError(f"IVF with nlist={nlist} needs at least {nlist} training vectors, got {len(sample)}")
        if len(sample) < MIN_POINTS_PER_LIST * nlist:
            log.warning("training %d IVF lists on %d vectors: the lists are undertrained", nlist, len(sample))
        self._index.train(sample)

    def _reach_recall(
        self, ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, target: float, recall_k: int
    ) -> None:
        k = min(recall_k, len(ids))
        truth = _exact_ids(ids, vectors, queries, k)

        def measured() -> float:
            # The index's own answers (a miss where the probed lists ran short), not search()'s exhaustive
            # fallback for such rows, which would make a too narrow search look good.
            found = self._faiss_search(queries, k)[1] if self.spec.kind in IVF_KINDS else self.search(queries, k)[1]
            return overlap_recall(found, truth)

        self.recall = measured()
        while self.recall < target:
            narrower = (self.spec, self.recall)
            if not self._widen_search():
                break
            self.recall = measured()
            if self.spec.kind == "ivfpq" and self.recall - narrower[1] < PQ_RECALL_GAIN:
                # The codes, not the probes, now cap the recall: a wider search would only cost time.
                self.spec, self.recall = narrower
                self._apply_search_params()
                break
        if self.recall < target:
            log.warning(
                "%s index reaches recall@%d %.3f < %.2f at its widest useful search",
                self.spec.kind,
                k,
                self.recall,
                target,
            )

    def _widen_search(self) -> bool:
        """Double the search-time breadth (no rebuild); False when it cannot grow."""
        params = self.spec.params
        if self.spec.kind in IVF_KINDS and params["nprobe"] < params["nlist"]:
            params = {**params, "nprobe": min(2 * params["nprobe"], params["nlist"])}
        elif self.spec.kind == "hnsw" and params["efSearch"] < HNSW_MAX_EF_SEARCH:
            params = {**params, "efSearch": min(2 * params["efSearch"], HNSW_MAX_EF_SEARCH)}
        else:
            return False
        log.info("recall %.3f below target: widening %s search to %s", self.recall, self.spec.kind, params)
        self.spec = replace(self.spec, params=params)
        self._apply_search_params()
        return True

    def _apply_search_params(self) -> None:
        inner = faiss.downcast_index(self._index.index)
        if self.spec.kind in IVF_KINDS:
            inner.nprobe = self.spec.params["nprobe"]
        elif self.spec.kind == "hnsw":
            inner.hnsw.efSearch = self.spec.params["efSearch"]

    def _faiss_search(self, queries: np.ndarray, k: int, **search) -> tuple[np.ndarray, np.ndarray]:
        """faiss's own answer (-1 where the probed lists ran short), scored by inner product."""
        scores, ids = self._index.search(queries, k, **search)
        if self.spec.kind == "ivfpq":  # squared L2 between unit vectors -> their inner product
            scores = np.where(ids >= 0, 1.0 - scores / 2.0, -np.inf).astype(np.float32)
        return scores, ids

    def _exact_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.spec.kind in IVF_KINDS:
            # Probing every list is an exhaustive scan (of IVF-PQ's codes: exact over what it stores).
            return self._faiss_search(queries, k, params=faiss.SearchParametersIVF(nprobe=self.spec.params["nlist"]))
        if self.spec.kind == "hnsw":
            scores, positions = faiss.downcast_index(self._index.index).storage.search(queries, k)
            return scores, faiss.vector_to_array(self._index.id_map)[positions]
        return self._index.search(queries, k)


def recall_against_exact(index: ANNIndex, vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> float:
    """Mean over queries of |ANN top-k ∩ exact top-k| / k, exact being IndexFlatIP over
    (ids, vectors) and k capped at the number of items."""
    ids, vectors = _check_items(ids, vectors, index.dim)
    queries = _check_vectors(queries, index.dim, "queries")
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    k = min(k, len(ids))
    return overlap_recall(index.search(queries, k)[1], _exact_ids(ids, vectors, queries, k))


def _inner_index(spec: IndexSpec, dim: int) -> faiss.Index:
    if spec.kind == "ivf":
        quantizer = faiss.IndexFlatIP(dim)
        return faiss.IndexIVFFlat(quantizer, dim, spec.params["nlist"], faiss.METRIC_INNER_PRODUCT)
    if spec.kind == "ivfpq":
        if dim % spec.params["m"]:
            raise ValueError(f"IVF-PQ splits vectors into m={spec.params['m']} parts: dim {dim} is no multiple of it")
        # L2 on unit vectors ranks exactly as inner product does (|q - x|^2 = 2 - 2 q.x), and PQ codes the
        # residuals of L2 lists better: recall@10 0.94 against 0.91 on clustered 64-d vectors at 32 bytes.
        quantizer = faiss.IndexFlatL2(dim)
        return faiss.IndexIVFPQ(quantizer, dim, spec.params["nlist"], spec.params["m"], spec.params["nbits"])
    if spec.kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, spec.params["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = spec.params.get("efConstruction", 128)
        return index
    return faiss.IndexFlatIP(dim)


def _exact_ids(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    return ids[exact.search(queries, k)[1]]


def overlap_recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over rows of |found ∩ truth| / truth's width: an index's answers against exact search's."""
    if found.shape[0] != truth.shape[0]:
        raise ValueError(f"{found.shape[0]} result rows for {truth.shape[0]} truth rows")
    hits = [np.intersect1d(f, t).size for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits) / truth.shape[1])


def _probe_queries(vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Stand-ins for user vectors: the normalised midpoint of two random items, which is
    # no item itself (an item as its own query trivially finds its own IVF list or graph
    # node) and often sits between two clusters, the hard case for both IVF and HNSW.
    pairs = rng.integers(0, len(vectors), size=(min(PROBE_QUERIES, len(vectors)), 2))
    queries = vectors[pairs[:, 0]] + vectors[pairs[:, 1]]
    return queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)


def _check_vectors(vectors: np.ndarray, dim: int | None, name: str) -> np.ndarray:
    try:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be convertible to float32: {error}") from error
    if vectors.ndim != 2 or (dim is not None and vectors.shape[1] != dim):
        raise ValueError(f"{name} must be 2-D with {dim or 'some'} columns, got shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return vectors


def _check_items(ids: np.ndarray, vectors: np.ndarray, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    vectors = _check_vectors(vectors, dim, "vectors")
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be a 1-D integer array, got dtype {ids.dtype} and shape {ids.shape}")
    if len(ids) != len(vectors):
        raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
    if len(ids) == 0:
        raise ValueError("no items given")
    if ids.min() < 0:
        raise ValueError("ids must be non-negative: faiss marks a missing result with -1")
    if np.unique(ids).size != ids.size:
        raise ValueError("ids must be unique")
    norms = np.linalg.norm(vectors, axis=1)
    if np.abs(norms - 1.0).max() > 1e-3:
        # Inner product is cosine only on unit vectors, which is what the two towers emit.
        log.warning(
            "vectors are not L2-normalised (norms %.3f..%.3f): scores are not cosines", norms.min(), norms.max()
        )
    return ids.astype(np.int64), vectors


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")
