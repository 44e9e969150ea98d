"""A link predictor's node embeddings of one graph snapshot, frozen for scoring pairs:

    P(edge u-v) = sigmoid(<z_u, z_v> + bias)

Numpy only, so a server scoring candidates with precomputed embeddings loads no torch (about 200 MB a
process). common.models.gnn.GraphSAGELinkPredictor.node_embeddings(graph) makes one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

SCORE_BATCH = 1 << 16  # pairs per gather: bounds the (batch, dim) temporaries


@dataclass(frozen=True)
class NodeEmbeddings:
    vectors: np.ndarray  # (n, dim) float32, one row per node
    bias: float

    def score(self, u, v) -> np.ndarray:
        """P(edge) of each pair (u[i], v[i]), in [0, 1]."""
        u, v = (np.asarray(a, dtype=np.int64).ravel() for a in (u, v))
        if u.shape != v.shape:
            raise ValueError(f"u and v must have the same length, got {len(u)} and {len(v)}")
        logits = np.zeros(len(u))
        for start in range(0, len(u), SCORE_BATCH):
            batch = slice(start, start + SCORE_BATCH)
            logits[batch] = np.einsum("ij,ij->i", self.vectors[u[batch]], self.vectors[v[batch]]) + self.bias
        return expit(logits)  # stable for any logit
