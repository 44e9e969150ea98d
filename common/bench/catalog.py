"""The ANN part of `make bench` at a grown catalogue size (common.bench.padding): the served
index over the trained item embeddings plus synthetic ones, queried with real user-tower
embeddings, exact search on the same queries as the baseline.

Reports the index kind and parameters, build time, serialized size, single-query p50 / p99 on
one thread (as one request searches) and recall@100 against exact search.
"""

from __future__ import annotations

import os
import time

import numpy as np

from common.app.config import load_config
from common.app.registry import get_system
from common.bench.ann import _serialized_bytes, _single_query_latencies, percentile_ms
from common.bench.padding import CATALOG_SIZE_ENV
from common.funnel.ranking_features import UserStates
from common.retrieval.ann import ANNIndex, choose_spec, recall_against_exact
from common.serving.recommender import load_service

K = 100


def catalog_ann_report(system: str, size: int, n_queries: int = 1000, seed: int = 0) -> str:
    config = load_config(system, os.environ.get("MLSD_SCALE") or None)
    previous = os.environ.get(CATALOG_SIZE_ENV)
    os.environ[CATALOG_SIZE_ENV] = str(size)
    try:
        service = load_service(system, config, half_precision=False)
    finally:
        if previous is None:
            os.environ.pop(CATALOG_SIZE_ENV)
        else:
            os.environ[CATALOG_SIZE_ENV] = previous
    catalog, index = service.catalog, service.index
    rng = np.random.default_rng(seed)
    sample = get_system(system).sample_request
    user_ids = [sample(config, rng, 10)[1]["user_id"] for _ in range(n_queries)]
    users = [service.user_columns(user_id, {})[0] for user_id in dict.fromkeys(user_ids)]  # distinct, in order
    queries = np.concatenate([UserStates.build(user, service.tower, catalog).vectors for user in users])
    latencies = _single_query_latencies(index, queries, K)
    recall = recall_against_exact(index, catalog.vectors, catalog.item_ids, queries, K)
    started = time.perf_counter()
    exact = ANNIndex.build(catalog.item_ids, catalog.vectors, spec=choose_spec(len(catalog), "flat"))
    exact_build_s = time.perf_counter() - started
    exact_latencies = _single_query_latencies(exact, queries, K)
    params = " ".join(f"{k}={v}" for k, v in index.spec.params.items())
    ratio = percentile_ms(latencies, 99) / percentile_ms(exact_latencies, 99)
    return "\n".join(
        [
            f"ANN at {len(catalog)} items ({len(catalog) - service.n_real_items} of them synthetic;"
            f" {catalog.vectors.shape[1]} dims), {len(queries)} real user-tower queries, k={K}:",
            f"  served index: {index.spec.kind} {params}, built in {service.index_build_s:.1f} s"
            f" (incl. its recall check), {_serialized_bytes(index) / 2**20:.0f} MB serialized",
            f"  single-query p50 {percentile_ms(latencies, 50):.3f} ms, p99 {percentile_ms(latencies, 99):.3f} ms;"
            f" recall@{K} against exact search {recall:.4f}",
            f"  exact search (flat, same queries): p50 {percentile_ms(exact_latencies, 50):.3f} ms,"
            f" p99 {percentile_ms(exact_latencies, 99):.3f} ms (built in {exact_build_s:.1f} s);"
            f" served p99 / exact p99 = {ratio:.3f}",
        ]
    )
