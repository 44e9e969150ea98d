"""The funnel every system serves with, and evaluates offline with the same object:

  candidate generation   every source (two-tower ANN, popularity, trending, targeting rules...)
                         -> merged, de-duplicated, each candidate remembering its sources, the
                         request's excluded ids (seen, hidden) dropped -> candidate filters
                         (released, fatigue)
  ranking                the scorer's score of each candidate; without a scorer (a funnel that has
                         no ranker, or the merge-order baseline) the merge order stands
  re-ranking             the config's ordered steps (common.funnel.reranking), then the top k

    funnel = Funnel(catalog, sources, scorer, config["serving"])
    ranked = funnel.recommend(request, k, timer)

Each stage is timed (when given a StageTimer) and counts its candidates in and out. Only catalogue
rows come back: an id a source returns that the catalogue lacks (faiss pads a short answer with -1)
is dropped, and k beyond the pool returns the pool.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from common.funnel.reranking import Slate, build_steps
from common.retrieval.sources import CandidateSource, MergedCandidates, RetrievalRequest, merge_candidates
from common.serving.timing import StageTimer

Scorer = Callable[[RetrievalRequest, np.ndarray], np.ndarray]  # (request, catalogue rows) -> (n,) scores


@dataclass
class Ranked:
    rows: np.ndarray  # catalogue rows, best first
    scores: np.ndarray  # the scorer's score of each (0 without a scorer)
    keys: np.ndarray  # the final ordering key: the score moved by the score steps (bid x pCTR, freshness)
    sources: list[tuple[str, ...]]  # which sources found each
    counts: dict[str, dict[str, int]]  # candidates in / out of each stage and step


@dataclass(frozen=True)
class ColumnScorer:
    """Scores candidates by one value per catalogue row (registrations so far, reactions): the
    popularity baselines a learned ranker must beat, run through the same funnel."""

    values: np.ndarray  # (n_items,)

    def __call__(self, request: RetrievalRequest, item_rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.values[item_rows], dtype=float)


class Funnel:
    def __init__(self, catalog, sources: list[CandidateSource], scorer: Scorer | None, config: dict):
        """catalog: item_ids, rows(ids) and item columns by row; config: k_per_source, candidate_filters
        and re_ranking (lists of steps)."""
        self.catalog = catalog
        self.sources = sources
        self.scorer = scorer
        self.k_per_source = config["k_per_source"]
        self.filters = build_steps(config.get("candidate_filters", []), catalog)
        self.steps = build_steps(config.get("re_ranking", []), catalog)

    def variant(
        self,
        sources: list[CandidateSource] | None = None,
        scorer: Scorer | None = None,
        kinds: tuple[str, ...] | None = None,
        k_per_source: int | None = None,
    ) -> Funnel:
        """The same funnel with other sources (asked for `k_per_source` each), another scorer (None: the
        merge order) or only the re-ranking steps of some kinds ("filter", "score", "select"); the
        prepared steps are shared."""
        other = copy.copy(self)
        other.sources = self.sources if sources is None else sources
        other.k_per_source = k_per_source or self.k_per_source
        other.scorer = scorer
        if kinds is not None:
            other.steps = [(name, step) for name, step in self.steps if step.kind in kinds]
        return other

    def candidates(self, request: RetrievalRequest) -> tuple[Slate, MergedCandidates, dict]:
        """The merged, filtered candidates in merge order (keys: the negated merge position)."""
        merged = merge_candidates(request, self.sources, self.k_per_source, exclude=request.exclude)
        rows = self.catalog.rows(merged.item_ids)
        rows = rows[rows >= 0]
        counts = {name: len(ids) for name, ids in merged.per_source.items()}
        counts["merged"] = len(rows)
        slate = Slate(rows, np.zeros(len(rows)), -np.arange(len(rows), dtype=float))
        for name, step in self.filters:
            slate = step(request, self.catalog, slate)
            counts[name] = len(slate.rows)
        counts["out"] = len(slate.rows)
        return slate, merged, counts

    def recommend(self, request: RetrievalRequest, k: int, timer: StageTimer | None = None) -> Ranked:
        timer = timer or StageTimer()
        with timer.stage("candidate_generation"):
            slate, merged, generation = self.candidates(request)
        with timer.stage("ranking"):
            if self.scorer is not None and len(slate.rows):
                scores = np.asarray(self.scorer(request, slate.rows), dtype=float)
                slate = Slate(slate.rows, scores, scores.copy())
        with timer.stage("re_ranking"):
            re_ranking = {"in": len(slate.rows)}
            for name, step in self.steps:
                if step.kind == "score" and self.scorer is None:
                    continue  # no score to move: the merge order stands
                slate = step(request, self.catalog, slate)
                if step.kind != "score":
                    re_ranking[name] = len(slate.rows)
            top = slate.by_key().take(np.arange(min(k, len(slate.rows))))
            re_ranking["out"] = len(top.rows)
        counts = {
            "candidate_generation": generation,
            "ranking": {"in": generation["out"], "out": generation["out"]},
            "re_ranking": re_ranking,
        }
        return Ranked(top.rows, top.scores, top.keys, merged.sources_of(self.catalog.item_ids[top.rows]), counts)
