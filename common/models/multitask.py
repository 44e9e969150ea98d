"""Multi-objective ranker for a recommendation funnel: one shared-bottom network, three heads.

    model = MultiTaskRanker(categorical=["video_id", "genre"], numeric=["watch_rate_7d"]).fit(X, targets)
    heads = model.predict_heads(X_request)  # {"engage": P(click), "satisfy": P(like | click), "value": watch fraction}
    score = model.predict_proba(X_request)[:, 1]  # P(click and like): the ranking score

Why several heads. Ranking by P(engaged) alone promotes clickbait: items people click (or
install) but do not enjoy. The funnel factorises the outcome we want,
    P(positive) = P(engaged) * P(positive | engaged),
and each factor is learned from the rows that carry its label: `engage` from every impression,
`satisfy` and `value` only from engaged rows (a non-click says nothing about whether the viewer
would have liked the video). Training P(positive | engaged) on engaged rows and multiplying by
P(engaged) at serving time is the ESMM idea (Ma et al. 2018) without its joint-probability loss.
`value` (watch fraction, log1p hours played, ...) is the regression head a product can blend in.

Shared bottom (Caruana 1997). All heads read one MLP over [field embeddings; numerics], so the
sparse heads (satisfy, value: engaged rows only) borrow representations learned from the dense
one (engage: every row). Inputs are encoded exactly as in common.models.deep: one embedding table
per categorical column, index 0 for unseen / missing values, numerics NaN-filled and standardized.

Loss = BCE(engage, all rows) + BCE(satisfy, engaged rows) + value_weight * MSE(value, engaged rows).
The value target is standardized with its mean and std over engaged rows, so the MSE is in units
of the target's variance and `value_weight` means the same for a watch fraction in [0, 1] as for
log1p(hours); predictions are mapped back to the original scale.

Starts calibrated: the head weights start at zero and the biases at logit(P(engaged)),
logit(P(positive | engaged)) and the mean value, so the first predictions are the base rates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from torch import nn

from common.models.deep import (
    FeatureEncoder,
    embedding_tables,
    mlp_layers,
    predict_in_batches,
)
from common.models.training import train_keeping_best_epoch

HEADS = ("engage", "satisfy", "value")  # column order of the network's (batch, 3) output
TARGETS = ("engaged", "positive", "value")  # required columns of the targets DataFrame


class SharedBottom(nn.Module):
    """(indices (batch, n_categorical), numeric (batch, n_numeric)) -> (batch, 3) [engage logit, satisfy logit, value].

    x0 = [embedding of each categorical field; numerics] -> shared ReLU MLP -> one linear layer
    per head, stored as a single Linear(width, 3) so a serving request is one matmul. Top-level
    class (not a closure) so the fitted estimator pickles.
    """

    def __init__(
        self,
        cardinalities: Sequence[int],
        n_numeric: int,
        embedding_dim: int,
        hidden_units: Sequence[int],
        head_biases: Sequence[float],
    ):
        super().__init__()
        self.embeddings = embedding_tables(cardinalities, embedding_dim)
        self.bottom, width = mlp_layers(len(cardinalities) * embedding_dim + n_numeric, hidden_units)
        self.heads = nn.Linear(width, len(HEADS))
        # Zero weights: the first outputs are exactly the biases (the base rates / mean value).
        nn.init.zeros_(self.heads.weight)
        with torch.no_grad():
            self.heads.bias.copy_(torch.tensor(head_biases, dtype=torch.float32))

    def forward(self, indices: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        embedded = [table(indices[:, j]) for j, table in enumerate(self.embeddings)]  # each (batch, emb_dim)
        x0 = torch.cat(embedded + [numeric], dim=1)  # (batch, n_categorical * emb_dim + n_numeric)
        return self.heads(self.bottom(x0))  # (batch, 3)


class MultiTaskRanker(BaseEstimator):
    """Shared-bottom engage / satisfy / value ranker over a DataFrame, scikit-learn style.

    fit(X, targets) takes a targets DataFrame with columns "engaged" (0/1), "positive" (0/1,
    only where engaged) and "value" (float, read only where engaged; may be NaN elsewhere).
    With eval_set=(X_val, targets_val) the weights of the epoch with the lowest eval loss (the
    training loss on the eval set) are kept: `best_epoch_` (1-based), `eval_loss_` per epoch.
    predict_proba(X)[:, 1] is P(positive) = P(engaged) * P(positive | engaged), the ranking
    score; predict_heads(X) gives the three heads separately. Pickles with the standard pickle.
    """

    def __init__(
        self,
        categorical: Sequence[str] = (),
        numeric: Sequence[str] = (),
        embedding_dim: int = 8,
        hidden_units: Sequence[int] = (64, 32),
        value_weight: float = 0.5,
        epochs: int = 4,
        batch_size: int = 2048,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-6,
        random_state: int = 0,
        n_threads: int = 1,
        verbose: bool = False,
    ):
        self.categorical = categorical
        self.numeric = numeric
        self.embedding_dim = embedding_dim
        self.hidden_units = hidden_units
        self.value_weight = value_weight
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose

    def fit(
        self,
        X: pd.DataFrame,
        targets: pd.DataFrame,
        eval_set: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    ) -> MultiTaskRanker:
        if not self.categorical and not self.numeric:
            raise ValueError("no features: give at least one categorical or numeric column")
        engaged, positive, value = _check_targets(targets, len(X))
        if not engaged.any():
            raise ValueError("targets has no engaged rows: the satisfy and value heads would have nothing to learn")
        torch.manual_seed(self.random_state)
        torch.set_num_threads(self.n_threads)
        rng = np.random.default_rng(self.random_state)

        self.classes_ = np.array([0, 1])
        mask = engaged == 1
        self.value_mean_ = float(value[mask].mean())
        self.value_std_ = float(value[mask].std()) or 1.0  # a constant value would divide by 0
        self.encoder_ = FeatureEncoder(self.categorical, self.numeric).fit(X)
        self.module_ = SharedBottom(
            self.encoder_.cardinalities,
            len(self.encoder_.numeric),
            self.embedding_dim,
            self.hidden_units,
            head_biases=(_logit(engaged.mean()), _logit(positive[mask].mean()), 0.0),  # 0.0 = the standardized mean
        )
        train = self._tensors(X, engaged, positive, value)
        if eval_set is not None:
            eval_tensors = self._tensors(eval_set[0], *_check_targets(eval_set[1], len(eval_set[0])))

        def batch_loss(indices, numeric, *labels):
            return self._loss(self.module_(indices, numeric), *labels)

        def eval_loss() -> float:
            eval_indices, eval_numeric, *eval_labels = eval_tensors
            return self._loss(self._outputs(eval_indices, eval_numeric), *eval_labels).item()

        log = train_keeping_best_epoch(
            self.module_,
            train,
            batch_loss,
            eval_loss if eval_set is not None else None,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            rng=rng,
            desc="multitask",
            verbose=self.verbose,
        )
        self.eval_loss_, self.best_epoch_ = log.eval_loss, log.best_epoch
        return self

    def predict_heads(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """{"engage": P(engaged), "satisfy": P(positive | engaged), "value": E[value | engaged]}, each (n,)."""
        if not hasattr(self, "module_"):
            raise RuntimeError("MultiTaskRanker is not fitted; call fit first")
        indices, numeric = self.encoder_.transform(X)
        outputs = self._outputs(torch.from_numpy(indices), torch.from_numpy(numeric))  # (n, 3)
        probabilities = torch.sigmoid(outputs[:, :2]).numpy().astype(np.float64)  # (n, 2); stable for any logit
        value = outputs[:, 2].numpy().astype(np.float64)
        return {
            "engage": probabilities[:, 0],
            "satisfy": probabilities[:, 1],
            "value": self.value_mean_ + self.value_std_ * value,
        }

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n, 2): column 1 = P(positive) = P(engaged) * P(positive | engaged), column 0 = 1 - that."""
        heads = self.predict_heads(X)
        p = heads["engage"] * heads["satisfy"]
        return np.column_stack([1.0 - p, p])

    def _tensors(
        self, X: pd.DataFrame, engaged: np.ndarray, positive: np.ndarray, value: np.ndarray
    ) -> tuple[torch.Tensor, ...]:
        """(indices, numeric, engaged, positive, standardized value) as tensors; value is 0 where not engaged."""
        indices, numeric = self.encoder_.transform(X)
        value = np.where(engaged == 1, (value - self.value_mean_) / self.value_std_, 0.0).astype(np.float32)
        return tuple(torch.from_numpy(a) for a in (indices, numeric, engaged, positive, value))

    def _loss(
        self, outputs: torch.Tensor, engaged: torch.Tensor, positive: torch.Tensor, value: torch.Tensor
    ) -> torch.Tensor:
        """engage BCE over all rows + satisfy BCE and value_weight * MSE over the engaged rows."""
        engage_loss = F.binary_cross_entropy_with_logits(outputs[:, 0], engaged)
        # Masked means: sum over engaged rows / their count (a batch without engaged rows adds 0, not NaN).
        n_engaged = engaged.sum().clamp(min=1.0)
        satisfy_bce = F.binary_cross_entropy_with_logits(outputs[:, 1], positive, reduction="none")
        squared_error = (outputs[:, 2] - value).pow(2)
        satisfy_loss = (satisfy_bce * engaged).sum() / n_engaged
        value_loss = (squared_error * engaged).sum() / n_engaged
        return engage_loss + satisfy_loss + self.value_weight * value_loss

    def _outputs(self, indices: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        """(n, 3) raw head outputs in eval mode."""
        return predict_in_batches(self.module_, indices, numeric, empty=torch.zeros(0, len(HEADS)))


def _logit(rate: float) -> float:
    rate = min(max(float(rate), 1e-6), 1 - 1e-6)  # all-0 or all-1 labels would give an infinite logit
    return math.log(rate / (1 - rate))


def _check_targets(targets: pd.DataFrame, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(engaged, positive, value) as (n,) float32 arrays, checked against the funnel's rules."""
    missing = [col for col in TARGETS if col not in targets.columns]
    if missing:
        raise ValueError(f"targets is missing columns {missing}; it needs {list(TARGETS)}")
    if len(targets) != n_rows:
        raise ValueError(f"targets has {len(targets)} rows for {n_rows} rows of X")
    engaged, positive = (targets[col].to_numpy(dtype=np.float32, na_value=np.nan) for col in TARGETS[:2])
    value = targets["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    for name, labels in (("engaged", engaged), ("positive", positive)):
        if not np.isin(labels, (0.0, 1.0)).all():
            raise ValueError(f"targets[{name!r}] must contain only 0 and 1")
    if (positive > engaged).any():
        raise ValueError("targets has positive rows that are not engaged: positive implies engaged")
    if not np.isfinite(value[engaged == 1]).all():
        raise ValueError("targets['value'] must be finite on engaged rows")
    return engaged, positive, value
