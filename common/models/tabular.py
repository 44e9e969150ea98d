"""Click-probability classifiers over tabular features, with the scikit-learn contract
(params in __init__, fit returns self, learned state ends with `_`, predict_proba -> (n, 2)).

    LogisticRegressionCTR   one-hot categoricals + standardised log counts -> LR (the baseline)
    LightGBMCTR             gradient-boosted trees on the raw columns
    LightGBMRanker          the same trees fit listwise (LambdaMART: lambdarank over each request's rows)
    LightGBMHeads           one LightGBM per task (a news feed's click, like, share... and dwell): the
                            chapters' "N independent models" beside one multi-task network
    GBDTLogisticCTR         GBDT leaves as one-hot features for an LR (He et al. 2014)
`class_weight="balanced"` reweights the classes (the chapters' answer to rare positives): the
ranking improves where positives are few, and the probabilities stop being calibrated.
Torch models with an embedding per ID (DCN v2, DeepFM) live in common/models/deep.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from common.models.deep import Columns, n_rows
from common.models.heads import Head, head_labels


def _signed_log1p(x):
    # Counts are heavy-tailed; a log keeps a linear model from being dominated by a few keys.
    return np.sign(x) * np.log1p(np.abs(x))


def _numeric_steps():
    # A missing value (no history yet, an event without coordinates) becomes the median, and an
    # indicator column says it was missing: a linear model cannot take NaN.
    return FunctionTransformer(_signed_log1p), SimpleImputer(strategy="median", add_indicator=True)


class LogisticRegressionCTR:
    def __init__(
        self,
        categorical: Sequence[str] = (),
        numeric: Sequence[str] = (),
        C: float = 1.0,
        max_iter: int = 300,
        class_weight: str | None = None,
    ):
        self.categorical = categorical
        self.numeric = numeric
        self.C = C
        self.max_iter = max_iter
        self.class_weight = class_weight

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> LogisticRegressionCTR:
        encode = ColumnTransformer(
            [
                ("categorical", OneHotEncoder(handle_unknown="ignore", min_frequency=20), list(self.categorical)),
                ("numeric", make_pipeline(*_numeric_steps(), StandardScaler()), list(self.numeric)),
            ]
        )
        self.pipeline_ = make_pipeline(
            encode, LogisticRegression(C=self.C, max_iter=self.max_iter, class_weight=self.class_weight)
        )
        self.pipeline_.fit(_as_str(X, self.categorical), y)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: Columns) -> np.ndarray:
        if not isinstance(X, pd.DataFrame):  # column -> array, as the LightGBM models take too
            X = pd.DataFrame(X)
        return self.pipeline_.predict_proba(_as_str(X, self.categorical))


class LightGBMCTR:
    def __init__(
        self,
        categorical: Sequence[str] = (),
        numeric: Sequence[str] = (),
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 100,
        random_state: int = 0,
        n_threads: int = 2,
        class_weight: str | None = None,
    ):
        self.categorical = categorical
        self.numeric = numeric
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.random_state = random_state
        self.n_threads = n_threads
        self.class_weight = class_weight

    def fit(
        self, X: pd.DataFrame, y: np.ndarray, eval_set: tuple[pd.DataFrame, np.ndarray] | None = None
    ) -> LightGBMCTR:
        self.categories_ = {c: pd.Index(pd.unique(X[c].astype(str))) for c in self.categorical}
        self.booster_ = lgb.LGBMClassifier(**self._booster_params(), class_weight=self.class_weight)
        fit_args = {}
        if eval_set is not None:
            fit_args = {
                "eval_X": (self._matrix(eval_set[0]),),
                "eval_y": (eval_set[1],),
                "callbacks": [lgb.early_stopping(30, verbose=False)],
            }
        self.booster_.fit(self._matrix(X), y, categorical_feature=self._categorical_indices(), **fit_args)
        self.classes_ = np.array([0, 1])
        return self

    def _booster_params(self) -> dict:
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.8,
            "random_state": self.random_state,
            "n_jobs": self.n_threads,
            "verbose": -1,
        }

    def _categorical_indices(self) -> list[int]:
        """Positions of the categorical columns in `_matrix`: after the numerics."""
        return list(range(len(self.numeric), len(self.numeric) + len(self.categorical)))

    def _matrix(self, X: Columns) -> np.ndarray:
        """(n, numeric + categorical) floats; categoricals as codes of the training
        categories, unseen values as NaN. A plain matrix, not a pandas frame with
        categoricals: at serving time this conversion was most of the ranking latency."""
        if isinstance(X, pd.DataFrame):
            numeric = X[list(self.numeric)].to_numpy(dtype=float, na_value=np.nan)  # one block copy
        else:  # column -> array: the serving path builds no DataFrame
            numeric = np.empty((n_rows(X), len(self.numeric)))
            for j, c in enumerate(self.numeric):
                numeric[:, j] = np.asarray(X[c], dtype=float)  # None -> NaN
        codes = []
        for c in self.categorical:
            values = X[c] if X[c].dtype == object else X[c].astype(str)
            column = self.categories_[c].get_indexer(values).astype(float)
            column[column < 0] = np.nan
            codes.append(column)
        return np.column_stack([numeric, *codes]) if codes else numeric

    def predict_proba(self, X: Columns) -> np.ndarray:
        # The booster itself, on one thread: serving scores a few hundred rows per request,
        # requests run in parallel, and the sklearn wrapper's checks cost more than a tree.
        p = self.booster_.booster_.predict(self._matrix(X), num_threads=1)
        return np.column_stack([1.0 - p, p])

    def leaves(self, X: pd.DataFrame) -> np.ndarray:
        """(n, n_trees) index of the leaf each row falls in, per tree."""
        return self.booster_.booster_.predict(self._matrix(X), pred_leaf=True)


class LightGBMRanker(LightGBMCTR):
    """LambdaMART: trees fit to a listwise objective (lambdarank, NDCG of each group's rows) rather
    than to each row's label. `fit(X, y, groups=...)`: `groups` names each row's request (a user, a
    session); rows of a request are ranked against each other only. `predict_proba` maps the ranking
    score through a sigmoid: the order is the model's, the values are not probabilities."""

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        groups: np.ndarray,
        eval_set: tuple[pd.DataFrame, np.ndarray, np.ndarray] | None = None,
    ) -> LightGBMRanker:
        self.categories_ = {c: pd.Index(pd.unique(X[c].astype(str))) for c in self.categorical}
        self.booster_ = lgb.LGBMRanker(**self._booster_params(), objective="lambdarank")
        X, y, sizes = _grouped(X, y, groups)
        fit_args = {}
        if eval_set is not None:
            X_eval, y_eval, eval_sizes = _grouped(*eval_set)
            fit_args = {
                "eval_set": [(self._matrix(X_eval), y_eval)],
                "eval_group": [eval_sizes],
                "eval_at": [10],
                "callbacks": [lgb.early_stopping(30, verbose=False)],
            }
        self.booster_.fit(self._matrix(X), y, group=sizes, categorical_feature=self._categorical_indices(), **fit_args)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: Columns) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.booster_.booster_.predict(self._matrix(X), num_threads=1)))
        return np.column_stack([1.0 - p, p])


