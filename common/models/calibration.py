"""Calibrated click probabilities. The ads re-ranker multiplies pCTR by the bid, so a model
that ranks well but over-predicts would mis-price every slot.

Platt scaling on the logit (a slope and an intercept fitted on held-out rows) rather than
isotonic regression: it cannot create ties, so it leaves the model's ranking (AUC) intact.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


class PlattCalibrated:
    """Wraps a fitted classifier; `fit` learns the calibration on held-out rows only."""

    def __init__(self, model):
        self.model = model

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> PlattCalibrated:
        raw = self.model.predict_proba(X)[:, 1]
        self.scaler_ = LogisticRegression(C=1e6).fit(_logit(raw)[:, None], y)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        raw = self.model.predict_proba(X)[:, 1]
        # The fitted logistic map, written out: sklearn's input checks cost more than the math.
        z = self.scaler_.coef_[0, 0] * _logit(raw) + self.scaler_.intercept_[0]
        p = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1.0 - p, p])
