"""The video world: a seeded generative model of users, channels, videos and homepage
impressions whose truth we know: each user's relevance for every video (the oracle).

    python -c "from systems.video.world import VideoWorld; print(VideoWorld().generate().interactions.head())"

Interest of a user in a video (logit scale), a function of the pair only:
  s = affinity_weight * user latent . video latent / sqrt(d)   user latent = age band + gender + country + personal part
                                                               video latent = genre + tags + own part
    + language understanding(user language, video language)    0 for one's own language
    + video quality
Relevance, the oracle, is P(positive | the user starts the video) under the chapter's label
(positive = liked or watched at least half):
  watched >= half  with P = sigmoid((s + watch offset) / watch_noise)   the offset falls with duration
  liked            with P = sigmoid(s + like_base + the user's like habit)
drawn independently given the pair, so relevance = 1 - (1 - P(watched half)) (1 - P(liked)) exactly.
A click on an impression has P = examination(position) * sigmoid(click_base + click_weight * s
+ clickbait(video) + freshness_weight * 2^(-age / half-life)): clicks are biased by position,
clickbait and novelty (fresh videos are more engaging at equal relevance), and
P(positive | impression) = P(click) * relevance.

Tastes can drift after the logs (`drift_per_day`, from day `drift_from_day`: by default the day after the
logs, so the logs are a stable period): each genre's direction in the latent space moves by drift_per_day
per day along a fixed random direction of its own, so which users like which genres changes (as the ads
world's categories do). The interest, relevance and P(click) of a pair then depend on the day; the logs
are the same with or without drift, and so is the oracle's `top_relevant` (the offline evaluation's, within
the logs).

The logging policy (the previous recommender, whose choices are all the logs show) is biased
like real ones: candidates drawn by popularity (a prior from the channel and quality, then
the clicks it earned, decayed daily: the rich get richer), by the user's genres as that
system estimated them, and a few at random; scored by popularity, freshness, a noisy estimate
of affinity and language match plus Gumbel noise; the best n_slots shown in score order.
Only eligible videos are shown: available in the user's country, allowed for the user's age,
in the catalogue (uploaded before the day began: the index is rebuilt daily), not clicked by
the user before.

Observable features carry part of the truth: demographics (their part of the user latent),
genre and tags (their part of the video latent), language, duration, the channel. The
personal and own parts, quality and clickbait only show through interactions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from common.data.arrays import draw_rows, first_in_row

START = pd.Timestamp("2026-02-02", tz="UTC")
DAY_S = 86_400
POSITIVE_WATCH_FRACTION = 0.5  # the chapter's "watched at least half"

COUNTRIES = ["us", "gb", "ca", "au", "in", "de", "fr", "es", "mx", "br", "jp", "kr"]
COUNTRY_SHARE = [0.24, 0.07, 0.04, 0.03, 0.16, 0.07, 0.06, 0.05, 0.06, 0.09, 0.08, 0.05]
LANGUAGES = ["en", "es", "pt", "fr", "de", "hi", "ja", "ko"]
# Users' languages per country.
COUNTRY_LANGUAGES = {
    "us": {"en": 0.88, "es": 0.12},
    "gb": {"en": 1.0},
    "ca": {"en": 0.78, "fr": 0.22},
    "au": {"en": 1.0},
    "in": {"hi": 0.55, "en": 0.45},
    "de": {"de": 0.93, "en": 0.07},
    "fr": {"fr": 0.95, "en": 0.05},
    "es": {"es": 0.95, "en": 0.05},
    "mx": {"es": 0.97, "en": 0.03},
    "br": {"pt": 0.96, "en": 0.04},
    "jp": {"ja": 0.97, "en": 0.03},
    "kr": {"ko": 0.97, "en": 0.03},
}
# Channels' languages: English is over-represented, as on real platforms.
CHANNEL_LANGUAGE_SHARE = [0.42, 0.14, 0.09, 0.06, 0.06, 0.12, 0.07, 0.04]
GENDERS = ["female", "male", "undisclosed"]
GENDER_SHARE = [0.49, 0.49, 0.02]
AGE_EDGES = np.array([10, 13, 18, 25, 35, 45, 55, 80])  # bands [edge, next edge)
AGE_BAND_SHARE = [0.04, 0.10, 0.20, 0.24, 0.18, 0.12, 0.12]
AGE_RATINGS = ["all", "13+", "18+"]
MINIMUM_AGE = np.array([0, 13, 18])  # per AGE_RATINGS: the shape common.reranking.age_allowed takes


@dataclass(frozen=True)
class Genre:
    tags: tuple[str, ...]  # the genre's tag vocabulary (tags may recur across genres)
    nouns: tuple[str, ...]  # title words
    median_duration_s: int
    share: float  # of channels
    rated_13: float  # share of its videos rated 13+
    rated_18: float  # and 18+


GENRES = {
    "music": Genre(
        ("pop", "rock", "hip-hop", "live", "cover", "guitar", "piano", "lyrics"),
        ("session", "mix", "video"),
        240,
        0.12,
        0.05,
        0.01,
    ),
    "gaming": Genre(
        ("minecraft", "fortnite", "speedrun", "walkthrough", "esports", "rpg", "indie", "lets-play"),
        ("gameplay", "run", "stream"),
        900,
        0.11,
        0.15,
        0.04,
    ),
    "comedy": Genre(
        ("sketch", "standup", "prank", "parody", "memes", "improv", "satire", "bloopers"),
        ("special", "compilation", "bit"),
        420,
        0.08,
        0.2,
        0.08,
    ),
    "news": Genre(
        ("politics", "economy", "world", "breaking", "interview", "analysis", "elections", "weather"),
        ("report", "briefing", "update"),
        360,
        0.04,
        0.15,
        0.03,
    ),
    "sports": Genre(
        ("football", "basketball", "tennis", "highlights", "cricket", "f1", "boxing", "running"),
        ("highlights", "recap", "breakdown"),
        480,
        0.06,
        0.03,
        0.01,
    ),
    "education": Genre(
        ("math", "history", "physics", "language-learning", "lecture", "exam-prep", "explainer", "coding"),
        ("lesson", "course", "explained"),
        900,
        0.05,
        0.02,
        0.0,
    ),
    "cooking": Genre(
        ("recipe", "baking", "vegan", "street-food", "bbq", "dessert", "meal-prep", "restaurant"),
        ("recipe", "cook-along", "challenge"),
        600,
        0.05,
        0.02,
        0.0,
    ),
    "travel": Genre(
        ("backpacking", "city-guide", "road-trip", "hiking", "beach", "budget-travel", "vanlife", "drone"),
        ("guide", "vlog", "diary"),
        720,
        0.04,
        0.03,
        0.0,
    ),
    "tech": Genre(
        ("smartphone", "review", "unboxing", "pc-build", "ai", "gadgets", "laptop", "android"),
        ("review", "test", "comparison"),
        660,
        0.05,
        0.02,
        0.0,
    ),
    "beauty": Genre(
        ("makeup", "skincare", "hair", "nails", "fashion", "haul", "grwm", "tutorial"),
        ("routine", "tutorial", "look"),
        540,
        0.05,
        0.05,
        0.01,
    ),
    "fitness": Genre(
        ("workout", "yoga", "hiit", "strength", "pilates", "nutrition", "stretching", "home-workout"),
        ("workout", "routine", "plan"),
        1200,
        0.04,
        0.02,
        0.0,
    ),
    "kids": Genre(
        ("cartoons", "nursery-rhymes", "toys", "learning", "animation", "songs", "crafts", "story-time"),
        ("episode", "song", "adventure"),
        480,
        0.05,
        0.0,
        0.0,
    ),
    "film": Genre(
        ("trailer", "review", "short-film", "behind-the-scenes", "scenes", "reaction", "analysis", "animation"),
        ("trailer", "review", "clip"),
        600,
        0.05,
        0.25,
        0.1,
    ),
    "science": Genre(
        ("space", "biology", "chemistry", "experiments", "nature", "astronomy", "engineering", "explainer"),
        ("explained", "experiment", "documentary"),
        780,
        0.03,
        0.02,
        0.0,
    ),
    "diy": Genre(
        ("woodworking", "home-improvement", "crafts", "repair", "gardening", "3d-printing", "sewing", "tools"),
        ("project", "build", "how-to"),
        840,
        0.04,
        0.02,
        0.0,
    ),
    "pets": Genre(
        ("dogs", "cats", "training", "funny-animals", "aquarium", "birds", "rescue", "vet-tips"),
        ("moments", "guide", "story"),
        360,
        0.03,
        0.01,
        0.0,
    ),
    "autos": Genre(
        ("cars", "motorcycles", "test-drive", "ev", "racing", "restoration", "detailing", "review"),
        ("review", "drive", "build"),
        720,
        0.03,
        0.03,
        0.0,
    ),
    "vlogs": Genre(
        ("daily-vlog", "family", "day-in-the-life", "storytime", "q-and-a", "moving", "routine", "challenge"),
        ("vlog", "day", "update"),
        780,
        0.06,
        0.08,
        0.02,
    ),
    "asmr": Genre(
        ("whispering", "tapping", "sleep", "relaxing", "roleplay", "mukbang", "rain", "ambient"),
        ("asmr", "session", "sounds"),
        1800,
        0.02,
        0.05,
        0.01,
    ),
    "documentary": Genre(
        ("true-crime", "history", "wildlife", "investigation", "biography", "war", "society", "nature"),
        ("documentary", "story", "investigation"),
        2400,
        0.03,
        0.2,
        0.08,
    ),
}
GENRE_NAMES = list(GENRES)
TAG_NAMES = sorted({tag for genre in GENRES.values() for tag in genre.tags})
TITLE_OPENERS = ["best", "ultimate", "my first", "top 10", "how to", "live", "epic", "easy", "honest", "why"]
TITLE_OPENERS += ["the truth about", "beginner", "advanced", "weekly", "quick", "insane", "relaxing", "new"]

# Share of requests per hour of day: low at night, peaks in the evening.
_HOURLY = np.array([3, 2, 1, 1, 1, 1, 2, 3, 4, 4, 4, 5, 5, 5, 5, 5, 6, 7, 8, 9, 9, 8, 6, 4], float)
HOUR_WEIGHTS = _HOURLY / _HOURLY.sum()

# The logging policy. Its popularity of a video (log scale) = log prior + click feedback
# + freshness boost (a platform promoting new uploads); candidates are drawn from each source
# with weight popularity^SAMPLING_TEMPERATURE, then scored.
# The click feedback is relative to the average video's recent clicks and grows like a square
# root: proportional feedback ran away at default scale (1% of the videos took 90% of the
# impressions, one video a third of all requests), while the rich still get richer.
POLICY_CANDIDATES = {"popular": 32, "personal": 48, "explore": 20}
POLICY_SAMPLING_TEMPERATURE = 0.7
POLICY_CLICK_WEIGHT = 0.5
POLICY_CLICK_SCALE = 5.0  # recent clicks, in multiples of the average video's, that start to count
POLICY_CLICK_DECAY = 0.7  # per day
POLICY_FRESHNESS_BOOST = 1.5
POLICY_POPULARITY_WEIGHT = 0.3  # in the score, on top of popularity-weighted draws
POLICY_AFFINITY_WEIGHT = 1.0
POLICY_LANGUAGE_BONUS = 3.0
POLICY_GENRE_TEMPERATURE = 2.0  # how sharply the user's estimated genre tastes pick genres
POLICY_CHUNK = 2048  # requests scored at once: bounds the (requests, candidates, d) gather
ORACLE_CELLS = 1 << 24  # (users x videos) relevance cells per chunk of top_relevant: ~64 MB in float32


def _language_understanding() -> np.ndarray:
    """(user language, video language) -> interest shift: none for one's own language, some
    for English (widely understood, most of all in India), a lot for the others."""
    shift = np.full((len(LANGUAGES), len(LANGUAGES)), -2.5)
    en, es, pt = (LANGUAGES.index(code) for code in ("en", "es", "pt"))
    shift[:, en] = -1.0
    shift[LANGUAGES.index("hi"), en] = -0.3
    shift[es, pt] = shift[pt, es] = -1.5  # partly mutually intelligible
    np.fill_diagonal(shift, 0.0)
    return shift


def _country_language_share() -> np.ndarray:
    """(countries, languages) share of each country's users speaking each language."""
    share = np.zeros((len(COUNTRIES), len(LANGUAGES)))
    for c, country in enumerate(COUNTRIES):
        for language, p in COUNTRY_LANGUAGES[country].items():
            share[c, LANGUAGES.index(language)] = p
    return share


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _sigmoid_(x: np.ndarray) -> np.ndarray:
    """In-place sigmoid, for the large oracle matrices."""
    np.negative(x, out=x)
    np.exp(x, out=x)
    x += 1.0
    return np.reciprocal(x, out=x)


