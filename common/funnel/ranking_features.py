"""Ranking features of the recommendation funnel, computed the same way for a training row and
a served candidate: a user state (profile, activity as of a time, tower embedding), an item (its
metadata, activity and tower embedding) and the time of the request.

    states = UserStates.build(frame, tower, catalog)           # one row per (user, as-of)
    X = model_inputs(states, state_rows, catalog, item_rows, now_s, activity)   # one row per pair

User-item features, as the chapter lists them: the two-tower score, the similarity of the item to
the mean embedding of the user's recent positives, the share of the user's recent positives in the
item's genre, language match, days since the user's last engagement and the item's age.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.data.dataset import Schema
from common.features.activity import ITEM_ACTIVITY, USER_ACTIVITY_SCALARS
from common.funnel.catalog import ItemTable
from common.models import distributed
from common.models.deep import Columns, n_rows
from common.models.multitask import MultiTaskRanker
from common.models.scorer import score
from common.models.tabular import LightGBMCTR
from common.retrieval.sources import RetrievalRequest
from common.retrieval.tower_training import HISTORY_GROUPS, RECENT_ENGAGEMENTS
from common.retrieval.two_tower import TwoTowerModel

DAY_S = 86_400.0
DERIVED = [
    "tower_score",
    "history_similarity",
    "group_share",
    "language_match",
    "history_length",
    "days_since_engaged",
    "item_age_days",
]
USER_TOTALS = [c for c in USER_ACTIVITY_SCALARS if c != "last_engaged_s"]
EMBEDDING_BATCH = 4096  # items per Ray Data batch when a catalogue is embedded on the cluster


def model_columns(schema: Schema) -> tuple[list[str], list[str]]:
    """(categorical, numeric) inputs of every ranker."""
    categorical = [*schema.user_categorical, *schema.item_categorical]
    numeric = [*schema.user_numeric, *schema.item_numeric, *ITEM_ACTIVITY, *USER_TOTALS, *DERIVED]
    return categorical, numeric


def build_rankers(schema: Schema, config: dict, seed: int) -> dict[str, object]:
    """LightGBM on the chapter's label (the baseline) and the multi-task network (engage, satisfy, value)."""
    categorical, numeric = model_columns(schema)
    m = config["models"]
    return {
        "lightgbm": LightGBMCTR(categorical, numeric, random_state=seed, n_threads=m["threads"], **m["lightgbm"]),
        "multitask": MultiTaskRanker(
            categorical, numeric, random_state=seed, n_threads=m["torch_threads"], **m["multitask"]
        ),
    }


def embed_items(tower: TwoTowerModel, items: pd.DataFrame, workers: int | None = None) -> np.ndarray:
    """(n_items, d) item-tower embeddings: in this process, or by Ray Data in batches over the cluster."""
    if workers is None:
        return tower.item_embeddings(items)

    def embed(batch: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"vector": list(tower.item_embeddings(batch))})

    vectors = distributed.map_batches_on_ray(items, embed, EMBEDDING_BATCH, concurrency=workers)["vector"]
    return np.stack(vectors).astype(np.float32)


def served_columns(schema: Schema, step_columns: tuple[str, ...] = ()) -> list[str]:
    """The item metadata a request reads: ranker inputs, the response's title and genre, and what the
    funnel's candidate filters and re-ranking steps read (`step_columns`)."""
    columns = ["item_id", schema.title_column, schema.group_column, *schema.item_categorical, *schema.item_numeric]
    return list(dict.fromkeys([*columns, *step_columns]))


def step_columns(serving_config: dict) -> tuple[str, ...]:
    """The item columns the funnel's steps read (their `item` option), besides release_s."""
    steps = [*serving_config.get("candidate_filters", []), *serving_config.get("re_ranking", [])]
    return tuple(dict.fromkeys(s["item"] for s in steps if "item" in s and s["item"] != "release_s"))


