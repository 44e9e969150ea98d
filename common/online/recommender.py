"""A recommendation system on the online simulator (common/online/simulator.py): the part every recommender
(video, game, events, news feed...) shares; a system adds its world's users and their reactions.

  RecommenderOnline  the OnlineWorld's shared part: the logs so far (the training's Dataset, a day longer after
                     each simulated day), the daily jobs at the end of a day (the day's events join the logs, the
                     feature tables are rebuilt into Feast, the popularity and trending lists are recomputed as
                     of the next day), and each user's sums of the per-event measures the metrics divide. A
                     system subclasses it with its arrivals, its reactions, its events in the Dataset's shape,
                     its measures and its truth (what the oracle ranks by).
  online_system      the policies, all through the served funnel (common/serving/recommender.py RecService: the
                     user's features from the refreshed online store, the champion two-tower, the candidate
                     sources, the filters and re-ranking steps of the config), built afresh each day, ranking with
                       champion      the registered ranker
                       <ranker>      any ranker of the latest training (lightgbm, multitask)
                       popularity    no ranker: the popularity list alone in its order, under the same filters
                                     and re-ranking steps (the offline table's "popularity" row; the baseline)
                       random        a random score for each of the funnel's candidates
                       oracle        the world's truth: its best items of the whole catalogue for this user
                                     now join the candidates, and the truth scores every candidate
                     The funnel's clock is the request's time (released items, freshness, the items' age and
                     the user's recency features), not the end of the logs the service otherwise serves at. A
                     policy with a scorer logs the score it served beside each item (`served_score`);
                     `serve_model` puts any ranker (a retrained one) in the champion's place; with
                     `online.continual` in the config, `learner` retrains the ranker on the logs so far
                     (common/online/recommender_learner.py: make continual).
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import faiss
import numpy as np
import pandas as pd
import torch

from common.data.dataset import Dataset
from common.features.store import FeatureRepo
from common.funnel.funnel import Funnel
from common.funnel.ranking_features import RecommenderScorer
from common.online.recommender_learner import RecommenderLearner
from common.online.simulator import Metric, OnlineSystem, Policy
from common.pipelines.recommender import publish_features, validation_ndcg
from common.retrieval.sources import RetrievalRequest
from common.retrieval.tower_training import nonpersonal_sources
from common.serving.recommender import RecService
from common.tracking.runs import Champion, load_champion, load_trained_model, trained_model_names

log = logging.getLogger(__name__)
BASELINE = "popularity"
POPULARITY_SOURCE = "popularity"  # the global list of nonpersonal_sources


class RecommenderOnline(ABC):
    """The shared part of a recommender's OnlineWorld. A subclass sets `metrics` and `slots` and defines
    `arrivals`, `react`, `to_events`, `measures` and `truth`."""

    unit = "user_id"
    metrics: Mapping[str, Metric]
    slots: int  # items shown per request

    def __init__(self, system: str, config: dict, dataset: Dataset, refresh_features: bool = True):
        self.system = system
        self.config = config
        self.dataset = dataset  # the logs the models trained on, then the simulated days
        self.days_offset = dataset.n_days
        self.repo = FeatureRepo(system) if refresh_features else None
        self.sources = self._nonpersonal_sources()
        if self.repo is not None:  # the store as the training left it: an earlier simulation's days are not the logs
            publish_features(self.repo, self.dataset, self.config["features"], self.now)

    # ---- what a system adds ------------------------------------------------------------------
    @abstractmethod
    def to_events(self, events: pd.DataFrame) -> pd.DataFrame:
        """A simulated day's events (react's columns) as rows of the Dataset's events."""

    @abstractmethod
    def measures(self, events: pd.DataFrame) -> pd.DataFrame:
        """One row per event (on events' index): the numbers each metric's sums add up, but requests."""

    @abstractmethod
    def truth(self, user_id: int, item_ids: np.ndarray, now_s: float) -> np.ndarray:
        """The world's value of showing each item to the user at the top slot at `now_s` (seconds since the
        epoch): what the oracle ranks by."""

    # ---- the simulator's OnlineWorld ---------------------------------------------------------
    def unit_totals(self, requests: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
        totals = self.measures(events).groupby(events[self.unit].to_numpy()).sum()
        asked = requests.groupby(self.unit).size().rename("requests")
        return totals.reindex(asked.index, fill_value=0).join(asked).astype(float)

    def end_of_day(self, day: int, events: pd.DataFrame) -> None:
        """The daily jobs: the day's events join the logs, the features are rebuilt into Feast (the funnel's
        user histories, seen items and item activity read them the next day), the popularity and trending
        lists are recomputed as of the next day."""
        logged = self.to_events(events)
        self.dataset = replace(self.dataset, events=pd.concat([self.dataset.events, logged], ignore_index=True))
        if self.repo is not None:
            publish_features(self.repo, self.dataset, self.config["features"], self.now)
        self.sources = self._nonpersonal_sources()
        log.info(
            "%s: simulated day %d joined the logs (%d events); features and lists as of %s",
            self.system,
            day,
            len(logged),
            self.now,
        )

    # ---- the logs' clock -----------------------------------------------------------------------
    @property
    def now(self) -> pd.Timestamp:
        """The end of the logs so far, on a snapshot day: what the last feature snapshot and the lists see."""
        every = self.config["features"]["snapshot_every_days"]
        return self.dataset.day_start(every * math.ceil(self.dataset.n_days / every))

    def _nonpersonal_sources(self) -> list:
        return nonpersonal_sources(self.dataset, self.dataset.users, self.now, self.config["retrieval"])


@dataclass(frozen=True)
class RandomScorer:
    """A random score per candidate: a ranker that knows nothing."""

    rng: np.random.Generator

    def __call__(self, request: RetrievalRequest, item_rows: np.ndarray) -> np.ndarray:
        return self.rng.random(len(item_rows))


@dataclass(frozen=True)
class TruthScorer:
    """The world's truth in place of a ranker: scores the candidates by it."""

    world: RecommenderOnline
    item_ids: np.ndarray  # the catalogue's ids by row

    def __call__(self, request: RetrievalRequest, item_rows: np.ndarray) -> np.ndarray:
        return self.world.truth(request.user_id, self.item_ids[item_rows], request.now_s)


@dataclass(frozen=True)
class TruthSource:
    """The world's best items of the whole catalogue for this user now: what no model retrieves."""

    world: RecommenderOnline
    item_ids: np.ndarray  # the catalogue's items
    name: str = "oracle"

    def retrieve(self, request: RetrievalRequest, k: int) -> np.ndarray:
        value = self.world.truth(request.user_id, self.item_ids, request.now_s)
        k = min(k, len(value))
        best = np.argpartition(-value, k - 1)[:k] if k else np.zeros(0, dtype=np.int64)
        return self.item_ids[best[np.argsort(-value[best], kind="stable")]]


def online_system(world: RecommenderOnline) -> OnlineSystem:
    """A recommender's world on the simulator with its policies by name. Models are loaded once; the service
    (catalogue, item activity, index, lists) is built afresh for each day's policies, on the refreshed store."""
    system, config = world.system, world.config
    models: dict[tuple[str, str], Champion] = {}
    rng = np.random.default_rng([config["seed"], 2])

    def model(name: str, kind: str = "ranker") -> Champion:
        if (name, kind) not in models:
            learned = name != "champion"
            models[name, kind] = load_trained_model(system, name) if learned else load_champion(system, kind)
        return models[name, kind]

    def service() -> RecService:
        built = RecService(
            system,
            config,
            model("champion"),
            model("champion", "retrieval"),
            FeatureRepo(system),
            sources=world.sources,
        )
        # As the server does: a request's few hundred rows on one thread (intra-op threads only spin against
        # each other on a busy machine: 5 ms a request instead of 15 to 35 at tiny scale).
        torch.set_num_threads(1)
        faiss.omp_set_num_threads(1)
        return built

    def policies(names: Sequence[str]) -> dict[str, Policy]:
        built = service()
        return {name: _policy(built, _funnel(built, world, name, model, rng), world.slots) for name in names}

    def serve_model(ranker: Champion) -> Policy:
        built = service()
        return _policy(built, _ranked_by(built, ranker, config), world.slots)

    def learner() -> RecommenderLearner:
        return RecommenderLearner(world, window_days=config["online"]["continual"]["window_days"])

    rankers = [name for name in trained_model_names(system) if name in config["models"]]
    names = ("champion", *rankers, BASELINE, "random", "oracle")
    continual = "continual" in config.get("online", {})  # a system opts in with online.continual in its config
    offline = (validation_ndcg(config["evaluation"]["k"]), "max")  # what chose the champion ranker
    return OnlineSystem(
        world,
        policies,
        names,
        baseline=BASELINE,
        serve_model=serve_model,
        learner=learner if continual else None,
        offline_metric=offline,
    )


def _funnel(service: RecService, world: RecommenderOnline, name: str, model, rng: np.random.Generator) -> Funnel:
    """The service's funnel with what the policy `name` changes: the scorer, or the sources."""
    funnel = service.funnel
    catalog = service.catalog
    if name == "champion":
        return funnel
    if name == BASELINE:
        popularity = next(source for source in service.sources if source.name == POPULARITY_SOURCE)
        return funnel.variant(sources=[popularity], k_per_source=max(len(popularity.item_ids), 1))
    if name == "random":
        return funnel.variant(scorer=RandomScorer(rng))
    if name == "oracle":
        truth_source = TruthSource(world, catalog.item_ids[: service.n_real_items])
        return funnel.variant(sources=[truth_source, *funnel.sources], scorer=TruthScorer(world, catalog.item_ids))
    return _ranked_by(service, model(name), world.config)


def _ranked_by(service: RecService, ranker: Champion, config: dict) -> Funnel:
    """The service's funnel with another ranker (a trained one, a retrained one) in the champion's place."""
    activity = service.funnel.scorer.activity  # the catalogue's item activity, as the champion's scorer reads it
    scorer = RecommenderScorer(ranker.classifier, service.catalog, activity, config["serving"]["score"])
    return service.funnel.variant(scorer=scorer)


def _policy(service: RecService, funnel: Funnel, slots: int) -> Policy:
    """The served funnel as a policy: the items it puts in the request's slots, at the request's time, and the
    score its scorer gave each (`served_score`: the ranker's P(positive), the truth, the random draw)."""
    item_ids = service.catalog.item_ids

    def policy(request: dict) -> np.ndarray | dict[str, np.ndarray]:
        now_s = pd.Timestamp(request["event_timestamp"]).timestamp()
        retrieval_request, _ = service.request(int(request["user_id"]), {}, [], now_s=now_s)
        ranked = funnel.recommend(retrieval_request, slots)
        if funnel.scorer is None:  # the list's own order: no score to log
            return item_ids[ranked.rows]
        return {"items": item_ids[ranked.rows], "served_score": ranked.scores}

    return policy
