"""The video world's tables in the shared recommendation shape (common.data.dataset)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.data.dataset import Dataset, Schema
from systems.video.world import (
    AGE_RATINGS,
    DAY_S,
    MINIMUM_AGE,
    START,
    VideoTables,
    VideoWorld,
    positive_label,
    seconds_since_start,
)

SCHEMA = Schema(
    item_name="video",
    group_column="genre",
    user_categorical=("gender", "country", "language"),
    user_numeric=("age",),
    item_categorical=("genre", "video_language", "age_rating", "channel_id"),
    item_numeric=("log_duration",),
    item_multi_hot=("tags",),
    segments=("country", "language"),
    language=("language", "video_language"),
    release_column="release_timestamp",
    user_age_column="age",
)


@dataclass(frozen=True)
class VideoOracle:
    """The world's relevance (P(positive | the user starts the video)), for eligible videos."""

    world: VideoWorld

    def relevance(self, user_ids: np.ndarray, item_ids: np.ndarray, as_of: pd.Timestamp) -> np.ndarray:
        eligible = self.world.eligible(user_ids, item_ids, at=as_of)
        day = int(seconds_since_start(as_of) // DAY_S)  # the tastes of the day (they drift after the logs only)
        return np.where(eligible, self.world.relevance(user_ids, item_ids, day), 0.0)

    def top_relevant(self, user_ids, k: int, as_of: pd.Timestamp, exclude: pd.DataFrame) -> dict[int, np.ndarray]:
        excluded = exclude.groupby("user_id")["item_id"].agg(set).to_dict() if len(exclude) else {}
        widest = max((len(s) for s in excluded.values()), default=0)
        top = self.world.top_relevant(np.asarray(user_ids), k + widest, as_of=as_of)
        return {user: ids[~np.isin(ids, list(excluded.get(user, ())))][:k] for user, ids in top.items()}


def interaction_events(interactions: pd.DataFrame) -> pd.DataFrame:
    """Impressions of the interactions table as the Dataset's events: the logs', and the online simulator's
    days that join them."""
    return pd.DataFrame(
        {
            "user_id": interactions["user_id"].to_numpy(np.int64),
            "item_id": interactions["video_id"].to_numpy(np.int64),
            "event_timestamp": interactions["event_timestamp"],
            "engaged": interactions["clicked"].to_numpy(np.int8),
            "positive": positive_label(interactions).astype(np.int8),
            "value": interactions["watch_fraction"].to_numpy(np.float32),
        }
    )


def to_dataset(world: VideoWorld, tables: VideoTables) -> Dataset:
    events = interaction_events(tables.interactions)
    # Feast joins user and item features into one row: names must not collide (user "language").
    videos = tables.videos.rename(
        columns={"video_id": "item_id", "upload_timestamp": "release_timestamp", "language": "video_language"}
    )
    videos["minimum_age"] = MINIMUM_AGE[pd.Categorical(videos["age_rating"], AGE_RATINGS).codes]
    videos["log_duration"] = np.log(videos["duration_s"].astype(float))
    users = tables.users.drop(columns=["signup_timestamp"])
    return Dataset(users, videos, events, START, SCHEMA, oracle=VideoOracle(world))


def load(config: dict) -> Dataset:
    world = VideoWorld(**config["world"])
    return to_dataset(world, world.generate())