@dataclass
class ItemCatalog(ItemTable):
    """A recommender's items: their metadata by row (ItemTable), tower embeddings and genre codes."""

    schema: Schema
    vectors: np.ndarray  # (n, d) float32 item-tower embeddings
    groups: list[str]  # genre vocabulary
    group_codes: np.ndarray  # (n,) index into groups
    release_s: np.ndarray  # (n,) int64 seconds since the epoch

    @classmethod
    def build(
        cls,
        metadata: pd.DataFrame,
        schema: Schema,
        tower: TwoTowerModel,
        recent_engagements: np.ndarray,
        step_columns: tuple[str, ...] = (),
        workers: int | None = None,
    ) -> ItemCatalog:
        """metadata: the item_metadata view's rows (release as `release_s`); recent_engagements: each
        item's engagements over the trailing activity window as of the catalogue's time, which the
        item tower reads (the embeddings depend on when the catalogue is built). With `workers`, the catalogue
        is embedded in batches by that many Ray Data tasks (common/models/distributed.py)."""
        metadata = metadata.reset_index(drop=True).assign(**{RECENT_ENGAGEMENTS: np.log1p(recent_engagements)})
        groups = sorted(metadata[schema.group_column].astype(str).unique())
        codes = pd.Categorical(metadata[schema.group_column].astype(str), groups).codes.astype(np.int64)
        return cls(
            item_ids=metadata["item_id"].to_numpy(np.int64),
            columns={c: metadata[c].to_numpy() for c in served_columns(schema, step_columns)},
            schema=schema,
            vectors=embed_items(tower, metadata, workers),
            groups=groups,
            group_codes=codes,
            release_s=metadata["release_s"].to_numpy(np.int64),
        )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.columns["release_s"] = self.release_s  # what the released filter and freshness read


@dataclass
class UserStates:
    """Users as of given times: one row each, with what the ranker and the user tower read. Columns are
    plain arrays, so a served request (one state) pays no pandas overhead."""

    columns: dict[str, np.ndarray]  # user_id, profile, activity totals, last_engaged_s, history/seen lists, genres
    vectors: np.ndarray  # (n, d) user-tower embeddings
    history_mean: np.ndarray  # (n, d) mean item embedding of the history (zeros without history)
    group_share: np.ndarray  # (n, n_groups) share of the history in each genre

    def __len__(self) -> int:
        return len(self.vectors)

    def row(self, i: int) -> dict:
        """One state's values by column name."""
        return {name: values[i] for name, values in self.columns.items()}

    @classmethod
    def build(
        cls,
        frame: Columns,
        tower: TwoTowerModel,
        catalog: ItemCatalog,
        batch: np.ndarray | None = None,
        history_groups: list[list[str]] | None = None,
    ) -> UserStates:
        """`frame`: one row per state (a DataFrame, or column -> array). Rows that share a `batch` value
        (e.g. the snapshot) must have distinct user ids: the tower embeds one batch at a time.
        `history_groups` replaces the genres read off the history (a new user's favourite genres)."""
        columns = {
            name: np.asarray(frame[name]) for name in (frame.columns if isinstance(frame, pd.DataFrame) else frame)
        }
        n = n_rows(columns)
        history = columns["history_item_ids"]
        lengths = np.fromiter((len(h) for h in history), dtype=np.int64, count=n)
        owner = np.repeat(np.arange(n), lengths)
        flat = np.concatenate([np.asarray(h, dtype=np.int64) for h in history]) if lengths.sum() else np.zeros(0, int)
        rows = catalog.rows(flat)
        known = rows >= 0
        owner, rows = owner[known], rows[known]
        counts = np.bincount(owner, minlength=n).astype(np.float32)[:, None]
        history_mean = np.zeros((n, catalog.vectors.shape[1]), dtype=np.float32)
        np.add.at(history_mean, owner, catalog.vectors[rows])
        history_mean /= np.maximum(counts, 1.0)
        group_share = np.zeros((n, len(catalog.groups)), dtype=np.float32)
        np.add.at(group_share, (owner, catalog.group_codes[rows]), 1.0)
        group_share /= np.maximum(counts, 1.0)
        if history_groups is not None:  # a new user's picked genres also stand in for the history's shares
            for i, picked in enumerate(history_groups):
                codes = [catalog.groups.index(g) for g in picked if g in catalog.groups]
                if codes and counts[i, 0] == 0:
                    group_share[i, codes] = 1.0 / len(codes)
        groups = history_groups
        if groups is None:
            groups = _split(np.asarray(catalog.groups, dtype=object)[catalog.group_codes[rows]], owner, n)
        columns[HISTORY_GROUPS] = np.empty(n, dtype=object)
        columns[HISTORY_GROUPS][:] = groups
        pair_users, pair_items = columns["user_id"][owner], catalog.item_ids[rows]
        vectors = np.zeros((n, catalog.vectors.shape[1]), dtype=np.float32)
        batches = np.zeros(n, dtype=np.int64) if batch is None else np.asarray(batch)
        for value in np.unique(batches):
            members = np.flatnonzero(batches == value)
            in_batch = batches[owner] == value
            users = {name: values[members] for name, values in columns.items()}
            history_pairs = {"user_id": pair_users[in_batch], "item_id": pair_items[in_batch]}
            vectors[members] = tower.user_embeddings(users, history_pairs)
        return cls(columns, vectors, history_mean, group_share)