def _grouped(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Rows reordered so each group's rows are contiguous (what lambdarank reads), and the group sizes."""
    order = np.argsort(np.asarray(groups), kind="stable")
    _, sizes = np.unique(np.asarray(groups)[order], return_counts=True)
    return X.iloc[order].reset_index(drop=True), np.asarray(y)[order], sizes


class LightGBMRegression(LightGBMCTR):
    """Trees fit to a continuous target (squared error); `predict` gives the value."""

    def fit(self, X, y: np.ndarray, eval_set=None) -> LightGBMRegression:
        self.categories_ = {c: pd.Index(pd.unique(X[c].astype(str))) for c in self.categorical}
        self.booster_ = lgb.LGBMRegressor(**self._booster_params())
        fit_args = {}
        if eval_set is not None:
            fit_args = {
                "eval_set": [(self._matrix(eval_set[0]), eval_set[1])],
                "callbacks": [lgb.early_stopping(30, verbose=False)],
            }
        self.booster_.fit(self._matrix(X), y, categorical_feature=self._categorical_indices(), **fit_args)
        return self

    def predict(self, X: Columns) -> np.ndarray:
        return self.booster_.booster_.predict(self._matrix(X), num_threads=1)


class LightGBMHeads:
    """One LightGBM per head (common.models.heads.Head), each fit on its own rows: the chapters'
    alternative to one multi-task network, which costs N models to train, serve and maintain.
    `predict_heads` and `predict_proba` answer as common.models.multitask.MultiHeadNetwork does."""

    def __init__(
        self,
        categorical: Sequence[str] = (),
        numeric: Sequence[str] = (),
        heads: Sequence = (),
        probability: Sequence[str] = (),
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 100,
        random_state: int = 0,
        n_threads: int = 1,
    ):
        self.categorical = categorical
        self.numeric = numeric
        self.heads = heads
        self.probability = probability
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, X: pd.DataFrame, targets: pd.DataFrame, eval_set=None) -> LightGBMHeads:
        heads = [h if isinstance(h, Head) else Head(**h) for h in self.heads]
        labels, masks = head_labels(heads, targets, len(X))
        if eval_set is not None:
            eval_labels, eval_masks = head_labels(heads, eval_set[1], len(eval_set[0]))
        params = {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "random_state": self.random_state,
            "n_threads": self.n_threads,
        }
        self.models_ = {}
        for j, head in enumerate(heads):
            model = (LightGBMCTR if head.kind == "binary" else LightGBMRegression)(
                self.categorical, self.numeric, **params
            )
            rows = masks[:, j]
            evaluation = None
            if eval_set is not None:
                eval_rows = eval_masks[:, j]
                evaluation = (eval_set[0][eval_rows].reset_index(drop=True), eval_labels[eval_rows, j])
            model.fit(X[rows].reset_index(drop=True), labels[rows, j], eval_set=evaluation)
            self.models_[head.name] = (head, model)
        self.classes_ = np.array([0, 1])
        return self

    def predict_heads(self, X: Columns) -> dict[str, np.ndarray]:
        predicted = {}
        for name, (head, model) in self.models_.items():
            if head.kind == "binary":
                predicted[name] = model.predict_proba(X)[:, 1]
            else:
                value = model.predict(X)
                predicted[name] = np.expm1(value) if head.transform == "log1p" else value
        return predicted

    def predict_proba(self, X: Columns) -> np.ndarray:
        heads = self.predict_heads(X)
        p = np.prod([heads[name] for name in (self.probability or list(self.models_)[:1])], axis=0)
        return np.column_stack([1.0 - p, p])


