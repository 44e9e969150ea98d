"""Event recommendation on the online simulator (common/online/simulator.py): the chapter's online metrics,
measured on the world's users after the logs the models trained on. The events funnel is the rule-based one
of the ranking pipeline (systems/events/funnel.py), not the recommenders' shared funnel, so this world
stands alone (as systems/ads/online.py does); it borrows the shared part's random and truth scorers.

  arrivals   the world's sessions of a day (users opening the app: who, by activity; when, at local hours
             that follow their liking for evenings), after the logs' last day, drawn by the world's own
             `sessions`. A request carries the user and its time; where the user is, is the profile's
             home, as the logs' features have it (no device location)
  policies   the served funnel (the user's features from the refreshed online store; nearby, friends going
             and popular candidates; released and starting within the horizon at the request's time; the
             host cap), ranking with
               champion        the registered ranker
               <ranker>        any ranker of the latest training (logistic_regression, lightgbm, lambdarank)
               nearby_popular  no ranker: the nearby events, the most registered first (the offline
                               table's "nearby and popular"; the baseline)
               random          a random score for each of the funnel's candidates
               oracle          the world's P(register | shown now) in the ranker's place, and its best open
                               events of the whole catalogue among the candidates
             each shows the world's `events_per_session` events, as the logs' app did
  reactions  the world's `respond`, as in the logs: P(register | user, event, now) (topic fit, distance,
             price, time to start, time of day, friends registered so far, invitation, host, quality),
             registered ~ Bernoulli(P), "maybe" near misses, "not interested" and "no"s. An event the user
             has registered for already (through any channel, or earlier the same day) gets no second
             registration (P 0: the funnel's registered events lag a day). The world has no position bias.
             A registration completes at the request's time: a friend's later request counts it among the
             friends going. Logged as rows of train.csv, with the truth they were drawn from (p_register)
  end of day the day's rows join train.csv (the Dataset's events) and its responses the attendee lists, the
             features are rebuilt into Feast: the next day's funnel reads the new registrations (friends
             going, popular, the user's registered events and tastes)
  metrics    registrations per request (the chapter's objective, "the number of registered events"; the
             primary), the registration rate of the events shown (the chapter's CTR and conversion rate: the
             world's only click is the register button), ticket revenue per request (the business objective:
             the price of each paid event registered for), maybes per event shown (the bookmark), "not
             interested" per event shown (negative feedback), the share of sessions with a registration

The catalogue stops growing with the logs (the world creates no event after its last day): the open events
thin out over the simulated days, and registrations with them. No organic channel (shares, invitations)
runs after the logs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from common.features.store import FeatureRepo
from common.funnel.funnel import Funnel
from common.online.recommender import RandomScorer, TruthScorer, TruthSource
from common.online.simulator import Metric, OnlineSystem, Policy
from common.tracking.runs import Champion, load_champion, load_trained_model, trained_model_names
from systems.events.dataset import EventsOracle, impression_events, to_dataset
from systems.events.features import USER_VIEWS
from systems.events.funnel import EventsState, fill_missing_row
from systems.events.kaggle import TIMESTAMP, TRAIN_SCHEMA
from systems.events.ranker import TASK
from systems.events.serving import online_event_frame
from systems.events.world import IMPRESSION, START, EventsWorld

log = logging.getLogger(__name__)
BASELINE = "nearby_popular"
METRICS = {
    "registrations_per_request": Metric(
        "registrations", "requests", "events registered for (the chapter's objective) per session"
    ),
    "registration_rate": Metric(
        "registrations", "impressions", "registrations per event shown (the chapter's CTR and conversion rate)"
    ),
    "revenue_per_request": Metric("revenue", "requests", "ticket sales per session: the price of the paid events"),
    "maybe_rate": Metric("maybes", "impressions", "'maybe' per event shown (the chapter's bookmark)"),
    "not_interested_rate": Metric(
        "not_interested", "impressions", "'not interested' per event shown", lower_is_better=True
    ),
    "requests_with_registration": Metric(
        "registered_requests", "requests", "share of sessions with at least one registration"
    ),
}
TRAIN_COLUMNS = tuple(TRAIN_SCHEMA)  # train.csv
TRUTH_COLUMNS = ("p_register",)  # logged beside each event shown, never part of the logs


class EventsOnline:
    """The events world's users after the logs: when they open the app, and how they respond, from the truth."""

    unit = "user_id"
    metrics = METRICS

    def __init__(self, config: dict, refresh_features: bool = True):
        self.config = config
        self.world = EventsWorld(**config["world"])
        self.tables = self.world.generate()  # the logs the models trained on (same seed)
        self.dataset = to_dataset(self.tables, EventsOracle(self.world))
        self.days_offset = self.dataset.n_days
        self.first_day = (self.dataset.day_start(self.days_offset) - START) // pd.Timedelta(days=1)
        self.slots = self.world.events_per_session  # the app's list, as the logs show it
        self.requests_per_day = config["online"]["requests_per_day"] or self.world.sessions_per_day
        t = self.world.truth
        self._user_row = pd.Series(np.arange(len(t["user_id"])), index=t["user_id"])
        self._event_row = pd.Series(np.arange(len(t["event_id"])), index=t["event_id"])
        self._next_request = 0  # the public files log no requests
        self.repo = FeatureRepo("events") if refresh_features else None
        if self.repo is not None:  # the store as the training left it: an earlier simulation's days are not the logs
            self._publish()

    # ---- the simulator's OnlineWorld ---------------------------------------------------------
    def arrivals(self, day: int, rng: np.random.Generator) -> pd.DataFrame:
        users, ms = self.world.sessions(rng, self.first_day + day, 1, self.requests_per_day)
        requests = pd.DataFrame(
            {
                "request_id": self._next_request + np.arange(len(users)),
                "user_id": self.world.truth["user_id"][users],
                "event_timestamp": START + pd.to_timedelta(ms, "ms"),
            }
        )
        self._next_request += len(requests)
        return requests

    def react(self, request: dict, shown: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n, user_id = len(shown), int(request["user_id"])
        users = np.full(n, self._user_row[user_id])
        events = self._event_row.reindex(np.asarray(shown, dtype=np.int64)).to_numpy(np.int64)
        ms = np.full(n, (request["event_timestamp"] - START) // pd.Timedelta(milliseconds=1), dtype=np.int64)
        fresh = ~self.world.registered_before(users, events, ms)
        response = self.world.respond(rng, users, events, ms, np.full(n, IMPRESSION))
        registered = response["registered"] & fresh
        self.world.complete_registrations(users[registered], events[registered], ms[registered])
        return {
            "user": np.full(n, user_id, dtype=np.int64),
            "event": np.asarray(shown, dtype=np.int64),
            "invited": response["invited"].astype(np.int8),
            "timestamp": np.full(n, request["event_timestamp"], dtype=object),
            "interested": registered.astype(np.int8),
            "not_interested": (response["not_interested"] & fresh).astype(np.int8),
            "request_id": np.full(n, request["request_id"], dtype=np.int64),
            "position": np.arange(1, n + 1, dtype=np.int64),
            "maybe": (response["maybe"] & fresh).astype(np.int8),
            "declined": (response["declined"] & fresh).astype(np.int8),
            "p_register": np.where(fresh, response["probability"], 0.0),
        }

    def unit_totals(self, requests: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
        registered = events["interested"].to_numpy() == 1
        price = self.world.truth["price"][self._event_row.reindex(events["event"].to_numpy()).to_numpy(np.int64)]
        first = registered & ~pd.Series(np.where(registered, events["request_id"], -1)).duplicated().to_numpy()
        measures = pd.DataFrame(
            {
                "impressions": 1.0,
                "registrations": registered.astype(float),
                "revenue": np.where(registered, price, 0.0),
                "maybes": events["maybe"].to_numpy(float),
                "not_interested": events["not_interested"].to_numpy(float),
                "registered_requests": first.astype(float),
            },
            index=events.index,
        )
        totals = measures.groupby(events["user"].to_numpy()).sum()
        asked = requests.groupby(self.unit).size().rename("requests")
        return totals.reindex(asked.index, fill_value=0).join(asked).astype(float)

    def end_of_day(self, day: int, events: pd.DataFrame) -> None:
        """The daily jobs: the day's rows join train.csv (the Dataset's events) and its responses the attendee
        lists; the features are rebuilt into Feast as of the next day's start."""
        train = train_rows(events)
        attendees = attendee_rows(events)
        self.tables = replace(
            self.tables,
            train=pd.concat([self.tables.train, train], ignore_index=True),
            attendees=pd.concat([self.tables.attendees, attendees], ignore_index=True),
        )
        tables = self.dataset.tables | {"attendees": self.tables.attendees}
        logged = pd.concat([self.dataset.events, impression_events(train)], ignore_index=True)
        before = self.now
        self.dataset = replace(self.dataset, events=logged, tables=tables)
        if self.repo is not None:  # the online store holds every row before the last snapshot already
            self._publish(since=before - pd.Timedelta(days=1))
        log.info("events: simulated day %d joined the logs (%d rows); features as of %s", day, len(train), self.now)

    # ---- the truth, for the oracle -------------------------------------------------------------
    def truth(self, user_id: int, item_ids: np.ndarray, now_s: float) -> np.ndarray:
        """P(register | shown at `now_s`) of each event for the user: 0 for an event not open then (not
        created, or begun) or one the user has registered for already."""
        t = self.world.truth
        item_ids = np.asarray(item_ids, dtype=np.int64)
        rows = self._event_row.reindex(item_ids).to_numpy()
        known = ~np.isnan(rows)
        e = rows[known].astype(np.int64)
        ms = round(now_s * 1000) - START.value // 1_000_000
        open_ = (t["created_ms"][e] <= ms) & (ms < t["start_ms"][e])
        value = np.zeros(len(item_ids))
        if open_.any():
            e_open = e[open_]
            at = START + pd.Timedelta(milliseconds=ms)
            p = self.world.register_probability(np.full(len(e_open), user_id), t["event_id"][e_open], at)
            u, at_ms = np.full(len(e_open), self._user_row[user_id]), np.full(len(e_open), ms)
            p = np.where(self.world.registered_before(u, e_open, at_ms), 0.0, p)
            value[np.flatnonzero(known)[open_]] = p
        return value

    # ---- the logs' clock -----------------------------------------------------------------------
    @property
    def now(self) -> pd.Timestamp:
        """The end of the logs so far, on a snapshot day: what the last feature snapshot sees."""
        every = self.config["features"]["snapshot_every_days"]
        return self.dataset.day_start(every * -(-self.dataset.n_days // every))

    def _publish(self, since: pd.Timestamp | None = None) -> None:
        """The feature tables of the logs so far into Feast (what the training publishes), the online store
        loaded with their rows from `since` (default: the whole time axis) to the end of the logs."""
        day = pd.Timedelta(days=1)
        tables = TASK.feature_tables(self.dataset, self.config)
        start = self.dataset.start - 2 * day if since is None else since
        self.repo.publish(tables, TASK.views, TASK.services, start.to_pydatetime(), (self.now + day).to_pydatetime())


def train_rows(events: pd.DataFrame) -> pd.DataFrame:
    """A simulated day's events shown as rows of train.csv, in its dtypes."""
    columns = {name: events[name].to_numpy() for name in TRAIN_COLUMNS}
    train = pd.DataFrame(columns | {"timestamp": pd.to_datetime(columns["timestamp"], utc=True)})
    dtypes = {name: TIMESTAMP if dtype == "timestamp" else dtype for name, dtype in TRAIN_SCHEMA.items()}
    return train.astype(dtypes).reset_index(drop=True)


def attendee_rows(events: pd.DataFrame) -> pd.DataFrame:
    """A simulated day's responses as rows of the attendee lists: yes (registered), maybe, no (declined)."""
    parts = [
        events.loc[events[flag].to_numpy() == 1, ["event", "user"]].assign(response=response)
        for flag, response in (("interested", "yes"), ("maybe", "maybe"), ("declined", "no"))
    ]
    return pd.concat(parts, ignore_index=True).astype({"event": np.int64, "user": np.int64, "response": object})


def online_system(config: dict, refresh_features: bool = True) -> OnlineSystem:
    """The events world on the simulator, and its policies by name (models are loaded once; the funnel's
    catalogue, sources and lists are built afresh each day from the refreshed store)."""
    online = EventsOnline(config, refresh_features)
    models: dict[str, Champion] = {}
    rng = np.random.default_rng([config["seed"], 2])

    def model(name: str) -> Champion:
        if name not in models:
            models[name] = load_champion("events") if name == "champion" else load_trained_model("events", name)
        return models[name]

    def state() -> tuple[EventsState, FeatureRepo]:
        repo = FeatureRepo("events")
        return EventsState.build(online_event_frame(repo), online.now, config), repo

    def funnel(built: EventsState, name: str) -> Funnel:
        if name == BASELINE:
            return built.nearby_and_popular()
        if name == "random":
            return built.funnel(None).variant(scorer=RandomScorer(rng))
        if name == "oracle":
            ids = built.catalog.item_ids
            sources = [TruthSource(online, ids), *built.sources]
            return Funnel(built.catalog, sources, TruthScorer(online, ids), config["serving"])
        return built.funnel(model(name).classifier)

    def policies(names: Sequence[str]) -> dict[str, Policy]:
        built, repo = state()
        users = UserReader(repo)
        return {name: _policy(built, funnel(built, name), users, online.slots, name != BASELINE) for name in names}

    def serve_model(ranker: Champion) -> Policy:
        built, repo = state()
        return _policy(built, built.funnel(ranker.classifier), UserReader(repo), online.slots, True)

    rankers = [name for name in trained_model_names("events") if name in config["models"]]
    names = ("champion", *rankers, BASELINE, "random", "oracle")
    offline = (config["champion"]["metric"].format(k=config["evaluation"]["k"]), config["champion"]["goal"])
    return OnlineSystem(online, policies, names, BASELINE, serve_model, offline_metric=offline)


class UserReader:
    """A user's features from the online store, read once a day (the store changes only at the day's end)."""

    def __init__(self, repo: FeatureRepo):
        self.repo, self.refs, self._users = repo, repo.refs(USER_VIEWS), {}

    def __call__(self, user_id: int) -> dict:
        if user_id not in self._users:
            values = self.repo.online(self.refs, [{"user_id": user_id}])
            row = {name: column[0] for name, column in values.items()}
            self._users[user_id] = fill_missing_row({**row, "user_id": user_id})
        return self._users[user_id]


def _policy(state: EventsState, funnel: Funnel, users: UserReader, slots: int, logs_score: bool) -> Policy:
    """The served funnel as a policy: the events it shows the request's user at the request's time, and the
    score its scorer gave each (`served_score`: the ranker's P(register), the truth, the random draw)."""
    item_ids = state.catalog.item_ids

    def policy(request: dict) -> np.ndarray | dict[str, np.ndarray]:
        now_s = pd.Timestamp(request["event_timestamp"]).timestamp()
        retrieval_request = replace(state.request(users(int(request["user_id"]))), now_s=now_s)
        ranked = funnel.recommend(retrieval_request, slots)
        if not logs_score:
            return item_ids[ranked.rows]
        return {"items": item_ids[ranked.rows], "served_score": ranked.scores}

    return policy
