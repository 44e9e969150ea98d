"""The ads world: a seeded generative model of users, ads and impressions whose click
probability we know exactly (the oracle).

    python -c "from systems.ads.world import AdsWorld; print(AdsWorld(n_users=100).generate().impressions.head())"

What drives a click (logit of P(click | the ad is examined)):
  base + affinity(user latent . ad latent)      user latent = demographic part + personal part,
                                                ad latent = category part + ad part
       + device x format + hour x category       context effects
       + creative quality + advertiser brand
       - fatigue * log1p(exposures of this ad to this user in the last 7 days)
and P(click) = examination(position) * sigmoid(logit)  (position-based click model).
Unclicked impressions are hidden with a small probability that rises as affinity falls;
a hidden ad is never shown to that user again.

Observable features carry part of this signal: demographics (the demographic part of the
latent), category (its part of the ad latent), a noisy creative score, the user's own
click history (the personal part, learned over time). The personal and ad parts are not
directly observable, which leaves room between a model and the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

AGE_BUCKETS = ["18-24", "25-34", "35-44", "45-54", "55+"]
GENDERS = ["female", "male"]
LOCATIONS = ["us-west", "us-east", "uk", "de", "fr", "in", "br", "jp"]
CATEGORIES = [
    "apparel",
    "auto",
    "beauty",
    "books",
    "electronics",
    "finance",
    "fitness",
    "food",
    "gaming",
    "health",
    "home",
    "jobs",
    "music",
    "pets",
    "real-estate",
    "software",
    "sports",
    "streaming",
    "toys",
    "travel",
]
FORMATS = ["image", "video", "carousel"]
DEVICES = ["mobile", "desktop", "tablet"]
N_SLOTS = 4
START = pd.Timestamp("2026-01-05", tz="UTC")
FATIGUE_WINDOW = pd.Timedelta(days=7)

# Share of requests per hour of day: low at night, peaks in the evening.
_HOURLY = np.array([2, 1, 1, 1, 1, 2, 3, 4, 5, 5, 5, 5, 6, 5, 5, 5, 5, 6, 7, 8, 8, 7, 5, 3], float)
HOUR_WEIGHTS = _HOURLY / _HOURLY.sum()


@dataclass(frozen=True)
class AdsTables:
    """Raw tables, shaped like an ads platform's logs. `oracle` is kept apart on purpose:
    it is the world's truth and must never reach the features."""

    users: pd.DataFrame
    advertisers: pd.DataFrame
    campaigns: pd.DataFrame
    ads: pd.DataFrame
    impressions: pd.DataFrame
    oracle: pd.DataFrame  # impression_id, p_click


