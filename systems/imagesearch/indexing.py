"""The indexing pipeline (chapter section 7): the catalogue's embeddings in faiss, compressed by product
quantisation (IVF-PQ), kept up to date as images are uploaded.

  * build: the images uploaded before the build day train the coarse lists and the PQ codebooks and fill them;
  * add: later uploads are encoded with the trained codebooks and appended to their lists, without a rebuild
    (ANNIndex.add);
  * measured: each image's bytes in the index against a flat index's (4 bytes a dimension), the recall@k of the
    index's answers against exact search over the same vectors, for all results and separately for the
    images that were added after the build (they must be found as well as the rest), and how recall and the
    lists' balance change as more of the catalogue arrives after the build: the rebuild rule.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import faiss
import numpy as np
import pandas as pd

from common.retrieval.ann import ANNIndex, IndexSpec, choose_spec

log = logging.getLogger(__name__)


@dataclass
class IndexReport:
    spec: dict
    bytes_per_image: float
    flat_bytes_per_image: float
    recall: float  # recall@k against exact search, every result
    recall_base: float  # of the exact top k's images that were in the built index
    recall_added: float  # of the exact top k's images added after the build
    n_base: int
    n_added: int
    build_seconds: float
    add_seconds: float
    imbalance: float  # faiss's imbalance factor of the lists: 1 is perfectly even
    rebuild: pd.DataFrame  # share added after the build -> recall@k, recall of the added, imbalance


def ivfpq_spec(config: dict, n_items: int) -> IndexSpec:
    index = config["index"]
    spec = choose_spec(n_items, "ivfpq", code_bytes=index["code_bytes"])
    # Each sub-quantiser's k-means needs at least 2**nbits points: a small catalogue gets fewer centroids.
    nbits = min(index["nbits"], int(np.log2(max(n_items, 2))) - 1)
    if nbits < 1:
        raise ValueError(f"IVF-PQ needs at least 4 images to index, got {n_items}")
    return IndexSpec("ivfpq", {**spec.params, "nbits": nbits})


def build_with_uploads(
    config: dict, vectors: np.ndarray, base: np.ndarray, queries: np.ndarray
) -> tuple[ANNIndex, float, float]:
    """The index over the `base` rows, then the other rows added; (index, build seconds, add seconds)."""
    ids = np.arange(len(vectors), dtype=np.int64)
    started = time.perf_counter()
    index = ANNIndex.build(
        ids[base],
        vectors[base],
        spec=ivfpq_spec(config, int(base.sum())),
        seed=config["seed"],
        target_recall=config["index"]["target_recall"],
        queries=queries,
        recall_k=config["evaluation"]["k"],
    )
    built = time.perf_counter()
    if (~base).any():
        index.add(ids[~base], vectors[~base])
    return index, built - started, time.perf_counter() - built


def measure(config: dict, vectors: np.ndarray, days: np.ndarray, build_day: int, queries: np.ndarray):
    """The served index (built on the days before `build_day`, the rest added) and its IndexReport."""
    k = config["evaluation"]["k"]
    base = days < build_day
    index, build_seconds, add_seconds = build_with_uploads(config, vectors, base, queries)
    recall, recall_base, recall_added = _recalls(index, vectors, base, queries, k)
    report = IndexReport(
        spec=index.spec.params,
        bytes_per_image=_bytes(index.faiss_index) / index.ntotal,
        flat_bytes_per_image=_flat_bytes(vectors) / len(vectors),
        recall=recall,
        recall_base=recall_base,
        recall_added=recall_added,
        n_base=int(base.sum()),
        n_added=int((~base).sum()),
        build_seconds=build_seconds,
        add_seconds=add_seconds,
        imbalance=_imbalance(index),
        rebuild=_rebuild_curve(config, vectors, days, queries, k),
    )
    log.info("IVF-PQ %s: %.1f bytes an image, recall@%d %.3f", report.spec, report.bytes_per_image, k, recall)
    return index, report


def _recalls(index: ANNIndex, vectors: np.ndarray, base: np.ndarray, queries: np.ndarray, k: int):
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(np.ascontiguousarray(vectors, dtype=np.float32))
    truth = exact.search(queries, k)[1]  # rows = ids
    found = index.search(queries, k)[1]
    hit = np.array([np.isin(t, f) for t, f in zip(truth, found, strict=True)])  # (n_queries, k)
    in_base = base[truth]
    recall_added = float(hit[~in_base].mean()) if (~in_base).any() else float("nan")
    return float(hit.mean()), float(hit[in_base].mean()), recall_added


def _rebuild_curve(config: dict, vectors: np.ndarray, days: np.ndarray, queries: np.ndarray, k: int) -> pd.DataFrame:
    """Indexes built on fewer and fewer of the days, the rest added: does an index trained on old uploads
    still serve the new ones?"""
    rows = []
    order = np.sort(np.unique(days))
    for share in config["index"]["rebuild_shares"]:
        cut = order[min(len(order) - 1, int(round((1 - share) * len(order))))] if share > 0 else order[-1] + 1
        base = days < cut
        if base.sum() < 2 or (share > 0 and base.all()):
            continue
        index, _, _ = build_with_uploads(config, vectors, base, queries)
        recall, _, recall_added = _recalls(index, vectors, base, queries, k)
        rows.append(
            {
                "added_after_build": float((~base).mean()),
                f"recall@{k}": recall,
                f"recall@{k} of the added": recall_added,
                "imbalance": _imbalance(index),
            }
        )
    return pd.DataFrame(rows)


def _imbalance(index: ANNIndex) -> float:
    return float(faiss.extract_index_ivf(index.faiss_index).invlists.imbalance_factor())


def _bytes(index: faiss.Index) -> int:
    return len(faiss.serialize_index(index))


def _flat_bytes(vectors: np.ndarray) -> int:
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    flat.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.arange(len(vectors), dtype=np.int64))
    return _bytes(flat)
