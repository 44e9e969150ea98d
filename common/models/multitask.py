"""Multi-task rankers: one shared-bottom network, one head per task.

    heads = [Head("click", "click"), Head("like", "like"), Head("dwell", "dwell_s", "regression", transform="log1p")]
    model = MultiHeadNetwork(categorical, numeric, heads=heads).fit(X, targets, eval_set=(X_val, targets_val))
    model.predict_heads(X)     # {"click": P(click), "like": P(like), "dwell": E[dwell_s]}, each (n,)

    model = MultiTaskRanker(categorical, numeric)   # the recommenders' three heads, below
    model.predict_proba(X)[:, 1]                    # P(engaged) * P(positive | engaged)

Shared bottom (Caruana 1997). Every head reads one MLP over [field embeddings; numerics], so the
rare tasks (shares, comments; satisfaction, known only where the user engaged) borrow the
representations the frequent ones learn: the chapters' reason to prefer one multi-task network to N
independent models. Inputs are encoded as in common.models.deep: one embedding table per
categorical column, index 0 for unseen / missing values, numerics NaN-filled and standardized.

A head learns from the rows that carry its label: every row, or with `given` only the rows where
another target is 1 (a non-click says nothing about whether the viewer would have liked the video).
Loss = sum over heads of weight x the mean over its rows of BCE (binary) or of the squared error of
the standardized target (regression; `transform="log1p"` first for a heavy-tailed target such as
dwell seconds; predictions are mapped back to the target's scale).

Why the recommenders' ranker has three heads. Ranking by P(engaged) alone promotes clickbait. The
funnel factorises the outcome we want, P(positive) = P(engaged) * P(positive | engaged): `engage`
learns from every impression, `satisfy` and `value` (watch fraction, log1p hours) only from engaged
rows; multiplying at serving time is the ESMM idea (Ma et al. 2018) without its joint loss.

Starts calibrated: head weights start at zero and biases at each binary head's base rate (logit) or
the standardized mean (0), so the first predictions are the base rates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.special import expit
from sklearn.base import BaseEstimator
from torch import nn

from common.models.deep import FeatureEncoder, embedding_tables, mlp_layers, predict_in_batches
from common.models.heads import Head, head_labels
from common.models.training import train_keeping_best_epoch


class SharedBottom(nn.Module):
    """(indices (batch, n_categorical), numeric (batch, n_numeric)) -> (batch, n_heads) raw outputs.

    x0 = [embedding of each categorical field; numerics] -> shared ReLU MLP -> one linear layer per
    head, stored as a single Linear(width, n_heads) so a serving request is one matmul. Top-level class
    (not a closure) so the fitted estimator pickles.
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
        self.heads = nn.Linear(width, len(head_biases))
        # Zero weights: the first outputs are exactly the biases (the base rates / mean values).
        nn.init.zeros_(self.heads.weight)
        with torch.no_grad():
            self.heads.bias.copy_(torch.tensor(head_biases, dtype=torch.float32))

    def forward(self, indices: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        embedded = [table(indices[:, j]) for j, table in enumerate(self.embeddings)]  # each (batch, emb_dim)
        x0 = torch.cat(embedded + [numeric], dim=1)  # (batch, n_categorical * emb_dim + n_numeric)
        return self.heads(self.bottom(x0))  # (batch, n_heads)


class MultiHeadNetwork(BaseEstimator):
    """Shared-bottom network over a DataFrame with the heads given, scikit-learn style.

    fit(X, targets): `targets` has every head's target column (a head's target may be NaN outside its
    rows). With eval_set=(X_val, targets_val) the weights of the epoch with the lowest eval loss are
    kept: `best_epoch_` (1-based), `eval_loss_` per epoch. predict_proba(X)[:, 1] is the product of the
    `probability` heads (default: the first head). Pickles with the standard pickle.
    """

    def __init__(
        self,
        categorical: Sequence[str] = (),
        numeric: Sequence[str] = (),
        heads: Sequence[Head] = (),
        probability: Sequence[str] = (),
        embedding_dim: int = 8,
        hidden_units: Sequence[int] = (64, 32),
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
        self.heads = heads
        self.probability = probability
        self.embedding_dim = embedding_dim
        self.hidden_units = hidden_units
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose

    def head_specs(self) -> list[Head]:
        return [h if isinstance(h, Head) else Head(**h) for h in self.heads]

    def fit(
        self, X: pd.DataFrame, targets: pd.DataFrame, eval_set: tuple[pd.DataFrame, pd.DataFrame] | None = None
    ) -> MultiHeadNetwork:
        if not self.categorical and not self.numeric:
            raise ValueError("no features: give at least one categorical or numeric column")
        heads = self.head_specs()
        if not heads:
            raise ValueError("no heads: give at least one Head")
        labels, masks = head_labels(heads, targets, len(X))
        torch.manual_seed(self.random_state)
        torch.set_num_threads(self.n_threads)
        rng = np.random.default_rng(self.random_state)

        self.classes_ = np.array([0, 1])
        self.head_names_ = [h.name for h in heads]
        self.scales_ = {}  # regression head -> (mean, std) of its (transformed) target over its rows
        biases = []
        for j, head in enumerate(heads):
            values = labels[masks[:, j], j]
            if head.kind == "binary":
                biases.append(_logit(values.mean()))
            else:
                self.scales_[head.name] = (float(values.mean()), float(values.std()) or 1.0)
                biases.append(0.0)  # the standardized mean
        self.encoder_ = FeatureEncoder(self.categorical, self.numeric).fit(X)
        self.module_ = SharedBottom(
            self.encoder_.cardinalities, len(self.encoder_.numeric), self.embedding_dim, self.hidden_units, biases
        )
        return self._train(X, heads, labels, masks, eval_set, rng, self.epochs)

    def fine_tune(
        self,
        X: pd.DataFrame,
        targets: pd.DataFrame,
        eval_set: tuple[pd.DataFrame, pd.DataFrame] | None = None,
        epochs: int | None = None,
    ) -> MultiHeadNetwork:
        """Train a fitted network on from its current weights on new rows (continual training on fresh
        logs), `epochs` of them (default: the fit's), keeping the best eval epoch as `fit` does. The input
        encoding stays the fitted one: its vocabularies (a category first seen in the new rows is "unseen",
        index 0) and numeric standardization, and the regression heads' target scales, since the weights
        were learned in them. Fine-tune a copy (copy.deepcopy) to keep the original."""
        if not hasattr(self, "module_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit first")
        heads = self.head_specs()
        labels, masks = head_labels(heads, targets, len(X))
        torch.manual_seed(self.random_state)
        torch.set_num_threads(self.n_threads)
        rng = np.random.default_rng(self.random_state)
        return self._train(X, heads, labels, masks, eval_set, rng, epochs or self.epochs)

    def _train(self, X, heads, labels, masks, eval_set, rng: np.random.Generator, epochs: int) -> MultiHeadNetwork:
        """The training loop over module_ (built or fitted), the best eval epoch kept."""
        train = self._tensors(X, heads, labels, masks)
        if eval_set is not None:
            eval_tensors = self._tensors(eval_set[0], heads, *head_labels(heads, eval_set[1], len(eval_set[0])))

        def batch_loss(indices, numeric, labels, masks):
            return self._loss(self.module_(indices, numeric), labels, masks)

        def eval_loss() -> float:
            eval_indices, eval_numeric, eval_labels, eval_masks = eval_tensors
            return self._loss(self._outputs(eval_indices, eval_numeric), eval_labels, eval_masks).item()

        log = train_keeping_best_epoch(
            self.module_,
            train,
            batch_loss,
            eval_loss if eval_set is not None else None,
            epochs=epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            rng=rng,
            desc=type(self).__name__,
            verbose=self.verbose,
        )
        self.eval_loss_, self.best_epoch_ = log.eval_loss, log.best_epoch
        return self

    def predict_heads(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """{head name: P(target) of a binary head, E[target] of a regression head}, each (n,)."""
        if not hasattr(self, "module_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit first")
        indices, numeric = self.encoder_.transform(X)
        outputs = self._outputs(torch.from_numpy(indices), torch.from_numpy(numeric)).numpy().astype(np.float64)
        predicted = {}
        for j, head in enumerate(self.head_specs()):
            if head.kind == "binary":
                predicted[head.name] = expit(outputs[:, j])  # stable for any logit
            else:
                mean, std = self.scales_[head.name]
                value = mean + std * outputs[:, j]
                predicted[head.name] = np.expm1(value) if head.transform == "log1p" else value
        return predicted

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n, 2): column 1 = the product of the `probability` heads (default: the first head)."""
        heads = self.predict_heads(X)
        p = np.prod([heads[name] for name in (self.probability or self.head_names_[:1])], axis=0)
        return np.column_stack([1.0 - p, p])

    def _tensors(self, X, heads: list[Head], labels: np.ndarray, masks: np.ndarray) -> tuple[torch.Tensor, ...]:
        """(indices, numeric, labels with regression targets standardized, masks) as tensors."""
        indices, numeric = self.encoder_.transform(X)
        labels = labels.copy()
        for j, head in enumerate(heads):
            if head.kind != "binary":
                mean, std = self.scales_[head.name]
                labels[:, j] = np.where(masks[:, j], (labels[:, j] - mean) / std, 0.0)
        return tuple(
            torch.from_numpy(np.ascontiguousarray(a))
            for a in (indices, numeric, labels.astype(np.float32), masks.astype(np.float32))
        )

    def _loss(self, outputs: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Sum over heads of weight x the masked mean of BCE or squared error (a batch without any of a
        head's rows adds 0, not NaN)."""
        total = outputs.new_zeros(())
        for j, head in enumerate(self.head_specs()):
            if head.kind == "binary":
                losses = F.binary_cross_entropy_with_logits(outputs[:, j], labels[:, j], reduction="none")
            else:
                losses = (outputs[:, j] - labels[:, j]).pow(2)
            total = total + head.weight * (losses * masks[:, j]).sum() / masks[:, j].sum().clamp(min=1.0)
        return total

    def _outputs(self, indices: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        """(n, n_heads) raw head outputs in eval mode."""
        return predict_in_batches(self.module_, indices, numeric, empty=torch.zeros(0, len(self.head_names_)))


class MultiTaskRanker(MultiHeadNetwork):
    """The recommenders' ranker: engage (every row), satisfy = P(positive | engaged) and value =
    E[value | engaged] (engaged rows only); predict_proba is P(engaged) x P(positive | engaged).

    fit(X, targets) takes columns "engaged" (0/1), "positive" (0/1, only where engaged) and "value"
    (float, read only where engaged; may be NaN elsewhere)."""

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
        super().__init__(
            categorical,
            numeric,
            (),
            ("engage", "satisfy"),
            embedding_dim,
            hidden_units,
            epochs,
            batch_size,
            learning_rate,
            weight_decay,
            random_state,
            n_threads,
            verbose,
        )
        self.value_weight = value_weight

    def head_specs(self) -> list[Head]:
        return [
            Head("engage", "engaged"),
            Head("satisfy", "positive", given="engaged"),
            Head("value", "value", "regression", given="engaged", weight=self.value_weight),
        ]


def _logit(rate: float) -> float:
    rate = min(max(float(rate), 1e-6), 1 - 1e-6)  # all-0 or all-1 labels would give an infinite logit
    return math.log(rate / (1 - rate))
