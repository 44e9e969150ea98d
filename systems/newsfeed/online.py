"""The news feed on the online simulator (common/online/simulator.py): the chapter's online metrics, measured on
the world's users after the logs the models trained on. The news feed serves through its own funnel
(systems/newsfeed/funnel.py, serving.py), not the recommenders' shared one, so this is a standalone world, as
ads' is.

  arrivals   the world's feed opens of a day (who, by visit rate; when, by hour; on the device the user is on
             then), drawn by the world's own `sessions`, after the logs' last day
  posts      users go on posting: each simulated day's posts are drawn by the world (`post_day`, from their
             own random stream: the logs are unchanged) and join the catalogue before the day (the funnel's
             `released` filter and the followed source show a post only once it is created); their text and
             hashtags are encoded by the encoder the training fitted (kept beside its feature store)
  policies   the served funnel (followed and popular candidates, unseen, the heads' weighted engagement, the
             re-ranking steps) with the user's features read from the refreshed online store and the post
             counts read fresh per request (the streaming feature: here the simulator's own running counts,
             what the service's pushes would have written), ranking with
               champion       the registered ranker
               <model name>   any ranker of the latest training (multitask, lightgbm_heads)
               chronological  newest first, no ranker: the chapter's feed before ML (the baseline)
               popularity     the most engaged posts first
               random         a random score per candidate
               oracle         the world's truth: the expected weighted engagement of each post at the top of
                              the feed now, on the user's device, with the world's best posts of the feed
                              window added to the candidates
             each with a score logs it beside the posts it showed (`served_score`)
  reactions  the world's `respond`, as in the logs: examination falling with the slot (position bias), then
             click, like, comment, share and hide, dwell seconds and skip (dwell under 2 s); logged as rows of
             the impressions table, with the truth they were drawn from (p_click ... p_skip, expected_dwell_s)
  end of day the day's impressions join the logs (their truth the oracle table), the next day's posts join
             the catalogue, and the features are rebuilt into Feast (the user's seen posts, hidden authors,
             reaction rates and interests; the posts' counts): the next day's funnel reads them
  metrics    weighted engagement per feed open (the chapter's objective with the config's weights: click 1,
             like 2, comment 4, share 6, hide -20, skip -0.5, dwell 0.05 per second; the primary), time spent
             (dwell seconds) per feed open, and each reaction's rate per post shown
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from common.features.store import FeatureRepo
from common.funnel.funnel import Funnel
from common.online.recommender import RandomScorer
from common.online.simulator import Metric, OnlineSystem, Policy
from common.retrieval.sources import RetrievalRequest
from common.tracking.runs import load_champion, load_trained_model, trained_model_names
from systems.newsfeed.dataset import to_dataset, weighted_engagement
from systems.newsfeed.features import (
    POST_COUNTS,
    REACTIONS,
    SERVICE,
    USER_VIEWS,
    VIEWS,
    PostEncoder,
    UserStates,
    feature_tables,
    load_post_encoder,
)
from systems.newsfeed.funnel import DAY_S, FeedState
from systems.newsfeed.serving import feed_state
from systems.newsfeed.world import START, NewsfeedWorld, impression_tables

log = logging.getLogger(__name__)
SYSTEM = "newsfeed"
BASELINE = "chronological"
METRICS = {
    "engagement_per_request": Metric(
        "engagement", "requests", "weighted engagement (the config's weights of the reactions and dwell) per feed open"
    ),
    "time_spent_per_request": Metric("dwell_s", "requests", "seconds spent on the feed's posts per feed open"),
    "click_rate": Metric("clicks", "impressions", "clicks per post shown"),
    "like_rate": Metric("likes", "impressions", "likes per post shown"),
    "comment_rate": Metric("comments", "impressions", "comments per post shown"),
    "share_rate": Metric("shares", "impressions", "shares per post shown"),
    "hide_rate": Metric("hides", "impressions", "hides per post shown", lower_is_better=True),
    "skip_rate": Metric("skips", "impressions", "posts skipped (under 2 s) per post shown", lower_is_better=True),
}
TRUTH_COLUMNS = (*(f"p_{name}" for name in (*REACTIONS, "skip")), "expected_dwell_s")  # never part of the logs


class NewsfeedOnline:
    """The news feed world's users after the logs: when they open their feed, what they post, and how they
    react, from the world's truth."""

    unit = "user_id"
    metrics = METRICS

    def __init__(self, config: dict, refresh_features: bool = True):
        self.config = config
        self.weights = config["serving"]["score"]["weights"]
        self.world = NewsfeedWorld(**config["world"])
        self.tables = self.world.generate()  # the logs the models trained on (same seed)
        self.dataset = to_dataset(self.world, self.tables, self.weights)
        self.days_offset = self.dataset.n_days
        self.slots = self.world.slots
        requests = config["online"]["requests_per_day"]
        self.visit_scale = 1.0 if requests is None else requests / self.expected_sessions(self.days_offset)
        impressions = self.tables.impressions
        self._next_session = int(impressions["session_id"].max()) + 1
        self._next_impression = int(impressions["impression_id"].max()) + 1
        self.encoder, self.vectors = self._post_encoder()
        # The streaming post counts (impressions and each reaction so far), as reactions happen.
        counts = impressions.groupby("post_id").agg(
            post_impressions=("impression_id", "size"), **{f"post_{r}s": (r, "sum") for r in REACTIONS}
        )
        self.counts = counts.reindex(np.arange(len(self.tables.posts)), fill_value=0)[POST_COUNTS].to_numpy(float)
        self._add_posts(self.days_offset)  # the first simulated day's posts
        self.repo = FeatureRepo(SYSTEM) if refresh_features else None
        if self.repo is not None:  # day one serves the features as of the logs' end, and its posts
            self.publish_features()

    def expected_sessions(self, day: int) -> float:
        """The world's expected feed opens on `day` (the users signed up by then, by visit rate)."""
        t = self.world.truth
        return float(t["visit_rate"][t["signup_s"] < day * DAY_S].sum())

    # ---- the simulator's OnlineWorld ---------------------------------------------------------
    def arrivals(self, day: int, rng: np.random.Generator) -> pd.DataFrame:
        users, seconds, _ = self.world.sessions(rng, self.days_offset + day, self.visit_scale)
        device = self.world.device_codes(users, seconds.astype(np.float64))
        requests = pd.DataFrame(
            {
                "session_id": self._next_session + np.arange(len(users), dtype=np.int64),
                "user_id": users.astype(np.int64),
                "event_timestamp": START + pd.to_timedelta(seconds, "s"),
                "device": np.asarray(("mobile", "desktop"), dtype=object)[device],
            }
        )
        self._next_session += len(requests)
        return requests

    def react(self, request: dict, shown: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n, user = len(shown), int(request["user_id"])
        seconds = (request["event_timestamp"] - START) // pd.Timedelta(seconds=1)
        posts = np.asarray(shown, dtype=np.int64)
        outcome = self.world.respond(rng, np.full(n, user), posts, np.full(n, seconds), np.arange(n))
        logs = {"session_id": np.full(n, request["session_id"]), "user_id": np.full(n, user), "post_id": posts}
        impressions, truth = impression_tables(logs | outcome, self._next_impression)
        self._next_impression += n
        # The stream: each post's counts move as the reactions happen (the next request reads them).
        self.counts[posts, 0] += 1
        for column, reaction in enumerate(REACTIONS, start=1):
            self.counts[posts, column] += impressions[reaction].to_numpy()
        columns = {name: np.asarray(impressions[name].array) for name in impressions.columns}
        return columns | {name: truth[name].to_numpy() for name in TRUTH_COLUMNS}

    def unit_totals(self, requests: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
        outcomes = {name: events[name].to_numpy(float) for name in self.weights}
        per_event = pd.DataFrame(
            {
                "impressions": 1.0,
                "engagement": weighted_engagement(outcomes, self.weights),
                "dwell_s": events["dwell_s"].to_numpy(float),
                **{f"{r}s": events[r].to_numpy(float) for r in (*REACTIONS, "skip")},
            },
            index=events.index,
        )
        totals = per_event.groupby(events["user_id"].to_numpy()).sum()
        asked = requests.groupby("user_id").size().rename("requests")
        return totals.reindex(asked.index, fill_value=0).join(asked).astype(float)

    def end_of_day(self, day: int, events: pd.DataFrame) -> None:
        """The day's impressions join the logs (their truth the oracle table), the next day's posts the
        catalogue; then the daily feature job."""
        impressions = events[list(self.tables.impressions.columns)].reset_index(drop=True)
        oracle = events[list(self.tables.oracle.columns)].reset_index(drop=True)
        self.tables = replace(
            self.tables,
            impressions=pd.concat([self.tables.impressions, impressions], ignore_index=True),
            oracle=pd.concat([self.tables.oracle, oracle], ignore_index=True),
        )
        logged = impressions.rename(columns={"post_id": "item_id"})
        self.dataset = replace(self.dataset, events=pd.concat([self.dataset.events, logged], ignore_index=True))
        self._add_posts(self.days_offset + day + 1)
        if self.repo is not None:
            self.publish_features()
        log.info("newsfeed: simulated day %d joined the logs (%d impressions)", day, len(logged))

    # ---- the posts and the daily feature job -----------------------------------------------------
    def publish_features(self) -> None:
        """Every feature table of the logs so far into Feast (the posts' vectors as the training encoded them),
        the online store loaded with the latest values: a platform's daily feature job."""
        data, day = self.dataset, pd.Timedelta(days=1)
        tables = feature_tables(data, self.config, self.vectors)
        first, after_last = data.start - 2 * day, data.day_start(data.n_days) + day
        self.repo.publish(tables, VIEWS, SERVICE, first.to_pydatetime(), after_last.to_pydatetime())

    @property
    def now(self) -> pd.Timestamp:
        """The end of the logs so far: the next simulated day's start, what its feature snapshot sees."""
        return self.dataset.day_start(self.dataset.n_days)

    def _add_posts(self, day: int) -> None:
        """Day `day`'s new posts join the tables, the Dataset's items, the vectors and the counts."""
        posts = self.world.post_day(day)
        self.tables = replace(self.tables, posts=pd.concat([self.tables.posts, posts], ignore_index=True))
        items = posts.rename(columns={"post_id": "item_id", "created_timestamp": "release_timestamp"})
        self.dataset = replace(self.dataset, items=pd.concat([self.dataset.items, items], ignore_index=True))
        text, hashtags = self.encoder.encode(items)
        self.vectors = (np.vstack([self.vectors[0], text]), np.vstack([self.vectors[1], hashtags]))
        self.counts = np.vstack([self.counts, np.zeros((len(posts), len(POST_COUNTS)))])

    def _post_encoder(self) -> tuple[PostEncoder, tuple[np.ndarray, np.ndarray]]:
        """The encoder the training fitted and the vectors it gave the logs' posts; fitted again here (the same
        fit) when no training kept one for these posts."""
        kept = load_post_encoder()
        posts = self.dataset.items
        if kept is not None and np.array_equal(kept[1], posts["item_id"].to_numpy()):
            return kept[0], kept[2]
        log.info("newsfeed: no post encoder kept for these posts; fitting one as the training does")
        encoder = PostEncoder(self.config)
        return encoder, encoder.fit_encode(posts)

    # ---- the world's truth, for the oracle ----------------------------------------------------
    def fresh_counts(self, item_ids: np.ndarray) -> dict[str, np.ndarray]:
        """The posts' counts as the stream has them now (what the online store's pushed counts would be)."""
        rows = self.counts[np.asarray(item_ids, dtype=np.int64)]
        return {column: rows[:, i] for i, column in enumerate(POST_COUNTS)}

    def truth(self, user_id: int, post_ids: np.ndarray, now_s: float, device: str) -> np.ndarray:
        """The expected weighted engagement of each post shown to the user at the top of the feed at `now_s`
        (seconds since the epoch) on `device`: the chapter's score over the world's true probabilities."""
        n = len(post_ids)
        truth = self.world.reaction_probabilities(np.full(n, user_id), post_ids, np.full(n, now_s), 0, device)
        truth["dwell_s"] = truth.pop("dwell")
        return weighted_engagement(truth, self.weights)


@dataclass(frozen=True)
class TruthScorer:
    """The world's truth in the ranker's place."""

    online: NewsfeedOnline
    item_ids: np.ndarray  # the catalogue's ids by row

    def __call__(self, request: RetrievalRequest, item_rows: np.ndarray) -> np.ndarray:
        device = request.context.device
        return self.online.truth(request.user_id, self.item_ids[item_rows], request.now_s, device)


@dataclass(frozen=True)
class TruthSource:
    """The world's best posts of the feed window for this user now, from anyone: what no rule retrieves."""

    online: NewsfeedOnline
    item_ids: np.ndarray
    created_s: np.ndarray
    window_days: float
    name: str = "oracle"

    def retrieve(self, request: RetrievalRequest, k: int) -> np.ndarray:
        recent = (self.created_s < request.now_s) & (self.created_s >= request.now_s - self.window_days * DAY_S)
        ids = self.item_ids[recent]
        value = self.online.truth(request.user_id, ids, request.now_s, request.context.device)
        k = min(k, len(ids))
        best = np.argpartition(-value, k - 1)[:k] if k else np.zeros(0, dtype=np.int64)
        return ids[best[np.argsort(-value[best], kind="stable")]]


def online_system(config: dict, refresh_features: bool = True) -> OnlineSystem:
    """The news feed world on the simulator, and its policies by name (models are loaded once; the catalogue,
    its lists and the users' features are read afresh for each day's policies)."""
    online = NewsfeedOnline(config, refresh_features)
    models: dict[str, object] = {}
    rng = np.random.default_rng([config["seed"], 2])

    def model(name: str):
        if name not in models:
            models[name] = load_champion(SYSTEM) if name == "champion" else load_trained_model(SYSTEM, name)
        return models[name]

    def served() -> tuple[FeatureRepo, FeedState]:
        repo = FeatureRepo(SYSTEM)
        # As the server does: a request's few hundred rows on one thread.
        torch.set_num_threads(1)
        return repo, feed_state(repo, online.now, config)

    def funnel(state: FeedState, name: str) -> Funnel:
        if name == BASELINE:
            return state.chronological()
        if name == "popularity":
            return state.popularity()
        if name == "random":
            return state.chronological().variant(scorer=RandomScorer(rng))
        if name == "oracle":
            catalog, window = state.catalog, config["serving"]["candidates"]["followed_window_days"]
            source = TruthSource(online, catalog.item_ids, catalog.columns["created_s"].astype(float), window)
            chronological = state.chronological()
            return chronological.variant(
                sources=[source, *chronological.sources], scorer=TruthScorer(online, catalog.item_ids)
            )
        return state.funnel(model(name).classifier, fresh_counts=online.fresh_counts)

    def policies(names: Sequence[str]) -> dict[str, Policy]:
        repo, state = served()
        unscored = (BASELINE, "popularity")  # a column's order: no model's score to log
        return {name: _policy(repo, state, funnel(state, name), online, name not in unscored) for name in names}

    def serve_model(champion) -> Policy:
        repo, state = served()
        return _policy(repo, state, state.funnel(champion.classifier, fresh_counts=online.fresh_counts), online, True)

    names = ("champion", *trained_model_names(SYSTEM), BASELINE, "popularity", "random", "oracle")
    offline = (config["champion"]["metric"].format(k=config["evaluation"]["k"]), config["champion"]["goal"])
    return OnlineSystem(online, policies, names, BASELINE, serve_model, offline_metric=offline)


def _policy(repo: FeatureRepo, state: FeedState, funnel: Funnel, online: NewsfeedOnline, scored: bool) -> Policy:
    """The served funnel as a policy: the posts it puts in the feed's slots for this request (the user's
    features from the online store, at the request's time, on its device), with the score each got."""
    user_refs, config = repo.refs(USER_VIEWS), online.config

    def policy(request: dict) -> np.ndarray | dict[str, np.ndarray]:
        user_id = int(request["user_id"])
        values = repo.online(user_refs, [{"user_id": user_id}])
        states = UserStates({**values, "user_id": [user_id]}, config)
        now_s = pd.Timestamp(request["event_timestamp"]).timestamp()
        ranked = funnel.recommend(state.request(states, 0, request["device"], now_s), online.slots)
        items = state.catalog.item_ids[ranked.rows]
        return {"items": items, "served_score": ranked.scores} if scored else items

    return policy
