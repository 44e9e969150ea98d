"""The ads serving funnel (chapter section 7):

  user features (Feast online store)
  -> candidate generation: the advertisers' targeting criteria (age, gender, location) and
     fatigue (never an ad the user hid, nor one shown too often in the last 7 days)
  -> ranking: the champion's calibrated pCTR, for the top slot
  -> re-ranking: expected value (bid x pCTR), at most N ads per advertiser in the top k

Ad features (metadata and daily counts, a few hundred rows) are read from Feast once at
load and kept in memory; a request costs one online read, for the user.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.features.store import FeatureRepo
from common.funnel.reranking import top_k_with_group_cap
from common.serving.service import open_serving
from common.serving.timing import StageTimer
from common.tracking.runs import Champion
from systems.ads.features import LIST_FEATURES, derive_for_one_user, exposures_per_ad
from systems.ads.world import AGE_BUCKETS, CATEGORIES, GENDERS, LOCATIONS

UNKNOWN = "unknown"  # a cold-start user's demographics: unseen by every model's encoder
USER_VIEWS = ("user_profile", "user_activity")
_TARGETING = {
    "age_bucket": ("target_age_buckets", AGE_BUCKETS),
    "gender": ("target_genders", GENDERS),
    "location": ("target_locations", LOCATIONS),
}


@dataclass(frozen=True)
class RankedAd:
    ad_id: int
    advertiser_id: int
    category: str
    bid: float
    pctr: float
    expected_value: float
    why: list[str]


@dataclass(frozen=True)
class RankResult:
    known_user: bool
    ads: list[RankedAd]
    stage_counts: dict[str, dict[str, int]]
    stage_ms: dict[str, float]


class AdsService:
    def __init__(self, config: dict, champion: Champion, repo: FeatureRepo):
        self.serving = config["serving"]
        self.champion = champion
        self.repo = repo
        self.user_refs = repo.refs(USER_VIEWS)
        self.ads = _load_ads(repo)
        # Columns as arrays: a request picks its candidates' rows by index, no pandas lookups.
        self.ad_arrays = {
            name: self.ads[name].to_numpy() for name in self.ads.columns if not name.startswith("target_")
        }
        self.ad_category_codes = pd.Categorical(self.ads["category"], CATEGORIES).codes.astype(np.int64)
        self.targeting = {
            attribute: (_targeting_matrix(self.ads[column], values), values)
            for attribute, (column, values) in _TARGETING.items()
        }
        # A cold-start user's CTR prior: the platform's recent CTR, as the smoothed features use.
        self.global_ctr = float(self.ads["ad_clicks_7d"].sum() / max(self.ads["ad_impressions_7d"].sum(), 1))

    @classmethod
    def load(cls, config: dict) -> AdsService:
        repo, champions = open_serving("ads")
        return cls(config, champions["ranker"], repo)

    def rank(self, user_id: int, device: str, hour: int, k: int) -> RankResult:
        timer = StageTimer()
        with timer.stage("user_features"):
            user, known = self._user_features(user_id)
        with timer.stage("candidate_generation"):
            candidates, shown, counts = self._candidates(user)
        with timer.stage("ranking"):
            pctr = self._score(user, candidates, device, hour)
        with timer.stage("re_ranking"):
            bid = self.ad_arrays["bid"][candidates]
            advertiser = self.ad_arrays["advertiser_id"][candidates]
            expected_value = bid * pctr
            top = top_k_with_group_cap(expected_value, advertiser, k, self.serving["max_ads_per_advertiser"])
            ads = [self._ranked_ad(user, candidates[i], shown[i], pctr[i], expected_value[i]) for i in top]
        counts["ranking"] = {"in": len(candidates), "out": len(candidates)}
        counts["re_ranking"] = {"in": len(candidates), "out": len(ads)}
        return RankResult(known, ads, counts, timer.milliseconds)

    def _ranked_ad(self, user: dict, row: int, shown: int, pctr: float, expected_value: float) -> RankedAd:
        why = [
            "targeting: " + ", ".join(f"{attribute} {user[attribute]}" for attribute in _TARGETING),
            f"fatigue: shown {shown}x in 7 days (limit {self.serving['max_recent_exposures']}), not hidden",
        ]
        a = self.ad_arrays
        return RankedAd(
            int(a["ad_id"][row]),
            int(a["advertiser_id"][row]),
            str(a["category"][row]),
            float(a["bid"][row]),
            float(pctr),
            float(expected_value),
            why,
        )

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

    def _candidates(self, user: dict) -> tuple[np.ndarray, np.ndarray, dict]:
        """Row indices of the ads that pass targeting and fatigue, and how often each was
        shown to the user in the last 7 days."""
        n_ads = len(self.ads)
        eligible = np.ones(n_ads, dtype=bool)
        for attribute, (matrix, values) in self.targeting.items():
            value = user[attribute]
            # An unknown attribute only matches ads that do not restrict it.
            eligible &= matrix[:, values.index(value)] if value in values else matrix.all(axis=1)
        ad_ids = self.ad_arrays["ad_id"]
        hidden = np.isin(ad_ids, np.asarray(user["hidden_ad_ids"], dtype=np.int64))
        shown = exposures_per_ad(user["recent_ad_ids_7d"], ad_ids)
        keep = np.flatnonzero(eligible & ~hidden & (shown < self.serving["max_recent_exposures"]))
        counts = {"candidate_generation": {"in": n_ads, "targeting": int(eligible.sum()), "out": len(keep)}}
        return keep, shown[keep], counts

    def _score(self, user: dict, candidates: np.ndarray, device: str, hour: int) -> np.ndarray:
        if len(candidates) == 0:
            return np.zeros(0)
        n = len(candidates)
        columns = {name: values[candidates] for name, values in self.ad_arrays.items()}
        columns.update(derive_for_one_user(user, columns["ad_id"], self.ad_category_codes[candidates]))
        columns.update(
            user_id=np.full(n, user["user_id"]),
            device=np.full(n, device, dtype=object),
            hour=np.full(n, hour),
            position=np.full(n, self.serving["position"]),
        )
        for name, value in user.items():
            if name not in LIST_FEATURES:
                columns[name] = np.full(n, value, dtype=object if isinstance(value, str) else None)
        # One DataFrame constructor: column-by-column assignment cost milliseconds per request.
        return self.champion.classifier.predict_proba(pd.DataFrame(columns))[:, 1]


def _load_ads(repo: FeatureRepo) -> pd.DataFrame:
    """Every ad's metadata and counts, with its campaign's and advertiser's, from the online store."""
    ad_ids = repo.source_keys("ad_metadata", "ad_id")
    ads = repo.online_frame("ad_metadata", "ad_id", ad_ids).merge(repo.online_frame("ad_activity", "ad_id", ad_ids))
    ads = ads.dropna(subset=["advertiser_id"]).astype({"advertiser_id": np.int64, "campaign_id": np.int64})
    for entity in ("campaign", "advertiser"):
        key = f"{entity}_id"
        ads = ads.merge(repo.online_frame(f"{entity}_activity", key, ads[key].unique()), on=key, how="left")
    return ads.fillna(0).reset_index(drop=True)


def _targeting_matrix(targets: pd.Series, values: list[str]) -> np.ndarray:
    """(n_ads, n_values) booleans: which values each ad's criterion admits."""
    return np.array([[value in set(allowed) for value in values] for allowed in targets], dtype=bool)
