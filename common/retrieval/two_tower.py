"""Two-tower retrieval model: a user tower and an item tower map each side's features to L2-normalised
embeddings whose inner product (cosine) scores relevance, trained with in-batch sampled softmax.

    model = TwoTowerModel(TowerSpec("user_id", categorical=["country"]), TowerSpec("item_id", categorical=["genre"]))
    model.fit(users, items, interactions, history)
    scores = model.user_embeddings(users, history) @ model.item_embeddings(items).T  # (n_users, n_items) cosines

Towers. Each tower reads a TowerSpec: an id column, categorical columns (one embedding table each,
with index 0 shared by unseen and missing values, as in common.models.deep), list-valued "multi-hot"
columns (the mean of their values' embeddings; an empty list gives zeros) and numeric columns
(standardised with the training mean and std). The user tower also reads the mean of the item-id
embeddings of the user's recently engaged items (`history`), taken from the item tower's own id table.
    x = concat(id and categorical embeddings, multi-hot means, numerics [, history mean]) -> MLP -> linear -> L2 norm

Training. Each batch of positive (user, item) pairs is its own set of negatives: row i's positive is
item i and every other item of the batch is a negative (logits = u @ v.T / temperature). Batch items
are drawn in proportion to their frequency among the interactions, so popular items are negatives far
more often than tail items; the logQ correction (Yi et al. 2019, "Sampling-Bias-Corrected Neural
Modeling for Large Corpus Item Recommendations", YouTube) subtracts log q_j, the item's sampling
probability, from its logits so the softmax estimates the full softmax over the catalogue instead of
scores that are pushed down by popularity. The trade, measured in tests/common/test_two_tower.py: much
higher recall overall and on popular items, slightly lower recall on tail items, which the uncorrected
scores over-promote (they learn about log P(item | user) - log q_item).

Cold start. An id never seen in training maps to index 0. `id_dropout` replaces training ids with 0 at
random (and for users also hides their history) so the index-0 row and the rest of the tower learn to
serve someone known only by their features: new users (profile only) and new items (metadata only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from torch import nn

from common.models.deep import Columns, FeatureEncoder, mlp_layers, n_rows
from common.models.training import train_keeping_best_epoch

EMBED_BATCH_SIZE = 65536


@dataclass(frozen=True)
class TowerSpec:
    """The columns one tower reads."""

    id_column: str  # "user_id" / "item_id"
    categorical: Sequence[str] = ()  # e.g. country, language, genre, age_rating
    numeric: Sequence[str] = ()  # e.g. age, price, days_since_release
    multi_hot: Sequence[str] = ()  # list-valued columns (tags, genre history): mean of value embeddings, [] -> zeros


# ---------------------------------------------------------------------------
# Encoding: DataFrame -> index / value arrays
# ---------------------------------------------------------------------------


@dataclass
class _Bags:
    """Variable-length lists of indices, one list per row, in CSR form: row r holds values[indptr[r]:indptr[r+1]]."""

    values: np.ndarray  # (n_values,) int64
    indptr: np.ndarray  # (n_rows + 1,) int64

    @classmethod
    def from_rows(cls, rows: np.ndarray, values: np.ndarray, n_rows: int) -> _Bags:
        """Bags from (row, value) pairs already sorted by row."""
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))]).astype(np.int64)
        return cls(values.astype(np.int64), indptr)

    def take(self, rows: np.ndarray, empty: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(values, offsets) for F.embedding_bag over `rows`; rows flagged in `empty` get an empty bag."""
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        if empty is not None:
            lengths = np.where(empty, 0, lengths)
        offsets = np.cumsum(lengths) - lengths  # (batch,) start of each bag in the gathered values
        positions = np.repeat(starts - offsets, lengths) + np.arange(lengths.sum())  # (n_gathered,)
        return torch.from_numpy(self.values[positions]), torch.from_numpy(offsets)


