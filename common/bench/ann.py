"""Build time, memory, latency, throughput and recall of the ANN indexes of
common.retrieval.ann on a synthetic two-tower catalog, exact search as the baseline.

    python -m common.bench.ann --items 1000000 [--dim 64] [--queries 1000] [--k 100] [--kinds flat auto]

The catalog is n_clusters unit centres plus Gaussian noise, L2-normalised (trained item
towers put similar items near each other, so an IVF index sees clusters, not a uniform
sphere); user vectors are drawn the same way from another seed. "auto" is the index
`choose_spec(n_items)` picks (IVF-Flat at 1M); "flat", "ivf", "hnsw" force a kind.
Every kind is built by `ANNIndex.build`, which tunes its search width to recall@100 >= 0.95
on a separate seeded sample of user vectors, so build time includes that recall check.
"""

from __future__ import annotations

import argparse
import logging
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from common.retrieval.ann import KINDS, ANNIndex, IndexSpec, choose_spec, overlap_recall

log = logging.getLogger(__name__)

# Norm of the noise relative to the unit centre: an item's cosine to its centre is ~0.75,
# neighbouring clusters overlap, and a query's top 100 often spans several clusters.
NOISE = 0.9
CHUNK = 100_000  # vectors generated at a time: bounds the temporaries to a few tens of MB
WARMUP_QUERIES = 10  # first searches page the index in and warm the caches


@dataclass
class KindResult:
    kind: str
    spec: IndexSpec
    build_s: float
    memory_bytes: int
    latency_ms: np.ndarray  # one entry per single-query search
    batch_qps: float
    recall: float = float("nan")


# --- pure helpers: data, recall, the report ----------------------------------------------


def clustered_embeddings(
    n: int, centres: np.ndarray, rng: np.random.Generator, noise: float = NOISE, chunk: int = CHUNK
) -> np.ndarray:
    """n float32 unit vectors, each a uniformly chosen centre plus isotropic noise of norm
    ~`noise`, generated `chunk` rows at a time."""
    dim = centres.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    scale = np.float32(noise / math.sqrt(dim))
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        rows = centres[rng.integers(0, len(centres), size=stop - start)]
        rows += scale * rng.standard_normal((stop - start, dim), dtype=np.float32)
        rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        out[start:stop] = rows
    return out


