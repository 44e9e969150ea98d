"""The served path after the embedding (chapter section 7): nearest neighbours in the IVF-PQ index, then the
re-ranking service's business rules, shared by serving and the offline evaluation of the served path.

  nearest neighbours   the `candidates` images whose embeddings are closest to the query's (faiss)
  re-ranking           drop private images, the query image itself (a search by id) and near-copies of the
                       query (an inner product at or above the duplicate threshold: the same photo again)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.retrieval.ann import ANNIndex
from common.serving.timing import StageTimer


@dataclass(frozen=True)
class Found:
    ids: np.ndarray  # image ids, best first
    scores: np.ndarray  # inner products with the query's embedding
    counts: dict[str, dict[str, int]]  # per stage: images in and out


@dataclass
class SimilarImages:
    index: ANNIndex
    private: np.ndarray  # (n_images,) bool by image id
    duplicate_threshold: float
    candidates: int

    def search(self, vector: np.ndarray, k: int, query_id: int | None = None, timer: StageTimer | None = None):
        """The k most similar images that may be shown for one query vector (1, d)."""
        timer = timer or StageTimer()
        with timer.stage("nearest_neighbours"):
            scores, ids = self.index.search(vector, max(k, self.candidates))
        with timer.stage("re_ranking"):
            scores, ids = scores[0], ids[0]
            keep = ~self.private[ids] & (scores < self.duplicate_threshold)
            if query_id is not None:
                keep &= ids != query_id
            kept = np.flatnonzero(keep)[:k]
        counts = {
            "nearest_neighbours": {"out": len(ids)},
            "re_ranking": {
                "in": len(ids),
                "private": int(self.private[ids].sum()),
                "near_copies": int((scores >= self.duplicate_threshold).sum()),
                "out": len(kept),
            },
        }
        return Found(ids[kept], scores[kept], counts)

    def search_many(self, vectors: np.ndarray, k: int) -> np.ndarray:
        """(n, k) image ids for many query vectors (-1 pads a short list): the offline evaluation's view."""
        ranked = np.full((len(vectors), k), -1, dtype=np.int64)
        for i, vector in enumerate(vectors):
            ids = self.search(vector[None, :], k).ids
            ranked[i, : len(ids)] = ids
        return ranked
