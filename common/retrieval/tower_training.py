"""Candidate generation of the recommendation systems: the two-tower model trained on the logs,
its faiss index, and the non-personalised sources (popularity, per segment, trending), all as of
a point in time.

The two-tower's training examples are the positives (the chapter's label) of a period; the user
tower reads each user's most recent positives *before* that period as history (and their genres
as a multi-hot), so it learns to predict what comes next from what came before, and never reads
the label off its input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.data.dataset import Dataset, Schema
from common.features.windows import daily_counts, day_index, trailing_window_sums
from common.models import distributed
from common.retrieval.ann import ANNIndex
from common.retrieval.sources import (
    RankedList,
    RetrievalRequest,
    SegmentedRankedList,
    popularity_source,
    trending_source,
)
from common.retrieval.two_tower import TowerSpec, TwoTowerModel

log = logging.getLogger(__name__)
HISTORY_GROUPS = "history_groups"  # the user tower's multi-hot: genres of the user's recent positives
# The item tower's popularity input: log1p of the item's engagements over the trailing activity
# window. Without it the tower can only encode popularity in an embedding's direction; measured
# on the game world (where relevance is mostly popularity) its recall@100 stayed below
# popularity's own.
RECENT_ENGAGEMENTS = "log_recent_engagements"


def user_spec(schema: Schema) -> TowerSpec:
    return TowerSpec("user_id", schema.user_categorical, schema.user_numeric, (HISTORY_GROUPS,))


def item_spec(schema: Schema) -> TowerSpec:
    numeric = (*schema.item_numeric, RECENT_ENGAGEMENTS)
    return TowerSpec("item_id", schema.item_categorical, numeric, schema.item_multi_hot)


def recent_engagements(data: Dataset, as_of: pd.Timestamp, window_days: int) -> np.ndarray:
    """(n_items,) engagements of each item (rows of data.items) in [as_of - window, as_of): the
    item_activity view's item_engaged_window at a snapshot."""
    events = data.events
    recent = events[
        (events["event_timestamp"] < as_of)
        & (events["event_timestamp"] >= as_of - pd.Timedelta(days=window_days))
        & (events["engaged"] == 1)
    ]
    counts = recent["item_id"].value_counts()
    return counts.reindex(data.items["item_id"], fill_value=0).to_numpy(float)


def history_pairs(history: pd.Series) -> pd.DataFrame:
    """(user_id, item_id) pairs from a user_id-indexed Series of item-id lists."""
    exploded = history.explode().dropna()
    return pd.DataFrame({"user_id": exploded.index.to_numpy(np.int64), "item_id": exploded.to_numpy(np.int64)})


def with_history_groups(users: pd.DataFrame, history: pd.Series, item_groups: pd.Series) -> pd.DataFrame:
    """`users` plus the genres of each user's history (a list per row, [] without history).
    history: user_id -> list of item ids; item_groups: item_id -> genre."""
    pairs = history_pairs(history)
    groups = pairs.assign(group=item_groups.reindex(pairs["item_id"]).to_numpy()).groupby("user_id")["group"]
    by_user = groups.agg(list)
    users = users.copy()
    users[HISTORY_GROUPS] = [by_user.get(u, []) for u in users["user_id"].to_numpy()]
    return users


def last_positives_before(events: pd.DataFrame, cutoff: pd.Timestamp, n: int) -> pd.Series:
    """user_id -> the item ids of the user's last n positives before `cutoff`, oldest first."""
    before = events[(events["event_timestamp"] < cutoff) & (events["positive"] == 1)]
    return before.groupby("user_id")["item_id"].agg(lambda s: s.to_numpy()[-n:].tolist())


def engagements_before_day(data: Dataset, events: pd.DataFrame, window_days: int) -> np.ndarray:
    """(len(events),) engagements of each event's item over the `window_days` days before the event's day."""
    engaged = data.events[data.events["engaged"] == 1]
    n_items, n_days = len(data.items), data.n_days
    index = pd.Index(data.items["item_id"])
    per_day = daily_counts(
        index.get_indexer(engaged["item_id"]), day_index(engaged["event_timestamp"], data.start), n_items, n_days
    )
    before = trailing_window_sums(per_day, window_days)  # (n_items, n_days + 1): column d covers days < d
    return before[index.get_indexer(events["item_id"]), day_index(events["event_timestamp"], data.start)]


