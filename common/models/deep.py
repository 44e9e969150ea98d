"""Deep CTR models for tabular data: DCN v2 and DeepFM behind one scikit-learn style estimator.

    model = DeepCTRClassifier("dcn", categorical=["ad_id", "device"], numeric=["ad_ctr_7d"]).fit(X, y)
    p_click = model.predict_proba(X_request)[:, 1]

Inputs. Every categorical / ID column gets its own embedding table (an embedding per ID
feature); its vocabulary is every value seen in training, and index 0 is shared by values
never seen in training and missing values. Numeric columns have NaN filled with 0 and are
standardized with the training mean and std.

Architectures.
  DCNv2   (Wang et al. 2021, "DCN V2"), the *parallel* variant: a cross network and a deep MLP
          both read x0 = [field embeddings; numeric values] and their outputs are concatenated
          into the logit layer. Cross layers use full-rank weight matrices:
          x_{l+1} = x0 * (W_l x_l + b_l) + x_l.
  DeepFM  (Guo et al. 2017): logit = bias + first-order terms + FM second-order interactions
          + deep MLP, where the FM and the MLP share the same field embeddings. A numeric
          feature is a field whose embedding vector is scaled by its (standardized) value.

Both start calibrated: the output bias is the logit of the training base rate, the output
weights start at zero and the embeddings near zero, so the first predictions are the base
rate (important when positives are rare, CTR ~2%).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from torch import nn

from common.models.training import train_keeping_best_epoch

ARCHITECTURES = ("dcn", "deepfm")
PREDICT_BATCH_SIZE = 65536
EMBEDDING_INIT_STD = 0.01  # small, so FM interactions and x0 start near 0 and the bias sets the initial CTR


# ---------------------------------------------------------------------------
# Encoding: DataFrame -> (category indices, standardized numerics)
# ---------------------------------------------------------------------------


# A table as a DataFrame or as a mapping of column name -> equal-length arrays (the serving path).
Columns = pd.DataFrame | Mapping[str, np.ndarray]


def n_rows(X: Columns) -> int:
    if isinstance(X, pd.DataFrame):
        return len(X)
    return len(next(iter(X.values()))) if X else 0


class FeatureEncoder:
    """Per-column vocabularies for categorical features and train mean/std for numeric ones.

    A vocabulary is a sorted numpy array, so lookup is one vectorized `np.searchsorted` per
    column: no per-row Python and no hash table to rebuild per call, which keeps encoding
    a ~300-row serving request well under a millisecond even for large ID vocabularies.
    Columns with a numeric dtype in training are compared as float64 (integer IDs are exact
    up to 2**53, and an int column that turns float because of a NaN still matches); all
    other columns are compared as strings.
    """

    def __init__(self, categorical: Sequence[str], numeric: Sequence[str]):
        self.categorical = list(categorical)
        self.numeric = list(numeric)

    def fit(self, X: pd.DataFrame) -> FeatureEncoder:
        self.numeric_kind: dict[str, bool] = {}
        self.vocabularies: dict[str, np.ndarray] = {}
        for col in self.categorical:
            self.numeric_kind[col] = pd.api.types.is_numeric_dtype(X[col])
            values, missing = self._canonical(X[col], self.numeric_kind[col])
            self.vocabularies[col] = np.sort(pd.unique(values[~missing]))
        raw = self._numeric_matrix(X)  # (n, n_numeric)
        self.mean = raw.mean(axis=0)
        std = raw.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)  # a constant column would divide by 0
        return self

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table sizes: the vocabulary plus index 0 for unseen / missing."""
        return [len(self.vocabularies[col]) + 1 for col in self.categorical]

    def transform(self, X: Columns) -> tuple[np.ndarray, np.ndarray]:
        """(n, n_categorical) int64 indices in [0, cardinality) and (n, n_numeric) float32.
        X: a DataFrame, or a mapping of column name -> array (no pandas on the serving path)."""
        indices = np.zeros((n_rows(X), len(self.categorical)), dtype=np.int64)
        for j, col in enumerate(self.categorical):
            vocab = self.vocabularies[col]
            values, missing = self._canonical(X[col], self.numeric_kind[col])
            pos = np.searchsorted(vocab, values)
            found = (pos < len(vocab)) & ~missing
            found[found] = vocab[pos[found]] == values[found]
            indices[found, j] = pos[found] + 1  # +1: index 0 is unseen / missing
        numeric = (self._numeric_matrix(X) - self.mean) / self.std
        return indices, numeric.astype(np.float32)

    @staticmethod
    def _canonical(column: pd.Series | np.ndarray, numeric_kind: bool) -> tuple[np.ndarray, np.ndarray]:
        """Values in the vocabulary's comparison type, and the mask of missing ones."""
        # Plain numpy where the dtype allows: pandas' generic conversions were most of the
        # encoding time when serving a few hundred rows.
        if numeric_kind:
            if pd.api.types.is_numeric_dtype(column.dtype):
                values = (
                    np.asarray(column, dtype=np.float64)
                    if isinstance(column, np.ndarray)
                    else column.to_numpy(dtype=np.float64, na_value=np.nan)
                )
            else:
                values = pd.to_numeric(pd.Series(column), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            return values, np.isnan(values)
        raw = np.asarray(column, dtype=object)
        return raw.astype(str), pd.isna(raw)

    def _numeric_matrix(self, X: Columns) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            raw = X[self.numeric].to_numpy(dtype=np.float64, na_value=np.nan)  # (n, n_numeric)
        elif self.numeric:
            # None becomes NaN in a float array.
            raw = np.column_stack([np.asarray(X[col], dtype=np.float64) for col in self.numeric])
        else:
            raw = np.zeros((n_rows(X), 0))
        return np.where(np.isnan(raw), 0.0, raw)


# ---------------------------------------------------------------------------
# Networks. Both map (indices (batch, n_categorical), numeric (batch, n_numeric)) -> logits (batch,)
# ---------------------------------------------------------------------------


def embedding_tables(cardinalities: Sequence[int], dim: int) -> nn.ModuleList:
    """One table per categorical feature, initialised near zero (see EMBEDDING_INIT_STD)."""
    tables = nn.ModuleList(nn.Embedding(n, dim) for n in cardinalities)
    for table in tables:
        nn.init.normal_(table.weight, std=EMBEDDING_INIT_STD)
    return tables


def mlp_layers(in_dim: int, hidden_units: Sequence[int]) -> tuple[nn.Sequential, int]:
    """ReLU MLP and its output width (an empty `hidden_units` is the identity)."""
    layers: list[nn.Module] = []
    for width in hidden_units:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers), in_dim