@dataclass
class AdsWorld:
    n_users: int = 1500
    n_advertisers: int = 25
    n_campaigns: int = 50
    n_ads: int = 120
    n_days: int = 21
    requests_per_day: int = 700
    seed: int = 7
    latent_dim: int = 8
    # Click model strengths (logit scale); tuned so CTR is ~2-3% and the oracle AUC ~0.8.
    base_logit: float = -3.9
    affinity_weight: float = 0.9
    fatigue_weight: float = 0.35
    examination: tuple[float, ...] = (1.0, 0.75, 0.55, 0.45)
    # Tastes shift from day `drift_from_day` on (default: the day after the logs, so the logs are a stable
    # period and the online simulator's days are not): each category's direction in the latent space moves by
    # `drift_per_day` per day, so which users like which categories changes. 0: a stable world.
    drift_per_day: float = 0.0
    drift_from_day: int | None = None
    truth: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._sample_truth(np.random.default_rng(self.seed))
        # Its own stream: a world with drift has the same users, ads and logs as one without.
        d = self.latent_dim
        self.truth["category_drift"] = np.random.default_rng([self.seed, 1]).normal(0, 1, (len(CATEGORIES), d))
        if self.drift_from_day is None:
            self.drift_from_day = self.n_days

    # ---- entities and their hidden truth -------------------------------------------------
    def _sample_truth(self, rng: np.random.Generator) -> None:
        d = self.latent_dim
        t = self.truth
        # Latent directions: demographics and categories live in the same space, so
        # "category x demographic" crosses exist and are learnable from features.
        age_vec = rng.normal(0, 0.7, (len(AGE_BUCKETS), d))
        gender_vec = rng.normal(0, 0.5, (len(GENDERS), d))
        location_vec = rng.normal(0, 0.3, (len(LOCATIONS), d))
        category_vec = rng.normal(0, 0.8, (len(CATEGORIES), d))

        t["age"] = rng.choice(len(AGE_BUCKETS), self.n_users, p=[0.2, 0.3, 0.22, 0.15, 0.13])
        t["gender"] = rng.integers(0, len(GENDERS), self.n_users)
        t["location"] = rng.choice(len(LOCATIONS), self.n_users, p=[0.16, 0.18, 0.12, 0.1, 0.08, 0.16, 0.1, 0.1])
        t["mobile_share"] = rng.beta(3, 1.5, self.n_users)
        t["activity"] = rng.lognormal(0, 1.0, self.n_users)
        t["user_latent"] = (
            age_vec[t["age"]]
            + gender_vec[t["gender"]]
            + location_vec[t["location"]]
            + rng.normal(0, 0.7, (self.n_users, d))  # the personal part: only history reveals it
        )

        t["campaign_advertiser"] = rng.integers(0, self.n_advertisers, self.n_campaigns)
        t["advertiser_brand"] = rng.normal(0, 0.3, self.n_advertisers)
        t["ad_campaign"] = rng.integers(0, self.n_campaigns, self.n_ads)
        t["ad_advertiser"] = t["campaign_advertiser"][t["ad_campaign"]]
        # An advertiser mostly sells in one or two categories.
        advertiser_category = rng.integers(0, len(CATEGORIES), self.n_advertisers)
        own_category = rng.random(self.n_ads) < 0.8
        t["ad_category"] = np.where(
            own_category, advertiser_category[t["ad_advertiser"]], rng.integers(0, len(CATEGORIES), self.n_ads)
        )
        t["ad_format"] = rng.choice(len(FORMATS), self.n_ads, p=[0.5, 0.3, 0.2])
        t["ad_quality"] = rng.normal(0, 0.4, self.n_ads)
        t["ad_latent"] = category_vec[t["ad_category"]] + rng.normal(0, 0.5, (self.n_ads, d))
        t["ad_bid"] = np.round(rng.lognormal(0.0, 0.6, self.n_ads), 2)  # dollars per click
        t["ad_popularity"] = rng.pareto(1.5, self.n_ads) + 1.0  # budget share in the logging policy
        # Context effects.
        t["device_format"] = np.array([[0.0, 0.35, -0.1], [0.1, -0.2, 0.25], [0.0, 0.15, 0.1]])  # device x format
        t["hour_category"] = rng.normal(0, 0.25, (24, len(CATEGORIES)))
        t["hour_category"][18:23] += 0.2  # evenings click more
        t["hide_base"] = np.array(-6.0)

        # Targeting criteria: most ads target a subset of one attribute or two.
        t["target_age"] = self._targeting_mask(rng, len(AGE_BUCKETS), share_all=0.5)
        t["target_gender"] = self._targeting_mask(rng, len(GENDERS), share_all=0.75)
        t["target_location"] = self._targeting_mask(rng, len(LOCATIONS), share_all=0.6)

    def _targeting_mask(self, rng: np.random.Generator, n_values: int, share_all: float) -> np.ndarray:
        """(n_ads, n_values) booleans: which values each ad targets (all, for a share of ads)."""
        mask = rng.random((self.n_ads, n_values)) < 0.5
        mask[np.arange(self.n_ads), rng.integers(0, n_values, self.n_ads)] = True  # never empty
        mask[rng.random(self.n_ads) < share_all] = True
        return mask

    # ---- the oracle ----------------------------------------------------------------------
    def click_probability(
        self,
        user_id: np.ndarray,
        ad_id: np.ndarray,
        device: np.ndarray,
        hour: np.ndarray,
        position: np.ndarray,
        prior_exposures: np.ndarray,
        day: np.ndarray | int = 0,
    ) -> np.ndarray:
        """The true P(click) of impressions. `device` holds indices into DEVICES, `position`
        is 1-based, `prior_exposures` counts showings of the same ad to the same user in the
        7 days before, `day` is the day index from START (tastes drift after drift_from_day)."""
        examined = np.asarray(self.examination)[np.asarray(position) - 1]
        return examined / (1.0 + np.exp(-self._click_logit(user_id, ad_id, device, hour, prior_exposures, day)))

    def hide_probability(self, user_id: np.ndarray, ad_id: np.ndarray, day: np.ndarray | int = 0) -> np.ndarray:
        """The true P(hide) of an impression that was not clicked: higher the less the user likes the ad."""
        return 1.0 / (1.0 + np.exp(-(self.truth["hide_base"] - 1.5 * self._affinity(user_id, ad_id, day))))

    def _affinity(self, user_id: np.ndarray, ad_id: np.ndarray, day: np.ndarray | int = 0) -> np.ndarray:
        t = self.truth
        ad_latent = t["ad_latent"][ad_id]
        if self.drift_per_day:
            drifted = np.maximum(np.asarray(day) - self.drift_from_day, 0) * self.drift_per_day
            shift = t["category_drift"][t["ad_category"][ad_id]]
            ad_latent = ad_latent + np.broadcast_to(drifted, len(shift))[:, None] * shift
        dot = np.einsum("nd,nd->n", t["user_latent"][user_id], ad_latent)
        return dot / np.sqrt(self.latent_dim)

    def _click_logit(self, user_id, ad_id, device, hour, prior_exposures, day) -> np.ndarray:
        t = self.truth
        return (
            self.base_logit
            + self.affinity_weight * self._affinity(user_id, ad_id, day)
            + t["device_format"][device, t["ad_format"][ad_id]]
            + t["hour_category"][hour, t["ad_category"][ad_id]]
            + t["ad_quality"][ad_id]
            + t["advertiser_brand"][t["ad_advertiser"][ad_id]]
            - self.fatigue_weight * np.log1p(prior_exposures)
        )

    def eligible(self, user_id: np.ndarray) -> np.ndarray:
        """(n_users, n_ads) booleans: the ads whose targeting criteria the users match."""
        t = self.truth
        return (
            t["target_age"][:, t["age"][user_id]].T
            & t["target_gender"][:, t["gender"][user_id]].T
            & t["target_location"][:, t["location"][user_id]].T
        )

    # ---- the logs ------------------------------------------------------------------------
    def generate(self) -> AdsTables:
        rng = np.random.default_rng(self.seed + 1)
        impressions = self._serve_requests(rng)
        impressions["prior_exposures"] = _prior_exposures(impressions)
        device = impressions["device"].to_numpy()
        day = ((impressions["event_timestamp"] - START) // pd.Timedelta(days=1)).to_numpy()
        p_click = self.click_probability(
            impressions["user_id"].to_numpy(),
            impressions["ad_id"].to_numpy(),
            device,
            impressions["hour"].to_numpy(),
            impressions["position"].to_numpy(),
            impressions["prior_exposures"].to_numpy(),
            day,
        )
        clicked = rng.random(len(impressions)) < p_click
        p_hide = self.hide_probability(impressions["user_id"].to_numpy(), impressions["ad_id"].to_numpy(), day)
        hidden = ~clicked & (rng.random(len(impressions)) < p_hide)
        impressions = impressions.assign(
            clicked=clicked.astype(np.int8), hidden=hidden.astype(np.int8), p_click=p_click
        )
        impressions = _drop_after_hide(impressions)

        oracle = impressions[["impression_id", "p_click"]].reset_index(drop=True)
        impressions = impressions.drop(columns=["p_click", "prior_exposures"])
        impressions["device"] = pd.Categorical.from_codes(impressions["device"], DEVICES).astype(str)
        return AdsTables(
            self._users_table(),
            self._advertisers_table(),
            self._campaigns_table(),
            self._ads_table(rng),
            impressions.reset_index(drop=True),
            oracle,
        )

    def requests(self, day: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        """Ad requests, one on each of the given days (0 is START): who asks (active users more often), at
        what time (the evening peak) and from which device (the user's habit). The logs' requests, and an
        online simulation's arrivals on the days after them."""
        t = self.truth
        n_requests = len(day)
        users = rng.choice(self.n_users, n_requests, p=t["activity"] / t["activity"].sum())
        hour = rng.choice(24, n_requests, p=HOUR_WEIGHTS)
        seconds = rng.integers(0, 3600, n_requests)
        timestamp = START + pd.to_timedelta(day, "D") + pd.to_timedelta(hour, "h") + pd.to_timedelta(seconds, "s")
        mobile = rng.random(n_requests) < t["mobile_share"][users]
        device = np.where(mobile, 0, rng.choice([1, 2], n_requests, p=[0.75, 0.25]))
        return pd.DataFrame({"user_id": users, "event_timestamp": timestamp, "device": device, "hour": hour})

    def _serve_requests(self, rng: np.random.Generator) -> pd.DataFrame:
        """The logging policy: each request shows N_SLOTS eligible ads, drawn without
        replacement with weight ~ popularity x sqrt(bid) (Gumbel top-k), in random slot order."""
        t = self.truth
        requests = self.requests(np.repeat(np.arange(self.n_days), self.requests_per_day), rng)
        n_requests = len(requests)
        users, hour, device = (requests[c].to_numpy() for c in ("user_id", "hour", "device"))
        timestamp = pd.DatetimeIndex(requests["event_timestamp"])

        log_weight = np.log(t["ad_popularity"]) + 0.5 * np.log(t["ad_bid"])
        chosen = np.full((n_requests, N_SLOTS), -1)
        # Requests of users in the same targeting segment share an eligibility row.
        segment = (t["age"][users] * len(GENDERS) + t["gender"][users]) * len(LOCATIONS) + t["location"][users]
        for seg in np.unique(segment):
            rows = np.flatnonzero(segment == seg)
            eligible_ads = np.flatnonzero(self.eligible(users[rows[:1]])[0])
            if len(eligible_ads) == 0:
                continue
            keys = log_weight[eligible_ads] + rng.gumbel(size=(len(rows), len(eligible_ads)))
            top = np.argsort(-keys, axis=1)[:, :N_SLOTS]
            chosen[rows, : top.shape[1]] = eligible_ads[top]

        request_id = np.repeat(np.arange(n_requests), N_SLOTS)
        position = np.tile(np.arange(1, N_SLOTS + 1), n_requests)
        frame = pd.DataFrame(
            {
                "request_id": request_id,
                "user_id": users[request_id],
                "ad_id": chosen.ravel(),
                "event_timestamp": timestamp[request_id],
                "position": position,
                "device": device[request_id],
                "hour": hour[request_id],
            }
        )
        frame = frame[frame["ad_id"] >= 0].sort_values(["event_timestamp", "request_id", "position"])
        frame.insert(0, "impression_id", np.arange(len(frame)))
        return frame.reset_index(drop=True)

    def _users_table(self) -> pd.DataFrame:
        t = self.truth
        return pd.DataFrame(
            {
                "user_id": np.arange(self.n_users),
                "age_bucket": np.asarray(AGE_BUCKETS)[t["age"]],
                "gender": np.asarray(GENDERS)[t["gender"]],
                "location": np.asarray(LOCATIONS)[t["location"]],
                "mobile_share": t["mobile_share"].round(3),
            }
        )

    def _advertisers_table(self) -> pd.DataFrame:
        return pd.DataFrame({"advertiser_id": np.arange(self.n_advertisers)})

    def _campaigns_table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"campaign_id": np.arange(self.n_campaigns), "advertiser_id": self.truth["campaign_advertiser"]}
        )

    def _ads_table(self, rng: np.random.Generator) -> pd.DataFrame:
        t = self.truth
        # A content-understanding score of the creative: quality seen through noise.
        creative_score = t["ad_quality"] + rng.normal(0, 0.4, self.n_ads)
        return pd.DataFrame(
            {
                "ad_id": np.arange(self.n_ads),
                "campaign_id": t["ad_campaign"],
                "advertiser_id": t["ad_advertiser"],
                "category": np.asarray(CATEGORIES)[t["ad_category"]],
                "format": np.asarray(FORMATS)[t["ad_format"]],
                "bid": t["ad_bid"],
                "creative_score": creative_score.round(3),
                "target_age_buckets": [list(np.asarray(AGE_BUCKETS)[m]) for m in t["target_age"]],
                "target_genders": [list(np.asarray(GENDERS)[m]) for m in t["target_gender"]],
                "target_locations": [list(np.asarray(LOCATIONS)[m]) for m in t["target_location"]],
            }
        )


