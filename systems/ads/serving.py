"""The ads serving funnel (chapter section 7), on the shared funnel (common.funnel.funnel):

  user features (Feast online store)
  -> candidate generation: the advertisers' targeting criteria (age, gender, location), never an
     ad the user hid, and fatigue (configs/ads.yaml: an exposure cap over the last 7 days)
  -> ranking: the champion's calibrated pCTR, for the top slot
  -> re-ranking: expected value (bid x pCTR), at most N ads per advertiser in the top k

Ad features (metadata and daily counts, a few hundred rows) are read from Feast once at load and
kept in memory; a request costs one online read, for the user.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from common.features.store import FeatureRepo
from common.funnel.catalog import ItemTable, candidate_columns
from common.funnel.funnel import Funnel
from common.funnel.reranking import count_occurrences
from common.models.scorer import score
from common.retrieval.rules import TargetingSource
from common.retrieval.sources import RetrievalRequest
from common.serving.service import Served, open_serving
from common.serving.timing import StageTimer
from common.tracking.runs import Champion
from systems.ads.features import LIST_FEATURES, derive_for_one_user
from systems.ads.world import AGE_BUCKETS, CATEGORIES, GENDERS, LOCATIONS

UNKNOWN = "unknown"  # a cold-start user's demographics: unseen by every model's encoder
USER_VIEWS = ("user_profile", "user_activity")
TARGETING = {  # user attribute -> (the ad's list of admitted values, every value)
    "age_bucket": ("target_age_buckets", AGE_BUCKETS),
    "gender": ("target_genders", GENDERS),
    "location": ("target_locations", LOCATIONS),
}


# P(click at the top slot) of ads for one request: (user id, ad ids, device, hour) -> probabilities.
ClickModel = Callable[[int, np.ndarray, str, int], np.ndarray]


class AdsService:
    def __init__(self, config: dict, champion: Champion, repo: FeatureRepo, click_model: ClickModel | None = None):
        """`click_model` replaces the champion's pCTR in the funnel: the online simulator's oracle policy (the
        world's true P(click)) and its no-model baseline (one constant: ads ranked by bid)."""
        self.serving = config["serving"]
        self.champion = champion
        self.click_model = click_model
        self.repo = repo
        self.user_refs = repo.refs(USER_VIEWS)
        # Every ad's metadata and counts, with its campaign's and advertiser's, from the online store.
        parents = {"campaign_activity": "campaign_id", "advertiser_activity": "advertiser_id"}
        ads = repo.online_catalog(("ad_metadata", "ad_activity"), "ad_id", parents)
        targeting = {attribute: (values, ads[column]) for attribute, (column, values) in TARGETING.items()}
        self.catalog = ItemTable.from_frame(ads.drop(columns=[c for c, _ in TARGETING.values()]), "ad_id")
        self.category_codes = pd.Categorical(ads["category"], CATEGORIES).codes.astype(np.int64)
        source = TargetingSource.build(self.catalog.item_ids, targeting)
        self.funnel = Funnel(self.catalog, [source], self._pctr, self.serving)
        self.fatigue = next(s for s in self.serving["candidate_filters"] if s["step"] == "exposure_cap")
        # A cold-start user's CTR prior: the platform's recent CTR, as the smoothed features use.
        self.global_ctr = float(ads["ad_clicks_7d"].sum() / max(ads["ad_impressions_7d"].sum(), 1))

    @classmethod
    def load(cls, config: dict) -> AdsService:
        repo, champions = open_serving("ads")
        return cls(config, champions["ranker"], repo)

    def rank(self, user_id: int, device: str, hour: int, k: int) -> Served:
        timer = StageTimer()
        with timer.stage("user_features"):
            user, known = self._user_features(user_id)
        hidden = np.asarray(user["hidden_ad_ids"], dtype=np.int64)
        request = RetrievalRequest(user_id, attributes=user, exclude=hidden, context=(device, hour))
        return Served(known, self.funnel.recommend(request, k, timer), timer.milliseconds, user)

    def ads(self, served: Served) -> list[dict]:
        """The response's ads, best expected value first, each with the rules it passed."""
        ranked = served.ranked
        return [self._ad(served.user, *ad) for ad in zip(ranked.rows, ranked.scores, ranked.keys, strict=True)]

    def _ad(self, user: dict, row: int, pctr: float, expected_value: float) -> dict:
        c, cap = self.catalog.columns, self.fatigue
        shown = int(count_occurrences(user[cap["user"]], c["ad_id"][row : row + 1])[0])
        targeting = ", ".join(f"{attribute} {user[attribute]}" for attribute in TARGETING)
        why = [
            f"targeting: {targeting}",
            f"fatigue: shown {shown}x in 7 days (limit {cap['max_exposures']}), not hidden",
        ]
        ad = {name: int(c[name][row]) for name in ("ad_id", "advertiser_id")}
        ad.update(category=str(c["category"][row]), bid=float(c["bid"][row]))
        return {**ad, "pctr": float(pctr), "expected_value": float(expected_value), "why": why}

    def _user_features(self, user_id: int) -> tuple[dict, bool]:
        user = {name: column[0] for name, column in self.repo.online(self.user_refs, [{"user_id": user_id}]).items()}
        if user["age_bucket"] is not None:
            return user, True
        # Cold start: unknown demographics, no history, the platform's CTR as prior.
        user.update(
            {
                "age_bucket": UNKNOWN,
                "gender": UNKNOWN,
                "location": UNKNOWN,
                "mobile_share": self.serving["cold_start_mobile_share"],
                "user_ctr_7d": self.global_ctr,
            }
        )
        return {name: ([] if name in LIST_FEATURES else 0) if v is None else v for name, v in user.items()}, False

    def _pctr(self, request: RetrievalRequest, rows: np.ndarray) -> np.ndarray:
        """The champion's calibrated P(click) of each candidate ad, for the top slot."""
        user, (device, hour) = request.attributes, request.context
        if self.click_model is not None:
            return self.click_model(int(request.user_id), self.catalog.columns["ad_id"][rows], device, hour)
        context = {"device": device, "hour": hour, "position": self.serving["position"]}
        columns = candidate_columns(self.catalog, rows, {**user, **context}, skip=tuple(LIST_FEATURES))
        columns.update(derive_for_one_user(user, columns["ad_id"], self.category_codes[rows]))
        # One DataFrame constructor: column-by-column assignment cost milliseconds per request.
        return score(self.champion.classifier, pd.DataFrame(columns), self.serving["score"])
