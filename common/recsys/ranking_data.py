"""The rankers' examples: logged events of a period with their features as of each event's time
(Feast point-in-time join), plus sampled negatives when the logs hold engagements only.

Steam reviews say what a user played, never what they were shown and skipped. The ranker then
learns "played vs not played" against `negatives_per_event` negatives per logged event, drawn
uniformly from the items released before it (never one the user engaged with in the period).
Uniform, not by popularity: against uniform negatives the engage head's odds estimate
P(play | user, item) up to a constant, so popular games keep the lead they really have; against
popularity-drawn negatives it would learn P(play) / popularity and bury the hits (measured on the
tiny game world: funnel nDCG@10 below popularity's).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from feast import FeatureStore

from common.feature_store import historical_features
from common.recsys.data import RecData
from common.recsys.feature_repo import service_name
from common.recsys.features import ITEM_ACTIVITY, USER_ACTIVITY_SCALARS, item_metadata
from common.recsys.ranking import ItemCatalog, UserStates, model_inputs
from common.retrieval.two_tower import TwoTowerModel

TARGETS = ["engaged", "positive", "value"]
_LIST_DEFAULTS = ("history_item_ids", "seen_item_ids")


def period_events(data: RecData, start: pd.Timestamp, negatives_per_event: int, seed: int) -> pd.DataFrame:
    """Events from `start` on, with sampled negatives when the logs have none."""
    events = data.events[data.events["event_timestamp"] >= start].reset_index(drop=True)
    if data.has_negatives or negatives_per_event == 0:
        return events
    rng = np.random.default_rng(seed)
    item_ids = data.items["item_id"].to_numpy(np.int64)
    release = data.items[data.schema.release_column].to_numpy()
    n = len(events) * negatives_per_event
    drawn = rng.integers(0, len(item_ids), size=n)
    negatives = pd.DataFrame(
        {
            "user_id": np.repeat(events["user_id"].to_numpy(), negatives_per_event),
            "item_id": item_ids[drawn],
            "event_timestamp": np.repeat(events["event_timestamp"].to_numpy(), negatives_per_event),
            "engaged": np.zeros(n, dtype=np.int8),
            "positive": np.zeros(n, dtype=np.int8),
            "value": np.zeros(n, dtype=np.float32),
        }
    )
    released = release[drawn] < negatives["event_timestamp"].to_numpy()
    engaged_pairs = pd.MultiIndex.from_frame(events[["user_id", "item_id"]])
    fresh = ~pd.MultiIndex.from_frame(negatives[["user_id", "item_id"]]).isin(engaged_pairs)
    negatives = negatives[released & fresh]
    both = pd.concat([events[negatives.columns], negatives], ignore_index=True)
    return both.sort_values("event_timestamp", kind="stable", ignore_index=True)


def fill_activity_defaults(frame: pd.DataFrame) -> pd.DataFrame:
    """A user or item with no activity row yet: zero counts, no history, never engaged."""
    frame = frame.copy()
    for column in _LIST_DEFAULTS:
        if column in frame:
            frame[column] = [v if isinstance(v, list | np.ndarray) else [] for v in frame[column]]
    for column in USER_ACTIVITY_SCALARS:
        if column in frame:
            frame[column] = frame[column].fillna(-1 if column == "last_engaged_s" else 0).astype(np.int64)
    for column in ITEM_ACTIVITY:
        if column in frame:
            frame[column] = frame[column].astype(float).fillna(0.0)
    return frame


def training_examples(
    data: RecData,
    store: FeatureStore,
    system: str,
    events: pd.DataFrame,
    tower: TwoTowerModel,
    catalog: ItemCatalog,
    snapshot_every_days: int,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """(model inputs, targets, timestamps) of `events`, features joined as of each event."""
    entity_rows = events[["user_id", "item_id", "event_timestamp"]]
    joined = fill_activity_defaults(historical_features(store, service_name(system), entity_rows))
    # Events of one user within one snapshot period share a state: the same activity row.
    snapshot = (joined["event_timestamp"] - data.start) // pd.Timedelta(days=snapshot_every_days)
    key = joined["user_id"].to_numpy(np.int64) * 100_000 + snapshot.to_numpy(np.int64)
    _, first, state_rows = np.unique(key, return_index=True, return_inverse=True)
    states = UserStates.build(joined.iloc[first], tower, catalog, batch=snapshot.to_numpy()[first])
    item_rows = catalog.rows(joined["item_id"].to_numpy())
    now_s = ((joined["event_timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(float)
    X = model_inputs(states, state_rows, catalog, item_rows, now_s, {c: joined[c].to_numpy() for c in ITEM_ACTIVITY})
    targets = events[TARGETS].reset_index(drop=True).astype({"engaged": np.int8, "positive": np.int8})
    return X, targets, joined["event_timestamp"].to_numpy()


def catalog_from_data(data: RecData, tower: TwoTowerModel) -> ItemCatalog:
    return ItemCatalog.build(item_metadata(data), data.schema, tower)