def seconds_since_start(timestamp: pd.Timestamp) -> float:
    timestamp = pd.Timestamp(timestamp)
    if timestamp.tzinfo is None:
        timestamp = timestamp.tz_localize("UTC")
    return (timestamp - START).total_seconds()


def positive_label(interactions: pd.DataFrame) -> np.ndarray:
    """The chapter's label: positive if the user liked the video or watched at least half of it."""
    return ((interactions["liked"] == 1) | (interactions["watch_fraction"] >= POSITIVE_WATCH_FRACTION)).to_numpy()


@dataclass(frozen=True)
class VideoTables:
    """Raw tables, shaped like a video platform's logs. `oracle` is kept apart on purpose:
    it is the world's truth and must never reach the features."""

    users: pd.DataFrame
    videos: pd.DataFrame
    interactions: pd.DataFrame  # one row per impression
    oracle: pd.DataFrame  # interaction_id, relevance, p_click, p_positive


@dataclass
class VideoWorld:
    n_users: int = 2000
    n_videos: int = 3000
    n_days: int = 14
    requests_per_day: int = 600
    n_slots: int = 8
    seed: int = 11
    latent_dim: int = 16
    new_video_share: float = 0.25  # uploaded during the time axis: freshness, item cold start
    new_user_share: float = 0.1  # sign up during the time axis: user cold start
    # Engagement model (logit scale); tuned so CTR is ~5-10% and about 40% of clicks are positive.
    affinity_weight: float = 1.0
    click_base: float = -3.0
    click_weight: float = 0.8
    freshness_weight: float = 0.8
    freshness_half_life_days: float = 3.0
    watch_base: float = -1.6
    watch_duration_weight: float = 0.4  # per log of duration over 5 minutes: long videos are watched less far
    watch_noise: float = 1.3
    like_base: float = -3.8
    share_base: float = -5.5
    examination: tuple[float, ...] = (1.0, 0.8, 0.68, 0.6, 0.54, 0.5, 0.46, 0.43)
    # Tastes shift from day `drift_from_day` on (None: the day after the logs, n_days): each genre's latent
    # direction moves by `drift_per_day` per day (days count from START). 0: a stable world.
    drift_per_day: float = 0.0
    drift_from_day: int | None = None
    truth: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if len(self.examination) != self.n_slots:
            raise ValueError(f"examination has {len(self.examination)} positions for {self.n_slots} slots")
        self._sample_truth(np.random.default_rng(self.seed))
        # Its own stream: a world with drift has the same users, videos and logs as one without.
        self.truth["genre_drift"] = np.random.default_rng([self.seed, 1]).normal(0, 1, (len(GENRES), self.latent_dim))
        if self.drift_from_day is None:
            self.drift_from_day = self.n_days

    # ---- entities and their hidden truth -------------------------------------------------
    def _sample_truth(self, rng: np.random.Generator) -> None:
        d, t = self.latent_dim, self.truth
        n_genres = len(GENRES)
        # Demographics and genres live in one latent space, so "genre x demographic" crosses
        # exist and are learnable from features.
        band_vec = rng.normal(0, 0.5, (len(AGE_BAND_SHARE), d))
        gender_vec = rng.normal(0, 0.3, (len(GENDERS), d))
        country_vec = rng.normal(0, 0.3, (len(COUNTRIES), d))
        genre_vec = rng.normal(0, 0.8, (n_genres, d))
        tag_vec = rng.normal(0, 0.5, (len(TAG_NAMES), d))

        # Users.
        n = self.n_users
        band = rng.choice(len(AGE_BAND_SHARE), n, p=AGE_BAND_SHARE)
        t["age"] = rng.integers(AGE_EDGES[band], AGE_EDGES[band + 1])
        t["gender"] = rng.choice(len(GENDERS), n, p=GENDER_SHARE)
        t["country"] = rng.choice(len(COUNTRIES), n, p=COUNTRY_SHARE)
        t["language"] = draw_rows(rng, _country_language_share()[t["country"]])
        joins_late = rng.random(n) < self.new_user_share
        t["signup_s"] = np.where(
            joins_late, rng.uniform(0, 0.9 * self.n_days * DAY_S, n), -rng.exponential(400 * DAY_S, n) - 3600
        ).astype(np.int64)
        t["activity"] = rng.lognormal(0, 1.0, n)
        t["like_habit"] = rng.normal(0, 0.5, n)
        demographic = band_vec[band] + gender_vec[t["gender"]] + country_vec[t["country"]]
        personal = rng.normal(0, 0.7, (n, d))  # only history reveals it
        t["user_latent"] = demographic + personal
        # What the previous recommender knew of a user: demographics, half of the personal
        # taste, and its own errors.
        policy_user = demographic + 0.5 * personal + rng.normal(0, 0.5, (n, d))
        t["policy_user_latent"] = policy_user.astype(np.float32)
        genre_logit = POLICY_GENRE_TEMPERATURE * policy_user @ genre_vec.T / np.sqrt(d)
        genre_p = np.exp(genre_logit - genre_logit.max(axis=1, keepdims=True))
        t["policy_genre_cdf"] = (genre_p / genre_p.sum(axis=1, keepdims=True)).cumsum(axis=1).astype(np.float32)

        # Channels: a genre, a language, a heavy-tailed audience, a quality and a clickbait habit.
        n_channels = max(10, self.n_videos // 25)
        genre_share = np.array([g.share for g in GENRES.values()])
        genre_share /= genre_share.sum()
        channel_genre = rng.choice(n_genres, n_channels, p=genre_share)
        channel_language = rng.choice(len(LANGUAGES), n_channels, p=CHANNEL_LANGUAGE_SHARE)
        channel_audience = rng.pareto(1.6, n_channels) + 1.0
        channel_quality = rng.normal(0, 0.35, n_channels)
        channel_clickbait = rng.normal(0, 0.3, n_channels)
        channel_output = rng.lognormal(0, 1.0, n_channels)

        # Videos.
        v = self.n_videos
        t["video_channel"] = rng.choice(n_channels, v, p=channel_output / channel_output.sum())
        genre = np.where(
            rng.random(v) < 0.85, channel_genre[t["video_channel"]], rng.choice(n_genres, v, p=genre_share)
        )
        t["video_genre"] = genre
        t["video_language"] = np.where(
            rng.random(v) < 0.95,
            channel_language[t["video_channel"]],
            rng.choice(len(LANGUAGES), v, p=CHANNEL_LANGUAGE_SHARE),
        )
        # 2 to 4 distinct tags from the genre's vocabulary; -1 pads.
        genre_tag_ids = np.array([[TAG_NAMES.index(tag) for tag in g.tags] for g in GENRES.values()])
        slots = np.argsort(rng.random((v, genre_tag_ids.shape[1])), axis=1)[:, :4]
        n_tags = rng.integers(2, 5, v)
        t["video_tags"] = np.where(np.arange(4) < n_tags[:, None], genre_tag_ids[genre[:, None], slots], -1)
        tag_part = (
            np.where((t["video_tags"] >= 0)[..., None], tag_vec[t["video_tags"]], 0).sum(axis=1) / n_tags[:, None]
        )
        t["video_latent"] = genre_vec[genre] + tag_part + rng.normal(0, 0.5, (v, d))
        median_duration = np.array([g.median_duration_s for g in GENRES.values()])[genre]
        t["video_duration_s"] = np.clip(median_duration * rng.lognormal(0, 0.7, v), 15, 4 * 3600).round().astype(int)
        rated_13 = np.array([g.rated_13 for g in GENRES.values()])[genre]
        rated_18 = np.array([g.rated_18 for g in GENRES.values()])[genre]
        draw = rng.random(v)
        t["video_rating"] = np.where(draw < rated_18, 2, np.where(draw < rated_18 + rated_13, 1, 0))
        # Most videos are available everywhere; some only in a few countries, always
        # including those that speak their language.
        speaks = _country_language_share().T >= 0.2  # (languages, countries)
        restricted = rng.random(v) < 0.12
        available = (rng.random((v, len(COUNTRIES))) < 0.3) | speaks[t["video_language"]]
        available[~restricted] = True
        t["video_available"] = available
        uploaded_late = rng.random(v) < self.new_video_share
        t["upload_s"] = np.where(
            uploaded_late, rng.uniform(0, self.n_days * DAY_S, v), -rng.exponential(365 * DAY_S, v) - 60
        ).astype(np.int64)
        t["video_quality"] = channel_quality[t["video_channel"]] + rng.normal(0, 0.4, v)
        t["video_clickbait"] = channel_clickbait[t["video_channel"]] + rng.normal(0, 0.25, v)
        t["prior_popularity"] = (
            channel_audience[t["video_channel"]] * np.exp(t["video_quality"]) * rng.lognormal(0, 0.8, v)
        )
        t["title_opener"] = rng.integers(0, len(TITLE_OPENERS), v)
        t["title_noun"] = rng.integers(0, 3, v)

        # The interest s as one inner product: [weighted latent, language row, 1] . [latent, language one-hot, quality].
        t["user_vector"] = np.hstack(
            [
                self.affinity_weight * t["user_latent"] / np.sqrt(d),
                _language_understanding()[t["language"]],
                np.ones((n, 1)),
            ]
        )
        t["video_vector"] = np.hstack(
            [t["video_latent"], np.eye(len(LANGUAGES))[t["video_language"]], t["video_quality"][:, None]]
        )
        t["watch_offset"] = self.watch_base - self.watch_duration_weight * np.log(t["video_duration_s"] / 300)
        # Eligibility by age: which ratings each user may see.
        t["age_allowed"] = MINIMUM_AGE[None, :] <= t["age"][:, None]  # (users, ratings)

    # ---- the oracle ----------------------------------------------------------------------
    def interest(self, user_ids: np.ndarray, video_ids: np.ndarray, day: np.ndarray | int | None = None) -> np.ndarray:
        """The interest logit s of (user, video) pairs on `day` (days since START; None: the logs' tastes)."""
        t = self.truth
        s = np.einsum("nd,nd->n", t["user_vector"][user_ids], t["video_vector"][video_ids])
        return s + self.taste_drift(user_ids, video_ids, day)

    def taste_drift(self, user_ids: np.ndarray, video_ids: np.ndarray, day: np.ndarray | int | None) -> np.ndarray:
        """How much the interest of the pairs moved by `day`: the video's latent vector shifted by
        max(day - drift_from_day, 0) x drift_per_day along its genre's drift direction; 0 within the logs."""
        if not self.drift_per_day or day is None:
            return np.zeros(len(np.atleast_1d(user_ids)))
        t, d = self.truth, self.latent_dim
        shift = np.maximum(np.asarray(day) - self.drift_from_day, 0) * self.drift_per_day
        direction = t["genre_drift"][t["video_genre"][video_ids]]
        # user_vector's first d columns are affinity_weight * user latent / sqrt(d): the latent part of s.
        moved = np.einsum("nd,nd->n", t["user_vector"][user_ids][:, :d], direction)
        return np.broadcast_to(shift, moved.shape) * moved

    def relevance(self, user_ids: np.ndarray, video_ids: np.ndarray, day: np.ndarray | int | None = None) -> np.ndarray:
        """The true relevance of (user, video) pairs: P(positive | the user starts the video),
        positive being liked or watched at least half, on `day` (tastes drift after the logs).
        Free of the time of day: freshness moves clicks only."""
        user_ids, video_ids = np.asarray(user_ids), np.asarray(video_ids)
        t = self.truth
        s = self.interest(user_ids, video_ids, day)
        not_watched = _sigmoid(-(s + t["watch_offset"][video_ids]) / self.watch_noise)
        not_liked = _sigmoid(-(s + self.like_base + t["like_habit"][user_ids]))
        return 1.0 - not_watched * not_liked

    def click_probability(
        self,
        user_ids: np.ndarray,
        video_ids: np.ndarray,
        position: np.ndarray,
        video_age_days: np.ndarray,
        day: np.ndarray | int | None = None,
    ) -> np.ndarray:
        """The true P(click) of impressions at 1-based `position` of videos `video_age_days` old, on `day`."""
        user_ids, video_ids = np.asarray(user_ids), np.asarray(video_ids)
        s = self.interest(user_ids, video_ids, day)
        return self._click_probability(s, video_ids, np.asarray(position), np.asarray(video_age_days, float))

    def _click_probability(self, s, video_ids, position, age_days) -> np.ndarray:
        examined = np.asarray(self.examination)[position - 1]
        novelty = np.exp2(-np.maximum(age_days, 0) / self.freshness_half_life_days)
        logit = (
            self.click_base
            + self.click_weight * s
            + self.truth["video_clickbait"][video_ids]
            + self.freshness_weight * novelty
        )
        return examined * _sigmoid(logit)

    def eligible(self, user_ids: np.ndarray, video_ids: np.ndarray, at: pd.Timestamp | None = None) -> np.ndarray:
        """Whether each (user, video) pair may be shown: available in the user's country,
        allowed for the user's age and, when `at` is given, uploaded before it."""
        t = self.truth
        user_ids, video_ids = np.asarray(user_ids), np.asarray(video_ids)
        ok = (
            t["video_available"][video_ids, t["country"][user_ids]]
            & t["age_allowed"][user_ids, t["video_rating"][video_ids]]
        )
        if at is not None:
            ok &= t["upload_s"][video_ids] < seconds_since_start(at)
        return ok

    def top_relevant(self, user_ids: np.ndarray, k: int, as_of: pd.Timestamp | None = None) -> dict[int, np.ndarray]:
        """Each user's k truly most relevant videos, best first, among those eligible for them
        (available in their country, allowed for their age, uploaded before `as_of` if given;
        the whole catalogue otherwise). Fewer than k when fewer are eligible. Users are scored
        in chunks of ORACLE_CELLS cells, never as one (users x videos) matrix."""
        t = self.truth
        user_ids = np.unique(np.asarray(user_ids, dtype=np.int64))
        uploaded = None if as_of is None else t["upload_s"] < seconds_since_start(as_of)
        user_vector = t["user_vector"].astype(np.float32)
        video_vector_t = np.ascontiguousarray(t["video_vector"].T, dtype=np.float32)
        watch_offset = t["watch_offset"].astype(np.float32)
        available = np.ascontiguousarray(t["video_available"].T)  # (countries, videos)
        kk = min(k, self.n_videos)
        top: dict[int, np.ndarray] = {}
        chunk = max(1, ORACLE_CELLS // self.n_videos)
        for lo in range(0, len(user_ids), chunk):
            users = user_ids[lo : lo + chunk]
            score = self._relevance_matrix(users, user_vector, video_vector_t, watch_offset)  # (B, n_videos)
            eligible = available[t["country"][users]] & t["age_allowed"][users][:, t["video_rating"]]
            if uploaded is not None:
                eligible &= uploaded
            score[~eligible] = -1.0  # relevance is a probability: ineligible sorts last
            best = _top_k_per_row(score, kk)
            best_score = np.take_along_axis(score, best, axis=1)
            for row, user in enumerate(users):
                top[int(user)] = best[row][best_score[row] >= 0]
        return top

    def _relevance_matrix(self, users, user_vector, video_vector_t, watch_offset) -> np.ndarray:
        """(len(users), n_videos) float32 relevance, computed in place to bound memory."""
        s = user_vector[users] @ video_vector_t
        not_watched = s + watch_offset
        not_watched *= -1.0 / self.watch_noise
        _sigmoid_(not_watched)
        s += (self.like_base + self.truth["like_habit"][users]).astype(np.float32)[:, None]
        s *= -1.0
        not_liked = _sigmoid_(s)
        not_liked *= not_watched
        np.subtract(1.0, not_liked, out=not_liked)
        return not_liked

    # ---- the logs ------------------------------------------------------------------------
    def generate(self) -> VideoTables:
        rng = np.random.default_rng(self.seed + 1)
        interactions, oracle = self._simulate(rng)
        return VideoTables(self._users_table(), self._videos_table(), interactions, oracle)

    def _simulate(self, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Day by day: the policy serves the day's requests from the catalogue as of the day's
        start, users respond, and the day's clicks feed the next day's popularity and seen-filter."""
        t = self.truth
        by_genre = np.argsort(t["video_genre"], kind="stable")
        genre_end = np.cumsum(np.bincount(t["video_genre"], minlength=len(GENRES)))
        genre_start = genre_end - np.bincount(t["video_genre"], minlength=len(GENRES))
        recent_clicks = np.zeros(self.n_videos)
        seen = np.empty(0, dtype=np.int64)  # sorted user * n_videos + video keys of clicked pairs
        days: list[dict[str, np.ndarray]] = []
        n_requests = 0
        for day in range(self.n_days):
            day_start = day * DAY_S
            in_catalogue = t["upload_s"] < day_start
            age_days = (day_start - t["upload_s"]) / DAY_S
            # Clicks relative to the average video's, so the feedback is as strong at any traffic.
            typical_clicks = POLICY_CLICK_SCALE * max(recent_clicks[in_catalogue].mean(), 1e-9)
            log_weight = (
                np.log(t["prior_popularity"])
                + POLICY_CLICK_WEIGHT * np.log1p(recent_clicks / typical_clicks)
                + POLICY_FRESHNESS_BOOST * np.exp2(-np.maximum(age_days, 0) / self.freshness_half_life_days)
            )
            weight = np.where(in_catalogue, np.exp(POLICY_SAMPLING_TEMPERATURE * log_weight), 0.0)
            users, seconds = self.requests(rng, day)
            shown = self._serve(rng, users, log_weight, weight, in_catalogue, (by_genre, genre_start, genre_end), seen)
            request, slot = np.nonzero(shown >= 0)  # row-major: by request (time order), then position
            user, video = users[request], shown[request, slot]
            outcome = self.respond(rng, user, video, slot + 1, seconds[request])
            days.append({"request_id": request + n_requests, "user_id": user, "video_id": video, **outcome})
            n_requests += len(users)
            clicked = outcome["clicked"].astype(bool)
            recent_clicks = POLICY_CLICK_DECAY * recent_clicks + np.bincount(video[clicked], minlength=self.n_videos)
            seen = np.union1d(seen, user[clicked].astype(np.int64) * self.n_videos + video[clicked])

        return interaction_tables({key: np.concatenate([d[key] for d in days]) for key in days[0]})

    def requests(self, rng: np.random.Generator, day: int, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Day `day`'s homepage loads (days count from START: the logs' days, then the online simulator's), in
        time order: who (active users who signed up before the day, by activity) and when (seconds since
        START); `n` of them, the world's requests_per_day by default."""
        t = self.truth
        n = self.requests_per_day if n is None else n
        day_start = day * DAY_S
        weight = np.where(t["signup_s"] < day_start, t["activity"], 0.0)
        users = rng.choice(self.n_users, n, p=weight / weight.sum())
        hour = rng.choice(24, n, p=HOUR_WEIGHTS)
        seconds = day_start + hour * 3600 + rng.integers(0, 3600, n)
        order = np.argsort(seconds, kind="stable")
        return users[order], seconds[order]

    def _serve(self, rng, users, log_weight, weight, in_catalogue, genre_index, seen) -> np.ndarray:
        """The logging policy: (requests, n_slots) video ids in slot order, -1 where fewer
        eligible candidates were found than slots."""
        t = self.truth
        by_genre, genre_start, genre_end = genre_index
        shown = np.full((len(users), self.n_slots), -1)
        catalogue = np.flatnonzero(in_catalogue)
        if len(catalogue) == 0:
            return shown
        cumulative = np.cumsum(weight)
        genre_cumulative = np.cumsum(weight[by_genre])
        padded = np.concatenate([[0.0], genre_cumulative])
        genre_lo, genre_hi = padded[genre_start], padded[genre_end]
        video_latent = t["video_latent"].astype(np.float32)
        last = self.n_videos - 1
        for lo in range(0, len(users), POLICY_CHUNK):
            u = users[lo : lo + POLICY_CHUNK]
            b = len(u)
            # Candidate sources: popularity, the user's genres (weighted by popularity within
            # the genre; an empty genre falls through to the next one), exploration.
            popular = np.searchsorted(
                cumulative, rng.random((b, POLICY_CANDIDATES["popular"])) * cumulative[-1], "right"
            )
            genre = (t["policy_genre_cdf"][u][:, None, :] < rng.random((b, POLICY_CANDIDATES["personal"], 1))).sum(-1)
            genre = np.minimum(genre, len(GENRES) - 1)
            target = genre_lo[genre] + rng.random(genre.shape) * (genre_hi[genre] - genre_lo[genre])
            personal = by_genre[np.minimum(np.searchsorted(genre_cumulative, target, "right"), last)]
            explore = catalogue[rng.integers(0, len(catalogue), (b, POLICY_CANDIDATES["explore"]))]
            candidates = np.hstack([np.minimum(popular, last), personal, explore])  # (b, c)

            affinity = np.einsum("bd,bcd->bc", t["policy_user_latent"][u], video_latent[candidates])
            score = (
                POLICY_POPULARITY_WEIGHT * log_weight[candidates]
                + POLICY_AFFINITY_WEIGHT * affinity / np.sqrt(self.latent_dim)
                + POLICY_LANGUAGE_BONUS * (t["video_language"][candidates] == t["language"][u][:, None])
                + rng.gumbel(size=candidates.shape)
            )
            keys = u[:, None].astype(np.int64) * self.n_videos + candidates
            at = np.minimum(np.searchsorted(seen, keys), max(len(seen) - 1, 0))
            already_clicked = (seen[at] == keys) if len(seen) else np.zeros(keys.shape, dtype=bool)
            valid = (
                in_catalogue[candidates]
                & t["video_available"][candidates, t["country"][u][:, None]]
                & t["age_allowed"][u[:, None], t["video_rating"][candidates]]
                & ~already_clicked
                & first_in_row(candidates)
            )
            score = np.where(valid, score, -np.inf)
            best = np.argpartition(-score, self.n_slots - 1, axis=1)[:, : self.n_slots]
            best = np.take_along_axis(best, np.argsort(-np.take_along_axis(score, best, 1), axis=1), 1)
            shown[lo : lo + b] = np.where(
                np.isfinite(np.take_along_axis(score, best, 1)), np.take_along_axis(candidates, best, 1), -1
            )
        return shown

    def respond(self, rng, user, video, position, seconds) -> dict[str, np.ndarray]:
        """Users' responses to impressions (arrays of their user, video, 1-based position and seconds since
        START), drawn from the engagement model, with the truth each was drawn from (relevance, p_click):
        the logs' and the online simulator's."""
        t = self.truth
        day = np.asarray(seconds) // DAY_S
        s = self.interest(user, video, day)
        p_click = self._click_probability(s, video, position, (seconds - t["upload_s"][video]) / DAY_S)
        clicked = rng.random(len(s)) < p_click
        # Watch fraction: sigmoid of the watch logit plus logistic noise, so that
        # P(watched >= half) = sigmoid(logit / watch_noise) exactly (see relevance()).
        watch_logit = s + t["watch_offset"][video] + self.watch_noise * rng.logistic(size=len(s))
        liked = clicked & (rng.random(len(s)) < _sigmoid(s + self.like_base + t["like_habit"][user]))
        shared = clicked & (rng.random(len(s)) < _sigmoid(s + self.share_base + t["like_habit"][user]))
        return {
            "seconds": seconds,
            "position": position,
            "clicked": clicked.astype(np.int8),
            "watch_fraction": np.where(clicked, _sigmoid(watch_logit), 0.0).astype(np.float32),
            "liked": liked.astype(np.int8),
            "shared": shared.astype(np.int8),
            "relevance": self.relevance(user, video, day),
            "p_click": p_click,
        }

    def _users_table(self) -> pd.DataFrame:
        t = self.truth
        return pd.DataFrame(
            {
                "user_id": np.arange(self.n_users),
                "age": t["age"],
                "gender": np.asarray(GENDERS)[t["gender"]],
                "country": np.asarray(COUNTRIES)[t["country"]],
                "language": np.asarray(LANGUAGES)[t["language"]],
                "signup_timestamp": START + pd.to_timedelta(t["signup_s"], "s"),
            }
        )

    def _videos_table(self) -> pd.DataFrame:
        t = self.truth
        tags = [[TAG_NAMES[i] for i in row if i >= 0] for row in t["video_tags"]]
        nouns = [GENRES[g].nouns for g in GENRE_NAMES]
        titles = [
            f"{TITLE_OPENERS[opener]} {row[0].replace('-', ' ')} {nouns[genre][noun]}".capitalize() + f" #{row[1]}"
            for opener, noun, genre, row in zip(t["title_opener"], t["title_noun"], t["video_genre"], tags, strict=True)
        ]
        everywhere = t["video_available"].all(axis=1)
        country_names = np.asarray(COUNTRIES)
        return pd.DataFrame(
            {
                "video_id": np.arange(self.n_videos),
                "channel_id": t["video_channel"],
                "title": titles,
                "genre": np.asarray(GENRE_NAMES)[t["video_genre"]],
                "language": np.asarray(LANGUAGES)[t["video_language"]],
                "tags": tags,
                "duration_s": t["video_duration_s"],
                "age_rating": np.asarray(AGE_RATINGS)[t["video_rating"]],
                # Empty means everywhere: the convention of common.reranking.region_allowed.
                "available_regions": [
                    [] if all_countries else list(country_names[row])
                    for all_countries, row in zip(everywhere, t["video_available"], strict=True)
                ],
                "upload_timestamp": START + pd.to_timedelta(t["upload_s"], "s"),
            }
        )


def interaction_tables(logs: dict[str, np.ndarray], first_id: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Impressions (their request_id, user_id, video_id and `VideoWorld.respond`'s columns) as the logs'
    interactions table and its oracle table, numbered from `first_id`."""
    n = len(logs["user_id"])
    ids = first_id + np.arange(n)
    interactions = pd.DataFrame(
        {
            "interaction_id": ids,
            "request_id": logs["request_id"],
            "event_timestamp": START + pd.to_timedelta(logs["seconds"], "s"),
            "user_id": logs["user_id"],
            "video_id": logs["video_id"],
            "position": logs["position"].astype(np.int8),
            "clicked": logs["clicked"],
            "watch_fraction": logs["watch_fraction"],
            "liked": logs["liked"],
            "shared": logs["shared"],
        }
    )
    oracle = pd.DataFrame(
        {
            "interaction_id": ids,
            "relevance": logs["relevance"],
            "p_click": logs["p_click"],
            "p_positive": logs["p_click"] * logs["relevance"],
        }
    )
    return interactions, oracle


def _top_k_per_row(score: np.ndarray, k: int, stride: int = 8) -> np.ndarray:
    """(rows, k) column indices of each row's k largest scores, largest first (ties by column).
    Exact, and several times faster than argpartition on rows of 100k: the k-th largest of every
    `stride`-th column bounds the row's k-th largest from below, so only the few columns at or
    above that bound can be in the top k."""
    n_rows, n_cols = score.shape
    if k > n_cols // stride:
        return np.argsort(-score, axis=1, kind="stable")[:, :k]
    bound = np.partition(score[:, ::stride], -k, axis=1)[:, -k]
    rows, cols = np.nonzero(score >= bound[:, None])  # at least k per row
    order = np.lexsort((-score[rows, cols], rows))
    rows, cols = rows[order], cols[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    return cols[rank < k].reshape(n_rows, k)
