"""The Steam tables (synthetic world or the public files) in the shared recommendation shape
(common.data.dataset).

Only what was known at prediction time becomes a feature: the games table is a snapshot taken
at the end of the data (its rating, positive_ratio, user_reviews and discount describe that
moment), so items keep just their static metadata (tags, release date, list price,
platforms) and every count comes from the reviews, as of each snapshot. users.csv's
products / reviews are end-of-data counts too and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.data.dataset import Dataset, Schema
from systems.game.steam import GameTables, load_steam
from systems.game.world import GameWorld, positive_label

UNKNOWN_GENRE = "(untagged)"
SCHEMA = Schema(
    item_name="game",
    group_column="genre",
    item_categorical=("genre", "platforms"),
    item_numeric=("log_price", "is_free"),
    item_multi_hot=("tags",),
    release_column="release_timestamp",
)


@dataclass(frozen=True)
class GameOracle:
    world: GameWorld

    def relevance(self, user_ids: np.ndarray, item_ids: np.ndarray, as_of: pd.Timestamp) -> np.ndarray:
        return self.world.relevance(user_ids, item_ids, as_of=as_of)

    def top_relevant(self, user_ids, k: int, as_of: pd.Timestamp, exclude: pd.DataFrame) -> dict[int, np.ndarray]:
        exclude = exclude.rename(columns={"item_id": "app_id"})[["user_id", "app_id"]]
        return self.world.top_relevant(np.asarray(user_ids), k, as_of=as_of, exclude=exclude)


def review_events(reviews: pd.DataFrame) -> pd.DataFrame:
    """Reviews (rows of recommendations.csv) as the Dataset's events, in their order: the logs' and the online
    simulator's days (systems/game/online.py)."""
    return pd.DataFrame(
        {
            "user_id": reviews["user_id"].to_numpy(np.int64),
            "item_id": reviews["app_id"].to_numpy(np.int64),
            "event_timestamp": reviews["date"],
            "engaged": np.ones(len(reviews), dtype=np.int8),  # a review means the game was played
            "positive": positive_label(reviews).to_numpy(np.int8),
            "value": np.log1p(reviews["hours"].to_numpy(np.float32)),
        }
    )


def to_dataset(tables: GameTables, oracle: GameOracle | None = None) -> Dataset:
    reviews = tables.recommendations
    events = review_events(reviews).sort_values("event_timestamp", kind="stable", ignore_index=True)
    games = tables.games.merge(tables.metadata[["app_id", "tags"]], on="app_id", how="left")
    tags = games["tags"].apply(lambda t: list(t) if isinstance(t, list | np.ndarray) else [])
    platforms = np.where(games["win"], "w", "") + np.where(games["mac"], "m", "") + np.where(games["linux"], "l", "")
    items = pd.DataFrame(
        {
            "item_id": games["app_id"].to_numpy(np.int64),
            "title": games["title"],
            # Steam lists tags by votes: the first is the game's genre as players see it.
            "genre": [t[0] if t else UNKNOWN_GENRE for t in tags],
            "tags": tags,
            "platforms": platforms,
            "log_price": np.log1p(games["price_original"].to_numpy(float)),
            "is_free": (games["price_original"] == 0).astype(float),
            "release_timestamp": games["date_release"],
        }
    )
    users = pd.DataFrame({"user_id": np.union1d(tables.users["user_id"], events["user_id"]).astype(np.int64)})
    events = events[events["item_id"].isin(items["item_id"])].reset_index(drop=True)
    start = events["event_timestamp"].min().normalize()
    return Dataset(users, items, events, start, SCHEMA, oracle=oracle)


def sample_reviews(tables: GameTables, last_days: int, max_users: int, seed: int) -> GameTables:
    """The public file holds ~41M reviews over a decade, more than a 2-core machine trains on in
    minutes: keep the last `last_days` days and a seeded sample of at most `max_users` of their users."""
    reviews = tables.recommendations
    reviews = reviews[reviews["date"] >= reviews["date"].max() - pd.Timedelta(days=last_days)]
    users = reviews["user_id"].unique()
    if len(users) > max_users:
        users = np.random.default_rng(seed).choice(users, max_users, replace=False)
        reviews = reviews[reviews["user_id"].isin(users)]
    kept_users = tables.users[tables.users["user_id"].isin(reviews["user_id"])]
    return GameTables(tables.games, kept_users, reviews.reset_index(drop=True), tables.metadata)


def load(config: dict) -> Dataset:
    """The public files at config["data"] when given (`make train DATA=...`; no oracle there), else the
    synthetic world."""
    data = config.get("data")
    if data is not None:
        real = config["real_data"]
        return to_dataset(sample_reviews(load_steam(data), real["last_days"], real["max_users"], config["seed"]))
    world = GameWorld(**config["world"])
    return to_dataset(world.generate(), GameOracle(world))
