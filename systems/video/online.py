"""Video recommendation on the online simulator (common/online/simulator.py; the recommenders' shared part,
policies included, is common/online/recommender.py): the chapter's online metrics, measured on the world's
users after the logs the models trained on.

  arrivals   the world's homepage loads of a day (who, by activity; when, by hour), after the logs' last day,
             drawn by the world's own `requests`
  policies   the served funnel ranking with the champion, either trained ranker, popularity alone (the
             baseline), random scores, or the oracle: the world's P(positive) of each video for this user now
             at the top slot, P(click) x relevance, with the world's best videos of the whole catalogue added
             to the candidates
  reactions  the world's `respond`, as in the logs: clicks with position bias, clickbait and novelty, the
             watch fraction, likes and shares; logged as rows of the interactions table, with the truth they
             were drawn from (p_click, relevance, p_positive) beside them. The world's state moves on: what each
             user has watched (clicked), and the clock (novelty fades with the request's time). Tastes
             drift from the first simulated day (configs/video.yaml online.drift_per_day: each genre's
             direction moves, from 0 on the first simulated day; the logs are unchanged)
  end of day the day's impressions join the logs, the features are rebuilt into Feast and the popularity lists
             recomputed: the next day's funnel excludes what was watched and reads the new activity
  metrics    positives per request (liked or watched at least half: the chapter's label, what the rankers
             learn and the offline evaluation's relevance; the primary), watch time per request (the chapter's
             "total play time"), CTR, likes per impression (user feedback), the share of homepage loads with a
             click
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from common.online.recommender import RecommenderOnline
from common.online.recommender import online_system as recommender_online_system
from common.online.simulator import Metric, OnlineSystem
from systems.video.recdata import interaction_events, to_dataset
from systems.video.world import DAY_S, START, VideoWorld, interaction_tables, positive_label

METRICS = {
    "positives_per_request": Metric(
        "positives", "requests", "videos liked or watched at least half (the chapter's label) per homepage load"
    ),
    "watch_minutes_per_request": Metric("watch_minutes", "requests", "minutes watched per homepage load"),
    "ctr": Metric("clicks", "impressions", "clicks per video shown"),
    "likes_per_impression": Metric("likes", "impressions", "likes per video shown"),
    "requests_with_click": Metric("clicked_requests", "requests", "share of homepage loads with a click"),
}
TRUTH_COLUMNS = ("relevance", "p_click", "p_positive")  # logged beside each impression, never part of the logs


class VideoOnline(RecommenderOnline):
    """The video world's users after the logs: when they come, and how they react, from the world's truth."""

    metrics = METRICS

    def __init__(self, config: dict, refresh_features: bool = True):
        drift = config["online"].get("drift_per_day", 0.0)  # tastes drift from the first simulated day on
        self.world = VideoWorld(**config["world"], drift_per_day=drift)
        self.tables = self.world.generate()  # the logs the models trained on (same seed: drift leaves them alone)
        super().__init__("video", config, to_dataset(self.world, self.tables), refresh_features)
        self.slots = self.world.n_slots
        self.requests_per_day = config["online"]["requests_per_day"] or self.world.requests_per_day
        interactions = self.tables.interactions
        self._next_request = int(interactions["request_id"].max()) + 1
        self._next_interaction = int(interactions["interaction_id"].max()) + 1
        # The users' state: what each has watched (clicked), as the world's logging keeps it.
        clicked = interactions[interactions["clicked"] == 1]
        self.watched = set(zip(clicked["user_id"].tolist(), clicked["video_id"].tolist(), strict=True))

    # ---- the simulator's OnlineWorld ---------------------------------------------------------
    def arrivals(self, day: int, rng: np.random.Generator) -> pd.DataFrame:
        users, seconds = self.world.requests(rng, self.days_offset + day, self.requests_per_day)
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
        users, videos = np.full(n, user), np.asarray(shown, dtype=np.int64)
        outcome = self.world.respond(rng, users, videos, np.arange(1, n + 1), np.full(n, seconds))
        logs = {"request_id": np.full(n, request["request_id"]), "user_id": users, "video_id": videos, **outcome}
        interactions, truth = interaction_tables(logs, self._next_interaction)
        self._next_interaction += n
        self.watched.update((user, int(video)) for video in videos[outcome["clicked"] == 1])
        columns = {name: np.asarray(interactions[name].array) for name in interactions.columns}
        return columns | {name: truth[name].to_numpy() for name in TRUTH_COLUMNS}

    def end_of_day(self, day: int, events: pd.DataFrame) -> None:
        """The day's impressions join the interactions table (their truth the oracle table), then the shared
        daily jobs run on the Dataset."""
        interactions = events[list(self.tables.interactions.columns)].reset_index(drop=True)
        oracle = events[list(self.tables.oracle.columns)].reset_index(drop=True)
        self.tables = replace(
            self.tables,
            interactions=pd.concat([self.tables.interactions, interactions], ignore_index=True),
            oracle=pd.concat([self.tables.oracle, oracle], ignore_index=True),
        )
        super().end_of_day(day, events)

    # ---- what the shared part asks -------------------------------------------------------------
    def to_events(self, events: pd.DataFrame) -> pd.DataFrame:
        return interaction_events(events[list(self.tables.interactions.columns)].reset_index(drop=True))

    def measures(self, events: pd.DataFrame) -> pd.DataFrame:
        clicked = events["clicked"].to_numpy() == 1
        watch_fraction = events["watch_fraction"].to_numpy(float)
        duration_s = self.world.truth["video_duration_s"][events["video_id"].to_numpy(np.int64)]
        first_click = clicked & ~pd.Series(np.where(clicked, events["request_id"], -1)).duplicated().to_numpy()
        return pd.DataFrame(
            {
                "impressions": 1.0,
                "clicks": clicked.astype(float),
                "watch_minutes": watch_fraction * duration_s / 60,
                "positives": positive_label(events).astype(float),
                "likes": events["liked"].to_numpy(float),
                "clicked_requests": first_click.astype(float),
            },
            index=events.index,
        )

    def truth(self, user_id: int, item_ids: np.ndarray, now_s: float) -> np.ndarray:
        """P(positive) of each video shown to the user at the top slot now: P(click) (position, clickbait and
        novelty included) x relevance, P(liked or watched at least half | started)."""
        users, seconds = np.full(len(item_ids), user_id), now_s - START.timestamp()
        age_days, day = (seconds - self.world.truth["upload_s"][item_ids]) / DAY_S, int(seconds // DAY_S)
        p_click = self.world.click_probability(users, item_ids, np.ones(len(item_ids), np.int64), age_days, day)
        return p_click * self.world.relevance(users, item_ids, day)


def online_system(config: dict, refresh_features: bool = True) -> OnlineSystem:
    return recommender_online_system(VideoOnline(config, refresh_features))
