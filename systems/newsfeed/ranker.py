"""What the shared ranking pipeline (common.pipelines.ranking) needs from the news feed: its examples
(every logged impression, with its features as of its time), its models (chapter 6: one multi-task
network with a head per reaction, dwell and skip, against one LightGBM per head) and its funnel as of
any day, with the chronological and popularity feeds to beat."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.data.dataset import Dataset
from common.features.store import FeatureRepo
from common.models.heads import Head
from common.models.multitask import MultiHeadNetwork
from common.models.tabular import LightGBMHeads
from common.pipelines.ranking import Examples, RankingTask
from common.retrieval.sources import RetrievalRequest
from systems.newsfeed.dataset import LABELS
from systems.newsfeed.features import (
    ACTIVITY_PERIOD,
    POST_COUNTS,
    SERVICE,
    USER_VIEWS,
    VIEWS,
    UserStates,
    feature_tables,
    model_columns,
    pair_features,
    vector_matrix,
)
from systems.newsfeed.funnel import FeedState

HEADS = [
    *(Head(label, label) for label in ("click", "like", "comment", "share", "hide", "skip")),
    Head("dwell_s", "dwell_s", "regression", transform="log1p"),  # heavy-tailed seconds: learned on log1p
]
WITHOUT_DWELL_AND_SKIP = "funnel: multitask without the dwell and skip heads"


def snapshot_of(data: Dataset, timestamps: pd.Series, every: int) -> pd.Series:
    """The daily snapshot a time reads: the last one at or before it."""
    return data.start + ((timestamps - data.start) // pd.Timedelta(days=every)) * pd.Timedelta(days=every)


def user_states(repo: FeatureRepo, user_ids, at, config: dict) -> UserStates:
    rows = pd.DataFrame({"user_id": np.asarray(user_ids, dtype=np.int64), "event_timestamp": at})
    return UserStates(repo.as_of(USER_VIEWS, rows), config)


def posts_at(repo: FeatureRepo, item_ids: np.ndarray, at) -> pd.DataFrame:
    """Each post's metadata and its counts as of `at` (one time, or one per post)."""
    rows = pd.DataFrame({"item_id": np.asarray(item_ids, dtype=np.int64), "event_timestamp": at})
    return fill_post_counts(repo.as_of(("post_metadata", "post_activity"), rows))


def fill_post_counts(posts: pd.DataFrame) -> pd.DataFrame:
    """A post nobody has seen yet has no counts row: zeros."""
    return posts.assign(**{c: posts[c].astype(float).fillna(0.0) for c in POST_COUNTS})


def examples(data: Dataset, repo: FeatureRepo, config: dict, since: pd.Timestamp) -> Examples:
    """One row per logged impression. A user's state is read once per (user, day), a post's counts once
    per (post, 10 minutes): the snapshots change no more often."""
    events = data.events[data.events["event_timestamp"] >= since].reset_index(drop=True)
    day = snapshot_of(data, events["event_timestamp"], config["features"]["snapshot_every_days"])
    user_codes, user_keys = pd.factorize(pd.MultiIndex.from_arrays([events["user_id"], day]))
    states = user_states(repo, user_keys.get_level_values(0), user_keys.get_level_values(1), config)
    # Metadata once per post (static: read as of the logs' end), counts once per (post, 10 minutes).
    metadata_codes, post_ids = pd.factorize(events["item_id"])
    metadata = repo.as_of(("post_metadata",), pd.DataFrame({"item_id": post_ids, "event_timestamp": data.start}))
    bucket = events["event_timestamp"].dt.floor(ACTIVITY_PERIOD)
    count_codes, count_keys = pd.factorize(pd.MultiIndex.from_arrays([events["item_id"], bucket]))
    counts = repo.as_of(
        ("post_activity",),
        pd.DataFrame({"item_id": count_keys.get_level_values(0), "event_timestamp": count_keys.get_level_values(1)}),
    )
    post_columns = {c: metadata[c].to_numpy()[metadata_codes] for c in metadata.columns if not c.endswith("_vector")}
    for column in ("text_vector", "hashtag_vector"):
        post_columns[column] = vector_matrix(metadata[column])[metadata_codes]
    post_columns.update({c: fill_post_counts(counts)[c].to_numpy()[count_codes] for c in POST_COUNTS})
    now_s = (events["event_timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    X = pd.DataFrame(
        pair_features(states, user_codes, post_columns, now_s.to_numpy(float), events["device"].to_numpy(), config)
    )
    categorical, numeric = model_columns(config)
    return Examples(
        X[categorical + numeric],
        events[list(LABELS)].reset_index(drop=True),
        events["event_timestamp"].to_numpy(),
        pd.factorize(events["session_id"])[0],
    )


def build_models(config: dict) -> dict:
    categorical, numeric = model_columns(config)
    m, seed = config["models"], config["seed"]
    return {
        "multitask": MultiHeadNetwork(
            categorical, numeric, heads=HEADS, random_state=seed, n_threads=m["torch_threads"], **m["multitask"]
        ),
        "lightgbm_heads": LightGBMHeads(
            categorical, numeric, heads=HEADS, random_state=seed, n_threads=m["threads"], **m["lightgbm_heads"]
        ),
    }


def without_dwell_and_skip(combination: dict) -> dict:
    weights = {head: w for head, w in combination["weights"].items() if head not in ("dwell_s", "skip")}
    return {**combination, "weights": weights}


@dataclass
class OfflineFeedState:
    """The funnel as of a day's start, for the pipeline's request-by-request evaluation."""

    state: FeedState
    repo: FeatureRepo
    config: dict

    def requests(self, user_ids: np.ndarray) -> list[RetrievalRequest]:
        states = user_states(self.repo, user_ids, self.state.now, self.config)
        return [self.state.request(states, row) for row in range(len(states))]

    def funnel(self, model):
        return self.state.funnel(model)

    def baselines(self, models: dict) -> dict:
        lists = {"chronological": self.state.chronological(), "popularity": self.state.popularity()}
        if "multitask" in models:
            reduced = without_dwell_and_skip(self.config["serving"]["score"])
            lists[WITHOUT_DWELL_AND_SKIP] = self.state.funnel(models["multitask"], reduced)
        return lists

    def eligible(self, request: RetrievalRequest) -> np.ndarray:
        return self.state.eligible(request)


def state_at(data: Dataset, repo: FeatureRepo, config: dict, day: pd.Timestamp) -> OfflineFeedState:
    return OfflineFeedState(FeedState.build(posts_at(repo, data.items["item_id"], day), day, config), repo, config)


def passive_users(data: Dataset) -> dict[str, set]:
    """The world's passive users (hidden from every feature): the chapter's case for dwell and skip."""
    if data.oracle is None:
        return {}
    return {"passive users": set(data.oracle.world.passive_users().tolist())}


TASK = RankingTask(
    labels=LABELS,
    feature_tables=feature_tables,
    views=VIEWS,
    services=SERVICE,
    examples=examples,
    build_models=build_models,
    state_at=state_at,
    user_segments=passive_users,
)