def predict_in_batches(module: nn.Module, indices: torch.Tensor, numeric: torch.Tensor, empty: torch.Tensor):
    """module(indices, numeric) in eval mode, PREDICT_BATCH_SIZE rows at a time to bound memory;
    `empty` is the answer to an empty request (no candidates)."""
    module.eval()
    with torch.inference_mode():
        return torch.cat(
            [
                module(indices[start : start + PREDICT_BATCH_SIZE], numeric[start : start + PREDICT_BATCH_SIZE])
                for start in range(0, len(indices), PREDICT_BATCH_SIZE)
            ]
            or [empty]
        )


class DCNv2(nn.Module):
    """DCN v2, parallel structure: logit = w^T [cross(x0); deep(x0)] + b.

    The cross network builds explicit feature crosses of bounded degree (layer l holds
    polynomials up to degree l + 1 in x0); the MLP learns the remaining implicit
    interactions. Numeric features enter x0 as raw (standardized) values.
    """

    def __init__(
        self,
        cardinalities: Sequence[int],
        n_numeric: int,
        embedding_dim: int,
        hidden_units: Sequence[int],
        n_cross_layers: int,
        output_bias: float,
    ):
        super().__init__()
        self.embeddings = embedding_tables(cardinalities, embedding_dim)
        x0_dim = len(cardinalities) * embedding_dim + n_numeric
        # Full-rank W_l (x0_dim x x0_dim), the DCN v2 change over DCN's rank-1 w_l.
        self.cross = nn.ModuleList(nn.Linear(x0_dim, x0_dim) for _ in range(n_cross_layers))
        self.deep, deep_dim = mlp_layers(x0_dim, hidden_units)
        self.output = nn.Linear(x0_dim + deep_dim, 1)
        # Zero weights: the first logits are exactly the bias (numeric values in x0 are O(1)).
        nn.init.zeros_(self.output.weight)
        nn.init.constant_(self.output.bias, output_bias)

    def forward(self, indices: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        embedded = [table(indices[:, j]) for j, table in enumerate(self.embeddings)]  # each (batch, emb_dim)
        x0 = torch.cat(embedded + [numeric], dim=1)  # (batch, x0_dim)
        x = x0
        for layer in self.cross:
            x = x0 * layer(x) + x  # (batch, x0_dim); "+ x" is the residual that keeps lower-degree crosses
        combined = torch.cat([x, self.deep(x0)], dim=1)  # (batch, x0_dim + deep_dim)
        return self.output(combined).squeeze(1)  # (batch,)


class DeepFM(nn.Module):
    """DeepFM: logit = b + sum_i w_i x_i + sum_{i<j} <v_i, v_j> x_i x_j + deep([v_1 x_1; ...; v_F x_F]).

    Categorical fields have x_i = 1 and look up w_i, v_i by value; a numeric field has one
    w_i and one v_i scaled by its value. The FM and the MLP share the field embeddings v,
    so the MLP needs no separate feature engineering (the point of DeepFM over Wide&Deep).
    """

    def __init__(
        self,
        cardinalities: Sequence[int],
        n_numeric: int,
        embedding_dim: int,
        hidden_units: Sequence[int],
        output_bias: float,
    ):
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(float(output_bias)))
        self.first_order = embedding_tables(cardinalities, 1)  # w_i per categorical value
        for table in self.first_order:
            nn.init.zeros_(table.weight)  # a linear model's usual start: no effect until learned
        self.numeric_first_order = nn.Parameter(torch.zeros(n_numeric))  # w_i per numeric field
        self.embeddings = embedding_tables(cardinalities, embedding_dim)  # v_i per categorical value
        self.numeric_embeddings = nn.Parameter(torch.randn(n_numeric, embedding_dim) * EMBEDDING_INIT_STD)
        mlp, deep_dim = mlp_layers((len(cardinalities) + n_numeric) * embedding_dim, hidden_units)
        # No bias in the last layer: `self.bias` is the model's single intercept. Zero weights
        # so the MLP adds nothing to the first logits.
        deep_output = nn.Linear(deep_dim, 1, bias=False)
        nn.init.zeros_(deep_output.weight)
        self.deep = nn.Sequential(mlp, deep_output)

    def forward(self, indices: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        first = (numeric * self.numeric_first_order).sum(dim=1)  # (batch,)
        for j, table in enumerate(self.first_order):
            first = first + table(indices[:, j]).squeeze(1)
        categorical_fields = [table(indices[:, j]).unsqueeze(1) for j, table in enumerate(self.embeddings)]
        numeric_fields = numeric.unsqueeze(2) * self.numeric_embeddings  # (batch, n_numeric, emb_dim)
        fields = torch.cat(categorical_fields + [numeric_fields], dim=1)  # (batch, n_fields, emb_dim)
        # sum_{i<j} <v_i, v_j> in O(n_fields * emb_dim): 0.5 * ((sum_i v_i)^2 - sum_i v_i^2), summed over emb_dim.
        second = 0.5 * (fields.sum(dim=1).pow(2) - fields.pow(2).sum(dim=1)).sum(dim=1)  # (batch,)
        deep = self.deep(fields.flatten(start_dim=1)).squeeze(1)  # (batch,)
        return self.bias + first + second + deep


# ---------------------------------------------------------------------------
# Estimator
# ---------------------------------------------------------------------------


class DeepCTRClassifier(BaseEstimator):
    """Binary click classifier over a DataFrame, scikit-learn style (fit / predict_proba).

    architecture: "dcn" (DCN v2, parallel cross + deep) or "deepfm".
    fit(X, y, eval_set=(X_val, y_val)) keeps the weights of the epoch with the lowest eval
    log loss (`best_epoch_`, 1-based; `eval_logloss_` per epoch). Without an eval set the
    last epoch is kept and `eval_logloss_` is empty. The fitted estimator pickles with the
    standard library pickle (module_ is a top-level nn.Module, vocabularies are numpy arrays).
    """

    trains_data_parallel = True  # common/models/distributed.fit_data_parallel can train it on Ray workers

    def __init__(
        self,
        architecture: str = "dcn",
        categorical: Sequence[str] = (),
        numeric: Sequence[str] = (),
        embedding_dim: int = 8,
        hidden_units: Sequence[int] = (64, 32),
        n_cross_layers: int = 2,
        epochs: int = 3,
        batch_size: int = 2048,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-6,
        random_state: int = 0,
        n_threads: int = 2,
        verbose: bool = False,
    ):
        self.architecture = architecture
        self.categorical = categorical
        self.numeric = numeric
        self.embedding_dim = embedding_dim
        self.hidden_units = hidden_units
        self.n_cross_layers = n_cross_layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose

    def fit(
        self, X: pd.DataFrame, y: np.ndarray, eval_set: tuple[pd.DataFrame, np.ndarray] | None = None
    ) -> DeepCTRClassifier:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if not self.categorical and not self.numeric:
            raise ValueError("no features: give at least one categorical or numeric column")
        y = _binary_labels(y, len(X))
        torch.manual_seed(self.random_state)
        torch.set_num_threads(self.n_threads)
        rng = np.random.default_rng(self.random_state)

        self.classes_ = np.array([0, 1])
        self.encoder_ = FeatureEncoder(self.categorical, self.numeric).fit(X)
        self.module_ = self._build_module(base_rate=float(y.mean()))
        indices, numeric = (torch.from_numpy(a) for a in self.encoder_.transform(X))
        labels = torch.from_numpy(y)
        if eval_set is not None:
            eval_indices, eval_numeric = (torch.from_numpy(a) for a in self.encoder_.transform(eval_set[0]))
            eval_labels = torch.from_numpy(_binary_labels(eval_set[1], len(eval_set[0])))

        def batch_loss(indices, numeric, labels):
            return F.binary_cross_entropy_with_logits(self.module_(indices, numeric), labels)

        def eval_loss() -> float:
            return F.binary_cross_entropy_with_logits(self._logits(eval_indices, eval_numeric), eval_labels).item()

        log = train_keeping_best_epoch(
            self.module_,
            (indices, numeric, labels),
            batch_loss,
            eval_loss if eval_set is not None else None,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            rng=rng,
            desc=self.architecture,
            verbose=self.verbose,
        )
        self.eval_logloss_, self.best_epoch_ = log.eval_loss, log.best_epoch
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n, 2): column 0 = P(no click), column 1 = P(click)."""
        if not hasattr(self, "module_"):
            raise RuntimeError("DeepCTRClassifier is not fitted; call fit first")
        indices, numeric = self.encoder_.transform(X)
        logits = self._logits(torch.from_numpy(indices), torch.from_numpy(numeric))
        p = torch.sigmoid(logits).numpy().astype(np.float64)
        return np.column_stack([1.0 - p, p])

    def _build_module(self, base_rate: float) -> nn.Module:
        base_rate = min(max(base_rate, 1e-6), 1 - 1e-6)  # all-0 or all-1 labels would give an infinite logit
        output_bias = math.log(base_rate / (1 - base_rate))
        cardinalities, n_numeric = self.encoder_.cardinalities, len(self.encoder_.numeric)
        if self.architecture == "dcn":
            return DCNv2(
                cardinalities, n_numeric, self.embedding_dim, self.hidden_units, self.n_cross_layers, output_bias
            )
        return DeepFM(cardinalities, n_numeric, self.embedding_dim, self.hidden_units, output_bias)

    def _logits(self, indices: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        """(n,) logits in eval mode."""
        return predict_in_batches(self.module_, indices, numeric, empty=torch.zeros(0))


def _binary_labels(y: np.ndarray, n_rows: int) -> np.ndarray:
    """(n,) float32 labels, checked to be 0/1 and aligned with X."""
    y = np.asarray(y, dtype=np.float32).ravel()
    if len(y) != n_rows:
        raise ValueError(f"y has {len(y)} labels for {n_rows} rows")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must contain only 0 and 1")
    return y
