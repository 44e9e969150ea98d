"""The harmful-content classifiers compared (config `models`), all with one probability per category:

logistic       the simple baseline: one logistic regression per category over hashed words and word pairs
               and the author features (no image)
early          one multi-task network over text, image and author features fused first (common/models/
               multimodal.py); `loss: focal` for the focal loss; `text: minilm` reads the pretrained sentence
               encoder's vectors instead of training its own text encoder, `text: minilm_tuned` the encoder
               fine-tuned on the training posts' labels first
late           a text network and an image network, probabilities combined (noisy-OR)
per_category   one independent early-fusion network per category
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression

from common.models.multimodal import (
    LateFusion,
    MultimodalClassifier,
    PerTaskClassifiers,
    PostInputs,
    standardised_exposure,
)


class HashedWordsLogistic:
    """One logistic regression per category over [hashed words and word pairs; the standardised numerics;
    the standardised exposure, if fit is given one (training only: predictions read the mean exposure, as the
    networks do, common/models/multimodal.py)]."""

    def __init__(self, tasks: tuple[str, ...], n_features: int = 2**18, C: float = 1.0, random_state: int = 0):
        self.tasks = tasks
        self.n_features = n_features
        self.C = C
        self.random_state = random_state

    def _design(self, inputs: PostInputs, exposure: np.ndarray | None = None):
        words = self.vectorizer_.transform(list(inputs.texts))
        numeric = (inputs.numeric - self.mean_) / self.std_
        if exposure is None:
            exposure = np.zeros((len(inputs), getattr(self, "n_exposure_", 0)))
        return sparse.hstack([words, sparse.csr_matrix(numeric), sparse.csr_matrix(exposure)]).tocsr()

    def fit(self, inputs: PostInputs, labels: np.ndarray, eval_set=None, exposure=None) -> HashedWordsLogistic:
        self.vectorizer_ = HashingVectorizer(n_features=self.n_features, ngram_range=(1, 2), alternate_sign=False)
        self.mean_, self.std_ = inputs.numeric.mean(axis=0), inputs.numeric.std(axis=0) + 1e-6
        exposure = standardised_exposure(exposure, len(inputs))
        self.n_exposure_ = 0 if exposure is None else exposure.shape[1]
        design = self._design(inputs, exposure)
        self.models_ = []
        for j in range(len(self.tasks)):
            y = labels[:, j]
            model = LogisticRegression(C=self.C, max_iter=200, random_state=self.random_state)
            self.models_.append(model.fit(design, y) if 0 < y.sum() < len(y) else float(y.mean()))
        return self

    def predict_proba(self, inputs: PostInputs) -> np.ndarray:
        design = self._design(inputs)
        columns = [
            m.predict_proba(design)[:, 1] if hasattr(m, "predict_proba") else np.full(len(inputs), m)
            for m in self.models_
        ]
        return np.column_stack(columns)


def build_model(spec: dict, tasks: tuple[str, ...], network: dict, seed: int):
    """The estimator a config entry names; `network` holds the shared network settings."""
    kind = spec["kind"]
    settings = {**network, **{k: v for k, v in spec.items() if k not in ("kind", "text", "subset", "exposure")}}
    settings |= {"tasks": tasks, "random_state": seed}
    if kind == "logistic":
        return HashedWordsLogistic(tasks, random_state=seed)
    if kind == "early":
        return MultimodalClassifier(**settings)
    if kind == "late":
        return LateFusion(**settings)
    if kind == "per_category":
        return PerTaskClassifiers(**settings)
    raise ValueError(f"unknown model kind {kind!r}; expected logistic, early, late or per_category")
