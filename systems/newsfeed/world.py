"""The news feed world: a seeded generative model of a social network (users, friendships,
celebrity follows, posts) and of the feed impressions a chronological-ish logging policy
served, with every reaction's true probability known (the oracle).

    python -c "from systems.newsfeed.world import NewsfeedWorld as W; print(W(800, 8).generate().impressions)"

Interest of a user in a post shown at time t (logit scale):
  s = topic_weight * taste[user, post topic]           a hidden Dirichlet taste over TOPICS
    + tie_weight * tie strength(user -> author, at t)  0 for authors the user does not follow
    + post quality + post virality                     hidden, per post
    + freshness_weight * 2^(-post age / half-life)
    + MEDIA_DEVICE[media type, device]
Reactions of an impression at 0-based slot j, examined with probability (1 + j)^-position_bias:
  click, like, comment, share: examined * sigmoid(base_r + weight_r * s + passive_offset * passive)
  hide:                        examined * sigmoid(hide_base - hide_weight * s + hide tendency(user)
                                                  + annoyance(user, author))
  dwell_s: examined: lognormal, log median = log(dwell_median_s) + dwell_weight * s (+ video bonus),
           not examined: a glance of ~glance_s;   skip = dwell_s < SKIP_SECONDS
drawn independently given examination; the oracle's skip and dwell are the mixture's closed forms.
Passive users (hidden) react several logits less but dwell like everyone: for them dwell and
skip carry the signal the explicit reactions lack. The annoyance is a hidden trait of a few
(user, author) pairs, so hiding an author once predicts hiding them again.

The graph: friendships (two rows, one each way) proposed within a country at similar ages and
accepted by shared taste, then closed through friends of friends; tie strength grows with both.
Celebrities are followed one way by a power-law share of the users, with weak ties.

The logging policy (what the logs show): each session fills `slots` with unseen posts of the
followed authors from the last feed_window_days (as of the day's graph) plus popular_per_feed
popular posts from outside the graph (more when the graph runs dry), ordered by recency plus
noise. Nobody sees a post twice.

After the logs (the online simulator, systems/newsfeed/online.py): the feed opens, the reactions and
the impressions table are drawn by the logs' own `sessions`, `respond` and `impression_tables`;
`post_day` draws each later day's posts as the logs' were, from a random stream of its own.

Observable: demographics, the graph, post text, topic, hashtags, media, times, devices and the
logs. Hidden: tastes, passivity, visit and posting rates, tie strengths, quality, virality,
hide tendencies and annoyances (world.truth; passive_users() for evaluation by segment).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit, ndtr

from common.data.arrays import draw_rows
from systems.newsfeed.vocabulary import GENERIC_HASHTAGS, TOPIC_NAMES, TOPICS, UNIFORMS_PER_POST, compose, reshare

log = logging.getLogger(__name__)

START = pd.Timestamp("2026-05-04", tz="UTC")
DAY_S = 86_400
REACTIONS = ("click", "like", "comment", "share", "hide")
SKIP_SECONDS = 2.0  # skip = dwell below this
DEVICES = ("mobile", "desktop")
MEDIA_TYPES = ("text", "image", "video")
COUNTRIES = ("us", "in", "br", "gb", "de", "mx")
COUNTRY_SHARE = (0.34, 0.22, 0.15, 0.11, 0.1, 0.08)
GENDERS = ("female", "male", "undisclosed")
GENDER_SHARE = (0.49, 0.48, 0.03)
# Interest shift by (media type, device): video and images play best on a phone, text on a screen.
MEDIA_DEVICE = np.array([[-0.2, 0.2], [0.2, 0.0], [0.4, -0.2]])  # rows MEDIA_TYPES, columns DEVICES

# Share of sessions per hour of day (UTC): low at night, peaks at lunch and in the evening.
_HOURLY = np.array([2, 1, 1, 1, 1, 2, 3, 5, 6, 5, 4, 5, 6, 5, 4, 4, 5, 6, 8, 9, 9, 8, 6, 4], float)
HOUR_WEIGHTS = _HOURLY / _HOURLY.sum()
WORK_HOURS = (8, 17)  # UTC hours in which desktops are more likely
MAX_SESSIONS_PER_DAY = 8
LOCAL_SPREAD = 0.12  # friendship proposals: spread in the (country, age) order, as a share of the country
HASHTAG_COUNT_SHARE = (0.3, 0.3, 0.25, 0.15)  # 0, 1, 2 or 3 hashtags

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class NewsfeedTables:
    """Raw tables, shaped like a social network's logs. `oracle` is the world's truth and must
    never reach the features."""

    users: pd.DataFrame  # user_id, age, gender, country, signup_timestamp
    connections: pd.DataFrame  # follower_id, followee_id, connection_type, created_timestamp
    posts: pd.DataFrame  # post_id, author_id, created_timestamp, topic, text, hashtags (["#football", ...]), media_type
    impressions: pd.DataFrame  # one row per post shown in a session, with its reactions, dwell and skip
    oracle: pd.DataFrame  # impression_id, p_click, p_like, p_comment, p_share, p_hide, p_skip, expected_dwell_s


@dataclass
class NewsfeedWorld:
    n_users: int = 30000
    n_days: int = 21
    slots: int = 10
    seed: int = 11
    mean_friends: float = 30.0
    celebrity_share: float = 0.003
    celebrity_reach: float = 0.35  # share of the users following the most followed celebrity
    celebrity_reach_exponent: float = 0.8  # the k-th celebrity reaches k^-exponent of that
    passive_share: float = 0.35
    new_user_share: float = 0.04  # sign up during the logs: cold start
    new_connection_share: float = 0.05  # of the friendships between existing users, made during the logs
    sessions_per_day: float = 0.45  # mean feed opens per user and day
    posts_per_day: float = 0.22  # posts a day of a typical active (not passive) regular user
    passive_posting: float = 0.3  # passive users post this much less
    celebrity_posting: float = 8.0  # and celebrities this much more
    near_duplicate_share: float = 0.03
    feed_window_days: float = 3.0
    popular_per_feed: int = 2
    popular_pool: int = 300  # the most engaging recent posts the policy draws outside the graph from
    policy_noise_days: float = 0.25  # noise on the policy's recency score, in days of age
    # Interest.
    taste_concentration: float = 0.3  # Dirichlet parameter of the users' topic tastes
    topic_weight: float = 4.0
    tie_weight: float = 2.5
    freshness_weight: float = 0.8
    freshness_half_life_hours: float = 12.0
    # Reactions (logit scale), in REACTIONS order for click, like, comment, share.
    position_bias: float = 0.5
    reaction_base: tuple[float, ...] = (-3.2, -4.0, -5.0, -5.8)
    reaction_weight: tuple[float, ...] = (0.7, 0.9, 0.8, 0.9)
    passive_offset: float = -3.0
    hide_base: float = -4.8
    hide_weight: float = 0.6
    hide_tendency_sd: float = 0.8
    annoyance_share: float = 0.03  # of (user, author) pairs
    annoyance: float = 3.0
    # Dwell.
    dwell_median_s: float = 3.0
    dwell_weight: float = 0.6
    dwell_sigma: float = 1.0
    video_dwell_bonus: float = 0.7  # on the log median
    glance_s: float = 0.5
    glance_sigma: float = 0.3
    truth: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng([self.seed, 0])
        self._salt = np.uint64(self.seed * int(_GOLDEN) % 2**64)
        self._sample_users(rng)
        self._sample_graph(rng)
        self._sample_posts(rng)

    # ---- users ---------------------------------------------------------------------------
    def _sample_users(self, rng: np.random.Generator) -> None:
        t, n = self.truth, self.n_users
        t["age"] = np.clip(np.round(13 + rng.gamma(3.0, 7.0, n)), 13, 85).astype(np.int64)
        t["gender"] = rng.choice(len(GENDERS), n, p=GENDER_SHARE)
        t["country"] = rng.choice(len(COUNTRIES), n, p=COUNTRY_SHARE)
        joins_late = rng.random(n) < self.new_user_share
        t["signup_s"] = np.where(
            joins_late, rng.uniform(0, 0.8 * self.n_days * DAY_S, n), -rng.exponential(700 * DAY_S, n) - DAY_S
        ).astype(np.int64)
        n_celebrities = max(2, round(self.celebrity_share * n))
        t["celebrities"] = np.sort(rng.choice(np.flatnonzero(~joins_late), n_celebrities, replace=False))
        celebrity = np.zeros(n, dtype=bool)
        celebrity[t["celebrities"]] = True
        t["passive"] = (rng.random(n) < self.passive_share) & ~celebrity
        # Celebrities are known for one thing: a sharper taste, which is also what they post about.
        concentration = np.where(celebrity, 0.1, self.taste_concentration)
        taste = rng.gamma(np.broadcast_to(concentration[:, None], (n, len(TOPICS))))  # Dirichlet, row by row
        t["taste"] = taste / taste.sum(axis=1, keepdims=True)
        t["visit_rate"] = self.sessions_per_day * rng.lognormal(-0.32, 0.8, n)  # mean sessions_per_day
        activity = np.sqrt(t["visit_rate"] / self.sessions_per_day)  # who visits more, posts more
        t["post_rate"] = (
            self.posts_per_day
            * activity
            * rng.lognormal(-0.32, 0.8, n)
            * np.where(t["passive"], self.passive_posting, 1.0)
            * np.where(celebrity, self.celebrity_posting, 1.0)
        )
        t["hide_tendency"] = rng.normal(0, self.hide_tendency_sd, n)
        t["desktop_share"] = rng.beta(1.5, 4.0, n)

    # ---- the graph -----------------------------------------------------------------------
    def _sample_graph(self, rng: np.random.Generator) -> None:
        """Friendships (homophilous, then triadic closure) with tie strengths and times, and
        celebrity follows; stored as sorted follower * n_users + followee keys for the oracle."""
        t, n = self.truth, self.n_users
        n_friendships = round(self.mean_friends * n / 2)
        first = self._homophilous_pairs(rng, round(0.65 * n_friendships))
        closed = self._triadic_pairs(rng, first, n_friendships - len(first))
        pairs = np.vstack([first, closed])
        triadic = np.r_[np.zeros(len(first)), np.ones(len(closed))]
        u, v = pairs.T
        homophily = self._homophily(u, v)
        strength = expit(
            -0.3 + (homophily - homophily.mean()) / homophily.std() + 0.8 * triadic + rng.normal(0, 0.8, len(u))
        )
        created = self._connection_times(rng, u, v)

        # Celebrity follows: the k-th celebrity reaches ~k^-exponent of the top one's share,
        # more among users who share its topic.
        celebrities = t["celebrities"]
        reach = self.celebrity_reach * np.arange(1, len(celebrities) + 1) ** -self.celebrity_reach_exponent
        topic = t["taste"][celebrities].argmax(axis=1)
        p_follow = np.minimum(1.0, reach * (0.3 + 0.7 * len(TOPICS) * t["taste"][:, topic]))
        follower, k = np.nonzero(rng.random(p_follow.shape) < p_follow)
        followee = celebrities[k]
        friends = np.sort(np.r_[u * n + v, v * n + u])
        new = (follower != followee) & ~_in_sorted(follower * n + followee, friends)
        follower, followee = follower[new], followee[new]
        follow_created = self._connection_times(rng, follower, followee)

        src = np.r_[u, v, follower]
        dst = np.r_[v, u, followee]
        order = np.argsort(src * n + dst)
        t["edge_key"] = (src * n + dst)[order]
        t["edge_strength"] = np.r_[strength, strength, rng.uniform(0.05, 0.2, len(follower))][order]
        t["edge_created_s"] = np.r_[created, created, follow_created][order]
        t["edge_friend"] = np.r_[np.ones(2 * len(u), bool), np.zeros(len(follower), bool)][order]

    def _homophily(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        t = self.truth
        taste = t["taste"] / np.linalg.norm(t["taste"], axis=1, keepdims=True)
        return (
            (t["country"][u] == t["country"][v])
            + np.exp(-np.abs(t["age"][u] - t["age"][v]) / 8.0)
            + np.einsum("nk,nk->n", taste[u], taste[v])
        )

    def _homophilous_pairs(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """k distinct (u < v) pairs: a sociable user proposes to someone of the same country
        and a similar age (85%) or anyone, accepted more often the more their tastes agree."""
        t, n = self.truth, self.n_users
        sociability = rng.lognormal(0, 0.6, n)
        # Users sorted by country, then age: a neighbour in that order is a compatriot of a
        # similar age. Offsets reflect at the country's ends, so the oldest and youngest are
        # not everyone's overflow.
        order = np.lexsort((rng.random(n), t["age"], t["country"]))
        position = np.empty(n, dtype=np.int64)
        position[order] = np.arange(n)
        block_end = np.cumsum(np.bincount(t["country"], minlength=len(COUNTRIES)))
        block_start = block_end - np.bincount(t["country"], minlength=len(COUNTRIES))
        m = 4 * k
        u = rng.choice(n, m, p=sociability / sociability.sum())
        lo, hi = block_start[t["country"][u]], block_end[t["country"][u]] - 1
        at = position[u] + np.round(rng.normal(0, LOCAL_SPREAD * (hi - lo + 1))).astype(np.int64)
        at = np.where(at < lo, 2 * lo - at, np.where(at > hi, 2 * hi - at, at))
        local = order[np.clip(at, lo, hi)]
        v = np.where(rng.random(m) < 0.85, local, rng.integers(0, n, m))
        taste = t["taste"] / np.linalg.norm(t["taste"], axis=1, keepdims=True)
        accepted = rng.random(m) < expit(-1.5 + 4.0 * np.einsum("nk,nk->n", taste[u], taste[v]))
        return self._distinct_pairs(rng, u[accepted], v[accepted], k, np.empty(0, np.int64))

    def _triadic_pairs(self, rng: np.random.Generator, pairs: np.ndarray, k: int) -> np.ndarray:
        """k distinct new pairs closing triangles: a friend of a friend, accepted by homophily."""
        n = self.n_users
        u, v = np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]]
        adjacency = sp.csr_matrix((np.ones(len(u)), (u, v)), shape=(n, n))
        degree = np.diff(adjacency.indptr)
        m = 4 * k
        pick = rng.integers(0, len(u), m)
        a, b = u[pick], v[pick]
        c = adjacency.indices[adjacency.indptr[b] + (rng.random(m) * degree[b]).astype(np.int64)]
        homophily = self._homophily(a, c)
        accepted = rng.random(m) < expit(-1.0 + homophily)
        existing = np.sort(np.minimum(pairs[:, 0], pairs[:, 1]) * n + np.maximum(pairs[:, 0], pairs[:, 1]))
        return self._distinct_pairs(rng, a[accepted], c[accepted], k, existing)

    def _distinct_pairs(self, rng, u, v, k: int, existing: np.ndarray) -> np.ndarray:
        """Up to k random distinct pairs (min, max) among the proposals, none a self-pair or in `existing`."""
        n = self.n_users
        key = np.unique(np.minimum(u, v) * n + np.maximum(u, v))
        key = key[(key // n != key % n) & ~_in_sorted(key, existing)]
        key = rng.permutation(key)[:k]
        return np.column_stack([key // n, key % n])

    def _connection_times(self, rng: np.random.Generator, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """When each connection was made: after both signed up; over the months before START,
        some during the logs, and soon after signing up for users who join during the logs."""
        later = np.maximum(self.truth["signup_s"][u], self.truth["signup_s"][v])
        end = self.n_days * DAY_S
        before = np.maximum(later + 3600, -rng.exponential(150 * DAY_S, len(u)))
        during = rng.uniform(0, end, len(u))
        after_joining = later + np.minimum(rng.exponential(2 * DAY_S, len(u)), (end - later) * rng.random(len(u)))
        created = np.where(rng.random(len(u)) < self.new_connection_share, during, before)
        return np.where(later >= 0, after_joining, created).astype(np.int64)

    # ---- posts ---------------------------------------------------------------------------
    def _sample_posts(self, rng: np.random.Generator) -> None:
        """The posts of the logs: each user posts from the feed window before START (the day-0 feed needs
        them), or from signing up, to the logs' end."""
        window_s = round(self.feed_window_days * DAY_S)
        start = np.maximum(-window_s, self.truth["signup_s"])
        posts, text, hashtags = self._draw_posts(rng, start, self.n_days * DAY_S)
        self.truth.update(posts)
        self._post_text, self._post_hashtags = text, list(hashtags)

    def post_day(self, day: int) -> pd.DataFrame:
        """Day `day`'s new posts after the logs (day >= n_days; the online simulator's days), drawn as the
        logs' posts are, from their own random stream: they join the world (post ids after the last one)
        and come back as rows of the posts table. The logs' posts are left as they are."""
        if day < self.n_days:
            raise ValueError(f"day {day} is a day of the logs: its posts are drawn with them")
        rng = np.random.default_rng([self.seed, 2, day])
        start = np.maximum(day * DAY_S, self.truth["signup_s"])
        posts, text, hashtags = self._draw_posts(rng, start, (day + 1) * DAY_S)
        t, first = self.truth, len(self.truth["post_author"])
        posts["post_duplicate_of"] = np.where(posts["post_duplicate_of"] >= 0, posts["post_duplicate_of"] + first, -1)
        for name, values in posts.items():
            t[name] = np.concatenate([t[name], values])
        self._post_text = np.concatenate([self._post_text, text])
        self._post_hashtags = [*self._post_hashtags, *hashtags]
        return self._posts_table(first)

    def _draw_posts(
        self, rng: np.random.Generator, start: np.ndarray, end: int
    ) -> tuple[dict[str, np.ndarray], np.ndarray, list]:
        """Posts of every user from `start` (per user, seconds since START) to `end`, by creation time, with
        their topic, media, quality, virality, text and hashtags; near-duplicates copy an earlier post of the
        same draw. The authors' quality is drawn with the first posts and kept."""
        t = self.truth
        window_s = round(self.feed_window_days * DAY_S)
        counts = rng.poisson(t["post_rate"] * np.maximum(end - start, 0) / DAY_S)
        author = np.repeat(np.arange(self.n_users), counts)
        created = rng.uniform(start[author], end).astype(np.int64)
        order = np.argsort(created, kind="stable")
        author, created = author[order], created[order]  # post_id = creation order
        n = len(author)
        topic = draw_rows(rng, t["taste"][author])
        media_share = np.array([TOPICS[name].media_share for name in TOPIC_NAMES])
        media = draw_rows(rng, media_share[topic])
        if "author_quality" not in t:
            t["author_quality"] = rng.normal(0, 0.4, self.n_users)
        quality = t["author_quality"][author] + rng.normal(0, 0.4, n)
        virality = rng.gamma(0.6, 0.8, n) - 0.48  # mean 0, a long tail of viral posts
        uniforms = rng.random((n, UNIFORMS_PER_POST))

        # Near-duplicates: reshares of a recent original's text by another author. The same
        # content keeps the original's topic, media, hashtags and appeal.
        duplicate_of = np.full(n, -1)
        copy = np.flatnonzero(rng.random(n) < self.near_duplicate_share)
        window_start = np.searchsorted(created, created[copy] - window_s)
        tries = window_start[:, None] + (rng.random((len(copy), 3)) * (copy - window_start)[:, None]).astype(int)
        tries = np.where(author[tries] != author[copy][:, None], tries, -1)  # another author's post
        pick = np.where(tries >= 0, virality[np.maximum(tries, 0)], -np.inf).argmax(axis=1)  # the most viral
        source = tries[np.arange(len(copy)), pick]
        keep = (source >= 0) & (source < copy)
        copy, source = copy[keep], source[keep]
        is_copy = np.zeros(n, dtype=bool)
        is_copy[copy] = True
        keep = ~is_copy[source]  # originals only: no copies of copies
        copy, source = copy[keep], source[keep]
        duplicate_of[copy] = source
        topic[copy], media[copy] = topic[source], media[source]
        quality[copy], virality[copy] = quality[source], virality[source]

        text = np.array([compose(TOPIC_NAMES[k], row) for k, row in zip(topic, uniforms, strict=True)], dtype=object)
        # No two originals read exactly alike: accidental repeats are redrawn (templates still
        # make some posts similar, as people's posts are; the planted reshares are the copies).
        original = duplicate_of < 0
        for _ in range(100):
            repeated = np.flatnonzero(original & pd.Series(text).duplicated().to_numpy())
            if len(repeated) == 0:
                break
            draws = rng.random((len(repeated), UNIFORMS_PER_POST))
            text[repeated] = [compose(TOPIC_NAMES[topic[i]], row) for i, row in zip(repeated, draws, strict=True)]
        text[copy] = [reshare(text[s], u) for s, u in zip(source, rng.random(len(copy)), strict=True)]

        n_tags = draw_rows(rng, np.broadcast_to(HASHTAG_COUNT_SHARE, (n, len(HASHTAG_COUNT_SHARE))))
        tag_draws, generic = rng.random((n, 3)), rng.random((n, 3)) < 0.1
        hashtags = []
        for k, count, draw, is_generic in zip(topic, n_tags, tag_draws, generic, strict=True):
            vocabulary = TOPICS[TOPIC_NAMES[k]].hashtags
            chosen = [
                "#" + (GENERIC_HASHTAGS[int(u * len(GENERIC_HASHTAGS))] if g else vocabulary[int(u * len(vocabulary))])
                for u, g in zip(draw[:count], is_generic[:count], strict=True)
            ]
            hashtags.append(list(dict.fromkeys(chosen)))
        for c, s in zip(copy, source, strict=True):
            hashtags[c] = list(hashtags[s])

        posts = {
            "post_author": author,
            "post_created_s": created,
            "post_topic": topic,
            "post_media": media,
            "post_quality": quality,
            "post_virality": virality,
            "post_duplicate_of": duplicate_of,
        }
        return posts, text, hashtags

    # ---- the oracle ----------------------------------------------------------------------
    def reaction_probabilities(
        self,
        user_ids: np.ndarray,
        post_ids: np.ndarray,
        at: pd.Timestamp | np.ndarray,
        slot: int | np.ndarray = 0,
        device: str | np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """{"click", "like", "comment", "share", "hide", "skip": P(...), "dwell": expected dwell
        seconds} if the post is shown to the user at time `at` (a timestamp, timestamps, or
        per-pair seconds since the epoch) in `slot` (0: the top, no position discount), on
        `device` ("mobile" | "desktop"; by default the one the user would be on at that hour,
        as in the logs). A post not yet created at `at` gets 0 for every reaction and 0 dwell."""
        users = np.asarray(user_ids, dtype=np.int64)
        posts = np.asarray(post_ids, dtype=np.int64)
        at_s = np.broadcast_to(_seconds_since_start(at), users.shape).astype(np.float64)
        slots = np.broadcast_to(np.asarray(slot, dtype=np.int64), users.shape)
        if device is None:
            device_code = self.device_codes(users, at_s)
        else:
            device_code = np.broadcast_to(np.asarray(device) == DEVICES[1], users.shape).astype(np.int64)
        components = self._components(users, posts, at_s, slots, device_code)
        probabilities = self._marginals(components)
        alive = self.truth["post_created_s"][posts] <= at_s
        return {name: np.where(alive, p, 0.0) for name, p in probabilities.items()}

    def passive_users(self) -> np.ndarray:
        """Ids of the passive users (hidden from the tables; for evaluation by segment)."""
        return np.flatnonzero(self.truth["passive"])

    def near_duplicates(self) -> pd.DataFrame:
        """The planted reshares: post_id and the original_post_id whose text it copies."""
        copy = np.flatnonzero(self.truth["post_duplicate_of"] >= 0)
        return pd.DataFrame({"post_id": copy, "original_post_id": self.truth["post_duplicate_of"][copy]})

    def topic_affinity(self, user_ids: np.ndarray, post_ids: np.ndarray) -> np.ndarray:
        """The user's hidden taste for the post's topic, in [0, 1]."""
        return self.truth["taste"][np.asarray(user_ids), self.truth["post_topic"][np.asarray(post_ids)]]

    def _tie_strength(self, users: np.ndarray, authors: np.ndarray, at_s: np.ndarray) -> np.ndarray:
        """The hidden strength of each user's connection to the author at `at_s` (seconds since
        START): 0 without one (or before it was made), weak for a celebrity follow."""
        t = self.truth
        key = users * self.n_users + authors
        at = np.minimum(np.searchsorted(t["edge_key"], key), len(t["edge_key"]) - 1)
        found = (t["edge_key"][at] == key) & (t["edge_created_s"][at] <= at_s)
        return np.where(found, t["edge_strength"][at], 0.0)

    def device_codes(self, users: np.ndarray, at_s: np.ndarray) -> np.ndarray:
        """0 mobile, 1 desktop (DEVICES) of users at `at_s` (seconds since START): fixed for a user within an
        hour, more often a desktop in work hours; the logs' and the online simulator's sessions."""
        hour = np.floor(at_s / 3600).astype(np.int64)
        work = (hour % 24 >= WORK_HOURS[0]) & (hour % 24 < WORK_HOURS[1])
        p_desktop = np.minimum(1.0, self.truth["desktop_share"][users] * np.where(work, 1.6, 0.6))
        return (self._pair_uniform(users, hour, 1) < p_desktop).astype(np.int64)

    def _annoyance(self, users: np.ndarray, authors: np.ndarray) -> np.ndarray:
        return self.annoyance * (self._pair_uniform(users, authors, 2) < self.annoyance_share)

    def _pair_uniform(self, a: np.ndarray, b: np.ndarray, stream: int) -> np.ndarray:
        """A uniform in [0, 1) fixed per (a, b) pair (splitmix64 of the pair): a hidden trait of
        every pair without storing a (users x users) table."""
        x = (np.asarray(a).astype(np.uint64) * _GOLDEN) ^ (np.asarray(b).astype(np.uint64) + self._salt)
        x = x + np.uint64(stream * 0xD1B54A32D192ED03 % 2**64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
        return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)

    def _components(self, users, posts, at_s, slots, device) -> dict[str, np.ndarray]:
        """What the draws need: P(examined), each reaction's P(. | examined), the dwell's log median."""
        t = self.truth
        author, media = t["post_author"][posts], t["post_media"][posts]
        age_hours = np.maximum(at_s - t["post_created_s"][posts], 0) / 3600
        s = (
            self.topic_weight * t["taste"][users, t["post_topic"][posts]]
            + self.tie_weight * self._tie_strength(users, author, at_s)
            + t["post_quality"][posts]
            + t["post_virality"][posts]
            + self.freshness_weight * np.exp2(-age_hours / self.freshness_half_life_hours)
            + MEDIA_DEVICE[media, device]
        )
        passive = self.passive_offset * t["passive"][users]
        components = {"examined": (1.0 + slots) ** -self.position_bias}
        for name, base, weight in zip(REACTIONS[:4], self.reaction_base, self.reaction_weight, strict=True):
            components[name] = expit(base + weight * s + passive)
        components["hide"] = expit(
            self.hide_base - self.hide_weight * s + t["hide_tendency"][users] + self._annoyance(users, author)
        )
        components["log_dwell"] = (
            np.log(self.dwell_median_s) + self.dwell_weight * s + self.video_dwell_bonus * (media == 2)
        )
        return components

    def _marginals(self, c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The reactions' probabilities and the expected dwell, over examined or not."""
        examined = c["examined"]
        probabilities = {name: examined * c[name] for name in REACTIONS}
        # Lognormal closed forms: P(D < x) = Phi((log x - log median) / sigma), E[D] = median * e^(sigma^2 / 2).
        log_skip = np.log(SKIP_SECONDS)
        skip_if_examined = ndtr((log_skip - c["log_dwell"]) / self.dwell_sigma)
        skip_if_not = ndtr((log_skip - np.log(self.glance_s)) / self.glance_sigma)
        probabilities["skip"] = examined * skip_if_examined + (1 - examined) * skip_if_not
        dwell_if_examined = np.exp(c["log_dwell"] + self.dwell_sigma**2 / 2)
        dwell_if_not = self.glance_s * np.exp(self.glance_sigma**2 / 2)
        probabilities["dwell"] = examined * dwell_if_examined + (1 - examined) * dwell_if_not
        return probabilities

    # ---- the logs ------------------------------------------------------------------------
    def generate(self) -> NewsfeedTables:
        impressions, oracle = self._simulate(np.random.default_rng([self.seed, 1]))
        return NewsfeedTables(self._users_table(), self._connections_table(), self._posts_table(), impressions, oracle)

    def _simulate(self, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Day by day: the day's sessions, in rounds (each user's first session of the day, then
        their second...) so that a round can be served at once and still never repeat a post;
        the day's engagement feeds the next day's popular posts."""
        t = self.truth
        n_posts = len(t["post_author"])
        window_s = round(self.feed_window_days * DAY_S)
        engagement = np.zeros(n_posts)
        seen = np.empty(0, dtype=np.int64)  # sorted user * n_posts + post keys
        days, n_sessions = [], 0
        for day in range(self.n_days):
            day_start = day * DAY_S
            lo, hi = np.searchsorted(t["post_created_s"], [day_start - window_s, day_start + DAY_S])
            seen = seen[seen % n_posts >= lo]  # older posts are never candidates again
            graph = t["edge_created_s"] < day_start
            edge_key = t["edge_key"][graph]
            followers = np.bincount(edge_key % self.n_users, minlength=self.n_users)
            follows = sp.csr_matrix(
                (np.ones(len(edge_key), np.float32), (edge_key // self.n_users, edge_key % self.n_users)),
                shape=(self.n_users, self.n_users),
            )
            authored = sp.csr_matrix(
                (np.ones(hi - lo, np.float32), (t["post_author"][lo:hi], np.arange(hi - lo))),
                shape=(self.n_users, hi - lo),
            )
            before = np.searchsorted(t["post_created_s"], day_start)
            recent = np.arange(lo, before)
            # Popular: engaging so far, or by an author with a large audience (day 0 has no engagement yet).
            score = np.log1p(engagement[recent]) + 0.5 * np.log1p(followers[t["post_author"][recent]])
            pool = recent[np.argsort(-score, kind="stable")[: self.popular_pool]]

            users, seconds, rounds = self.sessions(rng, day)
            session_ids = n_sessions + np.arange(len(users))
            n_sessions += len(users)
            served = []
            for r in range(rounds.max(initial=-1) + 1):
                in_round = np.flatnonzero(rounds == r)
                shown = self._serve(
                    rng, users[in_round], seconds[in_round], follows, authored, lo, pool, edge_key, seen
                )
                row, post, slot = shown
                user = users[in_round][row]
                outcome = self.respond(rng, user, post, seconds[in_round][row], slot)
                served.append({"session_id": session_ids[in_round][row], "user_id": user, "post_id": post, **outcome})
                new = np.sort(user * n_posts + post)  # none seen before
                seen = np.insert(seen, np.searchsorted(seen, new), new)
            if not served:
                continue
            day_logs = {key: np.concatenate([s[key] for s in served]) for key in served[0]}
            order = np.lexsort((day_logs["slot"], day_logs["session_id"]))
            day_logs = {key: value[order] for key, value in day_logs.items()}
            days.append(day_logs)
            engaged = sum(day_logs[name] for name in REACTIONS[:4])
            engagement += np.bincount(day_logs["post_id"], weights=engaged, minlength=n_posts)
            log.info("day %d: %d sessions, %d impressions", day, len(users), len(day_logs["post_id"]))

        return impression_tables({key: np.concatenate([d[key] for d in days]) for key in days[0]})

    def sessions(
        self, rng: np.random.Generator, day: int, visit_scale: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Day `day`'s feed opens (days count from START: the logs' days, then the online simulator's) in
        time order: who (signed up before the day, by visit rate, times `visit_scale`), when (seconds since
        START) and which of the user's sessions that day it is (0, 1, ...)."""
        t = self.truth
        day_start = day * DAY_S
        rate = np.where(t["signup_s"] < day_start, t["visit_rate"] * visit_scale, 0.0)
        counts = np.minimum(rng.poisson(rate), MAX_SESSIONS_PER_DAY)
        users = np.repeat(np.arange(self.n_users), counts)
        hour = rng.choice(24, len(users), p=HOUR_WEIGHTS)
        seconds = day_start + hour * 3600 + rng.integers(0, 3600, len(users))
        by_user = np.lexsort((seconds, users))
        rounds = np.empty(len(users), dtype=np.int64)
        rounds[by_user] = np.arange(len(users)) - np.searchsorted(users[by_user], users[by_user])
        order = np.lexsort((users, seconds))
        return users[order], seconds[order], rounds[order]

    def _serve(self, rng, users, seconds, follows, authored, lo, pool, edge_key, seen):
        """The logging policy for sessions of distinct users: (session row, post, slot) of the
        posts shown, slot 0 first."""
        t = self.truth
        n_posts = len(t["post_author"])
        window_s = self.feed_window_days * DAY_S
        # In the graph: the followed authors' posts from the window before the session.
        network = (follows[users] @ authored).tocoo()
        row, post = network.row.astype(np.int64), network.col.astype(np.int64) + lo
        # Outside it: draws from the popular pool, not the user's own nor a followed author's.
        draws = 3 * self.popular_per_feed
        if len(pool):
            out_row = np.repeat(np.arange(len(users)), draws)
            out_post = pool[rng.integers(0, len(pool), len(out_row))]
            author = t["post_author"][out_post]
            followed = _in_sorted(users[out_row] * self.n_users + author, edge_key)
            keep = (author != users[out_row]) & ~followed
            unique = np.unique(out_row[keep] * n_posts + out_post[keep])
            out_row, out_post = unique // n_posts, unique % n_posts
        else:
            out_row = out_post = np.empty(0, dtype=np.int64)
        outside = np.r_[np.zeros(len(row), bool), np.ones(len(out_row), bool)]
        row, post = np.r_[row, out_row], np.r_[post, out_post]
        age = seconds[row] - t["post_created_s"][post]
        keep = (age > 0) & (age <= window_s) & ~_in_sorted(users[row] * n_posts + post, seen)
        row, post, outside = row[keep], post[keep], outside[keep]
        # Chronological-ish: newest first, with noise.
        score = -(seconds[row] - t["post_created_s"][post]) / DAY_S + rng.normal(0, self.policy_noise_days, len(row))

        # The best popular_per_feed outside posts (more if the graph has too few), the rest from the graph.
        order = np.lexsort((-score, outside, row))
        row, post, outside, score = row[order], post[order], outside[order], score[order]
        group = row * 2 + outside
        rank = np.arange(len(group)) - np.searchsorted(group, group)
        n_in = np.bincount(row[~outside], minlength=len(users))
        n_out = np.bincount(row[outside], minlength=len(users))
        take_out = np.minimum(n_out, np.maximum(self.popular_per_feed, self.slots - n_in))
        take_in = np.minimum(n_in, self.slots - take_out)
        keep = rank < np.where(outside, take_out[row], take_in[row])
        row, post, score = row[keep], post[keep], score[keep]
        order = np.lexsort((-score, row))
        row, post = row[order], post[order]
        slot = np.arange(len(row)) - np.searchsorted(row, row)
        return row, post, slot

    def respond(self, rng, users, posts, seconds, slots) -> dict[str, np.ndarray]:
        """Users' reactions to impressions (arrays of their user, post, seconds since START and 0-based slot),
        drawn from the model on the device the user is on then, with the probabilities they were drawn from
        (p_click ... p_skip, p_dwell the expected dwell): the logs' and the online simulator's."""
        n = len(users)
        at_s = np.asarray(seconds).astype(np.float64)
        device = self.device_codes(users, at_s)
        c = self._components(users, posts, at_s, slots, device)
        examined = rng.random(n) < c["examined"]
        outcome = {"seconds": seconds, "slot": slots, "device": device}
        for name in REACTIONS:
            outcome[name] = (examined & (rng.random(n) < c[name])).astype(np.int8)
        outcome["dwell_s"] = np.where(
            examined,
            np.exp(c["log_dwell"] + self.dwell_sigma * rng.standard_normal(n)),
            self.glance_s * np.exp(self.glance_sigma * rng.standard_normal(n)),
        )
        outcome.update({f"p_{name}": p for name, p in self._marginals(c).items()})
        return outcome

    # ---- tables --------------------------------------------------------------------------
    def _users_table(self) -> pd.DataFrame:
        t = self.truth
        return pd.DataFrame(
            {
                "user_id": np.arange(self.n_users, dtype=np.int64),
                "age": t["age"],
                "gender": np.asarray(GENDERS, dtype=object)[t["gender"]],
                "country": np.asarray(COUNTRIES, dtype=object)[t["country"]],
                "signup_timestamp": START + pd.to_timedelta(t["signup_s"], "s"),
            }
        )

    def _connections_table(self) -> pd.DataFrame:
        t = self.truth
        order = np.lexsort((t["edge_key"], t["edge_created_s"]))
        return pd.DataFrame(
            {
                "follower_id": t["edge_key"][order] // self.n_users,
                "followee_id": t["edge_key"][order] % self.n_users,
                "connection_type": np.where(t["edge_friend"][order], "friend", "follow").astype(object),
                "created_timestamp": START + pd.to_timedelta(t["edge_created_s"][order], "s"),
            }
        )

    def _posts_table(self, first: int = 0) -> pd.DataFrame:
        """The posts from post id `first` on."""
        t = self.truth
        return pd.DataFrame(
            {
                "post_id": np.arange(first, len(t["post_author"]), dtype=np.int64),
                "author_id": t["post_author"][first:].astype(np.int64),
                "created_timestamp": START + pd.to_timedelta(t["post_created_s"][first:], "s"),
                "topic": np.asarray(TOPIC_NAMES, dtype=object)[t["post_topic"][first:]],
                "text": self._post_text[first:],
                "hashtags": self._post_hashtags[first:],
                "media_type": np.asarray(MEDIA_TYPES, dtype=object)[t["post_media"][first:]],
            }
        )


def impression_tables(logs: dict[str, np.ndarray], first_id: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Impressions (their session_id, user_id, post_id and `NewsfeedWorld.respond`'s columns) as the logs'
    impressions table and its oracle table, numbered from `first_id`."""
    n = len(logs["post_id"])
    ids = first_id + np.arange(n, dtype=np.int64)
    impressions = pd.DataFrame(
        {
            "impression_id": ids,
            "user_id": logs["user_id"].astype(np.int64),
            "post_id": logs["post_id"].astype(np.int64),
            "event_timestamp": START + pd.to_timedelta(logs["seconds"], "s"),
            "session_id": logs["session_id"].astype(np.int64),
            "slot": logs["slot"].astype(np.int8),
            "device": np.asarray(DEVICES, dtype=object)[logs["device"]],
            **{name: logs[name] for name in REACTIONS},
            "dwell_s": logs["dwell_s"],
            "skip": (logs["dwell_s"] < SKIP_SECONDS).astype(np.int8),
        }
    )
    oracle = pd.DataFrame(
        {
            "impression_id": ids,
            **{f"p_{name}": logs[f"p_{name}"] for name in (*REACTIONS, "skip")},
            "expected_dwell_s": logs["p_dwell"],
        }
    )
    return impressions, oracle


def _in_sorted(values: np.ndarray, sorted_array: np.ndarray) -> np.ndarray:
    """Whether each value is in a sorted array (np.isin hashes both: far slower here)."""
    if len(sorted_array) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_array, values), len(sorted_array) - 1)
    return sorted_array[at] == values


def _seconds_since_start(at) -> np.ndarray | float:
    """Seconds since START of a timestamp, timestamps, or numbers of seconds since the epoch."""
    if isinstance(at, pd.Timestamp | str):
        at = pd.Timestamp(at)
        return ((at.tz_localize("UTC") if at.tzinfo is None else at) - START).total_seconds()
    if isinstance(at, pd.Series | pd.Index) or np.asarray(at).dtype.kind == "M":
        index = pd.DatetimeIndex(at)
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
        return (index.asi8 - START.value) / 1e9
    return np.asarray(at, dtype=np.float64) - START.timestamp()