def _split(values: np.ndarray, owner: np.ndarray, n: int) -> list[list]:
    """Per owner 0..n-1, the list of its values (owner sorted ascending)."""
    bounds = np.searchsorted(owner, np.arange(n + 1))
    return [values[bounds[i] : bounds[i + 1]].tolist() for i in range(n)]


def model_inputs(
    states: UserStates,
    state_rows: np.ndarray,
    catalog: ItemCatalog,
    item_rows: np.ndarray,
    now_s: np.ndarray | float,
    activity: dict[str, np.ndarray],
    as_frame: bool = True,
) -> pd.DataFrame | dict[str, np.ndarray]:
    """One row per (state, item) pair: the rankers' inputs. `activity`: ITEM_ACTIVITY columns, one value
    per pair (as of each pair's time). `as_frame=False` returns the columns as a dict of arrays, which
    every ranker reads too: a served request then builds no DataFrame."""
    schema, user = catalog.schema, states.columns
    columns: dict[str, np.ndarray] = {}
    for c in (*schema.user_categorical, *schema.user_numeric, *USER_TOTALS):
        columns[c] = user[c][state_rows]
    for c in (*schema.item_categorical, *schema.item_numeric):
        columns[c] = catalog.columns[c][item_rows]
    for c in ITEM_ACTIVITY:
        columns[c] = np.asarray(activity[c], dtype=float)
    now_s = np.broadcast_to(np.asarray(now_s, dtype=float), len(item_rows))
    user_vectors, item_vectors = states.vectors[state_rows], catalog.vectors[item_rows]
    columns["tower_score"] = np.einsum("nd,nd->n", user_vectors, item_vectors)
    columns["history_similarity"] = np.einsum("nd,nd->n", states.history_mean[state_rows], item_vectors)
    columns["group_share"] = states.group_share[state_rows, catalog.group_codes[item_rows]]
    if schema.language is not None:
        user_language, item_language = schema.language
        columns["language_match"] = (
            user[user_language][state_rows] == catalog.columns[item_language][item_rows]
        ).astype(float)
    else:
        columns["language_match"] = np.zeros(len(item_rows))
    lengths = np.fromiter((len(h) for h in user["history_item_ids"]), dtype=float, count=len(states))
    columns["history_length"] = lengths[state_rows]
    last = user["last_engaged_s"].astype(float)[state_rows]
    columns["days_since_engaged"] = np.where(last >= 0, (now_s - last) / DAY_S, np.nan)
    columns["item_age_days"] = (now_s - catalog.release_s[item_rows]) / DAY_S
    return pd.DataFrame(columns) if as_frame else columns


@dataclass
class RecommenderScorer:
    """The recommenders' scorer: the ranking features of a request's user state and its candidates, then
    the ranker's score combined as the config says (common.models.scorer). The request's context is
    (UserStates, row)."""

    ranker: object
    catalog: ItemCatalog
    activity: dict[str, np.ndarray]  # ITEM_ACTIVITY per catalogue row, as of the serving time
    combination: dict

    def __call__(self, request: RetrievalRequest, item_rows: np.ndarray) -> np.ndarray:
        states, row = request.context
        activity = {c: values[item_rows] for c, values in self.activity.items()}
        rows = np.full(len(item_rows), row)
        X = model_inputs(states, rows, self.catalog, item_rows, request.now_s, activity, as_frame=False)
        return score(self.ranker, X, self.combination)


def recommender_request(states: UserStates, row: int, schema: Schema, now_s: float) -> RetrievalRequest:
    """The funnel's request for one user state: its tower vector, its profile as attributes (segments as
    the strings popularity is keyed by), its engaged items excluded."""
    user = states.row(row)
    attributes = {c: user.get(c) for c in (*schema.user_categorical, *schema.user_numeric)}
    attributes.update({s: str(user[s]) for s in schema.segments})
    seen = np.asarray(user["seen_item_ids"], dtype=np.int64)
    return RetrievalRequest(int(user["user_id"]), states.vectors[row], attributes, seen, now_s, (states, row))
