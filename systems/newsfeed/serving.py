"""The served news feed (chapter 7): the same FeedState the offline evaluation runs, built from the
online store, with the streaming path the chapter asks for.

  user features   Feast online store: profile, follows, activity (one read per request)
  catalogue       every post's metadata, read once at load
  post counts     read fresh from the online store for each request's candidates: `POST
                  /newsfeed/events` pushes them there as reactions happen (a Feast push source), so
                  the next feed, in any worker process, ranks on them
  -> candidates (followed, popular) -> the heads -> weighted engagement -> re-ranking

Every reaction received is appended to a log (data/newsfeed/stream/reactions.jsonl, flushed and
fsynced before the answer), the record the batch job backfills the offline store from. Counts are
read, incremented and pushed by the process that received them: two workers incrementing one post at
the same instant can lose an increment (the scale path's Redis INCR would not).

The serving clock is the time the features were computed (the registered ranker's `now`), advanced
by the wall time since the service loaded, so pushed counts carry increasing times.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from common.app.paths import system_dir
from common.features.store import FeatureRepo
from common.serving.service import Served, open_serving
from common.serving.timing import StageTimer
from common.tracking.runs import Champion
from systems.newsfeed.features import POST_COUNTS, REACTIONS, USER_VIEWS, UserStates
from systems.newsfeed.funnel import FeedState

STREAM_REACTIONS = ("impression", *REACTIONS)  # what POST /newsfeed/events takes
COUNT_OF = {"impression": "post_impressions", **{r: f"post_{r}s" for r in REACTIONS}}


class NewsfeedService:
    def __init__(self, config: dict, champion: Champion, repo: FeatureRepo):
        # A request scores a few hundred rows: one torch thread each, parallelism from worker processes
        # (two threads per worker fight over the 2 cores and made the network's matmuls 5x slower).
        torch.set_num_threads(1)
        self.config = config
        self.champion = champion
        self.repo = repo
        self.user_refs = repo.refs(USER_VIEWS)
        self.count_refs = repo.refs(("post_activity",))
        self.loaded_at = time.monotonic()
        self.state = feed_state(repo, champion.classifier.now, config)
        self.funnel = self.state.funnel(champion.classifier, fresh_counts=self.fresh_counts)
        self.log_path = system_dir("newsfeed") / "stream" / "reactions.jsonl"

    @classmethod
    def load(cls, config: dict) -> NewsfeedService:
        repo, champions = open_serving("newsfeed")
        return cls(config, champions["ranker"], repo)

    def now_s(self) -> float:
        return float(self.state.now.timestamp()) + (time.monotonic() - self.loaded_at)

    def fresh_counts(self, item_ids: np.ndarray) -> dict[str, np.ndarray]:
        """The online store's current counts of these posts (what the last push wrote)."""
        values = self.repo.online(self.count_refs, [{"item_id": int(i)} for i in item_ids])
        return {c: np.array([v or 0 for v in values[c]], dtype=float) for c in POST_COUNTS}

    def feed(self, user_id: int, k: int, device: str) -> Served:
        timer = StageTimer()
        with timer.stage("user_features"):
            values = self.repo.online(self.user_refs, [{"user_id": user_id}])
            known = values.get("gender", [None])[0] is not None
            states = UserStates({**values, "user_id": [user_id]}, self.config)
        request = self.state.request(states, 0, device, self.now_s())
        ranked = self.funnel.recommend(request, k, timer)
        return Served(known, ranked, timer.milliseconds, user={"states": states, "request": request})

    def posts(self, served: Served) -> list[dict]:
        """The response's posts: every head's prediction, the score, the sources."""
        ranked, columns = served.ranked, self.state.catalog.columns
        if not len(ranked.rows):
            return []
        scored = served.user["request"].context.scored
        position = {int(i): j for j, i in enumerate(scored["item_id"])}
        names = [name for name in scored if name != "item_id"]
        return [
            {
                "post_id": int(self.state.catalog.item_ids[r]),
                "author_id": int(columns["author_id"][r]),
                "topic": str(columns["topic"][r]),
                "media_type": str(columns["media_type"][r]),
                "created_time": pd.Timestamp(int(columns["created_s"][r]), unit="s", tz="UTC").isoformat(),
                "heads": {name: float(scored[name][position[int(self.state.catalog.item_ids[r])]]) for name in names},
                "score": float(ranked.scores[i]),
                "sources": list(ranked.sources[i]),
            }
            for i, r in enumerate(ranked.rows)
        ]

    def known_posts(self, post_ids: list[int]) -> list[int]:
        """The ids the catalogue does not hold."""
        rows = self.state.catalog.rows(np.asarray(post_ids, dtype=np.int64))
        return [int(i) for i, r in zip(post_ids, rows, strict=True) if r < 0]

    def record(self, reactions: list[dict]) -> dict[int, dict[str, float]]:
        """Log the reactions durably, then push each touched post's new counts online; returns them."""
        stamp = self.now_s()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with Path(self.log_path).open("a") as log:
            for reaction in reactions:
                log.write(json.dumps({**reaction, "time_s": stamp}) + "\n")
            log.flush()
            os.fsync(log.fileno())
        post_ids = sorted({r["post_id"] for r in reactions})
        counts = self.fresh_counts(np.asarray(post_ids))
        position = {post: i for i, post in enumerate(post_ids)}
        for reaction in reactions:
            counts[COUNT_OF[reaction["reaction"]]][position[reaction["post_id"]]] += 1
        rows = pd.DataFrame(
            {
                "item_id": np.asarray(post_ids, dtype=np.int64),
                "event_timestamp": pd.Timestamp(stamp, unit="s", tz="UTC"),
                **{c: counts[c].astype(np.int64) for c in POST_COUNTS},
            }
        )
        self.repo.push("post_activity", rows)
        return {post: {c: float(counts[c][i]) for c in POST_COUNTS} for post, i in position.items()}


def feed_state(repo: FeatureRepo, now: pd.Timestamp, config: dict) -> FeedState:
    """The funnel's catalogue and sources at `now`, from the online store: every post's metadata and its counts
    as the last batch (or push) left them; the service's at load, the online simulator's each day."""
    ids = repo.source_keys("post_metadata", "item_id")
    posts = repo.online_frame("post_metadata", "item_id", ids).merge(
        repo.online_frame("post_activity", "item_id", ids), on="item_id", how="left"
    )
    return FeedState.build(posts, now, config)