def unit_centres(n_clusters: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.standard_normal((n_clusters, dim), dtype=np.float32)
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def percentile_ms(latency_ms: np.ndarray, q: float) -> float:
    return float(np.percentile(latency_ms, q)) if len(latency_ms) else float("nan")


def _params(spec: IndexSpec) -> str:
    return spec.kind + "".join(f" {name}={value}" for name, value in spec.params.items())


def format_report(
    n_items: int,
    dim: int,
    n_queries: int,
    k: int,
    n_clusters: int,
    threads: int,
    results: Sequence[KindResult],
    noise: float = NOISE,
) -> str:
    setup = (
        f"bench_ann: {n_items} items x {dim} dims ({n_clusters} clusters, noise {noise}, L2-normalised), "
        f"{n_queries} queries, "
        f"k={k}, inner product; faiss {faiss.__version__}, {threads} threads for batch, 1 for single queries"
    )
    header = ("kind", "params", "build s", "memory MB", "p50 ms", "p99 ms", "batch q/s", f"recall@{k}")
    rows = [
        (
            r.kind,
            _params(r.spec),
            f"{r.build_s:.1f}",
            f"{r.memory_bytes / 2**20:.1f}",
            f"{percentile_ms(r.latency_ms, 50):.3f}",
            f"{percentile_ms(r.latency_ms, 99):.3f}",
            f"{r.batch_qps:.0f}",
            f"{r.recall:.4f}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    table = [
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    notes = [
        "build s: ANNIndex.build wall time (IVF k-means training, adding, the recall check and any search widening)",
        "memory MB: size of the serialized faiss index (vectors, the 8-byte id map, IVF centroids / HNSW links)",
        "p50/p99: one query per search call, as one user per request is served, on 1 OpenMP thread",
        f"batch q/s: all {n_queries} queries in one search call on {threads} threads",
        f"recall@{k}: overlap with exact (flat) top-{k} on the same queries",
    ]
    by_kind = {r.kind: r for r in results}
    if "flat" in by_kind and "auto" in by_kind:
        ratio = percentile_ms(by_kind["auto"].latency_ms, 99) / percentile_ms(by_kind["flat"].latency_ms, 99)
        notes.append(f"auto p99 / flat p99 = {ratio:.3f} (same run)")
    return "\n".join([setup, "", *table, "", *notes])


# --- the measurements ----------------------------------------------------------------------


def _spec_for(kind: str, n_items: int) -> IndexSpec:
    if kind == "auto":
        return choose_spec(n_items)
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}, expected 'auto' or one of {KINDS}")
    return choose_spec(n_items, kind)


def _serialized_bytes(index: ANNIndex) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-ann-") as tmp:
        path = Path(tmp) / "index.faiss"
        index.save(path)
        return path.stat().st_size


def _single_query_latencies(index: ANNIndex, queries: np.ndarray, k: int) -> np.ndarray:
    # One OpenMP thread: a server answers one user per request with one worker process per
    # core, so a query never gets the other cores; faiss would also spend more on thread
    # hand-off than it saves on a single query.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        for q in queries[:WARMUP_QUERIES]:
            index.search(q[None, :], k)
        latencies = np.empty(len(queries))
        for i, q in enumerate(queries):
            started = time.perf_counter()
            index.search(q[None, :], k)
            latencies[i] = (time.perf_counter() - started) * 1000
    finally:
        faiss.omp_set_num_threads(threads)
    return latencies


def _measure(
    kind: str, ids: np.ndarray, items: np.ndarray, queries: np.ndarray, tune_queries: np.ndarray, k: int
) -> tuple[KindResult, np.ndarray]:
    spec = _spec_for(kind, len(ids))
    log.info("%s: building %s", kind, _params(spec))
    started = time.perf_counter()
    index = ANNIndex.build(ids, items, spec=spec, queries=tune_queries)
    build_s = time.perf_counter() - started
    memory = _serialized_bytes(index)
    log.info("%s: built in %.1f s (%s), timing %d single queries", kind, build_s, _params(index.spec), len(queries))
    latencies = _single_query_latencies(index, queries, k)
    started = time.perf_counter()
    _, found = index.search(queries, k)
    batch_qps = len(queries) / (time.perf_counter() - started)
    return KindResult(kind, index.spec, build_s, memory, latencies, batch_qps), found


def run_ann_benchmark(
    n_items: int = 1_000_000,
    dim: int = 64,
    n_queries: int = 1000,
    k: int = 100,
    kinds: Sequence[str] = ("flat", "auto"),
    n_clusters: int = 2000,
    seed: int = 0,
    noise: float = NOISE,
) -> str:
    """Benchmark each index kind on the same synthetic catalog and queries; return the report.
    A larger `noise` blurs the clusters: the harder case for IVF."""
    if min(n_items, dim, n_queries, k, n_clusters) < 1:
        raise ValueError("n_items, dim, n_queries, k and n_clusters must be positive")
    centre_rng, item_rng, query_rng, tune_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    centres = unit_centres(n_clusters, dim, centre_rng)
    log.info("generating %d x %d items in %d clusters", n_items, dim, n_clusters)
    items = clustered_embeddings(n_items, centres, item_rng, noise)
    ids = np.arange(n_items, dtype=np.int64)
    queries = clustered_embeddings(n_queries, centres, query_rng, noise)
    # The builds tune their search width on other user vectors than the ones measured.
    tune_queries = clustered_embeddings(n_queries, centres, tune_rng, noise)

    results, found = [], {}
    for kind in kinds:
        result, found[kind] = _measure(kind, ids, items, queries, tune_queries, k)
        results.append(result)
    if "flat" in found:
        truth = found["flat"]
    else:
        log.info("exact search for recall")
        exact = faiss.IndexFlatIP(dim)
        exact.add(items)
        truth = exact.search(queries, min(k, n_items))[1]
    for result in results:
        result.recall = overlap_recall(found[result.kind], truth)
    return format_report(n_items, dim, n_queries, k, n_clusters, faiss.omp_get_max_threads(), results, noise)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--kinds", nargs="+", default=["flat", "auto"], help="flat, auto, ivf, hnsw")
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=NOISE, help="noise norm around each cluster centre")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(
        run_ann_benchmark(args.items, args.dim, args.queries, args.k, args.kinds, args.clusters, args.seed, args.noise)
    )


if __name__ == "__main__":
    main()
