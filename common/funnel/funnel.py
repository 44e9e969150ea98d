"""The three-stage funnel of the recommendation chapters, one code path for offline evaluation
and for the served endpoint:

  candidate generation  every source (two-tower ANN, popularity global / per segment, trending)
                        -> merged, de-duplicated, each candidate remembering its sources; what the
                        user already engaged with and what is not released yet are dropped
  ranking               the ranker's score over the candidates (ranking features of
                        common.funnel.ranking_features)
  re-ranking            age and region restrictions, a freshness boost, de-duplication of
                        near-duplicates (the best-scored copy of a title), at most N per genre in
                        the top k
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from common.features.activity import ITEM_ACTIVITY
from common.funnel.ranking_features import DAY_S, ItemCatalog, UserStates, model_inputs
from common.funnel.reranking import age_allowed, first_occurrence, freshness_boost, region_allowed, top_k_with_group_cap
from common.retrieval.sources import CandidateSource, MergedCandidates, RetrievalRequest, merge_candidates
from common.serving.timing import StageTimer


@dataclass
class Recommendation:
    item_rows: np.ndarray  # catalogue rows, best first
    scores: np.ndarray  # the ranker's score of each (before the freshness boost)
    sources: list[tuple[str, ...]]  # which sources found each
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # candidates in / out of each stage


def ranking_scores(ranker, X, engage_odds: bool) -> np.ndarray:
    """The ranker's P(positive), or with `engage_odds` its sampled-negatives reading:
    odds(engaged) * P(positive | engaged).

    Against negatives drawn uniformly from the catalogue (logs without impressions), the odds a
    classifier learns are P(engaged | user, item) / (rate x 1 / n_items): proportional to the true
    engagement probability, whereas its probability saturates near 1 for every popular item and
    stops telling them apart (measured on the game world: the funnel fell below popularity)."""
    if not engage_odds:
        return ranker.predict_proba(X)[:, 1]
    if hasattr(ranker, "predict_heads"):
        heads = ranker.predict_heads(X)
        engage, satisfy = heads["engage"], heads["satisfy"]
    else:
        engage, satisfy = ranker.predict_proba(X)[:, 1], 1.0
    engage = np.clip(engage, 1e-12, 1 - 1e-12)
    return engage / (1.0 - engage) * satisfy


class Funnel:
    def __init__(
        self,
        catalog: ItemCatalog,
        sources: list[CandidateSource],
        ranker,
        activity: dict[str, np.ndarray],
        config: dict,
    ):
        """activity: ITEM_ACTIVITY columns per catalogue row, as of the serving time."""
        self.catalog = catalog
        self.sources = sources
        self.ranker = ranker
        self.activity = {c: np.asarray(activity[c], dtype=float) for c in ITEM_ACTIVITY}
        self.config = config
        schema = catalog.schema
        self.min_age = catalog.columns[schema.min_age_column] if schema.min_age_column else None
        self.regions = catalog.columns[schema.regions_column] if schema.regions_column else None
        # Near-duplicates share a lower-cased title (re-uploads, mirrors): one code per title.
        self.title_key = pd.factorize(pd.Series(catalog.columns[schema.title_column]).astype(str).str.lower())[0]

    def candidates(
        self, states: UserStates, row: int, attributes: dict, now_s: float, k_per_source: int
    ) -> tuple[np.ndarray, MergedCandidates, dict]:
        """Catalogue rows of the merged candidates (merge order), the merge (which source found what),
        stage counts."""
        user = states.row(row)
        request = RetrievalRequest(int(user["user_id"]), states.vectors[row], attributes)
        merged = merge_candidates(request, self.sources, k_per_source, exclude=np.asarray(user["seen_item_ids"]))
        rows = self.catalog.rows(merged.item_ids)
        keep = rows >= 0
        keep[keep] = self.catalog.release_s[rows[keep]] < now_s  # in the catalogue at request time
        counts = {"candidate_generation": {name: len(ids) for name, ids in merged.per_source.items()}}
        counts["candidate_generation"].update(merged=len(rows), out=int(keep.sum()))
        return rows[keep], merged, counts

    def allowed(self, states: UserStates, row: int, item_rows: np.ndarray) -> np.ndarray:
        """Re-ranking filters: age and region restrictions."""
        schema, user = self.catalog.schema, states.row(row)
        keep = np.ones(len(item_rows), dtype=bool)
        if self.min_age is not None:
            age = user.get(schema.user_age_column)
            keep &= age_allowed(None if age is None or age != age else int(age), self.min_age[item_rows])
        if self.regions is not None:
            keep &= region_allowed(user.get(schema.user_region_column), list(self.regions[item_rows]))
        return keep

    def score(self, states: UserStates, row: int, item_rows: np.ndarray, now_s: float) -> np.ndarray:
        if len(item_rows) == 0:
            return np.zeros(0)
        activity = {c: values[item_rows] for c, values in self.activity.items()}
        X = model_inputs(states, np.full(len(item_rows), row), self.catalog, item_rows, now_s, activity, as_frame=False)
        return ranking_scores(self.ranker, X, self.config.get("engage_odds", False))

    def recommend(
        self,
        states: UserStates,
        row: int,
        attributes: dict,
        now_s: float,
        k: int,
        timer: StageTimer | None = None,
    ) -> Recommendation:
        timer = timer or StageTimer()
        c = self.config
        with timer.stage("candidate_generation"):
            rows, merged, counts = self.candidates(states, row, attributes, now_s, c["k_per_source"])
        with timer.stage("ranking"):
            scores = self.score(states, row, rows, now_s)
        with timer.stage("re_ranking"):
            allowed = np.flatnonzero(self.allowed(states, row, rows))
            age_days = (now_s - self.catalog.release_s[rows[allowed]]) / DAY_S
            # The boost is added to log P: a multiplicative lift, the same for a niche item as for a hit.
            log_scores = np.log(np.maximum(scores[allowed], 1e-12))
            boosted = freshness_boost(log_scores, age_days, c["freshness_weight"], c["freshness_half_life_days"])
            # Near-duplicates: the best-scored copy of each title stays.
            by_score = np.argsort(-boosted, kind="stable")
            distinct = by_score[first_occurrence(self.title_key[rows[allowed[by_score]]])]
            groups = self.catalog.group_codes[rows[allowed[distinct]]]
            top = allowed[distinct[top_k_with_group_cap(boosted[distinct], groups, k, c["max_per_group"])]]
        counts["ranking"] = {"in": len(rows), "out": len(rows)}
        counts["re_ranking"] = {"in": len(rows), "allowed": len(allowed), "distinct": len(distinct), "out": len(top)}
        return Recommendation(rows[top], scores[top], merged.sources_of(self.catalog.item_ids[rows[top]]), counts)

    def merge_order(self, states: UserStates, row: int, attributes: dict, now_s: float, k: int) -> np.ndarray:
        """The baseline without a ranker: the first k allowed candidates in merge order."""
        rows, _, _ = self.candidates(states, row, attributes, now_s, self.config["k_per_source"])
        rows = rows[self.allowed(states, row, rows)]
        return rows[first_occurrence(self.title_key[rows])][:k]
