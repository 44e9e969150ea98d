"""People you may know on the online simulator (common/online/simulator.py): the chapter's online metrics,
measured on the world's users after the logs the models trained on. The PYMK funnel, its service and its
batch lists are the system's own (funnel.py, serving.py, batch.py), so this world stands alone (as
systems/events/online.py does); it borrows the recommenders' random and truth scorers.

  arrivals   users opening the PYMK list: a tenth of the world's sessions (SESSIONS_PER_DAY a day per unit
             of latent activity, so the active come most), at uniform times of the days after the logs
  policies   the served path of POST /pymk/recommend: a PymkService built each day as a server started
             after the daily jobs builds it (the raw tables, the online store's features and lists, the
             clock at the day's midnight), with
               champion      the registered model, as the API serves it: an active user's stored list (the
                             daily batch job's), anyone else's through the funnel on demand
               <model>       a model of the latest training (lightgbm, logistic_regression, graphsage) in
                             the champion's place, through the funnel on demand (the batch job would store
                             the same lists: it runs that funnel at the same clock)
               adamic_adar   no model: the funnel's candidates by Adamic-Adar (the strongest graph
                             baseline of the offline tables; the baseline)
               random        a random score for each of the funnel's candidates
               oracle        the world's truth in the model's place: P(a request is sent and accepted) for
                             each of the funnel's candidates, as the offline oracle ranks the same ones
             each shows evaluation.k people (the offline lists' k), logging its score (`served_score`) and
             which path answered (`served_path`: precomputed or on demand)
  reactions  the world's suggestion model (world.py): the user looks at position p w.p. 0.9^(p - 1) and
             sends a request w.p. 1 - exp(-suggestion_draws q_u(v)) (the world's own request intent); the
             recipient answers it as the world answers any request: accepts w.p. acc(u, v), else declines
             (a few by a block) or ignores it, the same day or days later (the chapter's delayed feedback).
             All read the state at the day's midnight. A pair asked once, in the logs or on a simulated
             day, is never asked again, so no pair befriends twice. Logged one row per person shown, with
             the request's outcome and the truth it was drawn from (p_send, p_accept)
  end of day the day's requests join the requests table in the logs' schema (their status as of the next
             midnight: pending until the answer comes); the answers that came by then make friendships
             (edges) and blocks. Then the daily jobs: the raw tables serving builds its graph from, the
             Feast features as of the next midnight, the batch job's lists: the next day's graph,
             candidates, exclusions, features and lists hold the new friends
  metrics    friend requests accepted per list opened (the chapter's "friend requests accepted"; the
             primary), requests sent per person shown (CTR), the share of the requests sent that are
             accepted, requests sent per list opened (the chapter's "friend requests sent"). An acceptance
             counts for its request whenever it comes: the world draws the answer when the request is sent
             (a live test would wait for it)

No organic channel runs after the logs: users send requests only from the list, nobody interacts, and the
logs' pending requests stay unanswered. Serving keeps the GNN's node embeddings of the training's graph.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from common.app.paths import system_dir
from common.features.store import FeatureRepo
from common.funnel.funnel import Funnel
from common.graph import proximity
from common.online.recommender import RandomScorer, TruthScorer
from common.online.simulator import Metric, OnlineSystem, Policy
from common.tracking.runs import Champion, load_champion, load_trained_model, trained_model_names
from systems.pymk.batch import precompute_lists, store_lists
from systems.pymk.dataset import SocialData, read_raw, write_raw
from systems.pymk.features import SERVICES, VIEWS, feature_tables
from systems.pymk.funnel import GraphScorer
from systems.pymk.pipeline import snapshot_days
from systems.pymk.serving import LISTS_VIEW, PymkService
from systems.pymk.snapshots import take_snapshot
from systems.pymk.world import (
    DAY_MS,
    NEVER,
    SESSIONS_PER_DAY,
    START,
    PymkTables,
    PymkWorld,
    ms_since_start,
    pair_key,
    timestamps_of_ms,
)

log = logging.getLogger(__name__)
BASELINE = "adamic_adar"
LIST_SHARE = 0.1  # of the world's sessions, those that open the PYMK list
METRICS = {
    "accepted_per_request": Metric(
        "accepted", "requests", "friend requests sent from the list and accepted, per list opened (the primary)"
    ),
    "ctr": Metric("sent", "suggestions", "friend requests sent per person shown"),
    "acceptance_rate": Metric("accepted", "sent", "the share of the friend requests sent that are accepted"),
    "sent_per_request": Metric("sent", "requests", "friend requests sent from the list, per list opened"),
}
TRUTH_COLUMNS = ("p_send", "p_accept")  # logged beside each person shown, never part of the logs
DAY = pd.Timedelta(days=1)


class PymkOnline:
    """The world's users after the logs: when they open the list, and how they and the people they ask
    respond, from the world's truth."""

    unit = "user_id"
    metrics = METRICS

    def __init__(self, config: dict, refresh_features: bool = True):
        self.config = config
        self.world = PymkWorld(**config["world"])
        self.logs = self.world.generate()  # the logs the models trained on (same seed)
        self.tables = self.logs  # the logs so far: then with the simulated days' requests, friendships, blocks
        self._logs_truth = (self.world.truth["tie_strength"], self.world.truth["accept_probability"])
        logs = SocialData.from_tables(self.logs)
        self.days_offset = (logs.end - START) // DAY
        self.now = logs.end  # the midnight after the last day so far: the daily jobs' and serving's clock
        # The network features as the training published them (its snapshot days and the end), then each day.
        self.feature_days = [*(day for days in snapshot_days(logs, config).values() for day in days), logs.end]
        self.slots = config["evaluation"]["k"]
        n = self.world.n_users
        self.requests_per_day = config["online"]["requests_per_day"] or round(LIST_SHARE * SESSIONS_PER_DAY * n)
        self.sent = _sent_frame([])  # the requests sent on the simulated days, with their drawn answers
        self._asked: set[int] = set()  # pairs asked on a simulated day (the logs' are in the world's state)
        self._strength: dict[int, float] = {}  # each pair's tie strength, should their friendship form
        self._next_request = 0  # the logs have no list requests
        self.repo = FeatureRepo("pymk") if refresh_features else None
        self.champion = load_champion("pymk") if refresh_features else None
        if self.repo is not None and not self._as_trained():  # an earlier simulation's days are not the logs
            self._daily_jobs(logs)

    # ---- the simulator's OnlineWorld ---------------------------------------------------------
    def arrivals(self, day: int, rng: np.random.Generator) -> pd.DataFrame:
        """The day's list openings: users in proportion to their latent activity, at uniform times."""
        state = self.world.state(self.days_offset + day)
        users = np.flatnonzero(state.created)
        activity = self.world.truth["activity"][users]
        who = rng.choice(users, self.requests_per_day, p=activity / activity.sum())
        ms = np.sort((self.days_offset + day) * DAY_MS + rng.integers(0, DAY_MS - 1, self.requests_per_day))
        requests = pd.DataFrame(
            {
                "request_id": self._next_request + np.arange(len(who)),
                "user_id": who.astype(np.int64),
                "timestamp": START + pd.to_timedelta(ms, "ms"),
            }
        )
        self._next_request += len(requests)
        return requests

    def react(self, request: dict, shown: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Whether the user sends each person shown a request, and the answer each request will get (drawn
        now, revealed at its time by the end of the day it comes), from the state at the day's midnight."""
        n, user = len(shown), int(request["user_id"])
        shown = np.asarray(shown, dtype=np.int64)
        users = np.full(n, user, dtype=np.int64)
        ms = (request["timestamp"] - START) // pd.Timedelta(milliseconds=1)
        midnight = ms // DAY_MS * DAY_MS
        send, acceptance = self._suggestion(users, shown, midnight // DAY_MS)
        p_send = self.world.examined(np.arange(1, n + 1)) * send
        sent = rng.random(n) < p_send
        accepted, blocked, answered = self.world.answer(rng, np.full(n, ms), acceptance, midnight, np.zeros(n, bool))
        strength = self.world.tie_strength(rng, users, shown)
        for key, tie in zip(pair_key(users[sent], shown[sent], self.world.n_users), strength[sent], strict=True):
            self._asked.add(int(key))
            self._strength[int(key)] = float(tie)
        answered = np.where(sent, answered, NEVER)
        return {
            "request_id": np.full(n, request["request_id"], dtype=np.int64),
            "user_id": users,
            "person_id": shown,
            "position": np.arange(1, n + 1, dtype=np.int64),
            "timestamp": np.full(n, request["timestamp"], dtype=object),
            "sent": sent.astype(np.int8),
            "accepted": (sent & accepted).astype(np.int8),
            "blocked": (sent & blocked).astype(np.int8),
            "answered_timestamp": np.asarray(timestamps_of_ms(answered), dtype=object),
            "p_send": p_send,
            "p_accept": acceptance,
        }

    def unit_totals(self, requests: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
        measures = pd.DataFrame(
            {
                "suggestions": 1.0,
                "sent": events["sent"].to_numpy(float),
                "accepted": events["accepted"].to_numpy(float),
            },
            index=events.index,
        )
        totals = measures.groupby(events["user_id"].to_numpy()).sum()
        asked = requests.groupby(self.unit).size().rename("requests")
        return totals.reindex(asked.index, fill_value=0).join(asked).astype(float)

    def end_of_day(self, day: int, events: pd.DataFrame) -> None:
        """The day's requests join the logs; the answers that came by the next midnight make the friendships
        and blocks; the daily jobs refresh what serving reads as of that midnight."""
        self.sent = pd.concat([self.sent, sent_requests(events, self._strength, self.world.n_users)], ignore_index=True)
        self.now = START + (self.days_offset + day + 1) * DAY
        self.tables, tie_strength, acceptance = self.tables_as_of(self.now)
        self.world.go_on(self.tables, tie_strength, acceptance)
        self.feature_days.append(self.now)
        if self.repo is not None:
            self._daily_jobs(SocialData.from_tables(self.tables))
        log.info(
            "pymk: simulated day %d: %d requests sent, %d friendships by %s",
            day,
            int(events["sent"].sum()),
            len(self.tables.edges) - len(self.logs.edges),
            self.now,
        )

    # ---- the truth, for the oracle -------------------------------------------------------------
    def truth(self, user_id: int, item_ids: np.ndarray, now_s: float) -> np.ndarray:
        """P(the user sends each person a request from the top of the list, and it is accepted), from the
        state at the midnight `now_s` (the serving clock): 0 for a pair asked or befriended already."""
        day = round(now_s * 1000 - START.value // 1_000_000) // DAY_MS
        item_ids = np.asarray(item_ids, dtype=np.int64)
        send, acceptance = self._suggestion(np.full(len(item_ids), user_id, dtype=np.int64), item_ids, day)
        return send * acceptance

    def _suggestion(self, u: np.ndarray, v: np.ndarray, day: int) -> tuple[np.ndarray, np.ndarray]:
        """The world's P(send | looked at) and acc(u, v) at the day's midnight, 0 for a pair asked today."""
        send, acceptance = self.world.state(day).suggestion(u, v)
        asked = np.fromiter((int(key) in self._asked for key in pair_key(u, v, self.world.n_users)), bool, len(u))
        return np.where(asked, 0.0, send), np.where(asked, 0.0, acceptance)

    # ---- the logs so far -----------------------------------------------------------------------
    def tables_as_of(self, now: pd.Timestamp) -> tuple[PymkTables, np.ndarray, np.ndarray]:
        """The logs and the simulated days as the world's tables show them at `now`: each request with its
        status then, the friendships and blocks its answer made by then; with the truth aligned with the
        tables' edges (tie strengths) and requests (acceptance probabilities)."""
        s, at = self.sent, (now - START) // pd.Timedelta(milliseconds=1)
        answered = s["answered_ms"].to_numpy() < at
        accepted = s["accepted"].to_numpy(bool)
        requests = pd.DataFrame(
            {
                "sender": s["sender"].to_numpy(np.int64),
                "recipient": s["recipient"].to_numpy(np.int64),
                "sent_timestamp": timestamps_of_ms(s["sent_ms"].to_numpy()),
                "status": np.where(answered, np.where(accepted, "accepted", "declined"), "pending").astype(object),
                "answered_timestamp": timestamps_of_ms(np.where(answered, s["answered_ms"], NEVER)),
            }
        )
        formed = s[answered & accepted].sort_values("answered_ms", kind="stable")
        edges = pd.DataFrame(
            {
                "src": np.minimum(formed["sender"], formed["recipient"]).to_numpy(np.int64),
                "dst": np.maximum(formed["sender"], formed["recipient"]).to_numpy(np.int64),
                "timestamp": timestamps_of_ms(formed["answered_ms"].to_numpy()),
            }
        )
        blocked = s[answered & s["blocked"].to_numpy(bool)].sort_values("answered_ms", kind="stable")
        blocks = pd.DataFrame(
            {
                "user_id": blocked["recipient"].to_numpy(np.int64),
                "blocked_id": blocked["sender"].to_numpy(np.int64),
                "timestamp": timestamps_of_ms(blocked["answered_ms"].to_numpy()),
            }
        )
        logs = self.logs
        tables = replace(
            logs,
            edges=pd.concat([logs.edges, edges], ignore_index=True),
            requests=pd.concat([logs.requests, requests], ignore_index=True),
            blocks=pd.concat([logs.blocks, blocks], ignore_index=True),
        )
        tie_strength = np.concatenate([self._logs_truth[0], formed["tie_strength"].to_numpy(float)])
        acceptance = np.concatenate([self._logs_truth[1], s["p_accept"].to_numpy(float)])
        return tables, tie_strength, acceptance

    def _as_trained(self) -> bool:
        """Whether what serving reads is as of the logs' end, as the training left it: the daily jobs, which
        move the features and the lists on together, have not run since."""
        times = []
        for view in ("user_network", LISTS_VIEW.name):
            path = self.repo.sources_dir / f"{view}.parquet"
            if path.exists():  # a training stores no lists when nobody was active
                times.append(pd.read_parquet(path, columns=["event_timestamp"])["event_timestamp"].max())
        return bool(times) and all(time == self.now for time in times)

    def _daily_jobs(self, data: SocialData) -> None:
        """What serving reads, as of `now`: the raw tables (its graph), the user features in Feast, and the
        batch job's lists, for the active users and for everyone who holds a list from an earlier day."""
        write_raw(data, system_dir("pymk") / "raw")
        tables = feature_tables(data, self.feature_days)
        first = (min(tables["user_profile"]["event_timestamp"].min(), data.start) - DAY).to_pydatetime()
        end = (self.now + DAY).to_pydatetime()
        self.repo.publish(tables, VIEWS, SERVICES, first, end)
        snapshot = take_snapshot(data, self.repo, self.config, self.now)
        scorer = self.champion.classifier.scorer(snapshot.state, snapshot.gather)
        holding = self.repo.sources_dir / f"{LISTS_VIEW.name}.parquet"  # the lists the online store holds
        also = snapshot.state.rows(self.repo.source_keys(LISTS_VIEW.name, "user_id")) if holding.exists() else None
        lists = precompute_lists(snapshot, scorer, self.config["serving"]["precompute"], also=also)
        if len(lists):
            store_lists(self.repo, lists, first, end)


def sent_requests(events: pd.DataFrame, strength: dict[int, float], n_users: int) -> pd.DataFrame:
    """The friend requests among a simulated day's people shown, with the answers drawn for them and the tie
    strength of the friendship each would make."""
    sent = events[events["sent"].to_numpy() == 1]
    sender, recipient = sent["user_id"].to_numpy(np.int64), sent["person_id"].to_numpy(np.int64)
    return _sent_frame(
        {
            "sender": sender,
            "recipient": recipient,
            "sent_ms": ms_since_start(sent["timestamp"]),
            "answered_ms": ms_since_start(sent["answered_timestamp"]),
            "accepted": sent["accepted"].to_numpy(bool),
            "blocked": sent["blocked"].to_numpy(bool),
            "p_accept": sent["p_accept"].to_numpy(float),
            "tie_strength": [strength[int(key)] for key in pair_key(sender, recipient, n_users)],
        }
    )


def _sent_frame(columns) -> pd.DataFrame:
    dtypes = {"sender": np.int64, "recipient": np.int64, "sent_ms": np.int64, "answered_ms": np.int64}
    dtypes |= {"accepted": bool, "blocked": bool, "p_accept": float, "tie_strength": float}
    return pd.DataFrame(columns, columns=list(dtypes)).astype(dtypes)


def online_system(config: dict, refresh_features: bool = True) -> OnlineSystem:
    """The PYMK world on the simulator, and its policies by name (models are loaded once; the service, its
    graph, features and lists are built afresh each day from what the daily jobs refreshed)."""
    online = PymkOnline(config, refresh_features)
    models: dict[str, Champion] = {"champion": online.champion} if online.champion is not None else {}
    rng = np.random.default_rng([config["seed"], 2])

    def model(name: str) -> Champion:
        if name not in models:
            models[name] = load_champion("pymk") if name == "champion" else load_trained_model("pymk", name)
        return models[name]

    def service() -> PymkService:
        raw = read_raw(system_dir("pymk") / "raw")
        return PymkService(config, model("champion"), FeatureRepo("pymk"), raw, now=online.now)

    def funnel(built: PymkService, name: str) -> Funnel | None:
        """The policy's funnel on demand; None for the champion, which takes the API's path."""
        if name == "champion":
            return None
        if name == BASELINE:
            return built.people.funnel(GraphScorer(built.state, proximity.adamic_adar))
        if name == "random":
            return built.people.funnel(RandomScorer(rng))
        if name == "oracle":
            return built.people.funnel(TruthScorer(online, built.state.user_ids))
        return built.people.funnel(model(name).classifier.scorer(built.state, built.sides))

    def policies(names: Sequence[str]) -> dict[str, Policy]:
        built = service()
        return {name: _policy(built, funnel(built, name), online.slots) for name in names}

    def serve_model(ranker: Champion) -> Policy:
        built = service()
        return _policy(built, built.people.funnel(ranker.classifier.scorer(built.state, built.sides)), online.slots)

    trained = [name for name in trained_model_names("pymk") if name in config["models"]]
    names = ("champion", *trained, BASELINE, "random", "oracle")
    offline = (config["champion"]["metric"].format(k=config["evaluation"]["k"]), config["champion"]["goal"])
    return OnlineSystem(online, policies, names, BASELINE, serve_model, offline_metric=offline)


def _policy(service: PymkService, funnel: Funnel | None, slots: int) -> Policy:
    """The served path as a policy: the people it lists for the request's user, the score of each and the
    path that answered (the champion's stored list, or a funnel on demand)."""
    user_ids = service.state.user_ids

    def policy(request: dict) -> dict[str, np.ndarray]:
        user_id = int(request["user_id"])
        if funnel is None:
            served = service.recommend(user_id, slots)
            ranked, path = served.ranked, served.user["path"]
        else:
            ranked, path = funnel.recommend(service.people.request(user_id), slots), "on demand"
        shown = len(ranked.rows)
        return {"items": user_ids[ranked.rows], "served_score": ranked.scores, "served_path": np.full(shown, path)}

    return policy
