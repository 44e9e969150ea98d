"""Game recommendation on the online simulator (common/online/simulator.py; the recommenders' shared part,
policies included, is common/online/recommender.py): the chapter's online metrics, measured on the world's
players after the logs the models trained on.

  arrivals   the world's homepage visits of a day (who, by how much each plays; when, through the day), after
             the logs' last day, drawn by the world's own `requests`
  policies   the served funnel ranking with the champion, either trained ranker, popularity alone (the
             baseline), random scores, or the oracle: the world's relevance of each game for this player now,
             P(play | recommended now) x P(positive | played), with the world's best games of the whole
             catalogue added to the candidates
  reactions  the world's `respond`: each game shown is played with the world's P(play | recommended now) (the
             offer term of its relevance: choice weight with freshness; no position bias, the world has none),
             and a played game is reviewed by the same `review` that wrote the logs (recommended or not, hours,
             votes). One row per game shown, with the truth it was drawn from (p_play, p_positive) beside it;
             the plays are rows of recommendations.csv. The players' state moves on: a game is played (and
             reviewed) once
  end of day the day's reviews join recommendations.csv and the Dataset's events, the features are rebuilt into
             Feast and the popularity and trending lists recomputed: the next day's funnel excludes what was
             played and reads the new activity
  metrics    positives per request (played past two hours and recommended: the chapter's relevance, the label
             the rankers learn, the oracle's truth; the primary), plays per request, the play rate of the games
             shown (the chapter's CTR), hours played per request (total play time), recommended reviews per
             request (user feedback), spend per request (the chapter's total purchase: the snapshot's final
             price of each paid game played)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import numpy as np
import pandas as pd

from common.online.recommender import RecommenderOnline
from common.online.recommender import online_system as recommender_online_system
from common.online.simulator import Metric, OnlineSystem
from systems.game.recdata import GameOracle, review_events, to_dataset
from systems.game.steam import DATE_DTYPE, RECOMMENDATIONS_SCHEMA
from systems.game.world import DAY_S, START, GameWorld, positive_label

METRICS = {
    "positives_per_request": Metric(
        "positives", "requests", "games played past two hours and recommended (the chapter's label) per visit"
    ),
    "plays_per_request": Metric("plays", "requests", "games played per homepage visit"),
    "play_rate": Metric("plays", "impressions", "plays per game shown (the chapter's CTR)"),
    "hours_per_request": Metric("hours", "requests", "hours played per homepage visit (total play time)"),
    "recommended_per_request": Metric("recommended", "requests", "recommended reviews per visit (user feedback)"),
    "spend_per_request": Metric("spend", "requests", "dollars spent on the paid games played, per visit"),
}
TRUTH_COLUMNS = ("p_play", "p_positive")  # logged beside each game shown, never part of the logs
REVIEW_COLUMNS = tuple(RECOMMENDATIONS_SCHEMA)  # recommendations.csv


class GameOnline(RecommenderOnline):
    """The game world's players after the logs: when they come, and how they react, from the world's truth."""

    metrics = METRICS

    def __init__(self, config: dict, refresh_features: bool = True):
        self.world = GameWorld(**config["world"])
        self.tables = self.world.generate()  # the logs the models trained on (same seed)
        super().__init__("game", config, to_dataset(self.tables, GameOracle(self.world)), refresh_features)
        self.slots = config["evaluation"]["k"]  # the list the offline evaluation judges
        self.requests_per_day = config["online"]["requests_per_day"] or self.world.requests_per_day
        self.first_day = (self.dataset.day_start(self.days_offset) - START) // pd.Timedelta(days=1)
        reviews = self.tables.recommendations
        self._next_request = 0  # the public files log no requests
        self._next_review = int(reviews["review_id"].max()) + 1
        # The players' state: the games each has played (and reviewed: once per game).
        self.played: defaultdict[int, set[int]] = defaultdict(set)
        for user, app in zip(reviews["user_id"].tolist(), reviews["app_id"].tolist(), strict=True):
            self.played[user].add(app)
        price = self.tables.games.set_index("app_id")["price_final"]
        self._price = pd.Series(price.to_numpy(float), index=price.index.to_numpy(np.int64))

    # ---- the simulator's OnlineWorld ---------------------------------------------------------
    def arrivals(self, day: int, rng: np.random.Generator) -> pd.DataFrame:
        users, seconds = self.world.requests(rng, self.first_day + day, self.requests_per_day)
        requests = pd.DataFrame(
            {
                "request_id": self._next_request + np.arange(len(users)),
                "user_id": users,
                "event_timestamp": START + pd.to_timedelta(seconds, "s"),
            }
        )
        self._next_request += len(requests)
        return requests

    def react(self, request: dict, shown: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n, user = len(shown), int(request["user_id"])
        seconds = (request["event_timestamp"] - START) // pd.Timedelta(seconds=1)
        apps = np.asarray(shown, dtype=np.int64)
        outcome = self.world.respond(rng, np.full(n, user), apps, np.full(n, seconds), self._has_played(user, apps))
        played = outcome["played"]
        review_id = np.full(n, -1, dtype=np.int64)  # no review for a game not played
        review_id[played] = self._next_review + np.arange(played.sum())
        self._next_review += int(played.sum())
        self.played[user].update(apps[played].tolist())
        day = START + pd.Timedelta(days=int(seconds // DAY_S))  # the public reviews carry a date
        return {
            "request_id": np.full(n, request["request_id"]),
            "user_id": np.full(n, user, dtype=np.int64),
            "app_id": apps,
            "position": np.arange(1, n + 1, dtype=np.int64),
            "date": np.full(n, day, dtype=object),
            "review_id": review_id,
            **outcome,
        }

    def end_of_day(self, day: int, events: pd.DataFrame) -> None:
        """The day's reviews join recommendations.csv, then the shared daily jobs run on the Dataset."""
        reviews = pd.concat([self.tables.recommendations, played_reviews(events)], ignore_index=True)
        self.tables = replace(self.tables, recommendations=reviews)
        super().end_of_day(day, events)

    # ---- what the shared part asks -------------------------------------------------------------
    def to_events(self, events: pd.DataFrame) -> pd.DataFrame:
        return review_events(played_reviews(events))

    def measures(self, events: pd.DataFrame) -> pd.DataFrame:
        played = events["played"].to_numpy(bool)
        price = self._price.reindex(events["app_id"].to_numpy(np.int64)).to_numpy()
        return pd.DataFrame(
            {
                "impressions": 1.0,
                "plays": played.astype(float),
                "positives": (played & positive_label(events).to_numpy(bool)).astype(float),
                "hours": np.where(played, events["hours"].to_numpy(float), 0.0),
                "recommended": (played & events["is_recommended"].to_numpy(bool)).astype(float),
                "spend": np.where(played, price, 0.0),
            },
            index=events.index,
        )

    def truth(self, user_id: int, item_ids: np.ndarray, now_s: float) -> np.ndarray:
        """The world's relevance of each game for the player now: P(play | recommended now) x P(positive |
        played); 0 for a game they have played already."""
        item_ids = np.asarray(item_ids, dtype=np.int64)
        as_of = pd.Timestamp(now_s, unit="s", tz="UTC")
        relevance = self.world.relevance(np.full(len(item_ids), user_id), item_ids, as_of=as_of)
        return np.where(self._has_played(user_id, item_ids), 0.0, relevance)

    def _has_played(self, user_id: int, app_ids: np.ndarray) -> np.ndarray:
        played = self.played.get(user_id)
        return np.isin(app_ids, list(played)) if played else np.zeros(len(app_ids), dtype=bool)


def played_reviews(events: pd.DataFrame) -> pd.DataFrame:
    """The games played among a simulated day's shown games, as rows of recommendations.csv."""
    played = events[events["played"].astype(bool)]
    columns = {name: played[name].to_numpy() for name in REVIEW_COLUMNS}
    reviews = pd.DataFrame(columns | {"date": pd.to_datetime(columns["date"], utc=True)})
    dtypes = {name: dtype for name, dtype in RECOMMENDATIONS_SCHEMA.items() if dtype != "date"}
    return reviews.astype(dtypes | {"date": DATE_DTYPE})


def online_system(config: dict, refresh_features: bool = True) -> OnlineSystem:
    return recommender_online_system(GameOnline(config, refresh_features))
