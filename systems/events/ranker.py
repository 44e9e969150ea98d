"""What the shared ranking pipeline (common.pipelines.ranking) needs from the event system: its
examples (every logged impression with its pair features as of its day), its models (chapter 6: LR,
LightGBM pointwise, LightGBM lambdarank, rare registrations handled by class weights) and its funnel
as of any day."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.data.dataset import Dataset
from common.data.periods import Periods
from common.features.store import FeatureRepo
from common.models.tabular import LightGBMCTR, LightGBMRanker, LogisticRegressionCTR
from common.pipelines.ranking import Examples, RankingTask
from common.retrieval.sources import RetrievalRequest
from systems.events.dataset import LABELS
from systems.events.features import (
    CATEGORICAL,
    EVENT_VIEWS,
    NUMERIC,
    SERVICE,
    USER_VIEWS,
    VIEWS,
    feature_tables,
    pair_features,
)
from systems.events.funnel import EventsState, fill_missing, user_columns


def snapshot_of(data: Dataset, timestamps: pd.Series, every: int) -> pd.Series:
    """The snapshot a time reads: the last one stamped at or before it."""
    return data.start + ((timestamps - data.start) // pd.Timedelta(days=every)) * pd.Timedelta(days=every)


def event_frame(repo: FeatureRepo, item_ids: np.ndarray, at: pd.Series | pd.Timestamp) -> pd.DataFrame:
    """Each event's metadata, activity and host activity as of `at` (offline store)."""
    rows = pd.DataFrame({"item_id": np.asarray(item_ids, dtype=np.int64), "event_timestamp": at})
    events = repo.as_of(EVENT_VIEWS, rows)
    hosts = events[["host_id", "event_timestamp"]].astype({"host_id": np.int64})
    host_activity = repo.as_of(("host_activity",), hosts).drop(columns=["host_id", "event_timestamp"])
    return fill_missing(pd.concat([events, host_activity], axis=1))


def user_frame(repo: FeatureRepo, user_ids: np.ndarray, at: pd.Series | pd.Timestamp) -> pd.DataFrame:
    rows = pd.DataFrame({"user_id": np.asarray(user_ids, dtype=np.int64), "event_timestamp": at})
    return fill_missing(repo.as_of(USER_VIEWS, rows))


def examples(data: Dataset, repo: FeatureRepo, config: dict, since: pd.Timestamp) -> Examples:
    """One row per logged impression. Features are read once per (user, snapshot) and (event, snapshot),
    not per impression, then gathered."""
    events = data.events[data.events["event_timestamp"] >= since].reset_index(drop=True)
    snapshot = snapshot_of(data, events["event_timestamp"], config["features"]["snapshot_every_days"])
    user_keys = pd.MultiIndex.from_arrays([events["user_id"], snapshot])
    event_keys = pd.MultiIndex.from_arrays([events["item_id"], snapshot])
    user_codes, unique_users = pd.factorize(user_keys)
    event_codes, unique_events = pd.factorize(event_keys)
    users = user_frame(repo, unique_users.get_level_values(0), unique_users.get_level_values(1))
    items = event_frame(repo, unique_events.get_level_values(0), unique_events.get_level_values(1))
    user = {c: users[c].to_numpy()[user_codes] for c in users.columns}
    event = {c: items[c].to_numpy()[event_codes] for c in items.columns}
    now_s = (events["event_timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    X = pd.DataFrame(pair_features(user, event, now_s.to_numpy(float), invited=events["invited"].to_numpy()))
    groups, _ = pd.factorize(user_keys)
    return Examples(
        X[CATEGORICAL + NUMERIC],
        events[list(LABELS)].reset_index(drop=True),
        events["event_timestamp"].to_numpy(),
        groups,
    )


def build_models(config: dict) -> dict:
    m, seed = config["models"], config["seed"]
    threads, weight = m["threads"], m["class_weight"]
    return {
        "logistic_regression": LogisticRegressionCTR(
            CATEGORICAL, NUMERIC, class_weight=weight, **m["logistic_regression"]
        ),
        "lightgbm": LightGBMCTR(
            CATEGORICAL, NUMERIC, random_state=seed, n_threads=threads, class_weight=weight, **m["lightgbm"]
        ),
        "lambdarank": LightGBMRanker(CATEGORICAL, NUMERIC, random_state=seed, n_threads=threads, **m["lambdarank"]),
    }


@dataclass
class OfflineState:
    """The funnel as of a day's start, for the pipeline's request-by-request evaluation."""

    state: EventsState
    repo: FeatureRepo

    def requests(self, user_ids: np.ndarray) -> list[RetrievalRequest]:
        users = user_frame(self.repo, user_ids, self.state.now)
        return [self.state.request(user) for user in user_columns(users)]

    def funnel(self, model):
        return self.state.funnel(model)

    def baselines(self, models: dict) -> dict:
        return {"nearby and popular": self.state.nearby_and_popular()}

    def eligible(self, request: RetrievalRequest) -> np.ndarray:
        return self.state.eligible(request)


def state_at(data: Dataset, repo: FeatureRepo, config: dict, day: pd.Timestamp) -> OfflineState:
    return OfflineState(EventsState.build(event_frame(repo, data.items["item_id"].to_numpy(), day), day, config), repo)


def new_events(data: Dataset, periods: Periods) -> dict[str, set]:
    """The events that entered the catalogue after the ranker's training period: the constant cold start."""
    cutoff = periods.start("validation")
    new = data.items.loc[data.items["release_timestamp"] >= cutoff, "item_id"]
    return {"events created after the training cutoff": set(new.tolist())}


TASK = RankingTask(
    labels=LABELS,
    feature_tables=feature_tables,
    views=VIEWS,
    services=SERVICE,
    examples=examples,
    build_models=build_models,
    state_at=state_at,
    item_segments=new_events,
)
