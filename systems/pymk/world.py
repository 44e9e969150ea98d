"""The "people you may know" world: a seeded synthetic social network that grows day by day, with
the probability of every friendship forming known exactly (the oracle, `edge_probability`).

    python -c "from systems.pymk.world import PymkWorld as W; print(W(2000, 12).generate().edges.tail())"

Users. A city (N_CITIES, Zipf-like sizes; lat/lng a few km around its centre), a school and an
employer (mostly in the user's city; schools and employers have heavy-tailed popularity), the
employer's industry, 3 of N_SKILLS skills (drawn from the industry's skill profile), age, gender,
an account creation time (most years before START; `new_user_share` of them during the window,
with no friends), a latent activity (lognormal, mean 1) and a latent openness (how readily they
accept, normal). Hidden too: a sociability (degree propensity, correlated with activity).

The initial graph (before START). Each user sends ~Poisson stubs in proportion to sociability; a
stub joins a partner drawn in proportion to sociability among the same school, employer, city or
anyone (`initial_mix`); then a triadic-closure pass links users to uniform friends of uniform
friends (`closure_share` of the edges). Degrees are heavy-tailed (sociability is lognormal on both
ends). Each edge has a hidden tie strength: lognormal, higher for a shared school or employer.
Edge times are uniform between the later of the two accounts' creation and START.

Days. The state at a day's midnight: the graph so far (with tie strengths), every request sent so
far (a pair asked once is never asked again), blocks, and the interactions of the last
HISTORY_DAYS days. Everything drawn for a day depends on that state only, so the oracle, which
reads it back from the tables, is exact. Per created user u (created before the midnight):
  interactions  friends: Poisson(friend_interactions * activity_u * s(u, f)) per friend f, a message
                  (`message_share`) or a like; strangers: Poisson(stranger_interactions * activity_u)
                  likes to a friend of a friend, a schoolmate or a townsman (not friends, not blocked).
                  Interactions run from START - HISTORY_DAYS on, so the first day has a history.
  requests      Poisson(requests_per_day * activity_u) draws, each by a MECHANISM (weights
                  `request_weights`), which picks a target:
                    friend_of_friend  a friend f w.p. s(u, f) / S(u), then a uniform friend of f
                    school, employer, city  a uniform member (all accounts, created or not)
                    interacted        a uniform non-friend interaction partner of the last 14 days
                    popular           anyone, w.p. (degree + 1) / sum(degree + 1)
                    random            anyone, uniformly
                  A draw is dropped (no redraw) when it lands on u, a friend, a pair asked before
                  (pending, declined, blocked) or an account not yet created, or when its mechanism
                  has no support. So u's draws land on v at rate lambda_u(v) = requests_per_day *
                  activity_u * q_u(v), q_u(v) = sum_m w_m P_m(v | u), and
                  P(u sends v a request on the day) = 1 - exp(-lambda_u(v)); draws hitting the same
                  target make one request.
  answers       Recipient v accepts u's request w.p. acc(u, v) = sigmoid(accept_bias + openness_v
                  + accept_school [same school] + accept_employer [same employer] + accept_city
                  [same city] + accept_mutual log1p(mutual friends) + accept_interacted
                  [interacted in the last 14 days]), else declines explicitly (`decline_share`),
                  a few of those by blocking the sender (`block_share`), else ignores it (pending
                  forever). Accepting or declining takes a delay: the same day w.p.
                  `same_day_answer`, else a Geometric(`later_answer_rate`) number of days later (the
                  chapter's delayed feedback). The friendship forms at the acceptance time, with a
                  fresh tie strength.
If u and v send each other requests the same day both are answered independently (a recipient who
sent the other one a request declines rather than blocks) and the first acceptance makes the
friendship; the other request, if unanswered then, is recorded accepted at that moment, or not at
all if it was sent after it.

The oracle. For a pair asked on day s and unanswered at day d's midnight (k = d - s days on):
P(accepted on day d | unanswered) = acc (1 - pi0) g (1 - g)^(k-1) / (a (1 - pi0) (1 - g)^(k-1) + 1 - a),
with a = acc + (1 - acc) decline_share the chance of an answer at all (two crossing requests combine
as 1 - (1 - h1)(1 - h2)). For a pair never asked: a request sent on the day in either direction,
accepted the same day: 1 - (1 - p(u->v) acc(u, v) pi0)(1 - p(v->u) acc(v, u) pi0). 0 for friends,
self pairs, pairs asked and answered (declined or blocked), accounts not yet created. The
friend-of-friend term is sum over mutual friends f of s(u, f) / S(u) / deg(f): a row-wise product of
two sparse matrices, so 100k pairs take a fraction of a second.

Suggestions (the online simulator, systems/pymk/online.py: the days after the window). A user who
opens the PYMK list looks at its position p w.p. suggestion_position_decay^(p - 1); a person v looked
at stands for `suggestion_draws` of u's request draws, so u sends v a request w.p.
1 - exp(-suggestion_draws q_u(v)) (0 for a pair that is not fresh), and v answers it as any request
(acc(u, v), declines, blocks, delays: `answer`). The state is the day's midnight's, as for the draws.

Tables. Times are whole milliseconds, tz-aware UTC. Requests show their state at the end of the
window (an answer after it shows as pending); the edges are the initial graph plus the friendships
formed by then, and friendships join the state at the first midnight after they form.

Observable (the tables): user attributes, the observed `activity` (sessions per week: a noisy view
of the latent activity), account creation times, friendships with their times, requests with their
answers, interactions and blocks. Hidden (`truth`): latent activity, openness, sociability, tie
strengths (aligned with the edges' rows), each request's acceptance probability (aligned with the
requests' rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit

from common.data.arrays import first_occurrence

START = pd.Timestamp("2026-03-02", tz="UTC")  # a Monday
DAY_MS = 86_400_000
NEVER = np.iinfo(np.int64).max  # the time of something that does not happen
HISTORY_DAYS = 14  # interactions count as recent for this long
N_CITIES = 60
CITY_ZIPF = 1.0
USERS_PER_SCHOOL = 150
USERS_PER_EMPLOYER = 100
LOCAL_SCHOOL = 0.85  # share of users whose school is in their city; the others moved
LOCAL_EMPLOYER = 0.8
N_INDUSTRIES = 20
N_SKILLS = 50
SKILLS_PER_USER = 3
SESSIONS_PER_DAY = 1.5  # at latent activity 1
ACTIVITY_SD = 0.8
MECHANISMS = ("friend_of_friend", "school", "employer", "city", "interacted", "popular", "random")
FRIEND_OF_FRIEND, SCHOOL, EMPLOYER, CITY, INTERACTED, POPULAR, RANDOM = range(len(MECHANISMS))
# Where strangers' likes go: people near in the graph, schoolmates, townsmen.
STRANGER_MECHANISMS = np.array([FRIEND_OF_FRIEND, SCHOOL, CITY])
STRANGER_WEIGHTS = np.array([0.5, 0.3, 0.2])


@dataclass(frozen=True)
class PymkTables:
    # user_id, age, gender, city, lat, lng, school_id, employer_id, industry, skills (3 ints), created_timestamp,
    # activity (observed sessions per week)
    users: pd.DataFrame
    edges: pd.DataFrame  # src < dst, timestamp: one row per friendship, the initial graph's before START
    requests: pd.DataFrame  # sender, recipient, sent_timestamp, status, answered_timestamp (NaT while pending)
    interactions: pd.DataFrame  # user_id, other_id, timestamp, kind ("message" or "like")
    blocks: pd.DataFrame  # user_id (who blocked), blocked_id, timestamp
    start: pd.Timestamp


@dataclass
class PymkWorld:
    n_users: int = 100_000
    n_days: int = 30
    seed: int = 0
    new_user_share: float = 0.05  # accounts created during the window
    # The initial graph.
    mean_degree: float = 30.0
    closure_share: float = 0.25  # of the initial edges, made by closing triangles
    initial_mix: tuple[float, ...] = (0.3, 0.25, 0.25, 0.2)  # stubs to the same school, employer, city, anyone
    sociability_sd: float = 0.8
    # Tie strength: lognormal, log mean tie_bias (+ tie_school, + tie_employer).
    tie_bias: float = -0.3
    tie_school: float = 0.5
    tie_employer: float = 0.4
    tie_sd: float = 0.7
    # Interactions, per unit of activity and per day.
    friend_interactions: float = 0.0035  # per friend and unit of tie strength
    stranger_interactions: float = 0.08
    message_share: float = 0.35  # of friends' interactions
    # Requests.
    requests_per_day: float = 0.65  # draws per unit of activity
    request_weights: tuple[float, ...] = (0.45, 0.12, 0.1, 0.08, 0.1, 0.1, 0.05)  # over MECHANISMS
    accept_bias: float = -1.0
    openness_sd: float = 1.0
    accept_school: float = 0.8
    accept_employer: float = 0.6
    accept_city: float = 0.4
    accept_mutual: float = 0.6  # per log1p(mutual friends)
    accept_interacted: float = 1.0
    decline_share: float = 0.4  # of the requests not accepted: declined explicitly, the rest ignored
    block_share: float = 0.05  # of the declines: the recipient blocks the sender
    same_day_answer: float = 0.6  # pi0: an answer comes the day the request was sent
    later_answer_rate: float = 0.35  # g: else the daily chance it comes
    # Suggestions (the PYMK list on the online simulator): what one is worth in request draws, and how
    # fast the chance a user looks at a position of the list falls.
    suggestion_draws: float = 20.0
    suggestion_position_decay: float = 0.9
    truth: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.n_users < 2 or self.n_days < 1:
            raise ValueError("n_users must be >= 2 and n_days >= 1")
        if len(self.request_weights) != len(MECHANISMS) or len(self.initial_mix) != 4:
            raise ValueError(f"request_weights has one weight per {MECHANISMS}; initial_mix four")
        self._tables: PymkTables | None = None
        self._cache: tuple[int, _State] | None = None

    @property
    def end_ms(self) -> int:
        """End of the window (exclusive), in ms since START."""
        return self.n_days * DAY_MS

    def generate(self) -> PymkTables:
        rng = np.random.default_rng(self.seed)
        self._sample_users(rng)
        initial = self._initial_graph(rng)
        interactions, requests, formed = self._simulate(rng, initial)
        self._tables = self._build_tables(initial, interactions, requests, formed)
        self._cache = None
        return self._tables

    # ---- users --------------------------------------------------------------------------------
    def _sample_users(self, rng: np.random.Generator) -> None:
        t, n = self.truth, self.n_users
        city_share = _normalised(1.0 / np.arange(1, N_CITIES + 1) ** CITY_ZIPF)
        t["city"] = rng.choice(N_CITIES, n, p=city_share)
        centre_lat, centre_lng = rng.uniform(-40, 60, N_CITIES), rng.uniform(-125, 150, N_CITIES)
        t["lat"] = np.round(centre_lat[t["city"]] + rng.normal(0, 0.06, n), 5)
        t["lng"] = np.round(centre_lng[t["city"]] + rng.normal(0, 0.06, n), 5)
        t["school"] = _join_local(rng, t["city"], max(N_CITIES, n // USERS_PER_SCHOOL), city_share, 0.5, LOCAL_SCHOOL)
        n_employers = max(N_CITIES, n // USERS_PER_EMPLOYER)
        t["employer"] = _join_local(rng, t["city"], n_employers, city_share, 1.2, LOCAL_EMPLOYER)
        t["industry"] = rng.integers(0, N_INDUSTRIES, n_employers)[t["employer"]]
        # Each industry favours a few skills; a little uniform mass keeps every skill possible.
        profile = 0.85 * rng.dirichlet(np.full(N_SKILLS, 0.3), N_INDUSTRIES) + 0.15 / N_SKILLS
        score = np.log(profile[t["industry"]]) + rng.gumbel(size=(n, N_SKILLS))  # Gumbel top-k: 3 distinct
        t["skills"] = np.sort(np.argpartition(-score, SKILLS_PER_USER, axis=1)[:, :SKILLS_PER_USER], axis=1)
        t["age"] = np.clip(np.round(18 + rng.gamma(2.0, 7.0, n)), 18, 80).astype(np.int64)
        t["gender"] = rng.choice(np.array(["f", "m", "x"], dtype=object), n, p=[0.49, 0.48, 0.03])

        new = rng.random(n) < self.new_user_share
        old_age = rng.integers(60 * DAY_MS, 6 * 365 * DAY_MS, n)
        t["created_ms"] = np.where(new, rng.integers(0, self.end_ms, n), -old_age)
        t["activity"] = rng.lognormal(-(ACTIVITY_SD**2) / 2, ACTIVITY_SD, n)
        weeks = 4  # the observed activity: sessions counted over four weeks
        t["observed_activity"] = rng.poisson(weeks * 7 * SESSIONS_PER_DAY * t["activity"]) / weeks
        t["openness"] = rng.normal(0, self.openness_sd, n)
        sociability = np.sqrt(t["activity"]) * rng.lognormal(0, self.sociability_sd, n)
        t["sociability"] = np.where(new, 0.0, sociability)  # new accounts start with no friends
        self._groups = [_Groups(t["school"]), _Groups(t["employer"]), _Groups(t["city"])]

    def tie_strength(self, rng: np.random.Generator, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """A new friendship's hidden tie strength: lognormal, stronger for a shared school or employer."""
        t = self.truth
        mean = (
            self.tie_bias
            + self.tie_school * (t["school"][u] == t["school"][v])
            + self.tie_employer * (t["employer"][u] == t["employer"][v])
        )
        return rng.lognormal(mean, self.tie_sd)

    # ---- the initial graph ----------------------------------------------------------------------
    def _initial_graph(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Friendships before START: homophilous and random stubs, then closed triangles."""
        t, n = self.truth, self.n_users
        sociability = t["sociability"]
        relative = sociability / sociability[sociability > 0].mean()
        # Duplicates and self pairs are dropped: ask for a few more edges than the target.
        edges_per_user = 1.15 * self.mean_degree / 2
        source = np.repeat(np.arange(n), rng.poisson(edges_per_user * (1 - self.closure_share) * relative))
        kind = rng.choice(4, len(source), p=_normalised(self.initial_mix))
        partner = np.empty(len(source), dtype=np.int64)
        for k, group in enumerate([t["school"], t["employer"], t["city"], np.zeros(n, dtype=np.int64)]):
            at = kind == k
            partner[at] = _weighted_pick(rng, group, sociability, group[source[at]])
        keep = (partner >= 0) & (partner != source)
        keep[keep] = sociability[partner[keep]] > 0  # float round-off must not reach a new account
        first = _friend_csr(n, source[keep], partner[keep])

        # Triadic closure: a uniform friend's uniform friend.
        degree = np.diff(first.indptr)
        picks = rng.poisson(edges_per_user * self.closure_share * relative) * (degree > 0)
        user = np.repeat(np.arange(n), picks)
        friend = _uniform_neighbour(rng, first, user)
        other = _uniform_neighbour(rng, first, friend)
        keep = other != user
        rows, cols = first.nonzero()
        u, v = np.concatenate([rows, user[keep]]), np.concatenate([cols, other[keep]])
        key = np.unique(pair_key(u, v, n))
        u, v = key // n, key % n
        since = np.maximum(t["created_ms"][u], t["created_ms"][v])
        return {
            "u": u,
            "v": v,
            "time": since + (rng.random(len(key)) * -since).astype(np.int64),
            "strength": self.tie_strength(rng, u, v),
        }

    # ---- the days -------------------------------------------------------------------------------
    def _simulate(self, rng: np.random.Generator, initial: dict[str, np.ndarray]):
        """Day by day from START - HISTORY_DAYS (interactions only, so day 0 has a history) to the
        end. Friendships join the graph at the first midnight after they form."""
        n = self.n_users
        waiting = dict(initial)  # friendships not in the graph yet (future-dated ones too)
        friend_keys, strength = np.empty(0, dtype=np.int64), np.empty(0)
        asked = np.empty(0, dtype=np.int64)
        block_key, block_ms = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        interactions, requests, formed = [], [], []
        for day in range(-HISTORY_DAYS, self.n_days):
            at = day * DAY_MS
            due = waiting["time"] < at
            # Merged into the sorted keys rather than rebuilt: a day adds few friendships to millions.
            new_keys, new_pair = _directed(n, waiting["u"][due], waiting["v"][due])
            where = np.searchsorted(friend_keys, new_keys)
            friend_keys = np.insert(friend_keys, where, new_keys)
            strength = np.insert(strength, where, waiting["strength"][due][new_pair])
            waiting = {name: column[~due] for name, column in waiting.items()}
            recent = interactions[-HISTORY_DAYS:]
            state = _State(
                self,
                day,
                friend_keys,
                strength,
                _concatenate([i["user"] for i in recent]),
                _concatenate([i["other"] for i in recent]),
                asked,
                np.unique(block_key[block_ms < at]),
            )
            interactions.append(self._interact(rng, state, at))
            if day < 0:
                continue
            drawn = self._request(rng, state, at)
            requests.append(drawn)
            pair = pair_key(drawn["sender"], drawn["recipient"], n)
            new_asked = np.unique(pair)
            asked = np.insert(asked, np.searchsorted(asked, new_asked), new_asked)
            block_key = np.concatenate([block_key, pair[drawn["blocked"]]])
            block_ms = np.concatenate([block_ms, drawn["answered"][drawn["blocked"]]])
            first = _first_acceptances(pair, drawn["answered"], drawn["accepted"])
            friendship = {
                "u": pair[first] // n,
                "v": pair[first] % n,
                "time": drawn["answered"][first],
                "strength": drawn["strength"][first],
            }
            formed.append(friendship)
            waiting = {name: np.concatenate([column, friendship[name]]) for name, column in waiting.items()}
        return _stack(interactions), _stack(requests), _stack(formed)

    def _interact(self, rng: np.random.Generator, state: _State, at: int) -> dict[str, np.ndarray]:
        """A day of interactions: with friends, in proportion to tie strength; likes to strangers near in
        the graph, at school or in town (never to a friend, or across a block)."""
        people = np.flatnonzero(state.created)
        activity = self.truth["activity"][people]
        user = np.repeat(people, rng.poisson(self.friend_interactions * activity * state.tie_total[people]))
        other = state.pick_friend(rng, user)
        message = rng.random(len(user)) < self.message_share
        stranger = np.repeat(people, rng.poisson(self.stranger_interactions * activity))
        target = state.draw(rng, stranger, rng.choice(STRANGER_MECHANISMS, len(stranger), p=STRANGER_WEIGHTS))
        stranger, target = stranger[target >= 0], target[target >= 0]
        keep = (
            (target != stranger)
            & state.created[target]
            & ~state.is_friend(stranger, target)
            & ~_in_sorted(pair_key(stranger, target, self.n_users), state.blocked)
        )
        user, other = np.concatenate([user, stranger[keep]]), np.concatenate([other, target[keep]])
        return {
            "user": user,
            "other": other,
            "time": at + rng.integers(0, DAY_MS, len(user)),
            "message": np.concatenate([message, np.zeros(keep.sum(), dtype=bool)]),
        }

    def _request(self, rng: np.random.Generator, state: _State, at: int) -> dict[str, np.ndarray]:
        """A day of requests: draws by mechanism, then each request's answer, drawn now and revealed
        at its time (the state of the day it was sent decides it)."""
        n, activity = self.n_users, self.truth["activity"]
        people = np.flatnonzero(state.created)
        sender = np.repeat(people, rng.poisson(self.requests_per_day * activity[people]))
        mechanism = rng.choice(len(MECHANISMS), len(sender), p=_normalised(self.request_weights))
        target = state.draw(rng, sender, mechanism)
        sender, target = sender[target >= 0], target[target >= 0]
        key = np.unique((sender * n + target)[state.fresh(sender, target)])  # several draws, one request
        sender, recipient = key // n, key % n
        mutual = state.common_friends(sender, recipient)[0]
        acceptance = state.acceptance(sender, recipient, mutual, state.interacted(sender, recipient))

        sent = at + rng.integers(0, DAY_MS - 1, len(key))  # leaves room for an answer the same day
        _, pair_index, pair_count = np.unique(pair_key(sender, recipient, n), return_inverse=True, return_counts=True)
        crossing = pair_count[pair_index] > 1  # who asked the other too declines rather than blocks
        accepted, blocked, answered = self.answer(rng, sent, acceptance, at, crossing)
        return {
            "sender": sender,
            "recipient": recipient,
            "sent": sent,
            "answered": answered,
            "accepted": accepted,
            "blocked": blocked,
            "acceptance": acceptance,
            "strength": self.tie_strength(rng, sender, recipient),  # of the friendship, if it forms
        }

    def answer(
        self, rng: np.random.Generator, sent: np.ndarray, acceptance: np.ndarray, at: int, crossing: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each request's answer, drawn when it is sent (sent on the day starting at `at`, ms): accepted
        w.p. `acceptance`, else declined (`decline_share`, a few by a block unless the recipient asked the
        sender too: `crossing`) or ignored; the answer's time the same day w.p. `same_day_answer`, else a
        Geometric(`later_answer_rate`) number of days later (NEVER: ignored). Returns (accepted, blocked,
        answered)."""
        k = len(sent)
        outcome = rng.random(k)
        accepted = outcome < acceptance
        declined = ~accepted & (outcome < acceptance + (1 - acceptance) * self.decline_share)
        blocked = declined & ~crossing & (rng.random(k) < self.block_share)
        same_day = rng.random(k) < self.same_day_answer
        today = sent + 1 + (rng.random(k) * (at + DAY_MS - 1 - sent)).astype(np.int64)
        later = at + rng.geometric(self.later_answer_rate, k) * DAY_MS + rng.integers(0, DAY_MS, k)
        return accepted, blocked, np.where(accepted | declined, np.where(same_day, today, later), NEVER)

    # ---- the tables -----------------------------------------------------------------------------
    def _build_tables(self, initial, interactions, requests, formed) -> PymkTables:
        in_window = {name: column[formed["time"] < self.end_ms] for name, column in formed.items()}
        requests_table, blocks = self._requests_tables(requests)
        return PymkTables(
            self._users_table(),
            self._edges_table(_stack([initial, in_window])),
            requests_table,
            self._interactions_table(interactions),
            blocks,
            START,
        )

    def _users_table(self) -> pd.DataFrame:
        t = self.truth
        return pd.DataFrame(
            {
                "user_id": np.arange(self.n_users, dtype=np.int64),
                "age": t["age"],
                "gender": t["gender"],
                "city": t["city"].astype(np.int64),
                "lat": t["lat"],
                "lng": t["lng"],
                "school_id": t["school"].astype(np.int64),
                "employer_id": t["employer"].astype(np.int64),
                "industry": t["industry"].astype(np.int64),
                "skills": pd.Series(t["skills"].tolist(), dtype=object),
                "created_timestamp": timestamps_of_ms(t["created_ms"]),
                "activity": t["observed_activity"],
            }
        )

    def _edges_table(self, edges: dict[str, np.ndarray]) -> pd.DataFrame:
        order = np.lexsort((edges["v"], edges["u"], edges["time"]))
        self.truth["tie_strength"] = edges["strength"][order]
        return pd.DataFrame(
            {"src": edges["u"][order], "dst": edges["v"][order], "timestamp": timestamps_of_ms(edges["time"][order])}
        )

    def _requests_tables(self, r: dict[str, np.ndarray]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Requests as of the end of the window, and the blocks among their answers."""
        n, end = self.n_users, self.end_ms
        # Crossing requests: the first acceptance makes the friendship; a request still unanswered
        # then is accepted with it, one sent after it was never sent (nobody asks a friend).
        pair = pair_key(r["sender"], r["recipient"], n)
        first = _first_acceptances(pair, r["answered"], r["accepted"])
        by_pair = np.argsort(pair[first])
        friends_ms = _lookup(pair[first][by_pair], r["answered"][first][by_pair], pair, NEVER)
        answered = np.minimum(r["answered"], friends_ms)
        accepted = r["accepted"] | (friends_ms < r["answered"])
        status = np.where(answered >= end, "pending", np.where(accepted, "accepted", "declined")).astype(object)
        order = np.lexsort((r["recipient"], r["sender"], r["sent"]))
        order = order[r["sent"][order] < friends_ms[order]]
        self.truth["accept_probability"] = r["acceptance"][order]
        requests = pd.DataFrame(
            {
                "sender": r["sender"][order],
                "recipient": r["recipient"][order],
                "sent_timestamp": timestamps_of_ms(r["sent"][order]),
                "status": status[order],
                "answered_timestamp": timestamps_of_ms(np.where(answered < end, answered, NEVER)[order]),
            }
        )
        blocked = np.flatnonzero(r["blocked"] & (answered < end))
        blocked = blocked[np.argsort(answered[blocked], kind="stable")]
        blocks = pd.DataFrame(
            {
                "user_id": r["recipient"][blocked],
                "blocked_id": r["sender"][blocked],
                "timestamp": timestamps_of_ms(answered[blocked]),
            }
        )
        return requests, blocks

    @staticmethod
    def _interactions_table(i: dict[str, np.ndarray]) -> pd.DataFrame:
        order = np.argsort(i["time"], kind="stable")
        return pd.DataFrame(
            {
                "user_id": i["user"][order],
                "other_id": i["other"][order],
                "timestamp": timestamps_of_ms(i["time"][order]),
                "kind": np.where(i["message"][order], "message", "like").astype(object),
            }
        )

    # ---- the oracle -----------------------------------------------------------------------------
    def edge_probability(self, user_ids: np.ndarray, other_ids: np.ndarray, day) -> np.ndarray:
        """The oracle: P(the friendship between each pair forms during [day, day + 1 day)) given the
        world's state at `day` (a midnight UTC from START to START + n_days). 0 for pairs already
        friends at `day`, a user with itself, pairs asked and answered (declined, blocked) and
        accounts not yet created. Symmetric in the pair. The state is read from the tables and
        cached per day, so calls for the same day are cheap."""
        if self._tables is None:
            raise RuntimeError("call generate() first")
        u, v = np.asarray(user_ids, dtype=np.int64), np.asarray(other_ids, dtype=np.int64)
        if u.shape != v.shape or u.ndim != 1:
            raise ValueError(f"user_ids and other_ids must be 1-D of equal length, got {u.shape} and {v.shape}")
        day_index = self._day_index(day)
        return self.state(day_index).edge_probability(u, v)

    def state(self, day: int) -> _State:
        """The world at the midnight `day` days after START, read from the tables (cached per day): what
        the day's draws, the oracle and the online simulator's suggestions read."""
        if self._tables is None:
            raise RuntimeError("call generate() first")
        if self._cache is None or self._cache[0] != day:
            self._cache = (day, self._read_state(day))
        return self._cache[1]

    def go_on(self, tables: PymkTables, tie_strength: np.ndarray, accept_probability: np.ndarray) -> None:
        """The tables extended past the window by the online simulator's days (systems/pymk/online.py),
        with the hidden truth aligned with their edges and requests: the states of the later midnights
        read them. An earlier midnight's state does not change (nothing is added before it)."""
        if len(tie_strength) != len(tables.edges) or len(accept_probability) != len(tables.requests):
            raise ValueError("the truth must hold one tie strength per edge and one acceptance per request")
        self._tables = tables
        self.truth["tie_strength"], self.truth["accept_probability"] = tie_strength, accept_probability

    def examined(self, position: np.ndarray) -> np.ndarray:
        """P(a user looks at the suggestion at each position of the PYMK list, 1 at the top)."""
        return self.suggestion_position_decay ** (np.asarray(position) - 1.0)

    def _day_index(self, day) -> int:
        day = pd.Timestamp(day)
        offset = (day.tz_localize("UTC") if day.tzinfo is None else day.tz_convert("UTC")) - START
        if offset % pd.Timedelta(days=1) or not 0 <= offset.days <= self.n_days:
            raise ValueError(f"day must be a midnight UTC from {START} to {self.n_days} days later, got {day}")
        return offset.days

    def _read_state(self, day: int) -> _State:
        """The state at a midnight, read back from the tables and the hidden truth."""
        tables, n, at = self._tables, self.n_users, day * DAY_MS
        edges = tables.edges
        formed = ms_since_start(edges["timestamp"]) < at
        keys, pair_of_key = _directed(n, edges["src"].to_numpy()[formed], edges["dst"].to_numpy()[formed])
        interactions = tables.interactions
        interacted_ms = ms_since_start(interactions["timestamp"])
        recent = (interacted_ms >= at - HISTORY_DAYS * DAY_MS) & (interacted_ms < at)

        requests = tables.requests
        pair = pair_key(requests["sender"].to_numpy(), requests["recipient"].to_numpy(), n)
        sent = ms_since_start(requests["sent_timestamp"])
        pending = (sent < at) & (ms_since_start(requests["answered_timestamp"]) >= at)
        hazard = self._answer_hazard(self.truth["accept_probability"][pending], day - sent[pending] // DAY_MS)
        pending_keys, pending_index = np.unique(pair[pending], return_inverse=True)
        # Requests between a pair are answered independently: the friendship waits for neither.
        pending_probability = -np.expm1(np.bincount(pending_index, np.log1p(-hazard), minlength=len(pending_keys)))
        blocks = tables.blocks
        blocked = ms_since_start(blocks["timestamp"]) < at
        return _State(
            self,
            day,
            keys,
            self.truth["tie_strength"][formed][pair_of_key],
            interactions["user_id"].to_numpy()[recent],
            interactions["other_id"].to_numpy()[recent],
            np.unique(pair[sent < at]),
            np.unique(pair_key(blocks["user_id"].to_numpy()[blocked], blocks["blocked_id"].to_numpy()[blocked], n)),
            (pending_keys, pending_probability),
        )

    def _answer_hazard(self, acceptance: np.ndarray, days_waiting: np.ndarray) -> np.ndarray:
        """P(a request is accepted on its k-th day after the one it was sent | unanswered so far), k >= 1."""
        still = (1 - self.same_day_answer) * (1 - self.later_answer_rate) ** (days_waiting - 1)  # P(answer day >= k)
        answers = acceptance + (1 - acceptance) * self.decline_share  # P(an answer ever comes)
        return acceptance * still * self.later_answer_rate / (answers * still + 1 - answers)


class _State:
    """The world at a midnight, as the day's draws and the oracle read it: the graph with tie
    strengths, the pairs asked so far, blocks, the last HISTORY_DAYS of interactions and who exists.
    The draws (`draw`, `pick_friend`) and the probabilities (`request_share`, `acceptance`) sit
    side by side: each mechanism's probability is the distribution its draw samples."""

    def __init__(
        self,
        world: PymkWorld,
        day: int,
        friend_keys: np.ndarray,
        strength: np.ndarray,
        recent_user: np.ndarray,
        recent_other: np.ndarray,
        asked: np.ndarray,
        blocked: np.ndarray,
        pending: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """`pending`: the pairs with unanswered requests (sorted keys) and P(one is accepted today); the
        oracle needs them, the day's draws do not (the answers were drawn with the requests)."""
        n = world.n_users
        self.world, self.n = world, n
        self.created = world.truth["created_ms"] < day * DAY_MS
        self.friend_keys, self.asked, self.blocked = friend_keys, asked, blocked  # sorted
        self.pending_keys, self.pending_probability = pending or (np.empty(0, dtype=np.int64), np.empty(0))
        self.graph = _csr(n, friend_keys, strength)  # tie strengths, both ways
        self.degree = np.diff(self.graph.indptr)
        row = np.repeat(np.arange(n), self.degree)
        self.tie_total = np.bincount(row, strength, minlength=n)
        # s(u, f) / S(u) / deg(f): summed over mutual friends, the friend-of-friend share.
        self.friend_of_friend_weight = _csr(
            n, friend_keys, strength / self.tie_total[row] / self.degree[friend_keys % n]
        )
        self.tie_cumulative = np.concatenate([[0.0], np.cumsum(strength)])
        self.popularity_cumulative = np.concatenate([[0], np.cumsum(self.degree + 1)])
        interacted = np.unique(pair_key(recent_user, recent_other, n))
        self.interacted_keys = interacted[~_in_sorted(interacted, friend_keys)]
        partner_keys, _ = _directed(n, self.interacted_keys // n, self.interacted_keys % n)
        self.partners = _csr(n, partner_keys, np.ones(len(partner_keys)))
        self.partner_degree = np.diff(self.partners.indptr)

    # ---- lookups ----
    def is_friend(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return _in_sorted(u * self.n + v, self.friend_keys)

    def interacted(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Non-friends who interacted (either way) in the last HISTORY_DAYS days."""
        return _in_sorted(pair_key(u, v, self.n), self.interacted_keys)

    def fresh(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Pairs a new request can go to: two existing accounts, not friends, never asked before."""
        return (
            (u != v)
            & self.created[u]
            & self.created[v]
            & ~self.is_friend(u, v)
            & ~_in_sorted(pair_key(u, v, self.n), self.asked)
        )

    def common_friends(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mutual friends, and the friend-of-friend mechanism's P(v | u) and P(u | v)."""
        weight_u, weight_v = self.friend_of_friend_weight[u], self.friend_of_friend_weight[v]
        forward = weight_u.multiply(_pattern(weight_v))  # slicing rows costs most: each matrix once
        backward = weight_v.multiply(_pattern(weight_u))
        return forward.count_nonzero(axis=1), forward.sum(axis=1), backward.sum(axis=1)

    # ---- draws ----
    def pick_friend(self, rng: np.random.Generator, u: np.ndarray) -> np.ndarray:
        """A friend of each user, w.p. tie strength / the user's total (-1 without friends)."""
        lo, hi = self.graph.indptr[u], self.graph.indptr[u + 1]
        friend = np.full(len(u), -1, dtype=np.int64)
        has = hi > lo
        lo, hi = lo[has], hi[has]
        drawn = self.tie_cumulative[lo] + rng.random(len(lo)) * (self.tie_cumulative[hi] - self.tie_cumulative[lo])
        at = np.clip(np.searchsorted(self.tie_cumulative, drawn, "right") - 1, lo, hi - 1)
        friend[has] = self.graph.indices[at]
        return friend

    def draw(self, rng: np.random.Generator, senders: np.ndarray, mechanisms: np.ndarray) -> np.ndarray:
        """One target per draw, as its mechanism picks it (-1 where the mechanism has no support)."""
        targets = np.full(len(senders), -1, dtype=np.int64)
        for mechanism in np.unique(mechanisms):
            at = mechanisms == mechanism
            targets[at] = self._draw(rng, senders[at], mechanism)
        return targets

    def _draw(self, rng: np.random.Generator, u: np.ndarray, mechanism: int) -> np.ndarray:
        if mechanism == FRIEND_OF_FRIEND:
            friend = self.pick_friend(rng, u)
            target = np.full(len(u), -1, dtype=np.int64)
            target[friend >= 0] = _uniform_neighbour(rng, self.graph, friend[friend >= 0])
            return target
        if mechanism in (SCHOOL, EMPLOYER, CITY):
            return self.world._groups[mechanism - SCHOOL].member(rng, u)
        if mechanism == INTERACTED:
            return _uniform_neighbour(rng, self.partners, u)
        if mechanism == POPULAR:
            drawn = rng.random(len(u)) * self.popularity_cumulative[-1]
            return np.searchsorted(self.popularity_cumulative, drawn, "right") - 1
        return rng.integers(0, self.n, len(u))

    # ---- probabilities ----
    def request_share(
        self, u: np.ndarray, v: np.ndarray, friend_of_friend: np.ndarray, interacted: np.ndarray
    ) -> np.ndarray:
        """q_u(v): the share of u's request draws that land on v, sum_m w_m P_m(v | u)."""
        weights = _normalised(self.world.request_weights)
        share = weights[FRIEND_OF_FRIEND] * friend_of_friend
        for mechanism, groups in zip((SCHOOL, EMPLOYER, CITY), self.world._groups, strict=True):
            share = share + weights[mechanism] * (groups.of[u] == groups.of[v]) / groups.size[groups.of[u]]
        share += weights[INTERACTED] * interacted / np.maximum(self.partner_degree[u], 1)
        share += weights[POPULAR] * (self.degree[v] + 1) / self.popularity_cumulative[-1]
        return share + weights[RANDOM] / self.n

    def acceptance(
        self, sender: np.ndarray, recipient: np.ndarray, mutual: np.ndarray, interacted: np.ndarray
    ) -> np.ndarray:
        """acc(sender, recipient): P(the recipient accepts), given the state of the day it was sent."""
        w, t = self.world, self.world.truth
        return expit(
            w.accept_bias
            + t["openness"][recipient]
            + w.accept_school * (t["school"][sender] == t["school"][recipient])
            + w.accept_employer * (t["employer"][sender] == t["employer"][recipient])
            + w.accept_city * (t["city"][sender] == t["city"][recipient])
            + w.accept_mutual * np.log1p(mutual)
            + w.accept_interacted * interacted
        )

    def suggestion(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """v in u's PYMK list, looked at: P(u sends v a request) and acc(u, v); both 0 for a pair no request
        can go to (not fresh). A suggestion stands for `suggestion_draws` of u's request draws (whatever u's
        activity: u has opened the list), and u sends if one of them lands on v: 1 - exp(-draws q_u(v))."""
        send, acceptance = np.zeros(len(u)), np.zeros(len(u))
        fresh = self.fresh(u, v)
        a, b = u[fresh], v[fresh]
        mutual, share, _ = self.common_friends(a, b)
        interacted = self.interacted(a, b)
        send[fresh] = -np.expm1(-self.world.suggestion_draws * self.request_share(a, b, share, interacted))
        acceptance[fresh] = self.acceptance(a, b, mutual, interacted)
        return send, acceptance

    def edge_probability(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """P(friends by the next midnight): a pending request's hazard, else a request sent today
        either way and accepted today."""
        w = self.world
        probability = np.zeros(len(u))
        fresh = self.fresh(u, v)
        a, b = u[fresh], v[fresh]
        mutual, forward_share, backward_share = self.common_friends(a, b)
        interacted = self.interacted(a, b)
        rate = w.requests_per_day * w.truth["activity"]
        forward = -np.expm1(-rate[a] * self.request_share(a, b, forward_share, interacted))
        backward = -np.expm1(-rate[b] * self.request_share(b, a, backward_share, interacted))
        forward *= self.acceptance(a, b, mutual, interacted) * w.same_day_answer
        backward *= self.acceptance(b, a, mutual, interacted) * w.same_day_answer
        probability[fresh] = 1 - (1 - forward) * (1 - backward)
        # A pair asked and still unanswered: only its pending requests can make the friendship.
        return _lookup(self.pending_keys, self.pending_probability, pair_key(u, v, self.n), probability)


class _Groups:
    """Users by a static attribute (school, employer, city), for uniform draws of a member."""

    def __init__(self, of: np.ndarray) -> None:
        self.of = of
        self.order = np.argsort(of, kind="stable")
        self.size = np.bincount(of)
        self.start = np.cumsum(self.size) - self.size

    def member(self, rng: np.random.Generator, users: np.ndarray) -> np.ndarray:
        """A uniform member of each user's group (the user included: such a draw is dropped)."""
        group = self.of[users]
        return self.order[self.start[group] + (rng.random(len(users)) * self.size[group]).astype(np.int64)]


def _normalised(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values / values.sum()


def _join_local(rng, user_city, count: int, city_share, popularity_sd: float, local: float) -> np.ndarray:
    """Each user's school or employer among `count`, in proportion to a heavy-tailed popularity:
    one in the user's city w.p. `local`, else any. Every city has at least one."""
    home = np.concatenate([np.arange(N_CITIES), rng.choice(N_CITIES, count - N_CITIES, p=city_share)])
    popularity = rng.lognormal(0, popularity_sd, count)
    nearby = _weighted_pick(rng, home, popularity, user_city)
    anywhere = _weighted_pick(rng, np.zeros(count, dtype=np.int64), popularity, np.zeros_like(user_city))
    return np.where(rng.random(len(user_city)) < local, nearby, anywhere)


def _weighted_pick(rng: np.random.Generator, group: np.ndarray, weight: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """For each wanted group, an item of that group drawn in proportion to weight (-1 if none weighs)."""
    order = np.argsort(group, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(weight[order])])
    lo, hi = np.searchsorted(group[order], wanted, "left"), np.searchsorted(group[order], wanted, "right")
    total = cumulative[hi] - cumulative[lo]
    drawn = cumulative[lo] + rng.random(len(wanted)) * total
    at = np.clip(np.searchsorted(cumulative, drawn, "right") - 1, lo, np.maximum(hi - 1, lo))
    return np.where(total > 0, order[np.minimum(at, len(order) - 1)], -1)


def _uniform_neighbour(rng: np.random.Generator, graph: sp.csr_array, nodes: np.ndarray) -> np.ndarray:
    """A uniform neighbour of each node (-1 for a node without any)."""
    lo = graph.indptr[nodes]
    degree = graph.indptr[nodes + 1] - lo
    offset = (rng.random(len(nodes)) * degree).astype(np.int64)
    neighbour = np.full(len(nodes), -1, dtype=np.int64)
    neighbour[degree > 0] = graph.indices[(lo + offset)[degree > 0]]
    return neighbour


def pair_key(u: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """The unordered pair as one int64: min * n + max."""
    return np.minimum(u, v) * n + np.maximum(u, v)


def _directed(n: int, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of undirected pairs as sorted keys u * n + v, and the pair of each key."""
    keys = np.concatenate([u * n + v, v * n + u])
    order = np.argsort(keys, kind="stable")
    return keys[order], np.tile(np.arange(len(u)), 2)[order]


def _csr(n: int, keys: np.ndarray, data: np.ndarray) -> sp.csr_array:
    """The (n, n) matrix of sorted keys row * n + col: canonical, built without sorting."""
    return sp.csr_array((data, keys % n, np.searchsorted(keys, np.arange(n + 1) * n)), shape=(n, n))


def _pattern(matrix: sp.csr_array) -> sp.csr_array:
    """The matrix with 1 for each stored value."""
    return sp.csr_array((np.ones(matrix.nnz), matrix.indices, matrix.indptr), shape=matrix.shape)


def _friend_csr(n: int, u: np.ndarray, v: np.ndarray) -> sp.csr_array:
    keys = np.unique(np.concatenate([u * n + v, v * n + u]))
    return _csr(n, keys, np.ones(len(keys)))


def _first_acceptances(pair: np.ndarray, answered: np.ndarray, accepted: np.ndarray) -> np.ndarray:
    """The request that makes each friendship: the pair's earliest acceptance (indices)."""
    chosen = np.flatnonzero(accepted)
    chosen = chosen[np.lexsort((answered[chosen], pair[chosen]))]
    return chosen[first_occurrence(pair[chosen])]


def _in_sorted(values: np.ndarray, sorted_array: np.ndarray) -> np.ndarray:
    """Whether each value is in a sorted array (np.isin hashes both: slower here)."""
    if len(sorted_array) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_array, values), len(sorted_array) - 1)
    return sorted_array[at] == values


def _lookup(sorted_keys: np.ndarray, values: np.ndarray, keys: np.ndarray, default) -> np.ndarray:
    """The value of each key in a sorted key array, `default` where absent."""
    if len(sorted_keys) == 0:
        return np.broadcast_to(default, keys.shape).copy()
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return np.where(sorted_keys[at] == keys, values[at], default)


def _concatenate(arrays: list[np.ndarray]) -> np.ndarray:
    """Concatenated user ids; empty for no arrays."""
    return np.concatenate([np.empty(0, dtype=np.int64), *arrays])


def _stack(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def timestamps_of_ms(ms: np.ndarray) -> pd.DatetimeIndex:
    """tz-aware UTC times of ms since START; NaT for NEVER."""
    never = ms == NEVER
    ns = START.value + np.where(never, 0, ms) * 1_000_000
    return pd.to_datetime(np.where(never, np.iinfo(np.int64).min, ns), utc=True)


def ms_since_start(timestamps) -> np.ndarray:
    """ms since START of a column of times (tz-aware or objects); NEVER for NaT."""
    timestamps = pd.Series(pd.to_datetime(timestamps, utc=True))
    ns = pd.DatetimeIndex(timestamps).asi8
    never = timestamps.isna().to_numpy()
    return np.where(never, NEVER, (np.where(never, START.value, ns) - START.value) // 1_000_000)