class GBDTLogisticCTR:
    """Trees learn the crosses; an LR over their leaves is cheap to retrain often."""

    def __init__(
        self,
        categorical: Sequence[str] = (),
        numeric: Sequence[str] = (),
        n_estimators: int = 60,
        num_leaves: int = 31,
        learning_rate: float = 0.1,
        C: float = 0.5,
        random_state: int = 0,
        n_threads: int = 2,
    ):
        self.categorical = categorical
        self.numeric = numeric
        self.n_estimators = n_estimators
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.C = C
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> GBDTLogisticCTR:
        self.trees_ = LightGBMCTR(
            self.categorical,
            self.numeric,
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            random_state=self.random_state,
            n_threads=self.n_threads,
        ).fit(X, y)
        self.leaf_encoder_ = OneHotEncoder(handle_unknown="ignore")
        leaves = self.leaf_encoder_.fit_transform(self.trees_.leaves(X))
        self.logistic_ = LogisticRegression(C=self.C, max_iter=300).fit(leaves, y)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.logistic_.predict_proba(self.leaf_encoder_.transform(self.trees_.leaves(X)))


def _as_str(X: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """One-hot encoders want one type per column; IDs and strings alike become strings."""
    return X.assign(**{c: X[c].astype(str) for c in columns})
