"""The baseline image embedding: raw pixels reduced by PCA (the chapter's contrast to learned
representations). It keeps the directions of largest pixel variance (mostly background, lighting and where
the object sits), none of them learned to mean "the same thing".

    encoder = PixelPCA(dim=64).fit(images)   # (n, H, W, 3) uint8
    vectors = encoder.encode(images)         # (n, 64) float32 unit rows
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA

ENCODE_BATCH_SIZE = 8192


class PixelPCA(BaseEstimator):
    def __init__(self, dim: int = 64, fit_sample: int = 20_000, random_state: int = 0):
        self.dim = dim
        self.fit_sample = fit_sample
        self.random_state = random_state

    def fit(self, images: np.ndarray) -> PixelPCA:
        rng = np.random.default_rng(self.random_state)
        sample = images[np.sort(rng.permutation(len(images))[: self.fit_sample])]
        flat = _flat(sample)
        dim = min(self.dim, *flat.shape)
        self.pca_ = PCA(n_components=dim, svd_solver="randomized", random_state=self.random_state)
        self.pca_.fit(flat)
        return self

    def encode(self, images: np.ndarray) -> np.ndarray:
        if not hasattr(self, "pca_"):
            raise RuntimeError("PixelPCA is not fitted; call fit first")
        vectors = np.empty((len(images), self.pca_.n_components_), dtype=np.float32)
        for start in range(0, len(images), ENCODE_BATCH_SIZE):
            chunk = self.pca_.transform(_flat(images[start : start + ENCODE_BATCH_SIZE]))
            vectors[start : start + len(chunk)] = chunk
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _flat(images: np.ndarray) -> np.ndarray:
    """Scaled to 0..1 and flattened: (n, H * W * 3) float32. PCA centres each pixel itself."""
    return np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0