@dataclass
class _Batch:
    """One tower's inputs for a batch of rows, as tensors."""

    indices: torch.Tensor  # (batch, 1 + n_categorical) int64; column 0 is the id
    numeric: torch.Tensor  # (batch, n_numeric) float32
    bags: list[tuple[torch.Tensor, torch.Tensor]]  # per multi-hot column: (values, offsets)
    history: tuple[torch.Tensor, torch.Tensor] | None  # user tower only: item-id indices of engaged items


@dataclass
class _Encoded:
    """One tower's inputs for a whole table, as numpy arrays (rows are the table's rows)."""

    indices: np.ndarray  # (n, 1 + n_categorical) int64
    numeric: np.ndarray  # (n, n_numeric) float32
    bags: list[_Bags]
    history: _Bags | None

    def __len__(self) -> int:
        return len(self.indices)

    def batch(self, rows: np.ndarray, drop_id: np.ndarray | None = None) -> _Batch:
        """Rows as tensors; rows flagged in `drop_id` look like a new entity: id 0 and no history."""
        indices = self.indices[rows]
        if drop_id is not None:
            indices[drop_id, 0] = 0  # fancy indexing above made a copy, the encoded table is untouched
        return _Batch(
            indices=torch.from_numpy(indices),
            numeric=torch.from_numpy(self.numeric[rows]),
            bags=[bags.take(rows) for bags in self.bags],
            history=None if self.history is None else self.history.take(rows, empty=drop_id),
        )


