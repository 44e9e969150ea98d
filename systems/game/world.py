"""The game world: a seeded generative model of Steam users, games and reviews whose truth we
know (the oracle), written in the schema of the public "Game Recommendations on Steam" files.

    python -c "from systems.game.world import GameWorld; print(GameWorld().generate().recommendations.head())"

Games carry tags from a Steam-like vocabulary grouped into genres, a release date (more games
every year, some released during the time axis), a price, platforms and a hidden quality.
The affinity of a user for a game is
    tag part:    user taste (a mixture over genres, plus a twist) . game tag vector (mean of its tags)
  + hidden part: user personal vector . game own vector    (only the interaction history reveals it)
A user reviews the games they choose to play (as many as their activity asks for; Gumbel top-k
without replacement over the whole axis) with weight
    popularity (long-tailed, higher for better games) * exp(choice_affinity * affinity)
    * (1 + price)^-(the user's price sensitivity) * freshness over the axis,
never a game off the user's hidden platform (Windows; Mac; Linux, native or through Proton
when the game runs on the Steam Deck). The review's date follows freshness: a release draws
attention for its first weeks, an old game a steady trickle. Given a played game:
    P(is_recommended) = sigmoid(recommend_base + recommend_affinity * affinity + recommend_quality * quality)
    log(hours) ~ Normal(log(hours_median) + game length (from its tags) + hours_affinity * affinity, hours_sigma)
independently given (user, game). helpful / funny votes are skewed counts.

The label is `positive_label` (recommended and played past two hours). The oracle is kept
apart from the tables:
  positive_probability(users, games)   P(label | the user plays the game): the ceiling of a
                                       ranker scoring observed reviews (AUC ~0.77)
  relevance(users, games, as_of)       P(the user plays it when recommended at as_of, and the
                                       label is positive) = sigmoid(offer_base + log choice
                                       weight with freshness at as_of) * positive_probability
  top_relevant(users, k, as_of)        the best k unseen games per user by relevance
After the logs (the online simulator, systems/game/online.py): `requests` draws a day's homepage
visits (players by their activity), `respond` plays each recommended game with P(play | recommended
now), the offer term of relevance, and `review` (the logs' own) writes what a played game gets.
Observable: tags, descriptions, release dates, prices, platforms, the snapshot's ratings and
the review history. Hidden: the personal / own vectors, quality (seen through positive_ratio),
the user's platform and price sensitivity (both inferable from history).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr, ndtri

from systems.game.steam import GameTables, conform, steam_rating

START = pd.Timestamp("2023-01-01", tz="UTC")
FIRST_RELEASE = pd.Timestamp("2006-01-01", tz="UTC")
DAY_S = 86_400
POSITIVE_MIN_HOURS = 2.0  # Steam's refund window: a player past it has kept the game
MAX_HOURS = 999.9  # the public file's hours never exceed this

# Genres and their tags, the head tag first (the most common one of the genre).
GENRE_TAGS = {
    "action": ["Action", "Shooter", "FPS", "Third Person", "Hack and Slash", "Fighting", "Bullet Hell", "Stealth"],
    "adventure": ["Adventure", "Story Rich", "Exploration", "Point & Click", "Mystery", "Walking Simulator"],
    "rpg": ["RPG", "Action RPG", "Open World", "Fantasy", "JRPG", "Loot", "Dungeon Crawler", "Party-Based RPG"],
    "strategy": ["Strategy", "Turn-Based Strategy", "RTS", "Tactical", "Grand Strategy", "4X", "Tower Defense"],
    "simulation": ["Simulation", "Management", "City Builder", "Building", "Economy", "Farming Sim", "Automation"],
    "survival": ["Survival", "Crafting", "Sandbox", "Open World Survival Craft", "Zombies", "Post-apocalyptic"],
    "horror": ["Horror", "Psychological Horror", "Survival Horror", "Dark", "Gore", "Thriller"],
    "casual": ["Casual", "Puzzle", "Relaxing", "Cute", "Family Friendly", "Hidden Object", "Match 3"],
    "platformer": ["Platformer", "Pixel Graphics", "Metroidvania", "2D Platformer", "Retro", "Precision Platformer"],
    "roguelike": ["Roguelike", "Roguelite", "Deckbuilding", "Card Game", "Procedural Generation", "Replay Value"],
    "multiplayer": ["Multiplayer", "PvP", "Online Co-Op", "Massively Multiplayer", "Competitive", "Battle Royale"],
    "anime": ["Anime", "Visual Novel", "Female Protagonist", "Dating Sim", "Romance", "Choices Matter"],
    "racing_sports": ["Racing", "Sports", "Driving", "Physics", "Automobile Sim", "Football"],
    "scifi": ["Sci-fi", "Space", "Cyberpunk", "Space Sim", "Futuristic", "Mechs"],
}
GENRES = list(GENRE_TAGS)
GENRE_SHARE = np.array([18, 12, 9, 8, 10, 5, 5, 12, 6, 4, 3, 4, 2, 2], float)
# Tags across genres: (tag, share of games carrying it).
GENERIC_TAGS = [
    ("Indie", 0.55),
    ("Singleplayer", 0.6),
    ("Great Soundtrack", 0.15),
    ("Funny", 0.1),
    ("Co-op", 0.12),
    ("First-Person", 0.12),
    ("Top-Down", 0.08),
    ("Early Access", 0.08),
]
DIMENSION_TAGS = [("2D", 0.3), ("3D", 0.3)]  # at most one of them
FREE_TAG = "Free to Play"
TAGS = (
    [tag for tags in GENRE_TAGS.values() for tag in tags] + [t for t, _ in GENERIC_TAGS + DIMENSION_TAGS] + [FREE_TAG]
)
# Log-hours effect of a tag: long-lived online and management games are played for longer.
TAG_LENGTH = {
    "Massively Multiplayer": 1.2,
    "Battle Royale": 1.0,
    "Competitive": 0.6,
    "PvP": 0.5,
    "Grand Strategy": 0.8,
    "4X": 0.7,
    "Automation": 0.6,
    "Open World": 0.5,
    "RPG": 0.4,
    "Survival": 0.4,
    "Sandbox": 0.5,
    "City Builder": 0.4,
    "Free to Play": 0.3,
    "Casual": -0.5,
    "Puzzle": -0.4,
    "Hidden Object": -0.6,
    "Point & Click": -0.4,
    "Visual Novel": -0.3,
    "Walking Simulator": -0.9,
    "Psychological Horror": -0.4,
}
PRICES = np.array([0.99, 1.99, 2.99, 4.99, 7.99, 9.99, 14.99, 19.99, 24.99, 29.99, 39.99, 59.99, 69.99])
PRICE_SHARE = np.array([8, 8, 7, 16, 8, 16, 13, 9, 5, 5, 2, 2, 1], float)
DISCOUNTS = np.array([10, 15, 20, 25, 30, 33, 40, 50, 60, 66, 70, 75, 80, 85, 90], float)
PLATFORMS = ["windows", "mac", "linux"]  # a user's (hidden) platform

_ADJECTIVES = (
    "Crimson Silent Broken Eternal Hollow Iron Lost Forgotten Neon Shattered Savage Frozen Burning Hidden Last "
    "Dark Golden Wild Ancient Rusty Starlit Cursed Tiny Infinite Sunken Pale Rogue Mighty Quiet Stellar Wandering "
    "Fallen Electric Velvet Grim Lucky Feral Hyper Arcane Crystal"
).split()
_NOUNS = (
    "Frontier Kingdom Dungeon Empire Horizon Legends Tactics Odyssey Chronicles Outpost Harbor Citadel Protocol "
    "Drift Garden Colony Voyage Realm Circuit Station Descent Forge Siege Tides Wasteland Arena Manor Island "
    "Express Rift Saga Depths Skies Reactor Village Labyrinth Engine Requiem Paradox Knights"
).split()
_PLACES = (
    "Arcadia Valoria Eldmoor Nexus Kharos Zephyr Orion Aether Mirewood Solace Ironvale Duskfall Avalon Nova "
    "Cinder Umbra Thule Azura Boreal Veridia"
).split()
_SEQUELS = ["", " II", " III", " IV", " V", " VI", " VII", " VIII", " IX", " X"]
GENRE_PITCH = {
    "action": "Fight through relentless waves of enemies with fast, precise combat.",
    "adventure": "Uncover a hand-crafted story full of secrets and memorable characters.",
    "rpg": "Build your party, master your skills and shape the fate of the realm.",
    "strategy": "Outwit rival factions and lead your armies to victory.",
    "simulation": "Plan, build and manage every detail of your growing operation.",
    "survival": "Gather, craft and build to survive a hostile world.",
    "horror": "Face the terror that lurks in the dark, if you dare.",
    "casual": "Relax with charming puzzles you can enjoy in short sessions.",
    "platformer": "Run, jump and dash through challenging hand-drawn levels.",
    "roguelike": "Every run is different: die, learn and try again.",
    "multiplayer": "Team up with friends or compete against players worldwide.",
    "anime": "Meet unforgettable characters in a beautifully illustrated tale.",
    "racing_sports": "Take the wheel and compete for the championship.",
    "scifi": "Explore the stars and the technology of a distant future.",
}


@dataclass
class GameWorld:
    n_users: int = 800
    n_games: int = 400
    n_days: int = 180
    seed: int = 11
    latent_dim: int = 16
    hidden_dim: int = 8
    # Affinity: weights of its observable (tags) and hidden parts.
    tag_weight: float = 3.0
    hidden_weight: float = 0.8
    # Choice of games to play.
    popularity_sigma: float = 1.8
    choice_affinity: float = 1.0
    freshness_floor: float = 0.1  # attention of an old game relative to one just released
    freshness_days: float = 30.0
    offer_base: float = -4.0  # P(play | recommended) = sigmoid(offer_base + choice weight in logs)
    reviews_median: float = 12.0  # reviews per user: lognormal
    reviews_sigma: float = 1.1
    # Outcome of playing; tuned so ~85% of reviews recommend, as on Steam.
    recommend_base: float = 1.1
    recommend_affinity: float = 1.0
    recommend_quality: float = 1.0
    hours_median: float = 8.0
    hours_affinity: float = 0.6
    hours_sigma: float = 1.3
    # After the logs (the online simulator): homepage visits per review of the logs' day. A good list of ten
    # games is played from about once in three visits, so the simulated days keep the logs' reviews a day.
    visits_per_review: float = 3.0
    truth: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self._sample_games(rng)
        self._sample_users(rng)

    @property
    def end(self) -> pd.Timestamp:
        """End of the time axis (exclusive): games.csv is a snapshot taken then."""
        return START + pd.Timedelta(days=self.n_days)

    # ---- entities and their hidden truth -------------------------------------------------
    def _sample_games(self, rng: np.random.Generator) -> None:
        t, n, d = self.truth, self.n_games, self.latent_dim
        # Release day relative to START: exponentially more games in recent years (Steam's
        # growth), some released during the time axis. Games are indexed by release.
        span = (self.end - FIRST_RELEASE).days
        mean_age = 5 * 365.0
        age = -mean_age * np.log1p(-rng.random(n) * (1 - np.exp(-span / mean_age)))  # truncated exponential
        t["release_day"] = np.sort(self.n_days - 1 - np.floor(age))
        gaps = rng.integers(1, 2 * 250_000 // n + 2, n)
        t["app_id"] = 10 * np.cumsum(gaps)  # Steam app ids: multiples of ten, growing with time

        # Tags: a primary genre, often a secondary one, a few tags from them, generic tags.
        n_genres = len(GENRES)
        t["genre"] = rng.choice(n_genres, n, p=GENRE_SHARE / GENRE_SHARE.sum())
        secondary = (t["genre"] + rng.integers(1, n_genres, n)) % n_genres
        has_secondary = rng.random(n) < 0.7
        genre_of_tag = np.concatenate([np.full(len(tags), g) for g, tags in enumerate(GENRE_TAGS.values())])
        rank_in_genre = np.concatenate([np.arange(len(tags)) for tags in GENRE_TAGS.values()])
        n_genre_tags = len(genre_of_tag)
        key = np.where(genre_of_tag == t["genre"][:, None], 4.0, -2.0)
        key = np.where(has_secondary[:, None] & (genre_of_tag == secondary[:, None]), 1.5, key)
        key = key - 0.5 * rank_in_genre + rng.gumbel(size=(n, n_genre_tags))
        n_chosen = 2 + rng.binomial(4, 0.5, n)
        ranks = np.argsort(np.argsort(-key, axis=1), axis=1)
        tag_key = np.where(ranks < n_chosen[:, None], key, -np.inf)

        generic_share = np.array([p for _, p in GENERIC_TAGS])
        generic = rng.random((n, len(GENERIC_TAGS))) < generic_share
        dimension = rng.random(n)
        dimension_tags = np.stack([dimension < 0.3, (dimension >= 0.3) & (dimension < 0.6)], axis=1)
        t["free"] = rng.random(n) < np.where(GENRES.index("multiplayer") == t["genre"], 0.4, 0.06)
        extra = np.concatenate([generic, dimension_tags, t["free"][:, None]], axis=1)
        extra_key = np.where(extra, 1.0 + rng.gumbel(size=extra.shape), -np.inf)
        extra_key[:, -1] = np.where(t["free"], 4.5, -np.inf)  # Free to Play is among the first tags
        t["tag_key"] = np.concatenate([tag_key, extra_key], axis=1)  # (n_games, n_tags): -inf where absent
        present = np.isfinite(t["tag_key"])
        prominence = np.argsort(np.argsort(-t["tag_key"], axis=1), axis=1)  # 0 = first tag

        # Latent space: genres are directions, a tag is its genre plus a twist, a game its tags.
        t["genre_vec"] = rng.normal(0, 1 / np.sqrt(d), (n_genres, d))
        tag_vec = np.concatenate(
            [
                t["genre_vec"][genre_of_tag] + rng.normal(0, 0.5 / np.sqrt(d), (n_genre_tags, d)),
                rng.normal(0, 0.4 / np.sqrt(d), (extra.shape[1], d)),
            ]
        )
        weight = present / np.sqrt(1 + prominence)
        t["game_tag_vec"] = (weight / weight.sum(axis=1, keepdims=True)) @ tag_vec
        t["game_own"] = rng.normal(0, 1, (n, self.hidden_dim))

        length_of_tag = np.array([TAG_LENGTH.get(tag, 0.0) for tag in TAGS])
        t["length"] = np.clip(present @ length_of_tag, -1.2, 1.8) + rng.normal(0, 0.4, n)
        t["quality"] = rng.normal(0, 1.0, n)
        t["log_popularity"] = self.popularity_sigma * rng.normal(0, 1, n) + 0.6 * t["quality"]

        # Price: free games cost nothing; popular games cost more. Discount: a snapshot.
        price_score = (0.8 * t["log_popularity"] / self.popularity_sigma + rng.normal(0, 1, n)) / np.sqrt(
            1.64
        )  # ~N(0, 1)
        cut = ndtri(np.cumsum(PRICE_SHARE)[:-1] / PRICE_SHARE.sum())
        t["price"] = np.where(t["free"], 0.0, PRICES[np.searchsorted(cut, price_score)])
        on_sale = ~t["free"] & (rng.random(n) < 0.2)
        t["discount"] = np.where(on_sale, rng.choice(DISCOUNTS, n), 0.0)

        # Platforms: indie / 2D games port to Mac and Linux more often.
        portable = present[:, TAGS.index("Indie")] | present[:, TAGS.index("2D")]
        t["mac"] = rng.random(n) < np.where(portable, 0.3, 0.12)
        t["linux"] = rng.random(n) < np.where(t["mac"], 0.6, 0.04)
        t["win"] = ~t["mac"] | (rng.random(n) < 0.98)
        t["steam_deck"] = rng.random(n) < np.where(t["linux"], 0.97, 0.8)
        t["exposure"] = self._exposure()
        t["log_price"] = np.log1p(t["price"])
        # Who can play it: Windows users, Mac users, Linux users (native or through Proton on the Deck).
        with np.errstate(divide="ignore"):
            on_platform = np.stack([t["win"], t["mac"], t["linux"] | t["steam_deck"]])
            t["log_on_platform"] = np.log(on_platform.astype(np.float32))  # 0 or -inf, exact in float32
        t["title"] = _titles(rng, n)

    def _sample_users(self, rng: np.random.Generator) -> None:
        t, n, d = self.truth, self.n_users, self.latent_dim
        genre_taste = rng.dirichlet(np.full(len(GENRES), 0.3), n)
        t["user_taste"] = genre_taste @ t["genre_vec"] + rng.normal(0, 0.3 / np.sqrt(d), (n, d))
        t["user_personal"] = rng.normal(0, 1, (n, self.hidden_dim))
        t["platform"] = rng.choice(len(PLATFORMS), n, p=[0.92, 0.05, 0.03])
        t["price_sensitivity"] = rng.gamma(2.0, 0.15, n)
        n_reviews = np.round(self.reviews_median * rng.lognormal(0, self.reviews_sigma, n))
        t["n_reviews"] = np.clip(n_reviews, 1, max(1, self.n_games // 4)).astype(np.int64)

    def _exposure(self) -> np.ndarray:
        """Mean freshness of each game over the time axis (0 before its release)."""
        r = self.truth["release_day"]
        a = np.maximum(r, 0.0)
        tau, floor = self.freshness_days, self.freshness_floor
        decaying = tau * (np.exp(-(a - r) / tau) - np.exp(-(self.n_days - r) / tau))
        return (floor * (self.n_days - a) + (1 - floor) * decaying) / self.n_days

    # ---- the oracle ----------------------------------------------------------------------
    def game_index(self, app_ids) -> np.ndarray:
        """Row of each app_id in the truth arrays; unknown ids raise."""
        app_ids = np.asarray(app_ids)
        index = np.searchsorted(self.truth["app_id"], app_ids)
        if (index >= self.n_games).any() or (
            self.truth["app_id"][np.minimum(index, self.n_games - 1)] != app_ids
        ).any():
            raise KeyError("unknown app_id")
        return index

    def positive_probability(self, user_ids, app_ids) -> np.ndarray:
        """P(positive_label | the user plays the game), for (user, game) pairs."""
        u, g = np.asarray(user_ids), self.game_index(app_ids)
        return self._positive_probability(self._affinity_pairs(u, g), g)

    def relevance(self, user_ids, app_ids, as_of=None) -> np.ndarray:
        """P(the user plays the game when it is recommended at `as_of`, and the label is
        positive), for (user, game) pairs. 0 for games not released before `as_of` or not on
        the user's platform. `as_of` defaults to the end of the time axis."""
        u, g = np.asarray(user_ids), self.game_index(app_ids)
        return self._relevance(self._affinity_pairs(u, g), u, g, self._day(as_of))

    def top_relevant(self, user_ids, k: int, as_of=None, exclude: pd.DataFrame | None = None) -> dict[int, np.ndarray]:
        """The k most relevant app_ids per user (best first) among games released before
        `as_of`, leaving out the (user_id, app_id) pairs in `exclude` (e.g. games already
        reviewed). Fewer than k when fewer games qualify."""
        user_ids = np.unique(np.asarray(user_ids))
        day = self._day(as_of)
        if exclude is not None and len(exclude):
            ex_user = exclude["user_id"].to_numpy()
            ex_game = self.game_index(exclude["app_id"].to_numpy())
            order = np.argsort(ex_user, kind="stable")
            ex_user, ex_game = ex_user[order], ex_game[order]
        else:
            ex_user = ex_game = np.empty(0, dtype=np.int64)
        all_games = np.arange(self.n_games)
        top = {}
        for users in np.array_split(user_ids, max(1, len(user_ids) // self._chunk_users())):
            affinity = self._affinity_matrix(users).astype(np.float32)
            scores = self._relevance(affinity, users[:, None], all_games[None, :], day)
            lo, hi = np.searchsorted(ex_user, users[0], "left"), np.searchsorted(ex_user, users[-1], "right")
            rows = np.minimum(np.searchsorted(users, ex_user[lo:hi]), len(users) - 1)
            requested = users[rows] == ex_user[lo:hi]
            scores[rows[requested], ex_game[lo:hi][requested]] = 0.0
            kk = min(k, self.n_games)
            best = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
            best = np.take_along_axis(best, np.argsort(-np.take_along_axis(scores, best, 1), axis=1), 1)
            keep = np.take_along_axis(scores, best, 1) > 0
            for row, user in enumerate(users):
                top[int(user)] = self.truth["app_id"][best[row][keep[row]]]
        return top

    def _chunk_users(self) -> int:
        return max(1, 4_000_000 // self.n_games)  # users per block of the (users, games) matrix

    def _day(self, as_of) -> float:
        if as_of is None:
            return float(self.n_days)
        as_of = pd.Timestamp(as_of)
        as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of
        return (as_of - START) / pd.Timedelta(days=1)

    def _user_factors(self, u: np.ndarray) -> np.ndarray:
        t = self.truth
        return np.concatenate(
            [
                self.tag_weight * t["user_taste"][u],
                (self.hidden_weight / np.sqrt(self.hidden_dim)) * t["user_personal"][u],
            ],
            axis=-1,
        )

    def _game_factors(self, g) -> np.ndarray:
        return np.concatenate([self.truth["game_tag_vec"][g], self.truth["game_own"][g]], axis=-1)

    def _affinity_pairs(self, u: np.ndarray, g: np.ndarray) -> np.ndarray:
        return np.einsum("nd,nd->n", self._user_factors(u), self._game_factors(g))

    def _affinity_matrix(self, u: np.ndarray) -> np.ndarray:
        """(len(u), n_games) affinities."""
        return self._user_factors(u) @ self._game_factors(slice(None)).T

    def _log_choice_weight(self, affinity: np.ndarray, u, g) -> np.ndarray:
        """Log weight of choosing game g, before freshness; -inf off the user's platform.
        Computed in the dtype of `affinity` (float32 for the big blocks of generation)."""
        t, dtype = self.truth, affinity.dtype
        return (
            self.choice_affinity * affinity
            + t["log_popularity"][g].astype(dtype)
            - t["price_sensitivity"][u].astype(dtype) * t["log_price"][g].astype(dtype)
            + t["log_on_platform"][t["platform"][u], g]
        )

    def _recommend_logit(self, affinity: np.ndarray, g) -> np.ndarray:
        base = self.recommend_base + self.recommend_quality * self.truth["quality"][g]
        return self.recommend_affinity * affinity + base.astype(affinity.dtype)

    def _mean_log_hours(self, affinity: np.ndarray, g) -> np.ndarray:
        base = math.log(self.hours_median) + self.truth["length"][g]
        return self.hours_affinity * affinity + base.astype(affinity.dtype)

    def _positive_probability(self, affinity: np.ndarray, g) -> np.ndarray:
        """P(recommended) x P(hours >= POSITIVE_MIN_HOURS once rounded to 0.1 h as published),
        in the dtype of `affinity` like the helpers around it."""
        threshold = math.log(POSITIVE_MIN_HOURS - 0.05)
        p_long_enough = ndtr((self._mean_log_hours(affinity, g) - threshold) / self.hours_sigma)
        return expit(self._recommend_logit(affinity, g)) * p_long_enough

    def _play_probability(self, affinity: np.ndarray, u, g, day: float) -> np.ndarray:
        """P(the user plays the game when it is recommended on `day`) = sigmoid(offer_base + log choice weight
        with freshness on that day); 0 before its release and off the user's platform."""
        age = day - self.truth["release_day"][g]
        freshness = self.freshness_floor + (1 - self.freshness_floor) * np.exp(
            -np.maximum(age, 0) / self.freshness_days
        )
        logit = self._log_choice_weight(affinity, u, g) + (self.offer_base + np.log(freshness)).astype(affinity.dtype)
        return np.where(age > 0, expit(logit), 0.0)

    def _relevance(self, affinity: np.ndarray, u, g, day: float) -> np.ndarray:
        return self._play_probability(affinity, u, g, day) * self._positive_probability(affinity, g)

    # ---- the tables ----------------------------------------------------------------------
    def generate(self) -> GameTables:
        rng = np.random.default_rng(self.seed + 1)
        user, game = self._choose_games(rng)
        recommendations = self._review(rng, user, game)
        return conform(
            GameTables(
                self._games_table(rng, recommendations),
                self._users_table(rng, recommendations),
                recommendations,
                self._metadata_table(),
            )
        )

    def _choose_games(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Each user's played games: Gumbel top-k over choice weight x exposure, by blocks of users."""
        t = self.truth
        log_exposure = np.log(t["exposure"]).astype(np.float32)
        users, games = [], []
        all_games = np.arange(self.n_games)
        for block in np.array_split(np.arange(self.n_users), max(1, self.n_users // self._chunk_users())):
            affinity = self._affinity_matrix(block).astype(np.float32)
            key = self._log_choice_weight(affinity, block[:, None], all_games[None, :]) + log_exposure
            # + Gumbel noise, as -log of a standard exponential (kept off 0: a key of +inf is no choice)
            key -= np.log(np.maximum(rng.standard_exponential(key.shape, dtype=np.float32), 1e-30))
            n_pick = t["n_reviews"][block]
            k = int(n_pick.max())
            best = np.argpartition(key, self.n_games - k, axis=1)[:, self.n_games - k :]
            best_key = np.take_along_axis(key, best, 1)
            order = np.argsort(-best_key, axis=1)
            best, best_key = np.take_along_axis(best, order, 1), np.take_along_axis(best_key, order, 1)
            chosen = (np.arange(k)[None, :] < n_pick[:, None]) & np.isfinite(best_key)
            users.append(np.broadcast_to(block[:, None], best.shape)[chosen])
            games.append(best[chosen])
        return np.concatenate(users), np.concatenate(games)

    def _review(self, rng: np.random.Generator, u: np.ndarray, g: np.ndarray) -> pd.DataFrame:
        day = self._review_day(rng, g)
        review = self.review(rng, u, g)
        frame = pd.DataFrame(
            {
                "app_id": self.truth["app_id"][g],
                "helpful": review["helpful"],
                "funny": review["funny"],
                "date": START + pd.to_timedelta(day, unit="D"),
                "is_recommended": review["is_recommended"],
                "hours": review["hours"],
                "user_id": u,
            }
        )
        frame = frame.sort_values(["date", "user_id", "app_id"], kind="stable").reset_index(drop=True)
        frame["review_id"] = np.arange(len(frame))
        return frame

    def review(self, rng: np.random.Generator, u: np.ndarray, g: np.ndarray) -> dict[str, np.ndarray]:
        """What users write about games they played (arrays of user and game rows): recommended or not,
        hours played, helpful and funny votes; the logs' reviews and the online simulator's."""
        affinity = self._affinity_pairs(u, g)
        recommended = rng.random(len(u)) < expit(self._recommend_logit(affinity, g))
        hours = np.exp(self._mean_log_hours(affinity, g) + self.hours_sigma * rng.normal(size=len(u)))
        hours = np.clip(np.round(hours, 1), 0.0, MAX_HOURS)
        # Votes: skewed counts, more on popular games and on negative reviews.
        reach = np.exp(0.35 * self.truth["log_popularity"][g])
        helpful = _skewed_counts(rng, 1.5 * reach * np.where(recommended, 1.0, 2.5), shape=0.15)
        funny = _skewed_counts(rng, 0.3 * reach * np.where(recommended, 1.0, 3.0), shape=0.08)
        return {"helpful": helpful, "funny": funny, "is_recommended": recommended, "hours": hours}

    # ---- after the logs: the online simulator's users ------------------------------------
    @property
    def requests_per_day(self) -> int:
        """Homepage visits a day: `visits_per_review` for each of the logs' reviews a day (the users' activity)."""
        return max(1, round(self.visits_per_review * int(self.truth["n_reviews"].sum()) / self.n_days))

    def requests(self, rng: np.random.Generator, day: int, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Day `day`'s homepage visits (days count from START: the logs' days, then the online simulator's), in
        time order: who (users by their activity, the reviews they write over the axis) and when (seconds since
        START, through the day: the public reviews carry dates only); `n` of them, requests_per_day by default."""
        n = self.requests_per_day if n is None else n
        activity = self.truth["n_reviews"].astype(float)
        users = rng.choice(self.n_users, n, p=activity / activity.sum())
        seconds = day * DAY_S + rng.integers(0, DAY_S, n)
        order = np.argsort(seconds, kind="stable")
        return users[order], seconds[order]

    def respond(
        self, rng: np.random.Generator, user_ids, app_ids, seconds, played: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Users' answers to recommended games (arrays of user, app_id and seconds since START): each is played
        with P(play | recommended now) (none of those in `played`, the pairs already played: a game is reviewed
        once), and a played game is reviewed as in the logs (`review`). With the truth each was drawn from:
        p_play and p_positive, P(positive_label | played); unplayed rows review nothing (zeros)."""
        u, g = np.asarray(user_ids), self.game_index(app_ids)
        affinity = self._affinity_pairs(u, g)
        p_play = self._play_probability(affinity, u, g, np.asarray(seconds) / DAY_S)
        if played is not None:
            p_play = np.where(played, 0.0, p_play)
        did_play = rng.random(len(u)) < p_play
        review = self.review(rng, u[did_play], g[did_play])
        answers = {"played": did_play}
        for name, values in review.items():
            answers[name] = np.zeros(len(u), dtype=values.dtype)
            answers[name][did_play] = values
        return answers | {"p_play": p_play, "p_positive": self._positive_probability(affinity, g)}

    def _review_day(self, rng: np.random.Generator, g: np.ndarray) -> np.ndarray:
        """Day of each review: density ~ freshness(day - release) on [max(release, 0), n_days),
        a mixture of a uniform (the floor) and a truncated exponential (the launch)."""
        r = self.truth["release_day"][g]
        a, b = np.maximum(r, 0.0), float(self.n_days)
        tau, floor = self.freshness_days, self.freshness_floor
        head, tail = np.exp(-(a - r) / tau), np.exp(-(b - r) / tau)
        uniform_mass = floor * (b - a)
        launch_mass = (1 - floor) * tau * (head - tail)
        from_floor = rng.random(len(g)) < uniform_mass / (uniform_mass + launch_mass)
        x = rng.random(len(g))
        launch_day = r - tau * np.log(head - x * (head - tail))
        day = np.where(from_floor, a + x * (b - a), launch_day)
        return np.clip(np.floor(day), a, b - 1).astype(np.int64)

    def _games_table(self, rng: np.random.Generator, recommendations: pd.DataFrame) -> pd.DataFrame:
        """The snapshot at the end of the axis. Our users are a sample of the platform: its
        review count scales theirs up; its positive share is theirs, smoothed toward the
        game's quality for games they barely reviewed."""
        t = self.truth
        g = self.game_index(recommendations["app_id"].to_numpy())
        n_sample = np.bincount(g, minlength=self.n_games)
        n_positive = np.bincount(g, weights=recommendations["is_recommended"].to_numpy(), minlength=self.n_games)
        # Prior: a player with the affinity typical of those who choose a game (about 1).
        prior = expit(self.recommend_base + 1.0 + self.recommend_quality * t["quality"])
        share = (n_positive + 5 * prior) / (n_sample + 5)
        user_reviews = 10 + rng.poisson(10 * n_sample + 1)
        positive_ratio = np.round(100 * rng.binomial(user_reviews, share) / user_reviews).astype(np.int64)
        return pd.DataFrame(
            {
                "app_id": t["app_id"],
                "title": t["title"],
                "date_release": START + pd.to_timedelta(t["release_day"], unit="D"),
                "win": t["win"],
                "mac": t["mac"],
                "linux": t["linux"],
                "rating": steam_rating(positive_ratio, user_reviews),
                "positive_ratio": positive_ratio,
                "user_reviews": user_reviews,
                "price_final": np.round(t["price"] * (1 - t["discount"] / 100), 2),
                "price_original": t["price"],
                "discount": t["discount"],
                "steam_deck": t["steam_deck"],
            }
        )

    def _users_table(self, rng: np.random.Generator, recommendations: pd.DataFrame) -> pd.DataFrame:
        """reviews: the user's rows in recommendations; products: games owned, the reviewed
        ones and more (owned-but-unreviewed games appear in no other table)."""
        reviews = np.bincount(recommendations["user_id"].to_numpy(), minlength=self.n_users)
        extra = rng.negative_binomial(1.0, 1.0 / (1.0 + 3.0 * reviews + 20.0))
        products = np.maximum(np.minimum(reviews + extra, self.n_games), reviews)
        return pd.DataFrame({"user_id": np.arange(self.n_users), "products": products, "reviews": reviews})

    def _metadata_table(self) -> pd.DataFrame:
        t = self.truth
        order = np.argsort(-t["tag_key"], axis=1)
        n_tags = np.isfinite(t["tag_key"]).sum(axis=1)
        names = np.asarray(TAGS, dtype=object)[order]
        first, second = names[:, 0], names[:, 1]
        tags = np.split(names[np.arange(names.shape[1])[None, :] < n_tags[:, None]], np.cumsum(n_tags)[:-1])
        pitch = np.asarray([GENRE_PITCH[genre] for genre in GENRES], dtype=object)[t["genre"]]
        return pd.DataFrame(
            {
                "app_id": t["app_id"],
                "description": pitch + " " + t["title"] + " mixes " + first + " and " + second + ".",
                "tags": [list(row) for row in tags],
            }
        )


def _titles(rng: np.random.Generator, n: int) -> np.ndarray:
    """Invented titles, unique: a repeated one becomes a sequel, in release order."""
    adjective = np.asarray(_ADJECTIVES)[rng.integers(0, len(_ADJECTIVES), n)].astype(object)
    noun = np.asarray(_NOUNS)[rng.integers(0, len(_NOUNS), n)].astype(object)
    place = np.asarray(_PLACES)[rng.integers(0, len(_PLACES), n)].astype(object)
    pattern = rng.choice(4, n, p=[0.4, 0.2, 0.2, 0.2])
    title = np.select(
        [pattern == 0, pattern == 1, pattern == 2],
        [adjective + " " + noun, noun + " of " + place, place + ": " + adjective + " " + noun],
        default=place + " " + noun,
    )
    repeat = pd.Series(title).groupby(title).cumcount().to_numpy()
    sequel = np.asarray(_SEQUELS, dtype=object)[np.minimum(repeat, len(_SEQUELS) - 1)]
    numbered = " " + (repeat + 1).astype(str).astype(object)
    return title + np.where(repeat < len(_SEQUELS), sequel, numbered)


def _skewed_counts(rng: np.random.Generator, mean: np.ndarray, shape: float) -> np.ndarray:
    """Negative binomial counts with the given means: mostly 0, a long tail."""
    return rng.negative_binomial(shape, shape / (shape + mean))


def positive_label(recommendations: pd.DataFrame) -> pd.Series:
    """The chapter's relevance: the user liked the game explicitly, or played "enough" of it.
    Here both: recommended, and played past Steam's two-hour refund window. A thumbs-up after
    twenty minutes is a weak signal; hundreds of hours behind a thumbs-down is a user who
    plays on but would not recommend it, so neither alone is relevance."""
    return recommendations["is_recommended"] & (recommendations["hours"] >= POSITIVE_MIN_HOURS)
