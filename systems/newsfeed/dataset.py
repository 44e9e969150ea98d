"""The news feed world's tables as the shared Dataset (common.data.dataset).

users   user_id, age, gender, country
items   one row per post: item_id, author, created time, topic, text, hashtags, media type
events  one row per impression of a post in a feed: the reactions the chapter names (click, like,
        comment, share, hide, skip = dwell below 2 s) and dwell seconds, with the slot and device
tables  connections (follower, followee, friend or follow, since when)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.data.dataset import Dataset
from systems.newsfeed.world import NewsfeedTables, NewsfeedWorld

LABELS = ("click", "like", "comment", "share", "hide", "skip", "dwell_s")
BINARY = LABELS[:-1]
_ORACLE_COLUMNS = {**{f"p_{label}": label for label in BINARY}, "expected_dwell_s": "dwell_s"}


def weighted_engagement(heads: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """The chapter's engagement score: a weighted sum of the reactions (share > comment > like > click,
    hide and skip negative, dwell per second), the same for a model's heads and the oracle's truth."""
    return np.sum([weight * np.asarray(heads[head], dtype=float) for head, weight in weights.items()], axis=0)


@dataclass(frozen=True)
class NewsfeedOracle:
    """The world's truth for the pipeline (common.pipelines.ranking.PairOracle)."""

    world: NewsfeedWorld
    logged: pd.DataFrame  # impression_id -> the true probability of each reaction as it was logged
    weights: dict[str, float]  # the score's weights (config serving.score.weights)

    def gain(self, user_ids: np.ndarray, item_ids: np.ndarray, at: pd.Timestamp) -> np.ndarray:
        """Expected weighted engagement of showing each post at the top of the user's feed at `at`,
        floored at 0 (a gain nDCG can discount)."""
        truth = self.world.reaction_probabilities(np.asarray(user_ids), np.asarray(item_ids), at, slot=0)
        truth["dwell_s"] = truth.pop("dwell")
        return np.maximum(weighted_engagement(truth, self.weights), 0.0)

    def label_probabilities(self, events: pd.DataFrame) -> pd.DataFrame:
        """Each logged impression's true reaction probabilities (and expected dwell), at its slot."""
        rows = events[["impression_id"]].merge(self.logged, on="impression_id", how="left")
        return rows.rename(columns=_ORACLE_COLUMNS).drop(columns="impression_id")


def to_dataset(world: NewsfeedWorld, tables: NewsfeedTables, weights: dict[str, float]) -> Dataset:
    posts = tables.posts.rename(columns={"post_id": "item_id", "created_timestamp": "release_timestamp"})
    impressions = tables.impressions.rename(columns={"post_id": "item_id"})
    users = tables.users.drop(columns=["signup_timestamp"])
    return Dataset(
        users,
        posts,
        impressions,
        tables.impressions["event_timestamp"].min().floor("D"),
        oracle=NewsfeedOracle(world, tables.oracle, weights),
        labels=LABELS,
        event_key="impression_id",
        tables={"connections": tables.connections},
    )


def load(config: dict) -> Dataset:
    world = NewsfeedWorld(**config["world"])
    return to_dataset(world, world.generate(), config["serving"]["score"]["weights"])