def _prior_exposures(impressions: pd.DataFrame) -> np.ndarray:
    """For each impression, how often the same ad was shown to the same user in the
    FATIGUE_WINDOW before it (vectorised: a search over (pair, time) sorted keys)."""
    pair = (
        impressions["user_id"].to_numpy(np.int64) * (impressions["ad_id"].max() + 1) + impressions["ad_id"].to_numpy()
    )
    seconds = (impressions["event_timestamp"] - START).dt.total_seconds().to_numpy(np.int64)
    order = np.lexsort((impressions["impression_id"].to_numpy(), seconds, pair))
    # Space pairs further apart than any time span so one pair's window never reaches the previous pair.
    span = seconds.max() + int(FATIGUE_WINDOW.total_seconds()) + 1
    keys = pair[order] * span + seconds[order]
    window_start = np.searchsorted(keys, keys - int(FATIGUE_WINDOW.total_seconds()), side="left")
    counts = np.empty(len(keys), dtype=np.int64)
    counts[order] = np.arange(len(keys)) - window_start
    return counts


def _drop_after_hide(impressions: pd.DataFrame) -> pd.DataFrame:
    """The policy never shows a hidden ad to that user again. Dropping later impressions of
    the pair afterwards is exact: nothing before a hide depends on what comes after it."""
    first_hide = (
        impressions.loc[impressions["hidden"] == 1]
        .groupby(["user_id", "ad_id"])["impression_id"]
        .min()
        .rename("first_hide")
    )
    merged = impressions.join(first_hide, on=["user_id", "ad_id"])
    keep = merged["first_hide"].isna() | (merged["impression_id"] <= merged["first_hide"])
    return impressions.loc[keep.to_numpy()]
