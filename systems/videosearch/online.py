"""Multimodal video search on the online simulator (common/online/simulator.py): the chapter's online metrics,
measured on the world's searchers. Search has its own funnel (systems/videosearch/serving.py), so this world
stands alone, as systems/ads/online.py does.

  arrivals   the searches of a day: who (the world's searchers, by activity, with the age and country the
             re-ranking rules read), when (uniform over the day) and what (a query the world's generator
             writes for a video the searcher has in mind, as it wrote the annotated pairs). The pairs carry
             no time: the simulated days start after them, day 0 at the video world's START
  policies   the served funnel (VideoSearchService.search: query understanding, BM25 and faiss, the blend,
             the re-ranking rules for the searcher's age and country), ranking with
               champion       the registered blend
               <blend>        any blend of the latest training (word, weighted_sum, rrf)
               text           BM25 alone (the offline table's "text alone (BM25)"; the baseline)
               random         both sources' candidates in a random order
               oracle         the world's truth in the blend's place: the videos that fit the query (its
                              relevance) added to the candidates and put first in a random order (the
                              offline table's oracle), the others after them in the sources' fused order
             each shows `online.k` results and logs its score beside them (served_score)
  reactions  the world's `respond` (systems/videosearch/world.py): clicks from relevance, the video's
             clickbait and position bias; the share watched from relevance; logged as rows of the search
             log (SEARCH_LOG), with the truth they were drawn from beside them (TRUTH_COLUMNS)
  end of day the day's rows join the search log (data/videosearch/logs/searches.parquet). No training reads
             it yet (the models learn from the annotated pairs), serving reads no feature of it, and the
             world uploads no video: the catalogue and indexes stay as the training built them
  metrics    watch time per search (the primary: the chapter chooses total watch time, "a good indicator of
             relevance"; per search, so that arms with more searchers do not count more), CTR (the chapter
             names its problem: clickbait raises it without relevance) and the completion rate of the videos
             clicked ("partially watched videos might still be found relevant")
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import faiss
import numpy as np
import pandas as pd
import torch

from common.app.paths import system_dir
from common.data.atomic import replaced_atomically
from common.online.search_stages import RandomStage
from common.online.simulator import Metric, OnlineSystem, Policy
from common.search.funnel import Candidates, SearchFunnel, Understood
from common.tracking.runs import Champion, load_champion, load_trained_model, trained_model_names
from systems.video.world import START
from systems.videosearch.pipeline import SYSTEM
from systems.videosearch.retrieval import TEXT
from systems.videosearch.serving import VideoSearchService
from systems.videosearch.world import VideoSearchWorld

log = logging.getLogger(__name__)
BASELINE = TEXT
METRICS = {
    "watch_minutes_per_search": Metric(
        "watch_minutes", "searches", "minutes watched of the videos clicked from the results, per search"
    ),
    "ctr": Metric("clicks", "impressions", "clicks per result shown"),
    "completion_rate": Metric("completions", "clicks", "videos watched to the end per video clicked"),
}
# The search log: a row per result shown.
SEARCH_LOG = {
    "request_id": "int64",
    "user_id": "int64",
    "timestamp": "datetime64[ns, UTC]",
    "query": "object",
    "video_id": "int64",
    "position": "int64",
    "clicked": "int8",
    "watch_fraction": "float64",
    "completed": "int8",
    "watch_seconds": "float64",
}
# Logged beside each result shown, never part of the log: the video the searcher had in mind, whether the result
# fits the query (the world's relevance), and the P(click) the click was drawn from.
TRUTH_COLUMNS = ("intended_video_id", "relevance", "p_click")


def search_log_path():
    return system_dir(SYSTEM) / "logs" / "searches.parquet"


class VideoSearchOnline:
    """The video-search world's searchers: what they search, and how they react to a page, from the truth."""

    unit = "user_id"
    metrics = METRICS
    days_offset = 0  # the annotated pairs have no dates: day 0 is the first day of searches

    def __init__(self, config: dict, write_logs: bool = True):
        self.config = config
        self.world = VideoSearchWorld(**config["world"])
        self.k = config["online"]["k"]
        self.requests_per_day = config["online"]["requests_per_day"]
        self.write_logs = write_logs
        self.logs = pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in SEARCH_LOG.items()})
        self._intended: dict[int, int] = {}  # request id -> the video its searcher had in mind
        self._next_request = 0
        self._relevant: tuple[int, np.ndarray] | None = None  # (request id, its relevant videos): the oracle's
        self.current: dict | None = None  # the request the oracle is serving
        if write_logs:  # a simulation's days start after the pairs: an earlier one's searches are not its logs
            search_log_path().unlink(missing_ok=True)

    # ---- the simulator's OnlineWorld ---------------------------------------------------------
    def arrivals(self, day: int, rng: np.random.Generator) -> pd.DataFrame:
        searches = self.world.searches(rng, self.requests_per_day)
        seconds = np.sort(rng.uniform(0, 86_400, len(searches)))
        ids = self._next_request + np.arange(len(searches))
        self._next_request += len(searches)
        self._intended.update(zip(ids.tolist(), searches["video_id"].tolist(), strict=True))
        return pd.DataFrame(
            {
                "request_id": ids,
                "user_id": searches["user_id"].to_numpy(np.int64),
                "event_timestamp": START + pd.to_timedelta(day, "D") + pd.to_timedelta(seconds, "s"),
                "query": searches["text"],
                "age": searches["age"],
                "country": searches["country"],
            }
        )

    def react(self, request: dict, shown: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n, shown = len(shown), np.asarray(shown, dtype=np.int64)
        intended = np.full(n, self._intended[int(request["request_id"])], dtype=np.int64)
        relevance = self.world.search_relevance([request["query"]] * n, intended, shown)
        position = np.arange(1, n + 1)
        response = self.world.respond(rng, relevance, shown, position)
        return {
            "request_id": np.full(n, request["request_id"], dtype=np.int64),
            "user_id": np.full(n, request["user_id"], dtype=np.int64),
            "timestamp": np.full(n, request["event_timestamp"], dtype=object),
            "query": np.full(n, request["query"], dtype=object),
            "video_id": shown,
            "position": position,
            "clicked": response["clicked"].astype(np.int8),
            "watch_fraction": response["watch_fraction"],
            "completed": response["completed"].astype(np.int8),
            "watch_seconds": response["watch_seconds"],
            "intended_video_id": intended,
            "relevance": relevance,
            "p_click": response["p_click"],
        }

    def unit_totals(self, requests: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
        per_user = events.groupby("user_id")
        totals = pd.DataFrame(
            {
                "impressions": per_user.size(),
                "clicks": per_user["clicked"].sum(),
                "completions": per_user["completed"].sum(),
                "watch_minutes": per_user["watch_seconds"].sum() / 60,
            }
        )
        searches = requests.groupby(self.unit).size().rename("searches")
        return totals.reindex(searches.index, fill_value=0).join(searches).astype(float)

    def end_of_day(self, day: int, events: pd.DataFrame) -> None:
        """The day's rows join the search log (in its schema, the truth apart)."""
        rows = log_rows(events)
        self.logs = pd.concat([self.logs, rows], ignore_index=True)
        if self.write_logs:
            path = search_log_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            with replaced_atomically(path) as temporary:
                self.logs.to_parquet(temporary, index=False)
        log.info("videosearch: simulated day %d joined the search log (%d rows)", day, len(rows))

    # ---- the truth, for the oracle -------------------------------------------------------------
    def relevant_videos(self, request: dict) -> np.ndarray:
        """The videos that fit the request's query (computed once per request)."""
        request_id = int(request["request_id"])
        if self._relevant is None or self._relevant[0] != request_id:
            intended = np.array([self._intended[request_id]])
            self._relevant = (request_id, self.world.search_relevant_videos([request["query"]], intended)[0])
        return self._relevant[1]

    def truth(self, request: dict, video_ids: np.ndarray) -> np.ndarray:
        """1 for the videos that fit the request's query, else 0 (the world's relevance)."""
        return np.isin(np.asarray(video_ids, dtype=np.int64), self.relevant_videos(request)).astype(float)


def log_rows(events: pd.DataFrame) -> pd.DataFrame:
    """A simulated day's results shown as rows of the search log, in its dtypes."""
    rows = events[list(SEARCH_LOG)].copy()
    rows["timestamp"] = pd.to_datetime(rows["timestamp"], utc=True)
    return rows.astype(SEARCH_LOG).reset_index(drop=True)


@dataclass
class TruthSource:
    """The videos that fit the request's query: what no index retrieves. Their order does not matter (the
    stage orders them), so the first k of them (by id) when there are more."""

    online: VideoSearchOnline
    name: str = "oracle"

    def search(self, query: Understood, k: int) -> tuple[np.ndarray, np.ndarray, Understood]:
        rows = self.online.relevant_videos(self.online.current)[:k]
        return rows, np.ones(len(rows)), query


@dataclass
class TruthStage:
    """The world's truth in the blend's place, as the offline oracle: the videos that fit the query first, in a
    random order (1 + a uniform draw), then the others in the order the sources' fusion gave them (0: the
    sort is stable)."""

    online: VideoSearchOnline
    rng: np.random.Generator
    keep: int
    name: str = "truth"

    def score(self, candidates: Candidates) -> np.ndarray:
        fits = self.online.truth(self.online.current, candidates.rows)
        return fits * (1.0 + self.rng.random(len(fits)))


def online_system(config: dict, write_logs: bool = True) -> OnlineSystem:
    """The video-search world on the simulator, and its policies by name. Nothing serving reads changes from
    day to day (the catalogue, the indexes, the registry), so each policy is built once."""
    registered = load_champion(SYSTEM)  # first: without a training, the CLI says what to run
    online = VideoSearchOnline(config, write_logs)
    videos = pd.read_parquet(system_dir(SYSTEM) / "raw" / "videos.parquet")
    champion = VideoSearchService(config, registered, videos)  # the served funnel, as the API builds it
    # As the server does: a request's query vector and ANN search on one thread (intra-op threads only spin
    # against each other on a busy machine).
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng([config["seed"], 2])
    keep = config["serving"]["keep"]
    built: dict[str, Policy] = {}

    def funnel(name: str) -> SearchFunnel:
        served = champion.funnel
        if name == BASELINE:
            return replace(served, sources=[s for s in served.sources if s.name == TEXT], stages=())
        if name == "random":
            return replace(served, stages=[RandomStage(rng, keep)])
        return replace(served, sources=[TruthSource(online), *served.sources], stages=[TruthStage(online, rng, keep)])

    def policy(name: str) -> Policy:
        if name not in built:
            if name == "champion":
                built[name] = _policy(champion, None, online.k)
            elif name in (BASELINE, "random", "oracle"):
                built[name] = _policy(champion, funnel(name), online.k, online if name == "oracle" else None)
            else:
                built[name] = serve_model(load_trained_model(SYSTEM, name))
        return built[name]

    def policies(names: Sequence[str]) -> dict[str, Policy]:
        return {name: policy(name) for name in names}

    def serve_model(model: Champion) -> Policy:
        return _policy(VideoSearchService(config, model, videos), None, online.k)

    names = ("champion", *trained_model_names(SYSTEM), BASELINE, "random", "oracle")
    offline = (config["champion"]["metric"], config["champion"]["goal"])
    return OnlineSystem(online, policies, names, BASELINE, serve_model, offline_metric=offline)


def _policy(
    service: VideoSearchService, funnel: SearchFunnel | None, k: int, oracle: VideoSearchOnline | None = None
) -> Policy:
    """The served search as a policy: the page for the request's query, age and country, and the score of each
    result (`served_score`: the blend's, BM25's, the random draw, the truth)."""

    def policy(request: dict) -> dict[str, np.ndarray]:
        if oracle is not None:
            oracle.current = request
        result, _ = service.search(request["query"], k, int(request["age"]), request["country"], funnel)
        return {"items": np.asarray(result.rows, dtype=np.int64), "served_score": np.asarray(result.scores, float)}

    return policy