def fit_two_tower(
    data: Dataset, cutoff: pd.Timestamp, config: dict, window_days: int, seed: int, workers: int | None = None
) -> tuple[TwoTowerModel, dict]:
    """Train on the positives of [history_end, cutoff). The user tower reads the user's last positives
    before history_end as history; the item tower reads each example's item popularity as of the
    example's own day (the items table's value, as of history_end, only sets that input's scaling).
    Both precede every example, so no example reads its own label. With `workers`, the model trains on that
    many Ray Train workers, data parallel (common/models/distributed.py)."""
    events = data.events
    days_before = (cutoff - data.start) / pd.Timedelta(days=1)
    history_end = data.start + pd.Timedelta(days=int(days_before * config["history_share"]))
    examples = events[
        (events["event_timestamp"] >= history_end) & (events["event_timestamp"] < cutoff) & (events["positive"] == 1)
    ]
    if examples.empty:
        raise ValueError(f"no positive events between {history_end} and {cutoff} to train the two-tower on")
    history = last_positives_before(events, history_end, config["history_length"])
    item_groups = data.items.set_index("item_id")[data.schema.group_column]
    # Only ids that training touches get an id row: the rest (users and items with no positive
    # yet) must map to the shared cold-start row, not to a row left at its random initialisation.
    trained_users = data.users["user_id"].isin(examples["user_id"])
    trained_items = data.items["item_id"].isin(examples["item_id"]) | data.items["item_id"].isin(
        history_pairs(history)["item_id"]
    )
    users = with_history_groups(data.users[trained_users.to_numpy()].reset_index(drop=True), history, item_groups)
    popularity = np.log1p(recent_engagements(data, history_end, window_days))
    items = data.items.assign(**{RECENT_ENGAGEMENTS: popularity})[trained_items.to_numpy()].reset_index(drop=True)
    # Each example sees its item's popularity as of its own day, as serving sees it as of the request.
    at_example = np.log1p(engagements_before_day(data, examples, window_days))
    model = TwoTowerModel(user_spec(data.schema), item_spec(data.schema), random_state=seed, **config["two_tower"])
    model = distributed.fit(
        model,
        workers,
        users,
        items,
        examples[["user_id", "item_id"]],
        history_pairs(history),
        interaction_item_numeric=pd.DataFrame({RECENT_ENGAGEMENTS: at_example}),
    )
    info = {
        "n_examples": len(examples),
        "n_trained_users": len(users),
        "n_trained_items": len(items),
        "history_end": str(history_end.date()),
        "cutoff": str(cutoff.date()),
    }
    log.info("two-tower trained on %d positives, final loss %.4f", len(examples), model.train_loss_[-1])
    return model, info


@dataclass(frozen=True)
class TwoTowerSource:
    """Candidates by inner product with the user's tower embedding, through the ANN index."""

    index: ANNIndex
    name: str = "two_tower"

    def retrieve(self, request: RetrievalRequest, k: int) -> np.ndarray:
        if request.user_vector is None:
            return np.zeros(0, dtype=np.int64)
        return self.index.search(request.user_vector[None, :], k)[1][0]


def nonpersonal_sources(
    data: Dataset, users: pd.DataFrame, now: pd.Timestamp, config: dict
) -> list[RankedList | SegmentedRankedList]:
    """Popularity (global and per segment) over the engagements of the last `popularity_days`, and
    trending, as of `now`: only events before it count."""
    events = data.events
    recent = events[
        (events["event_timestamp"] < now)
        & (events["event_timestamp"] >= now - pd.Timedelta(days=config["popularity_days"]))
        & (events["engaged"] == 1)
    ]
    sources: list[RankedList | SegmentedRankedList] = [popularity_source(recent, name="popularity")]
    if data.schema.segments:
        recent = recent.merge(users[["user_id", *data.schema.segments]], on="user_id", how="left")
        sources += [
            popularity_source(recent, name=f"popularity_{segment}", segment_column=segment)
            for segment in data.schema.segments
        ]
    engaged = events[events["engaged"] == 1]
    sources.append(
        trending_source(
            engaged,
            now,
            recent=pd.Timedelta(days=config["trending_recent_days"]),
            baseline=pd.Timedelta(days=config["trending_baseline_days"]),
        )
    )
    return sources
