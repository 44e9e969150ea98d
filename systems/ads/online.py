"""Ads on the online simulator (common/online/simulator.py): the chapter's online metrics, measured on the
world's users after the logs the models trained on.

  arrivals   the world's ad requests of a day (its users, hours and devices), after the training's last day
  policies   the served funnel (targeting, fatigue, bid x pCTR, one ad per advertiser) ranking with
             champion      the registered model
             <model name>  any model of the latest training (logistic_regression: the offline baseline)
             bid_only      no click model: a constant pCTR, so the highest bids win (the online baseline)
             random        a random pCTR per ad
             oracle        the world's true P(click) for this user, now: the best any model could do
             each logs the pCTR it served (for the top slot) beside its impressions: what monitoring reads
  reactions  clicks from the world's click model (position bias, fatigue by the user's true exposures),
             hides from its hide model; logged as impressions in the training logs' schema. Tastes drift
             from the first simulated day (configs/ads.yaml online.drift_per_day; the logs are unchanged)
  end of day the day's impressions join the logs and the features are rebuilt into Feast, as a platform's
             daily feature job does: the funnel's fatigue cap and hidden ads read them the next day
  metrics    CTR, revenue per request (bid x clicks: cost per click billing), hide rate
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from common.features.store import FeatureRepo
from common.online.classifier_learner import ClassifierLearner
from common.online.simulator import Metric, OnlineSystem, Policy
from common.pipelines.classifier import publish_features
from common.tracking.runs import load_champion, load_trained_model, trained_model_names
from systems.ads.dataset import to_dataset
from systems.ads.ranker import TASK
from systems.ads.serving import AdsService, ClickModel
from systems.ads.world import DEVICES, FATIGUE_WINDOW, N_SLOTS, START, AdsWorld

log = logging.getLogger(__name__)
BASELINE = "bid_only"
METRICS = {
    "revenue_per_request": Metric("revenue", "requests", "bid x clicks per ad request"),
    "ctr": Metric("clicks", "impressions", "clicks per ad shown"),
    "hide_rate": Metric("hides", "impressions", "ads hidden per ad shown", lower_is_better=True),
}
WINDOW_SECONDS = int(FATIGUE_WINDOW.total_seconds())
# The inputs monitoring watches for drift: the user's and the ad's click rates, the user's in the ad's category
# (where drifting tastes show first), activity and fatigue.
MONITORED = ["user_ctr_7d", "ad_ctr_7d", "user_category_ctr_14d", "user_impressions_7d", "user_ad_impressions_7d"]


class AdsOnline:
    """The ads world's users after the logs: what they are asked, and how they react, from the world's truth."""

    unit = "user_id"
    metrics = METRICS

    def __init__(self, config: dict, refresh_features: bool = True):
        self.config = config
        self.world = AdsWorld(**config["world"], drift_per_day=config["online"]["drift_per_day"])
        self.dataset = to_dataset(self.world.generate())  # the logs the models trained on (same seed)
        self.days_offset = self.dataset.n_days
        self.requests_per_day = config["online"]["requests_per_day"] or self.world.requests_per_day
        self.repo = FeatureRepo("ads") if refresh_features else None
        if self.repo is not None:  # day one serves the features as of the logs' end, whatever ran before
            publish_features(self.repo, config, self.dataset, TASK)
        self.clock = 0  # seconds since START of the request being served: the oracle's "now"
        events = self.dataset.events
        self._next_request = int(events["request_id"].max()) + 1
        self._next_impression = int(events["impression_id"].max()) + 1
        # The users' true state: when each ad was shown to each user (the fatigue window's worth), what they hid.
        self._shown: dict[tuple[int, int], list[int]] = defaultdict(list)
        recent = events[events["event_timestamp"] >= self.dataset.day_start(self.days_offset) - FATIGUE_WINDOW]
        for user, ad, seconds in zip(
            recent["user_id"], recent["ad_id"], _seconds(recent["event_timestamp"]), strict=True
        ):
            self._shown[(user, ad)].append(seconds)
        self._hidden = set(
            zip(events.loc[events["hidden"] == 1, "user_id"], events.loc[events["hidden"] == 1, "ad_id"], strict=True)
        )

    # ---- the simulator's OnlineWorld ---------------------------------------------------------
    def arrivals(self, day: int, rng: np.random.Generator) -> pd.DataFrame:
        requests = self.world.requests(np.full(self.requests_per_day, self.days_offset + day), rng)
        requests = requests.sort_values("event_timestamp", kind="stable").reset_index(drop=True)
        requests["device"] = np.asarray(DEVICES)[requests["device"]]
        requests.insert(0, "request_id", self._next_request + np.arange(len(requests)))
        self._next_request += len(requests)
        return requests

    def react(self, request: dict, shown: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n, user = len(shown), int(request["user_id"])
        now = _seconds(pd.Series([request["event_timestamp"]]))[0]
        prior = self.exposures(user, shown, now)
        columns = (np.full(n, user), shown, np.full(n, DEVICES.index(request["device"])), np.full(n, request["hour"]))
        day = now // 86_400
        p_click = self.world.click_probability(*columns, np.arange(1, n + 1), prior, day)
        clicked = rng.random(n) < p_click
        hidden = ~clicked & (rng.random(n) < self.world.hide_probability(columns[0], shown, day))
        for ad, hid in zip(shown, hidden, strict=True):
            self._shown[(user, int(ad))].append(now)
            if hid:
                self._hidden.add((user, int(ad)))
        ids = self._next_impression + np.arange(n)
        self._next_impression += n
        return {
            "impression_id": ids,
            "request_id": np.full(n, request["request_id"]),
            "user_id": columns[0],
            "ad_id": shown.astype(np.int64),
            "event_timestamp": np.full(n, request["event_timestamp"]),
            "position": np.arange(1, n + 1),
            "device": np.full(n, request["device"], dtype=object),
            "hour": columns[3],
            "clicked": clicked.astype(np.int8),
            "hidden": hidden.astype(np.int8),
            "p_click": p_click,
        }

    def unit_totals(self, requests: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
        revenue = self.world.truth["ad_bid"][events["ad_id"].to_numpy()] * events["clicked"].to_numpy()
        per_user = events.assign(revenue=revenue).groupby("user_id")
        totals = pd.DataFrame(
            {
                "clicks": per_user["clicked"].sum(),
                "impressions": per_user.size(),
                "hides": per_user["hidden"].sum(),
                "revenue": per_user["revenue"].sum(),
            }
        )
        asked = requests.groupby("user_id").size().rename("requests")
        return totals.reindex(asked.index, fill_value=0).join(asked).astype(float)

    def end_of_day(self, day: int, events: pd.DataFrame) -> None:
        """The day's impressions join the logs (the truth of each click apart, as the oracle table) and, with
        features refreshed, become the next day's features."""
        logged = events.drop(columns="p_click")[self.dataset.events.columns]
        oracle = events[["impression_id", "p_click"]].rename(columns={"p_click": "clicked"})
        self.dataset = replace(
            self.dataset,
            events=pd.concat([self.dataset.events, logged], ignore_index=True),
            oracle=pd.concat([self.dataset.oracle, oracle], ignore_index=True),
        )
        if self.repo is not None:
            publish_features(self.repo, self.config, self.dataset, TASK)

    # ---- the user's true state, for the oracle -----------------------------------------------
    def exposures(self, user: int, ad_ids: np.ndarray, now: int) -> np.ndarray:
        """How often each ad was shown to the user in the fatigue window before `now` (seconds since START)."""
        since = now - WINDOW_SECONDS
        return np.array([sum(t >= since for t in self._shown.get((user, int(ad)), ())) for ad in ad_ids])

    def true_click_model(self) -> ClickModel:
        """The world's P(click at the top slot) of ads for a request at `self.clock`: the oracle's scores."""

        def p_click(user_id: int, ad_ids: np.ndarray, device: str, hour: int) -> np.ndarray:
            n = len(ad_ids)
            context = (np.full(n, user_id), ad_ids, np.full(n, DEVICES.index(device)), np.full(n, hour))
            exposures = self.exposures(user_id, ad_ids, self.clock)
            return self.world.click_probability(*context, np.ones(n, int), exposures, self.clock // 86_400)

        return p_click


def online_system(config: dict, refresh_features: bool = True) -> OnlineSystem:
    """The ads world on the simulator, and its policies by name (models are loaded once, services every day)."""
    online = AdsOnline(config, refresh_features)
    models: dict[str, object] = {}
    rng = np.random.default_rng([config["seed"], 2])

    def model(name: str):
        if name not in models:
            models[name] = load_champion("ads") if name == "champion" else load_trained_model("ads", name)
        return models[name]

    def click_model(name: str) -> ClickModel | None:
        if name == "oracle":
            return online.true_click_model()
        if name == BASELINE:
            return lambda user_id, ad_ids, device, hour: np.full(len(ad_ids), 0.01)
        if name == "random":
            return lambda user_id, ad_ids, device, hour: rng.random(len(ad_ids))
        return None

    def policies(names: Sequence[str]) -> dict[str, Policy]:
        repo = FeatureRepo("ads")
        services = {}
        for name in names:
            learned = click_model(name) is None
            services[name] = AdsService(config, model(name if learned else "champion"), repo, click_model(name))
        return {name: _funnel_policy(service, online, name == "oracle") for name, service in services.items()}

    def serve_model(champion) -> Policy:
        return _funnel_policy(AdsService(config, champion, FeatureRepo("ads")), online, sets_clock=False)

    def learner() -> ClassifierLearner:
        return ClassifierLearner(
            "ads",
            config,
            TASK,
            logs=lambda: online.dataset,
            monitored=MONITORED,
            served_score="served_pctr",
            served_context={"position": config["serving"]["position"]},
            window_days=config["online"]["continual"]["window_days"],
        )

    names = ("champion", *trained_model_names("ads"), BASELINE, "random", "oracle")
    offline = (config["champion"]["metric"], config["champion"]["goal"])
    return OnlineSystem(online, policies, names, BASELINE, serve_model, learner, offline_metric=offline)


def _funnel_policy(service: AdsService, online: AdsOnline, sets_clock: bool) -> Policy:
    """The served funnel as a policy: the ads it would put in the N_SLOTS slots of this request."""
    ad_ids = service.catalog.columns["ad_id"]

    def policy(request: dict) -> np.ndarray:
        if sets_clock:
            online.clock = _seconds(pd.Series([request["event_timestamp"]]))[0]
        served = service.rank(int(request["user_id"]), request["device"], int(request["hour"]), N_SLOTS)
        return {"items": ad_ids[served.ranked.rows], "served_pctr": served.ranked.scores}

    return policy


def _seconds(timestamps: pd.Series) -> np.ndarray:
    return ((timestamps - START).dt.total_seconds()).to_numpy(np.int64)
