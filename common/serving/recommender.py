"""The served recommendation funnel of a system (video, game):

  user features   Feast online store: profile and activity (history, seen items, last engagement)
  user embedding  the champion retrieval bundle's user tower
  -> common.funnel.funnel: candidate sources -> ranking (the champion ranker) -> re-ranking

Item metadata and activity (the latest snapshot) are read from the online store once at load,
with the item embeddings and the faiss index built from them; a request costs one online read,
for the user. The serving clock is the end of the logs (the retrieval bundle's `now`): the
worlds are frozen in time, and the wall clock would make every item years old.

MLSD_CATALOG_SIZE=1000000 grows the catalogue with synthetic items (common.bench.padding), for
benchmarks at a size the world does not have.

A new user (no profile, no activity in the store) takes the cold-start path: the profile the
request carries (age, country, favourite genres...) feeds the user tower and the filters.
"""

from __future__ import annotations

import time

import numpy as np

from common.bench.padding import pad_catalog, requested_size
from common.features.activity import ITEM_ACTIVITY, USER_VIEWS
from common.features.store import FeatureRepo
from common.funnel.examples import fill_activity_defaults, fill_activity_defaults_row
from common.funnel.funnel import Funnel
from common.funnel.ranking_features import (
    ItemCatalog,
    RecommenderScorer,
    UserStates,
    recommender_request,
    step_columns,
)
from common.retrieval.ann import ANNIndex
from common.retrieval.sources import RetrievalRequest
from common.retrieval.tower_training import TwoTowerSource
from common.serving.service import Served, open_serving
from common.serving.timing import StageTimer
from common.tracking import runs as tracking


class RecService:
    def __init__(
        self,
        system: str,
        config: dict,
        ranker: tracking.Champion,
        retrieval: tracking.Champion,
        repo: FeatureRepo,
        half_precision: bool = True,
        sources: list | None = None,
    ):
        """`sources`: the non-personal candidate lists (popularity, trending); the retrieval bundle's, as of the
        end of the logs, by default (the online simulator passes lists refreshed by its daily job)."""
        self.system = system
        self.ranker = ranker
        self.retrieval = retrieval
        self.repo = repo
        bundle = retrieval.classifier
        self.schema = bundle.schema
        self.now_s = float(bundle.now.timestamp())
        self.as_of = bundle.now
        self.tower = bundle.tower
        self.user_refs = repo.refs(USER_VIEWS)
        item_ids = repo.source_keys("item_metadata", "item_id")
        metadata = repo.online_frame("item_metadata", "item_id", item_ids)
        activity = fill_activity_defaults(repo.online_frame("item_activity", "item_id", item_ids))
        catalog = ItemCatalog.build(
            metadata,
            self.schema,
            self.tower,
            activity["item_engaged_window"].to_numpy(),
            step_columns(config["serving"]),
        )
        self.n_real_items = len(catalog)
        self.catalog, item_activity = pad_catalog(
            catalog, {c: activity[c].to_numpy() for c in ITEM_ACTIVITY}, requested_size(), config["seed"]
        )
        started = time.perf_counter()
        self.index = ANNIndex.build(self.catalog.item_ids, self.catalog.vectors, seed=config["seed"])
        self.index_build_s = time.perf_counter() - started
        # The index keeps its own float32 copy for search; the ranking features (tower score, history
        # similarity) read these in half precision: half the memory of a 1M catalogue per process,
        # and ~1e-3 relative error in a feature.
        if half_precision:
            self.catalog.vectors = self.catalog.vectors.astype(np.float16)
        serving = config["serving"]
        scorer = RecommenderScorer(ranker.classifier, self.catalog, item_activity, serving["score"])
        self.sources = bundle.sources if sources is None else sources
        self.funnel = Funnel(self.catalog, [TwoTowerSource(self.index), *self.sources], scorer, serving)
        self.genres = set(self.catalog.groups)

    def recommend(self, user_id: int, k: int, profile: dict, favourite_genres: list[str]) -> Served:
        timer = StageTimer()
        request, known = self.request(user_id, profile, favourite_genres, timer=timer)
        return Served(known, self.funnel.recommend(request, k, timer), timer.milliseconds)

    def request(
        self,
        user_id: int,
        profile: dict,
        favourite_genres: list[str],
        now_s: float | None = None,
        timer: StageTimer | None = None,
    ) -> tuple[RetrievalRequest, bool]:
        """The funnel's request for a user (features from the store, the tower's embedding) at `now_s` (the
        serving clock by default), and whether the store knows the user."""
        timer = timer or StageTimer()
        with timer.stage("user_features"):
            user, known = self.user_columns(user_id, profile)
        with timer.stage("user_embedding"):
            # Without history, the genres a new user picked stand in for the history's genres.
            no_history = len(user["history_item_ids"][0]) == 0
            override = [list(favourite_genres)] if no_history and favourite_genres else None
            states = UserStates.build(user, self.tower, self.catalog, history_groups=override)
        return recommender_request(states, 0, self.schema, self.now_s if now_s is None else now_s), known

    def user_columns(self, user_id: int, profile: dict) -> tuple[dict[str, np.ndarray], bool]:
        """The user's online features as one-row columns, and whether the store knows the user."""
        values = self.repo.online(self.user_refs, [{"user_id": user_id}])
        row = {name: column[0] for name, column in values.items()}
        profile_columns = (*self.schema.user_categorical, *self.schema.user_numeric)
        known = any(row.get(c) is not None for c in profile_columns) or row.get("user_events_total") is not None
        for column, value in profile.items():  # the request's profile fills what the store does not know
            if row.get(column) is None:
                row[column] = value
        return {name: _one_row(value) for name, value in fill_activity_defaults_row(row).items()}, known


def _one_row(value) -> np.ndarray:
    """A one-element column; lists and missing values in an object array, as a DataFrame column holds them."""
    if value is None or isinstance(value, list | tuple | np.ndarray):
        column = np.empty(1, dtype=object)
        column[0] = value
        return column
    return np.array([value])


def load_service(system: str, config: dict, half_precision: bool = True) -> RecService:
    """The serving bundle; `half_precision=False` keeps the item vectors in float32 (measurements that
    compare them with the index's own copy)."""
    repo, champions = open_serving(system, ("ranker", "retrieval"))
    return RecService(system, config, champions["ranker"], champions["retrieval"], repo, half_precision)