def _explode(column: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row position, value) of every element of a list-valued column, rows ascending; empty or missing
    lists and missing elements give none. Values come back as an object array (compared as strings)."""
    lists = [v if isinstance(v, list | tuple | np.ndarray) else () for v in np.asarray(column, dtype=object)]
    lengths = np.fromiter((len(v) for v in lists), dtype=np.int64, count=len(lists))
    rows = np.repeat(np.arange(len(lists), dtype=np.int64), lengths)
    values = np.empty(int(lengths.sum()), dtype=object)
    values[:] = [value for v in lists for value in v]
    present = ~pd.isna(values)
    return rows[present], values[present]


class _TowerEncoder:
    """Vocabularies and numeric scaling for one tower, fitted on its entity table (one row per id)."""

    def __init__(self, spec: TowerSpec):
        self.spec = spec

    def fit(self, X: pd.DataFrame) -> _TowerEncoder:
        if not X[self.spec.id_column].is_unique:
            raise ValueError(f"{self.spec.id_column} must be unique in the entity table")
        self.ids = FeatureEncoder([self.spec.id_column], []).fit(X)
        self.features = FeatureEncoder(self.spec.categorical, self.spec.numeric).fit(X)
        self.multi_hot = {}
        for col in self.spec.multi_hot:
            _, values = _explode(X[col])
            if len(values) == 0:  # no list has a value: one missing row gives an empty vocabulary, not an empty mean
                values = np.array([None], dtype=object)
            self.multi_hot[col] = FeatureEncoder([col], []).fit(pd.DataFrame({col: values}))
        return self

    @property
    def cardinalities(self) -> list[int]:
        """Table sizes of the id and each categorical column (index 0 = unseen / missing)."""
        return self.ids.cardinalities + self.features.cardinalities

    @property
    def bag_cardinalities(self) -> list[int]:
        return [self.multi_hot[col].cardinalities[0] for col in self.spec.multi_hot]

    def id_index(self, ids: pd.Series | np.ndarray) -> np.ndarray:
        """(n,) id-table index of each id; 0 for ids not seen in training."""
        return self.ids.transform({self.spec.id_column: np.asarray(ids)})[0][:, 0]

    def transform(self, X: Columns, history: _Bags | None = None) -> _Encoded:
        """X: a DataFrame or a mapping of column -> array (the serving path, no pandas)."""
        categorical, numeric = self.features.transform(X)
        bags = []
        for col in self.spec.multi_hot:
            rows, values = _explode(X[col])
            indices = self.multi_hot[col].transform({col: values})[0][:, 0]  # unseen values -> 0
            bags.append(_Bags.from_rows(rows, indices, n_rows(X)))
        indices = np.column_stack([self.id_index(X[self.spec.id_column]), categorical])
        return _Encoded(indices, numeric, bags, history)


# ---------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------


class _Tower(nn.Module):
    """concat(id and categorical embeddings, multi-hot means, numerics, extra inputs) -> MLP -> linear -> L2 norm."""

    def __init__(
        self,
        cardinalities: Sequence[int],
        bag_cardinalities: Sequence[int],
        n_numeric: int,
        n_extra: int,
        embedding_dim: int,
        hidden_units: Sequence[int],
    ):
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(n, embedding_dim) for n in cardinalities)
        # mode="mean" gives an empty bag (no tags, no genre history) a zero vector.
        self.bag_embeddings = nn.ModuleList(nn.EmbeddingBag(n, embedding_dim, mode="mean") for n in bag_cardinalities)
        in_dim = (len(cardinalities) + len(bag_cardinalities) + n_extra) * embedding_dim + n_numeric
        mlp, width = mlp_layers(in_dim, hidden_units)
        self.network = nn.Sequential(mlp, nn.Linear(width, embedding_dim))

    def forward(self, batch: _Batch, extra: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        parts = [table(batch.indices[:, j]) for j, table in enumerate(self.embeddings)]  # each (batch, d)
        parts += [
            table(values, offsets) for table, (values, offsets) in zip(self.bag_embeddings, batch.bags, strict=True)
        ]
        x = torch.cat(parts + list(extra) + [batch.numeric], dim=1)  # (batch, in_dim)
        return F.normalize(self.network(x), dim=1)  # (batch, d), unit norm: inner product = cosine


class _TwoTowerNet(nn.Module):
    def __init__(self, user_tower: _Tower, item_tower: _Tower):
        super().__init__()
        self.user_tower = user_tower
        self.item_tower = item_tower

    def users(self, batch: _Batch) -> torch.Tensor:
        """(batch, d) user embeddings."""
        values, offsets = batch.history
        # The history is read through the item tower's id table, so what an item's id embedding learns as
        # a candidate also describes the users who engaged with it. No history -> a zero vector.
        item_ids = self.item_tower.embeddings[0].weight  # (n_item_ids, d)
        history = F.embedding_bag(values, item_ids, offsets, mode="mean")  # (batch, d)
        return self.user_tower(batch, extra=[history])

    def items(self, batch: _Batch) -> torch.Tensor:
        """(batch, d) item embeddings."""
        return self.item_tower(batch)


# ---------------------------------------------------------------------------
# Estimator
# ---------------------------------------------------------------------------


class TwoTowerModel(BaseEstimator):
    """Two-tower retrieval model over entity tables, scikit-learn style (fit / user_embeddings / item_embeddings).

    fit(users, items, interactions, history):
      users         one row per user: user_spec.id_column and the user features
      items         one row per item: item_spec.id_column and the item features
      interactions  positive (user id, item id) pairs, the training examples (e.g. liked, watched >= 50%)
      history       optional (user id, item id) pairs of recently engaged items, averaged into the user tower;
                    it should precede the interactions in time, or the tower can read the label off it
      interaction_item_numeric
                    optional: values of some of the item tower's numeric columns as of each interaction's
                    own time (one row per interaction, e.g. the item's popularity that week), used for the
                    item side of that example instead of the items table's single value
    Learned state: encoders, `module_`, `log_q_` (log sampling probability per row of `items`) and
    `train_loss_` (mean batch loss per epoch). The fitted model pickles with the standard library pickle.
    """

    trains_data_parallel = True  # common/models/distributed.fit_data_parallel can train it on Ray workers

    def __init__(
        self,
        user_spec: TowerSpec,
        item_spec: TowerSpec,
        embedding_dim: int = 32,
        hidden_units: Sequence[int] = (64,),
        temperature: float = 0.05,
        logq_correction: bool = True,
        epochs: int = 5,
        batch_size: int = 1024,
        learning_rate: float = 3e-3,
        weight_decay: float = 0.0,
        id_dropout: float = 0.1,
        random_state: int = 0,
        n_threads: int = 1,
        verbose: bool = False,
    ):
        self.user_spec = user_spec
        self.item_spec = item_spec
        self.embedding_dim = embedding_dim
        self.hidden_units = hidden_units
        self.temperature = temperature
        self.logq_correction = logq_correction
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.id_dropout = id_dropout
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose

    def fit(
        self,
        users: pd.DataFrame,
        items: pd.DataFrame,
        interactions: pd.DataFrame,
        history: pd.DataFrame | None = None,
        interaction_item_numeric: pd.DataFrame | None = None,
    ) -> TwoTowerModel:
        if len(interactions) == 0:
            raise ValueError("no interactions to train on")
        torch.manual_seed(self.random_state)
        torch.set_num_threads(self.n_threads)
        rng = np.random.default_rng(self.random_state)

        self.user_encoder_ = _TowerEncoder(self.user_spec).fit(users)
        self.item_encoder_ = _TowerEncoder(self.item_spec).fit(items)
        user_x = self.user_encoder_.transform(users, self._history_bags(users, history))
        item_x = self.item_encoder_.transform(items)
        user_rows = rows_of(interactions[self.user_spec.id_column], users[self.user_spec.id_column], "users")
        item_rows = rows_of(interactions[self.item_spec.id_column], items[self.item_spec.id_column], "items")
        overrides = self._interaction_overrides(interaction_item_numeric, len(interactions))

        # q_j: the chance that a batch slot holds item j, i.e. its share of the training interactions.
        counts = np.bincount(item_rows, minlength=len(items))
        with np.errstate(divide="ignore"):  # items never interacted with are never in a batch: log 0 is unused
            self.log_q_ = np.log(counts / len(item_rows)).astype(np.float32)
        log_q = torch.from_numpy(self.log_q_)

        self.module_ = _TwoTowerNet(
            _Tower(
                self.user_encoder_.cardinalities,
                self.user_encoder_.bag_cardinalities,
                len(self.user_spec.numeric),
                1,  # the history mean
                self.embedding_dim,
                self.hidden_units,
            ),
            _Tower(
                self.item_encoder_.cardinalities,
                self.item_encoder_.bag_cardinalities,
                len(self.item_spec.numeric),
                0,
                self.embedding_dim,
                self.hidden_units,
            ),
        )

        def batch_loss(batch: torch.Tensor) -> torch.Tensor:
            batch = batch.numpy()
            users_b, items_b = user_rows[batch], item_rows[batch]
            # Id dropout: some examples play a new user / a new item (id 0, and no history for a user),
            # so the features alone must place them; without it the index-0 rows are never trained and
            # cold-start embeddings would be arbitrary.
            drop_user = rng.random(len(batch)) < self.id_dropout
            drop_item = rng.random(len(batch)) < self.id_dropout
            u = self.module_.users(user_x.batch(users_b, drop_user))  # (B, d)
            item_batch = item_x.batch(items_b, drop_item)
            if overrides is not None:
                columns, values = overrides
                item_batch.numeric[:, columns] = values[batch]  # the batch's own copy of the rows
            v = self.module_.items(item_batch)  # (B, d)
            return self._in_batch_softmax_loss(u, v, torch.from_numpy(items_b), log_q)

        # No evaluation set: every epoch is kept, and the last one's weights stay.
        log = train_keeping_best_epoch(
            self.module_,
            (torch.arange(len(user_rows)),),
            batch_loss,
            None,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            rng=rng,
            desc="two-tower",
            verbose=self.verbose,
        )
        self.train_loss_ = log.train_loss
        return self

    def _interaction_overrides(
        self, values: pd.DataFrame | None, n_interactions: int
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(numeric column positions, standardised values per interaction) or None."""
        if values is None:
            return None
        if len(values) != n_interactions:
            raise ValueError(f"interaction_item_numeric has {len(values)} rows for {n_interactions} interactions")
        numeric = list(self.item_spec.numeric)
        unknown = [c for c in values.columns if c not in numeric]
        if unknown:
            raise ValueError(f"interaction_item_numeric columns {unknown} are not numeric columns of the item tower")
        positions = [numeric.index(c) for c in values.columns]
        encoder = self.item_encoder_.features
        raw = values.to_numpy(dtype=np.float64, na_value=np.nan)
        standardised = (np.where(np.isnan(raw), 0.0, raw) - encoder.mean[positions]) / encoder.std[positions]
        return torch.tensor(positions), torch.from_numpy(standardised.astype(np.float32))

    def _in_batch_softmax_loss(
        self, u: torch.Tensor, v: torch.Tensor, item_rows: torch.Tensor, log_q: torch.Tensor
    ) -> torch.Tensor:
        """Cross entropy of each row's own item against the other items of the batch."""
        logits = u @ v.T / self.temperature  # (B, B): row i = user i against every batch item
        if self.logq_correction:
            # Yi et al. 2019 (YouTube): subtract log q_j from column j, so popular items, which are
            # negatives far more often, are not pushed down for being sampled more.
            logits = logits - log_q[item_rows].unsqueeze(0)
        # A popular item can be the positive of several rows; elsewhere in the row it would count as a
        # negative for the very item that is the label, so those columns leave the softmax.
        same_item = item_rows.unsqueeze(0) == item_rows.unsqueeze(1)  # (B, B)
        same_item.fill_diagonal_(False)
        logits = logits.masked_fill(same_item, float("-inf"))
        return F.cross_entropy(logits, torch.arange(len(u)))

    def user_embeddings(self, users: Columns, history: Columns | None = None) -> np.ndarray:
        """(n_users, d) float32 unit vectors, one per row of `users`; unknown users take the cold-start path."""
        self._check_fitted()
        encoded = self.user_encoder_.transform(users, self._history_bags(users, history))
        return self._embed(self.module_.users, encoded)

    def item_embeddings(self, items: pd.DataFrame) -> np.ndarray:
        """(n_items, d) float32 unit vectors, one per row of `items`; unknown items take the cold-start path."""
        self._check_fitted()
        return self._embed(self.module_.items, self.item_encoder_.transform(items))

    def _history_bags(self, users: pd.DataFrame, history: pd.DataFrame | None) -> _Bags:
        """Per row of `users`, the item-id indices of its history; items unknown to the model are left out
        (the index-0 row means "some new item" and says nothing about taste)."""
        if history is None or n_rows(history) == 0:
            return _Bags.from_rows(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), n_rows(users))
        rows = pd.Index(np.asarray(users[self.user_spec.id_column])).get_indexer(
            np.asarray(history[self.user_spec.id_column])
        )
        item_ids = self.item_encoder_.id_index(history[self.item_spec.id_column])
        keep = (rows >= 0) & (item_ids > 0)
        order = np.argsort(rows[keep], kind="stable")
        return _Bags.from_rows(rows[keep][order], item_ids[keep][order], n_rows(users))

    def _embed(self, tower, encoded: _Encoded) -> np.ndarray:
        with torch.inference_mode():
            chunks = [
                tower(encoded.batch(np.arange(start, min(start + EMBED_BATCH_SIZE, len(encoded)))))
                for start in range(0, len(encoded), EMBED_BATCH_SIZE)
            ]
        return torch.cat(chunks).numpy() if chunks else np.zeros((0, self.embedding_dim), dtype=np.float32)

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise RuntimeError("TwoTowerModel is not fitted; call fit first")


def rows_of(ids: pd.Series, table_ids: pd.Series, table: str) -> np.ndarray:
    """(n,) row of each id in its entity table; every id must be there."""
    rows = pd.Index(table_ids).get_indexer(ids)
    if (rows < 0).any():
        raise ValueError(f"{int((rows < 0).sum())} interactions name {ids.name} values missing from {table}")
    return rows.astype(np.int64)
