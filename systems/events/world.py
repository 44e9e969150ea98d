"""The events world: a seeded generative model of users, their friendships, events, in-app
impressions and registrations whose truth we know (the oracle), written as the tables of the
Kaggle "Event Recommendation Engine Challenge" (systems/events/kaggle.py).

    python -c "from systems.events.world import EventsWorld as W; print(W(600, 20, 30, 100).generate().train.head())"

Geography: 45 real cities in six countries (approximate real coordinates and UTC offsets). A
user lives around a city (drawn by the platform's share of the country and the city's
population); users.csv shows it Kaggle-style ("Medan  Indonesia", "Philadelphia  Pennsylvania":
city, two spaces, state or province in the United States and Canada, the country elsewhere), or
only the country (3%), or nothing (10%). Events happen a few km around a city, written with the
same city names, so a location string geocodes through the events' mean lat/lng per city.

Users carry hidden tastes: a preference over the 12 TOPICS (Dirichlet, tilted by age and
gender), a budget (higher with age), an activity level, a liking for evenings and a travel
tolerance (km). Friendships are symmetric: drawn mostly within the city, among similar ages,
then closed into triangles; some users have none. Hosts (a heavy-tailed minority; each with a
hidden popularity) create `events_per_day` events a day, from `warmup_days` before START so the
first day has an inventory: mostly in their own city, on 1-2 topics of their own taste, starting
1-30 days later at an hour typical of the topic, free or priced by topic. The description is
word counts over 100 stems drawn from the topics' word distributions (c_1 the most common stem).

Registration truth, for user u shown event e at time t (logit scale):
    bias + user activity + hidden user propensity
  + topic_weight * (u's topic preference . e's topic mixture)
  - distance_weight * log1p(km from u's home to e / u's travel tolerance)
    - unknown_location_penalty when e shows no location
  + price fit: free_bonus when free, else -price_weight * softplus(log(price / u's budget))
  + lead_weight * time-until-start effect (very close and very far are both worse)
  + time_of_day_weight * (evening event and u likes evenings, or daytime and u does not)
  + weekend_bonus, length_weight per hour over 3, host popularity, event quality (hidden)
  + friends_weight * log1p(friends of u registered for e before t)
  + invited_weight * (u was invited to e before t)
P = sigmoid(logit) while e is open (created, not started), 0 otherwise: `register_probability`.

Logs. Each day `sessions_per_day` sessions (users by activity, at local hours that follow their
liking for evenings) each show up to `events_per_session` open events chosen by a biased logging
policy: candidates nearby (the profile's city, else the country) and soon, popular in the
country, random (mostly in the country), and registered by friends (popularity and friends'
registrations refreshed daily), scored by same city, soonness, popularity, friends, invitation
and Gumbel noise; never an event shown to the user before or one they registered for, nor one
starting within the hour. Shown rows are train.csv: interested ~ Bernoulli(P), not_interested
for some of the rest. Registrations also come from other channels with the same truth: the host is registered at
creation and invites friends; registrants sometimes invite friends and their friends see some
registrations (shares). So attendee lists outgrow train's interested rows and friends-going
counts grow over time. event_attendees.csv: yes = registered, maybe = near misses, invited =
every invitee, no = some who dismissed the event or declined an invitation.

Time runs in slots of `slot_minutes`. A registration drawn in a slot completes after the slot's
end, so everything an exposure in a slot depends on (friends registered, invitations, before
its time) was drawn in earlier slots: the probability the world draws with equals the oracle's
afterwards, exactly (`impression_probability_`, aligned with train's rows). Times are whole
milliseconds; ids are random int64 like Kaggle's, not row numbers.

The online simulator (systems/events/online.py) goes on after the logs with the same draws: its
users open the app through `sessions`, and answer the events shown through `respond`, as the
logs' slots do; `complete_registrations` records its registrations (the organic channels stop
with the logs).

Observable, as in the real files: demographics, location strings, time zones, the events' place,
start, price, length and words, friendships, attendee lists (without times) and the logs.
Hidden (in `truth`): topic tastes and mixtures (seen through words and history), budgets,
tolerances, evening liking, host popularity, event quality, homes' exact coordinates, when an
event was created, and when each registration and invitation happened (`registrations()`,
`invitations()`: for tests, never for features).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit

from common.data.arrays import draw_rows, first_in_row, first_occurrence
from systems.events.kaggle import EVENTS_EXTRA, EVENTS_SCHEMA, RESPONSES, TIMESTAMP, WORD_COLUMNS, KaggleTables

START = pd.Timestamp("2026-03-02", tz="UTC")  # a Monday
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
NEVER = np.iinfo(np.int64).max  # the time of something that did not happen
EARTH_RADIUS_KM = 6371.0
KM_PER_DEGREE = 111.2


@dataclass(frozen=True)
class City:
    name: str
    region: str  # state or province in the United States and Canada; "" elsewhere
    country: str
    lat: float
    lng: float
    population: float  # millions (metro, roughly): the city's share within its country
    utc_offset_minutes: int
    zip: str = ""  # written on some of the city's events (United States only)

    @property
    def location(self) -> str:
        """The city as users.csv writes it."""
        return f"{self.name}  {self.region or self.country}"


US, ID, CA, GB, IN, BR = "United States", "Indonesia", "Canada", "United Kingdom", "India", "Brazil"
# Listed country by country: a country is a contiguous block of city indices.
CITIES = [
    City("New York", "New York", US, 40.713, -74.006, 19.0, -300, "10001"),
    City("Newark", "New Jersey", US, 40.736, -74.172, 1.5, -300, "07102"),
    City("Philadelphia", "Pennsylvania", US, 39.953, -75.165, 6.0, -300, "19104"),
    City("Boston", "Massachusetts", US, 42.360, -71.059, 4.5, -300, "02108"),
    City("Cambridge", "Massachusetts", US, 42.373, -71.110, 1.0, -300, "02139"),
    City("Chicago", "Illinois", US, 41.878, -87.630, 9.5, -360, "60601"),
    City("Houston", "Texas", US, 29.760, -95.370, 7.0, -360, "77002"),
    City("Atlanta", "Georgia", US, 33.749, -84.388, 6.0, -300, "30303"),
    City("Denver", "Colorado", US, 39.739, -104.990, 2.9, -420, "80202"),
    City("Phoenix", "Arizona", US, 33.448, -112.074, 4.9, -420, "85004"),
    City("Los Angeles", "California", US, 34.052, -118.244, 13.0, -480, "90012"),
    City("Pasadena", "California", US, 34.148, -118.144, 1.0, -480, "91101"),
    City("San Francisco", "California", US, 37.775, -122.419, 3.0, -480, "94103"),
    City("Oakland", "California", US, 37.804, -122.271, 1.5, -480, "94612"),
    City("Seattle", "Washington", US, 47.606, -122.332, 4.0, -480, "98101"),
    City("Jakarta", "", ID, -6.208, 106.846, 10.5, 420),
    City("Bekasi", "", ID, -6.238, 106.976, 2.5, 420),
    City("Bandung", "", ID, -6.917, 107.619, 2.5, 420),
    City("Surabaya", "", ID, -7.257, 112.752, 3.0, 420),
    City("Yogyakarta", "", ID, -7.797, 110.371, 0.9, 420),
    City("Medan", "", ID, 3.595, 98.672, 2.4, 420),
    City("Denpasar", "", ID, -8.650, 115.216, 0.9, 480),
    City("Toronto", "Ontario", CA, 43.653, -79.383, 6.2, -300),
    City("Mississauga", "Ontario", CA, 43.589, -79.644, 0.8, -300),
    City("Stratford", "Ontario", CA, 43.370, -80.982, 0.1, -300),
    City("Ottawa", "Ontario", CA, 45.421, -75.697, 1.4, -300),
    City("Montreal", "Quebec", CA, 45.502, -73.567, 4.3, -300),
    City("Calgary", "Alberta", CA, 51.045, -114.072, 1.5, -420),
    City("Vancouver", "British Columbia", CA, 49.283, -123.121, 2.6, -480),
    City("London", "", GB, 51.507, -0.128, 9.5, 0),
    City("Manchester", "", GB, 53.481, -2.242, 2.8, 0),
    City("Birmingham", "", GB, 52.486, -1.890, 2.6, 0),
    City("Leeds", "", GB, 53.801, -1.549, 1.9, 0),
    City("Glasgow", "", GB, 55.864, -4.252, 1.7, 0),
    City("Edinburgh", "", GB, 55.953, -3.189, 0.9, 0),
    City("Mumbai", "", IN, 19.076, 72.878, 20.0, 330),
    City("Delhi", "", IN, 28.704, 77.102, 30.0, 330),
    City("Bangalore", "", IN, 12.972, 77.595, 12.0, 330),
    City("Chennai", "", IN, 13.083, 80.271, 11.0, 330),
    City("Hyderabad", "", IN, 17.385, 78.487, 10.0, 330),
    City("Pune", "", IN, 18.520, 73.857, 6.5, 330),
    City("São Paulo", "", BR, -23.551, -46.633, 22.0, -180),
    City("Rio de Janeiro", "", BR, -22.907, -43.173, 13.5, -180),
    City("Belo Horizonte", "", BR, -19.917, -43.935, 6.0, -180),
    City("Brasília", "", BR, -15.794, -47.882, 4.7, -180),
    City("Curitiba", "", BR, -25.429, -49.271, 3.7, -180),
]
# The platform's users by country (not the population: the app is big in Indonesia), and
# the Facebook-style locales its users pick there.
COUNTRY_SHARE = {US: 0.34, ID: 0.24, CA: 0.10, GB: 0.10, IN: 0.13, BR: 0.09}
LOCALES = {
    US: {"en_US": 0.93, "es_LA": 0.05, "zh_CN": 0.02},
    ID: {"id_ID": 0.78, "en_US": 0.20, "en_GB": 0.02},
    CA: {"en_US": 0.62, "en_GB": 0.16, "fr_CA": 0.22},
    GB: {"en_GB": 0.86, "en_US": 0.14},
    IN: {"en_US": 0.46, "en_GB": 0.40, "hi_IN": 0.14},
    BR: {"pt_BR": 0.91, "en_US": 0.09},
}
COUNTRIES = list(COUNTRY_SHARE)
CITY_COUNTRY = np.array([COUNTRIES.index(c.country) for c in CITIES])
HOME_SPREAD_KM = 6.0  # users live around the centre
EVENT_SPREAD_KM = 3.0  # events happen closer to it


@dataclass(frozen=True)
class Topic:
    name: str
    free_share: float
    median_price: float  # of the paid events
    evening_share: float  # events starting at 17:00 or later (local)
    length_hours: float  # typical
    age_tilt: float  # preference shift per age standard deviation (positive: older users)
    male_tilt: float
    late: bool = False  # evening events start late (20-23h)


TOPICS = [
    Topic("music", 0.20, 35, 0.85, 3.0, -0.5, 0.0),
    Topic("nightlife", 0.25, 20, 1.00, 5.0, -1.0, 0.1, late=True),
    Topic("sports", 0.45, 15, 0.30, 2.0, -0.2, 0.4),
    Topic("tech", 0.40, 40, 0.50, 3.0, 0.0, 0.4),
    Topic("food", 0.25, 30, 0.70, 2.5, 0.3, -0.1),
    Topic("arts", 0.30, 30, 0.75, 2.5, 0.5, -0.3),
    Topic("family", 0.50, 12, 0.10, 3.0, 0.3, -0.3),
    Topic("outdoors", 0.55, 10, 0.05, 5.0, 0.2, 0.1),
    Topic("education", 0.35, 25, 0.45, 3.0, 0.0, -0.1),
    Topic("community", 0.80, 5, 0.40, 2.0, 0.8, -0.2),
    Topic("film_gaming", 0.30, 15, 0.70, 3.0, -0.6, 0.4),
    Topic("charity", 0.55, 25, 0.50, 3.0, 0.6, -0.2),
]
N_TOPICS = len(TOPICS)
N_STEMS = 100
N_COMMON_STEMS = 20  # shared by every topic ("event", "join", ...); the other 80 are topical
WORDS_IN_TOP_STEMS = 0.4  # share of a description's words among the 100 stems; the rest is c_other


def _weights(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values / values.sum()


# Local hour profiles: when users open the app (by their liking for evenings) and when events start.
SESSION_HOURS_DAY = _weights([1, 1, 1, 1, 1, 2, 4, 6, 8, 8, 8, 9, 10, 9, 8, 8, 8, 7, 6, 5, 4, 3, 2, 1])
SESSION_HOURS_EVENING = _weights([3, 2, 1, 1, 1, 1, 2, 3, 3, 3, 3, 4, 5, 4, 4, 4, 5, 7, 9, 11, 12, 12, 9, 5])
EVENT_HOURS_DAY = (np.arange(8, 17), _weights([1, 2, 3, 2, 2, 2, 3, 2, 1]))
EVENT_HOURS_EVENING = (np.arange(17, 23), _weights([1, 3, 5, 4, 2, 1]))
EVENT_HOURS_LATE = (np.arange(20, 24), _weights([1, 3, 4, 2]))
EVENING_FROM_HOUR = 17

# The logging policy: candidates per source, and the weights of its score.
POLICY_CANDIDATES = {"nearby": 20, "popular": 6, "random_in_country": 4, "random": 2, "friends": 4}
POLICY_SOON_DAYS = 5.0  # nearby candidates are drawn with weight exp(-days until start / this)
POLICY_SAME_CITY = 1.5
POLICY_SOON = 1.0
POLICY_POPULARITY = 0.4
POLICY_FRIENDS = 1.0
POLICY_INVITED = 1.5  # the app surfaces the events a user was invited to
POLICY_MIN_LEAD_MS = HOUR_MS  # events starting within the hour are not shown

# Channels a registration (or an exposure) comes through.
IMPRESSION, SHARE, INVITATION, HOST = 0, 1, 2, 3
CHANNELS = np.array(["impression", "share", "invitation", "host"], dtype=object)
LAST_EXPOSURE_MS = 90 * MINUTE_MS  # organic exposures stop this long before the start
PAIR_CHUNK = 1 << 17  # (user, event) pairs per chunk of the friends-going count


@dataclass
class EventsWorld:
    n_users: int = 20000
    n_days: int = 60
    events_per_day: int = 250
    sessions_per_day: int = 2000
    events_per_session: int = 8
    seed: int = 11
    warmup_days: int = 14  # events (and organic registrations) before START: day 0 has an inventory
    friends_per_user: float = 20.0
    slot_minutes: int = 60
    # Registration truth (logit scale); tuned so 10-25% of shown events are registered for
    # and distance, topic and friends weigh most.
    bias: float = -1.9
    activity_weight: float = 0.3
    topic_weight: float = 8.0
    distance_weight: float = 1.0
    unknown_location_penalty: float = 0.5
    price_weight: float = 0.8
    free_bonus: float = 0.3
    lead_weight: float = 1.0
    time_of_day_weight: float = 0.6
    weekend_bonus: float = 0.2
    length_weight: float = -0.1  # per hour over 3
    friends_weight: float = 1.2
    invited_weight: float = 1.5
    host_popularity_sd: float = 0.5
    quality_sd: float = 0.5
    # Organic channels.
    host_invites: float = 6.0  # friends a host invites at creation (mean)
    invite_rate: float = 0.3  # share of registrants who invite friends (1 + Poisson(1) of them)
    share_rate: float = 0.03  # chance a friend of a registrant sees the registration
    # Responses besides registering.
    maybe_margin: float = 0.3  # "maybe" when the draw missed P by less than this share of P
    not_interested_rate: float = 0.04  # times (1 - P), among shown events not registered for
    truth: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if min(self.n_users, self.n_days, self.events_per_day, self.sessions_per_day, self.events_per_session) < 1:
            raise ValueError("n_users, n_days, events_per_day, sessions_per_day and events_per_session must be >= 1")
        if self.slot_minutes > 60 or DAY_MS % (self.slot_minutes * MINUTE_MS):
            raise ValueError(f"slot_minutes={self.slot_minutes}: at most 60, dividing a day")
        rng = np.random.default_rng(self.seed)
        self._sample_users(rng)
        self._sample_friends(rng)
        self._sample_events(rng)
        self._log: dict[str, np.ndarray] | None = None

    @property
    def n_events(self) -> int:
        return self.events_per_day * (self.warmup_days + self.n_days)

    @property
    def end(self) -> pd.Timestamp:
        """End of the logs (exclusive): train.csv spans [START, end)."""
        return START + pd.Timedelta(days=self.n_days)

    # ---- users and friendships --------------------------------------------------------------
    def _sample_users(self, rng: np.random.Generator) -> None:
        t, n = self.truth, self.n_users
        t["user_id"] = _random_ids(rng, n)
        country = rng.choice(len(COUNTRIES), n, p=list(COUNTRY_SHARE.values()))
        population = np.array([c.population for c in CITIES])
        city_given_country = np.where(CITY_COUNTRY == np.arange(len(COUNTRIES))[:, None], population, 0.0)
        city_given_country /= city_given_country.sum(axis=1, keepdims=True)
        t["city"] = draw_rows(rng, city_given_country[country])
        t["home_lat"], t["home_lng"] = _around(rng, t["city"], HOME_SPREAD_KM)

        # Ages 21-76 (birth years 1950-2005), mostly young adults.
        t["age"] = np.clip(np.round(19 + rng.gamma(2.0, 8.0, n)), 21, 76)
        age_z = (t["age"] - 35.0) / 12.0
        t["male"] = rng.random(n) < 0.52
        sign = np.where(t["male"], 1.0, -1.0)
        age_tilt = np.array([topic.age_tilt for topic in TOPICS])
        male_tilt = np.array([topic.male_tilt for topic in TOPICS])
        alpha = 0.3 * np.exp(age_z[:, None] * age_tilt + sign[:, None] * male_tilt)
        taste = rng.gamma(alpha) + 1e-12  # Dirichlet(alpha) per user, through normalised gammas
        t["topic_pref"] = taste / taste.sum(axis=1, keepdims=True)
        t["log_budget"] = np.log(25.0) + 0.35 * age_z + rng.normal(0, 0.6, n)
        t["activity"] = rng.lognormal(0.0, 1.0, n)
        t["evening"] = expit(0.6 - 0.8 * age_z + rng.normal(0, 1.0, n))  # liking for evenings, in [0, 1]
        t["tolerance_km"] = 12.0 * rng.lognormal(0.0, 0.6, n)
        t["user_bias"] = self.activity_weight * np.log(t["activity"]) + rng.normal(0, 0.4, n)
        t["sociability"] = np.where(rng.random(n) < 0.05, 0.0, rng.lognormal(0.0, 0.6, n))
        t["host_weight"] = np.where(rng.random(n) < 0.15, rng.lognormal(0.0, 1.3, n), 0.0)
        t["host_popularity"] = rng.normal(0, self.host_popularity_sd, n)

        # What users.csv shows of them.
        shown = rng.random(n)
        t["shows_city"] = shown >= 0.13  # 10% show nothing, 3% only the country
        t["shows_country"] = shown >= 0.10
        t["birthyear_missing"] = rng.random(n) < 0.05
        t["gender_missing"] = rng.random(n) < 0.03
        t["timezone_missing"] = rng.random(n) < 0.02
        t["joined_missing"] = rng.random(n) < 0.01
        before = rng.integers(DAY_MS, 3 * 365 * DAY_MS, n)
        t["joined_ms"] = -self.warmup_days * DAY_MS - before  # before the first event
        locale_names = sorted({name for shares in LOCALES.values() for name in shares})
        locale_given_country = np.array(
            [[LOCALES[country].get(name, 0.0) for name in locale_names] for country in COUNTRIES]
        )
        t["locale"] = np.asarray(locale_names, dtype=object)[
            draw_rows(rng, locale_given_country[CITY_COUNTRY[t["city"]]])
        ]

    def _sample_friends(self, rng: np.random.Generator) -> None:
        """Symmetric friendships: stubs joined to partners mostly in the same city (else the
        country, else anywhere), picked by sociability among candidates of similar age; then
        friends of friends become friends (triadic closure)."""
        t, n = self.truth, self.n_users
        sociability, city, age = t["sociability"], t["city"], t["age"]
        order = np.argsort(city, kind="stable")  # cities are listed by country: countries are blocks too
        cumulative = np.concatenate([[0.0], np.cumsum(sociability[order])])
        city_lo = np.searchsorted(city[order], np.arange(len(CITIES)), "left")
        city_hi = np.searchsorted(city[order], np.arange(len(CITIES)), "right")
        first_city = np.searchsorted(CITY_COUNTRY, np.arange(len(COUNTRIES)), "left")
        last_city = np.searchsorted(CITY_COUNTRY, np.arange(len(COUNTRIES)), "right") - 1
        country_lo, country_hi = city_lo[first_city], city_hi[last_city]

        relative = sociability / sociability.mean()
        source = np.repeat(np.arange(n), rng.poisson(0.38 * self.friends_per_user * relative))
        scope = rng.random(len(source))
        home, country = city[source], CITY_COUNTRY[city[source]]
        lo = np.where(scope < 0.75, city_lo[home], np.where(scope < 0.92, country_lo[country], 0))
        hi = np.where(scope < 0.75, city_hi[home], np.where(scope < 0.92, country_hi[country], n))
        empty = cumulative[hi] <= cumulative[lo]  # nobody sociable there: anywhere instead
        lo, hi = np.where(empty, 0, lo), np.where(empty, n, hi)
        candidates = 4
        target = (
            cumulative[lo][:, None] + rng.random((len(source), candidates)) * (cumulative[hi] - cumulative[lo])[:, None]
        )
        position = np.clip(np.searchsorted(cumulative, target, "right") - 1, lo[:, None], hi[:, None] - 1)
        candidate = order[position]
        closeness = -np.abs(age[source][:, None] - age[candidate]) / 6.0 + rng.gumbel(size=candidate.shape)
        partner = candidate[np.arange(len(source)), closeness.argmax(axis=1)]
        keep = (partner != source) & (sociability[partner] > 0)
        first = _symmetric(source[keep], partner[keep], n)

        # Closure: pick a friend, then one of their friends.
        degree = np.diff(first.indptr)
        picks = rng.poisson(0.15 * self.friends_per_user * relative) * (degree > 0)
        user = np.repeat(np.arange(n), picks)
        friend = first.indices[first.indptr[user] + (rng.random(len(user)) * degree[user]).astype(np.int64)]
        other = first.indices[first.indptr[friend] + (rng.random(len(user)) * degree[friend]).astype(np.int64)]
        keep = other != user
        rows, cols = first.nonzero()
        graph = _symmetric(np.concatenate([rows, user[keep]]), np.concatenate([cols, other[keep]]), n)
        t["friend_indptr"], t["friend_indices"] = graph.indptr.astype(np.int64), graph.indices.astype(np.int64)
        self._friends = graph

    # ---- events ------------------------------------------------------------------------------
    def _sample_events(self, rng: np.random.Generator) -> None:
        t, n = self.truth, self.n_events
        t["event_id"] = _random_ids(rng, n)
        day = np.repeat(np.arange(-self.warmup_days, self.n_days), self.events_per_day)
        t["created_ms"] = np.sort(day * DAY_MS + rng.integers(0, DAY_MS, n))  # events in order of creation
        t["host"] = rng.choice(self.n_users, n, p=_weights(t["host_weight"]))

        # Mostly in the host's city; else elsewhere in the country; rarely anywhere.
        host_city = t["city"][t["host"]]
        population = np.array([c.population for c in CITIES])
        in_country = np.where(CITY_COUNTRY == CITY_COUNTRY[host_city][:, None], population, 0.0)
        user_share = np.bincount(t["city"], minlength=len(CITIES)) + 1.0
        anywhere = rng.choice(len(CITIES), n, p=_weights(user_share))
        where = rng.random(n)
        t["event_city"] = np.where(
            where < 0.85,
            host_city,
            np.where(where < 0.95, draw_rows(rng, in_country / in_country.sum(1)[:, None]), anywhere),
        )
        t["lat"], t["lng"] = _around(rng, t["event_city"], EVENT_SPREAD_KM)
        t["lat"], t["lng"] = np.round(t["lat"], 3), np.round(t["lng"], 3)  # as precise as the real file
        where = rng.random(n)
        t["shows_location"] = where >= 0.05  # 5% show no city nor coordinates ...
        t["shows_coordinates"] = where >= 0.07  # ... and 2% a city without coordinates
        t["shows_zip"] = rng.random(n) < 0.6

        # Topics: one of the host's tastes, often mixed with a second topic.
        primary = draw_rows(rng, t["topic_pref"][t["host"]])
        second = (primary + rng.integers(1, N_TOPICS, n)) % N_TOPICS
        main_share = np.where(rng.random(n) < 0.5, rng.uniform(0.55, 0.85, n), 1.0)
        topics = np.zeros((n, N_TOPICS))
        topics[np.arange(n), primary] = main_share
        topics[np.arange(n), second] += 1.0 - main_share
        t["topics"] = topics

        # Start: 1-30 days after creation (mostly within two weeks), at a local hour of the topic.
        offset = np.array([CITIES[c].utc_offset_minutes for c in range(len(CITIES))])[t["event_city"]] * MINUTE_MS
        lead_days = np.ceil(np.clip(1.0 + rng.gamma(1.3, 4.5, n), 1.0, 30.0))
        local_day = (t["created_ms"] + offset) // DAY_MS + lead_days.astype(np.int64)
        evening = rng.random(n) < np.array([topic.evening_share for topic in TOPICS])[primary]
        late = np.array([topic.late for topic in TOPICS])[primary]
        hour = np.where(
            evening,
            np.where(late, _choose(rng, EVENT_HOURS_LATE, n), _choose(rng, EVENT_HOURS_EVENING, n)),
            _choose(rng, EVENT_HOURS_DAY, n),
        )
        minute = np.where(rng.random(n) < 0.3, 30, 0)
        t["start_ms"] = local_day * DAY_MS + hour * HOUR_MS + minute * MINUTE_MS - offset
        t["evening_event"] = hour >= EVENING_FROM_HOUR
        t["weekend"] = local_day % 7 >= 5  # day 0 is a Monday

        typical_length = np.array([topic.length_hours for topic in TOPICS])[primary]
        t["length_hours"] = np.clip(np.round(2 * typical_length * rng.lognormal(0, 0.35, n)) / 2, 1.0, 8.0)
        free = rng.random(n) < np.array([topic.free_share for topic in TOPICS])[primary]
        median = np.array([topic.median_price for topic in TOPICS])[primary]
        t["price"] = np.where(free, 0.0, np.maximum(3.0, np.round(median * rng.lognormal(0, 0.5, n))))
        t["quality"] = rng.normal(0, self.quality_sd, n)
        t["words"] = self._words(rng, topics)

        # The event's part of the logit: what does not depend on the user nor on time.
        t["event_logit"] = (
            t["host_popularity"][t["host"]]
            + t["quality"]
            + self.weekend_bonus * t["weekend"]
            + self.length_weight * (t["length_hours"] - 3.0)
            - self.unknown_location_penalty * ~t["shows_location"]
        )

    def _words(self, rng: np.random.Generator, topics: np.ndarray) -> np.ndarray:
        """(events, 101) counts: 100 stems, ordered from the most common, then c_other."""
        n = len(topics)
        common = _weights(1.0 / np.arange(1, N_COMMON_STEMS + 1))  # Zipf among the common stems
        home_topic = rng.permutation(np.arange(N_STEMS - N_COMMON_STEMS) % N_TOPICS)
        topic_words = np.zeros((N_TOPICS, N_STEMS))
        topic_words[:, :N_COMMON_STEMS] = 0.45 * common
        topic_words[:, N_COMMON_STEMS:] = 0.10 / (N_STEMS - N_COMMON_STEMS)
        for k in range(N_TOPICS):
            own = N_COMMON_STEMS + np.flatnonzero(home_topic == k)
            topic_words[k, own] += 0.45 * rng.dirichlet(np.ones(len(own)))
        distribution = topics @ topic_words
        total = np.clip(np.round(rng.lognormal(np.log(80), 0.5, n)), 30, 200).astype(np.int64)
        in_stems = rng.binomial(total, WORDS_IN_TOP_STEMS)
        counts = rng.multinomial(in_stems, distribution)
        by_frequency = np.argsort(-distribution.mean(axis=0), kind="stable")  # c_1 is the most common stem
        return np.column_stack([counts[:, by_frequency], total - in_stems]).astype(np.int32)

    # ---- the truth ---------------------------------------------------------------------------
    def _static_logit(self, u: np.ndarray, e: np.ndarray) -> np.ndarray:
        """The part of the logit fixed for a (user, event) pair."""
        t = self.truth
        fit = np.zeros(len(u))
        for k in range(N_TOPICS):  # a fixed summation order: the oracle repeats draws bit for bit
            fit += t["topic_pref"][u, k] * t["topics"][e, k]
        km = _haversine_km(t["home_lat"][u], t["home_lng"][u], t["lat"][e], t["lng"][e])
        price = t["price"][e]
        paid = price > 0
        over_budget = np.log(np.where(paid, price, 1.0)) - t["log_budget"][u]
        price_fit = np.where(paid, -self.price_weight * np.logaddexp(0.0, over_budget), self.free_bonus)
        likes_evening = t["evening"][u] - 0.5
        time_of_day = 2 * self.time_of_day_weight * np.where(t["evening_event"][e], likes_evening, -likes_evening)
        return (
            self.bias
            + t["user_bias"][u]
            + self.topic_weight * fit
            - self.distance_weight * np.log1p(km / t["tolerance_km"][u])
            + price_fit
            + time_of_day
            + t["event_logit"][e]
        )

    def _probability(self, u: np.ndarray, e: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(register) for pairs shown at `at` (ms since START) and whether the user was invited
        by then, from the registrations and invitations drawn so far."""
        t = self.truth
        days = np.maximum(t["start_ms"][e] - at, 0) / DAY_MS
        # Last-minute events are hard to fit in; far-off ones are easy to postpone.
        lead = -(np.exp(-days) + 0.5 * np.log(np.maximum(days, 10.0) / 10.0))
        friends = self._friends_going(u, e, at)
        invited = self._invitations.first(u * self.n_events + e) < at
        logit = (
            self._static_logit(u, e)
            + self.lead_weight * lead
            + self.friends_weight * np.log1p(friends)
            + self.invited_weight * invited
        )
        is_open = (t["created_ms"][e] <= at) & (at < t["start_ms"][e])
        return np.where(is_open, expit(logit), 0.0), invited

    def _friends_going(self, u: np.ndarray, e: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Friends of each user registered for the event before `at`."""
        indptr, indices = self.truth["friend_indptr"], self.truth["friend_indices"]
        going = np.zeros(len(u), dtype=np.int64)
        for lo in range(0, len(u), PAIR_CHUNK):
            uu, ee, aa = u[lo : lo + PAIR_CHUNK], e[lo : lo + PAIR_CHUNK], at[lo : lo + PAIR_CHUNK]
            pair, friend = _expand(indptr, indices, uu)
            registered = self._registrations.first(friend * self.n_events + ee[pair]) < aa[pair]
            going[lo : lo + len(uu)] = np.bincount(pair[registered], minlength=len(uu))
        return going

    # ---- the oracle --------------------------------------------------------------------------
    def register_probability(self, user_ids: np.ndarray, event_ids: np.ndarray, at) -> np.ndarray:
        """P(the user registers | shown the event at `at`), vectorised over (user, event) pairs;
        `at` a timestamp or one per pair (whole milliseconds). 0 for an event that has started
        by `at` or was not yet created. Friends going and invitations count as of `at`, from
        everything generate() drew."""
        self._require_generated()
        u = _index_of(self.truth["user_id"], user_ids, "user_id")
        e = _index_of(self.truth["event_id"], event_ids, "event_id")
        return self._probability(u, e, _milliseconds_since_start(at, len(u)))[0]

    def registrations(self) -> pd.DataFrame:
        """Every registration drawn: user, event, timestamp, channel (impression, share,
        invitation, host), in time order."""
        self._require_generated()
        log = self._log
        order = np.argsort(log["registration_ms"], kind="stable")
        return pd.DataFrame(
            {
                "user": self.truth["user_id"][log["registration_user"][order]],
                "event": self.truth["event_id"][log["registration_event"][order]],
                "timestamp": _timestamps(log["registration_ms"][order]),
                "channel": CHANNELS[log["registration_channel"][order]],
            }
        )

    def invitations(self) -> pd.DataFrame:
        """Every invitation sent: user (the invitee), event, timestamp, in time order."""
        self._require_generated()
        keys, times = self._invitations.items()
        order = np.argsort(times, kind="stable")
        return pd.DataFrame(
            {
                "user": self.truth["user_id"][keys[order] // self.n_events],
                "event": self.truth["event_id"][keys[order] % self.n_events],
                "timestamp": _timestamps(times[order]),
            }
        )

    def _require_generated(self) -> None:
        if self._log is None:
            raise RuntimeError("call generate() first: the oracle counts the registrations it draws")

    # ---- the logs ----------------------------------------------------------------------------
    def generate(self) -> KaggleTables:
        rng = np.random.default_rng(self.seed + 1)
        self._log = self._simulate(rng)
        self.impression_probability_ = self._log["impression_probability"]
        return KaggleTables(
            self._users_table(),
            self._events_table(),
            self._friends_table(),
            self._attendees_table(),
            self._train_table(),
        )

    def _simulate(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Slot by slot: sessions are served, users respond to them and to the organic
        exposures due in the slot, and registrants' invitations and shares are scheduled."""
        t, n_events = self.truth, self.n_events
        slot_ms = self.slot_minutes * MINUTE_MS
        first_ms, end_ms = -self.warmup_days * DAY_MS, self.n_days * DAY_MS
        n_slots = (end_ms - first_ms) // slot_ms
        self._registrations, self._invitations, self._shown = _FirstTimes(), _FirstTimes(), _FirstTimes()
        log = _Log()
        pending: list[list[tuple[np.ndarray, ...]]] = [[] for _ in range(n_slots)]

        def schedule(user, event, time, channel):
            due = (time < t["start_ms"][event] - LAST_EXPOSURE_MS) & (time < end_ms)
            user, event, time = user[due], event[due], time[due]
            slot = (time - first_ms) // slot_ms
            order = np.argsort(slot, kind="stable")
            bounds = np.flatnonzero(np.diff(slot[order])) + 1
            for part in np.split(order, bounds) if len(order) else []:
                pending[slot[part[0]]].append((user[part], event[part], time[part], np.full(len(part), channel)))

        # The host registers at creation and invites friends.
        everyone = np.arange(n_events)
        self._registrations.add(t["host"] * n_events + everyone, t["created_ms"])
        log.add("registration", user=t["host"], event=everyone, ms=t["created_ms"], channel=np.full(n_events, HOST))
        n_invited = np.minimum(rng.poisson(self.host_invites, n_events), self._degree(t["host"]))
        inviter = np.repeat(t["host"], n_invited)
        invited_event = np.repeat(everyone, n_invited)
        invitee = self._random_friends(rng, inviter)
        sent = np.repeat(t["created_ms"], n_invited) + rng.integers(MINUTE_MS, 6 * HOUR_MS, len(inviter))
        self._invite(rng, invitee, invited_event, sent, schedule)

        sessions_user, sessions_ms = self._sessions(rng)
        session_bounds = np.searchsorted(sessions_ms, first_ms + slot_ms * np.arange(n_slots + 1))
        daily = None
        for slot in range(n_slots):
            slot_start = first_ms + slot * slot_ms
            slot_end = slot_start + slot_ms
            if daily is None or slot_start % DAY_MS == 0:
                daily = self._policy_snapshot(log, slot_start)
            lo, hi = session_bounds[slot], session_bounds[slot + 1]
            session, imp_event = self._serve(rng, sessions_user[lo:hi], sessions_ms[lo:hi], slot_start, slot_end, daily)
            imp_user, imp_ms = sessions_user[lo:hi][session], sessions_ms[lo:hi][session]
            self._shown.add(imp_user * n_events + imp_event, imp_ms)

            exposures = pending[slot]
            pending[slot] = []
            exp_user, exp_event, exp_ms, exp_channel = (
                (np.concatenate(parts) for parts in zip(*exposures, strict=True))
                if exposures
                else (np.empty(0, np.int64),) * 4
            )
            keep = self._registrations.first(exp_user * n_events + exp_event) == NEVER
            keep &= first_occurrence(exp_user * n_events + exp_event)
            exp_user, exp_event, exp_ms, exp_channel = exp_user[keep], exp_event[keep], exp_ms[keep], exp_channel[keep]

            user = np.concatenate([imp_user, exp_user])
            event = np.concatenate([imp_event, exp_event])
            ms = np.concatenate([imp_ms, exp_ms])
            channel = np.concatenate([np.full(len(imp_user), IMPRESSION), exp_channel])
            if not len(user):
                continue
            response = self.respond(rng, user, event, ms, channel)
            p, invited, registered, maybe = (response[k] for k in ("probability", "invited", "registered", "maybe"))
            not_interested, declined = response["not_interested"], response["declined"]
            n_shown = len(imp_user)
            log.add(
                "impression",
                user=imp_user,
                event=imp_event,
                ms=imp_ms,
                invited=invited[:n_shown],
                interested=registered[:n_shown],
                not_interested=not_interested[:n_shown],
                probability=p[:n_shown],
            )
            log.add("maybe", user=user[maybe], event=event[maybe])
            log.add("no", user=user[declined], event=event[declined])

            # Registrations complete after the slot: nothing drawn in it affects its own draws.
            new = np.flatnonzero(registered)
            new = new[first_occurrence(user[new] * n_events + event[new])]
            reg_user, reg_event = user[new], event[new]
            # Before the start: shown events start an hour after the exposure at least, and a slot
            # lasts an hour at most.
            reg_ms = np.minimum(slot_end + rng.integers(0, 30 * MINUTE_MS, len(new)), t["start_ms"][reg_event] - 1)
            self._registrations.add(reg_user * n_events + reg_event, reg_ms)
            log.add("registration", user=reg_user, event=reg_event, ms=reg_ms, channel=channel[new])

            inviting = rng.random(len(new)) < self.invite_rate
            n_invited = np.minimum(1 + rng.poisson(1.0, len(new)), self._degree(reg_user)) * inviting
            inviter = np.repeat(reg_user, n_invited)
            sent = np.repeat(reg_ms, n_invited) + rng.integers(MINUTE_MS, 2 * HOUR_MS, len(inviter))
            self._invite(rng, self._random_friends(rng, inviter), np.repeat(reg_event, n_invited), sent, schedule)
            pair, friend = _expand(t["friend_indptr"], t["friend_indices"], reg_user)
            sees = rng.random(len(pair)) < self.share_rate
            pair, friend = pair[sees], friend[sees]
            seen = reg_ms[pair] + rng.integers(10 * MINUTE_MS, DAY_MS, len(pair))
            schedule(friend, reg_event[pair], seen, SHARE)
        return log.arrays()

    def respond(self, rng, user: np.ndarray, event: np.ndarray, ms: np.ndarray, channel: np.ndarray) -> dict:
        """Users' responses to events put before them at `ms` (ms since START; rows of the truth) through
        a channel (IMPRESSION: shown in the app; SHARE, INVITATION): the true P(register) and whether
        invited by then, as of the registrations and invitations so far; registered ~ Bernoulli(P); maybe,
        a near miss; not interested, some of the shown events not registered for; declined ("no"), some
        of those and some unanswered invitations. The logs' slots and the simulator's requests
        (systems/events/online.py) draw through it. Nothing is recorded: the caller completes the
        registrations."""
        p, invited = self._probability(user, event, ms)
        draw = rng.random(len(user))
        registered = draw < p
        maybe = ~registered & (draw < p * (1 + self.maybe_margin))
        shown = channel == IMPRESSION
        not_interested = shown & ~registered & (rng.random(len(user)) < self.not_interested_rate * (1 - p))
        declined = (not_interested & (rng.random(len(user)) < 0.5)) | (
            (channel == INVITATION) & ~registered & ~maybe & (rng.random(len(user)) < 0.4)
        )
        return {
            "probability": p,
            "invited": invited,
            "registered": registered,
            "maybe": maybe,
            "not_interested": not_interested,
            "declined": declined,
        }

    def complete_registrations(self, user: np.ndarray, event: np.ndarray, ms: np.ndarray) -> None:
        """Registrations (rows of the truth) completed at `ms`: from then on, friends going counts them.
        For the simulator's days; the logs record theirs as they draw them."""
        self._require_generated()
        self._registrations.add(np.asarray(user) * self.n_events + np.asarray(event), ms)

    def registered_before(self, user: np.ndarray, event: np.ndarray, ms: np.ndarray) -> np.ndarray:
        """Whether each user had registered for the event (through any channel) before `ms`."""
        return self._registrations.first(np.asarray(user) * self.n_events + np.asarray(event)) < ms

    def _invite(self, rng, invitee, event, sent, schedule) -> None:
        """Record invitations sent before the event starts; each invitee sees theirs later."""
        ok = sent < self.truth["start_ms"][event] - LAST_EXPOSURE_MS
        invitee, event, sent = invitee[ok], event[ok], sent[ok]
        self._invitations.add(invitee * self.n_events + event, sent)
        schedule(invitee, event, sent + rng.integers(10 * MINUTE_MS, 12 * HOUR_MS, len(invitee)), INVITATION)

    def _degree(self, users: np.ndarray) -> np.ndarray:
        indptr = self.truth["friend_indptr"]
        return indptr[users + 1] - indptr[users]

    def _random_friends(self, rng, users: np.ndarray) -> np.ndarray:
        """A random friend of each user (who must have one)."""
        indptr = self.truth["friend_indptr"]
        pick = indptr[users] + (rng.random(len(users)) * self._degree(users)).astype(np.int64)
        return self.truth["friend_indices"][pick]

    def _sessions(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Every session of the logs, in time order."""
        return self.sessions(rng, 0, self.n_days, self.sessions_per_day)

    def sessions(
        self, rng: np.random.Generator, first_day: int, n_days: int, per_day: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """`per_day` sessions (users opening the app) on each of `n_days` days from `first_day`, in time
        order: who (rows of the truth, by activity) and when (ms since START), at local hours that follow
        the user's liking for evenings. The logs' days, and the simulator's after them."""
        t = self.truth
        n = n_days * per_day
        user = rng.choice(self.n_users, n, p=_weights(t["activity"]))
        evening = t["evening"][user][:, None]
        hour = draw_rows(rng, (1 - evening) * SESSION_HOURS_DAY + evening * SESSION_HOURS_EVENING)
        local_ms = hour * HOUR_MS + rng.integers(0, HOUR_MS, n)
        offset = np.array([c.utc_offset_minutes for c in CITIES])[t["city"][user]] * MINUTE_MS
        day = np.repeat(np.arange(first_day, first_day + n_days), per_day)
        ms = day * DAY_MS + (local_ms - offset) % DAY_MS
        order = np.argsort(ms, kind="stable")
        return user[order], ms[order]

    # ---- the logging policy ------------------------------------------------------------------
    def _policy_snapshot(self, log: _Log, day_start: int) -> dict:
        """What the policy knows as of the day's start: registrations per event, and per user
        the events they registered for that have not started."""
        t = self.truth
        user, event, ms = log.get("registration", "user", "event", "ms")
        known = ms < day_start
        popularity = np.bincount(event[known], minlength=self.n_events)
        upcoming = known & (t["start_ms"][event] > day_start)
        registered = sp.csr_matrix(
            (np.ones(upcoming.sum()), (user[upcoming], event[upcoming])), shape=(self.n_users, self.n_events)
        )
        return {"popularity": popularity, "registered": registered}

    def _serve(self, rng, users, ms, slot_start, slot_end, daily) -> tuple[np.ndarray, np.ndarray]:
        """The logging policy for a slot's sessions: (session row, event) per shown event, in
        each session's order."""
        t = self.truth
        k = self.events_per_session
        if not len(users):
            return np.empty(0, np.int64), np.empty(0, np.int64)
        n_created = np.searchsorted(t["created_ms"], slot_end)
        active = np.flatnonzero(t["start_ms"][:n_created] > slot_start + POLICY_MIN_LEAD_MS)
        if not len(active):
            return np.empty(0, np.int64), np.empty(0, np.int64)
        city = np.where(t["shows_location"], t["event_city"], -1)
        user_city = np.where(t["shows_city"][users], t["city"][users], -1)
        user_country = CITY_COUNTRY[t["city"][users]]  # the platform knows the country (IP)
        popularity = daily["popularity"]

        located = active[city[active] >= 0]
        order = np.argsort(city[located], kind="stable")
        by_city = located[order]
        groups = _CityGroups(city[by_city])
        soon = np.exp(-(t["start_ms"][by_city] - slot_start) / DAY_MS / POLICY_SOON_DAYS)
        nearby = groups.draw(rng, soon, user_city, user_country, POLICY_CANDIDATES["nearby"])
        popular = groups.draw(rng, 1.0 + popularity[by_city], -1, user_country, POLICY_CANDIDATES["popular"])
        in_country = groups.draw(rng, np.ones(len(by_city)), -1, user_country, POLICY_CANDIDATES["random_in_country"])
        anywhere = active[rng.integers(0, len(active), (len(users), POLICY_CANDIDATES["random"]))]
        from_friends = self._friends_source(rng, users, active, daily["registered"])
        candidates = np.hstack(
            [_lookup(by_city, nearby), _lookup(by_city, popular), _lookup(by_city, in_country), anywhere, from_friends]
        )
        by_friends = np.zeros(candidates.shape, dtype=bool)
        by_friends[:, -from_friends.shape[1] :] = from_friends >= 0

        c = np.maximum(candidates, 0)
        keys = users[:, None] * self.n_events + c
        valid = (
            (candidates >= 0)
            & (t["created_ms"][c] < ms[:, None])
            & (t["start_ms"][c] > ms[:, None] + POLICY_MIN_LEAD_MS)
            & (self._shown.first(keys) == NEVER)
            & (self._registrations.first(keys) == NEVER)
            & first_in_row(candidates)
        )
        score = (
            POLICY_SAME_CITY * ((city[c] == user_city[:, None]) & (user_city[:, None] >= 0))
            + POLICY_SOON * np.exp(-(t["start_ms"][c] - ms[:, None]) / DAY_MS / POLICY_SOON_DAYS)
            + POLICY_POPULARITY * np.log1p(popularity[c])
            + POLICY_FRIENDS * by_friends
            + POLICY_INVITED * (self._invitations.first(keys) < ms[:, None])
            + rng.gumbel(size=candidates.shape)
        )
        score = np.where(valid, score, -np.inf)
        kk = min(k, candidates.shape[1])
        best = np.argpartition(-score, kk - 1, axis=1)[:, :kk]
        best = np.take_along_axis(best, np.argsort(-np.take_along_axis(score, best, 1), axis=1, kind="stable"), 1)
        shown = np.isfinite(np.take_along_axis(score, best, 1))
        session, column = np.nonzero(shown)
        event = candidates[session, best[session, column]]
        # A user with two sessions in the slot sees an event once.
        once = first_occurrence(users[session] * self.n_events + event)
        return session[once], event[once]

    def _friends_source(self, rng, users, active, registered) -> np.ndarray:
        """(sessions, n) open events that the users' friends registered for (as of the day's
        start), picked by the number of such friends with Gumbel noise; -1 pads."""
        n = POLICY_CANDIDATES["friends"]
        out = np.full((len(users), n), -1, dtype=np.int64)
        counts = (self._friends[users] @ registered).tocoo()
        is_active = np.zeros(self.n_events, dtype=bool)
        is_active[active] = True
        keep = is_active[counts.col]
        row, event, count = counts.row[keep], counts.col[keep].astype(np.int64), counts.data[keep]
        if not len(row):
            return out
        score = np.log(count) + rng.gumbel(size=len(row))
        order = np.lexsort((-score, row))
        row, event = row[order], event[order]
        rank = np.arange(len(row)) - np.searchsorted(row, row)
        top = rank < n
        out[row[top], rank[top]] = event[top]
        return out

    # ---- the tables --------------------------------------------------------------------------
    def _users_table(self) -> pd.DataFrame:
        t = self.truth
        city = t["city"]
        location = np.array([c.location for c in CITIES], dtype=object)[city]
        country = np.array([c.country for c in CITIES], dtype=object)[city]
        offset = np.array([c.utc_offset_minutes for c in CITIES], dtype=float)[city]
        joined = _timestamps(t["joined_ms"]).where(~t["joined_missing"])
        return pd.DataFrame(
            {
                "user_id": t["user_id"],
                "locale": t["locale"],
                "birthyear": np.where(t["birthyear_missing"], np.nan, 2026.0 - t["age"]),
                "gender": np.where(t["gender_missing"], "", np.where(t["male"], "male", "female")).astype(object),
                "joinedAt": joined,
                "location": np.where(t["shows_city"], location, np.where(t["shows_country"], country, "")),
                "timezone": np.where(t["timezone_missing"], np.nan, offset),
            }
        )

    def _events_table(self) -> pd.DataFrame:
        t = self.truth
        shows, coordinates = t["shows_location"], t["shows_coordinates"]

        def text(values):
            return np.where(shows, np.asarray(values, dtype=object)[t["event_city"]], "").astype(object)

        columns = {
            "event_id": t["event_id"],
            "user_id": t["user_id"][t["host"]],
            "start_time": _timestamps(t["start_ms"]),
            "city": text([c.name for c in CITIES]),
            "state": text([c.region for c in CITIES]),
            "zip": np.where(t["shows_zip"], text([c.zip for c in CITIES]), "").astype(object),
            "country": text([c.country for c in CITIES]),
            "lat": np.where(coordinates, t["lat"], np.nan),
            "lng": np.where(coordinates, t["lng"], np.nan),
            **{column: t["words"][:, i] for i, column in enumerate(WORD_COLUMNS)},
            "price": t["price"],
            "length_hours": t["length_hours"],
            "created_time": _timestamps(t["created_ms"]),
        }
        assert list(columns) == list(EVENTS_SCHEMA) + list(EVENTS_EXTRA)
        return pd.DataFrame(columns)

    def _friends_table(self) -> pd.DataFrame:
        indptr, indices = self.truth["friend_indptr"], self.truth["friend_indices"]
        user = np.repeat(np.arange(self.n_users), np.diff(indptr))
        ids = self.truth["user_id"]
        return pd.DataFrame({"user": ids[user], "friend": ids[indices]})

    def _attendees_table(self) -> pd.DataFrame:
        """Each pair's response (yes over maybe over no) and every invitation, grouped by event
        then by response in the file's order."""
        log, n_events = self._log, self.n_events
        yes = log["registration_user"] * n_events + log["registration_event"]
        maybe = np.setdiff1d(log["maybe_user"] * n_events + log["maybe_event"], yes)
        no = np.setdiff1d(log["no_user"] * n_events + log["no_event"], np.concatenate([yes, maybe]))
        invited = self._invitations.items()[0]
        keys = np.concatenate([yes, maybe, invited, no])
        rank = np.repeat(np.arange(len(RESPONSES)), [len(yes), len(maybe), len(invited), len(no)])
        user, event = keys // n_events, keys % n_events
        order = np.lexsort((user, rank, event))
        return pd.DataFrame(
            {
                "event": self.truth["event_id"][event[order]],
                "user": self.truth["user_id"][user[order]],
                "response": np.asarray(RESPONSES, dtype=object)[rank[order]],
            }
        )

    def _train_table(self) -> pd.DataFrame:
        log = self._log
        return pd.DataFrame(
            {
                "user": self.truth["user_id"][log["impression_user"]],
                "event": self.truth["event_id"][log["impression_event"]],
                "invited": log["impression_invited"].astype(np.int8),
                "timestamp": _timestamps(log["impression_ms"]),
                "interested": log["impression_interested"].astype(np.int8),
                "not_interested": log["impression_not_interested"].astype(np.int8),
            }
        )


# ---- helpers -------------------------------------------------------------------------------------
class _FirstTimes:
    """The earliest time of each int64 key added so far, searchable while it grows: a large
    sorted base plus a small sorted recent part. A batch merges into the recent part, which
    merges into the base once it outgrows a quarter of it, so adding stays cheap per slot."""

    def __init__(self) -> None:
        empty = np.empty(0, dtype=np.int64)
        self._base = self._recent = (empty, empty)

    def add(self, keys: np.ndarray, times: np.ndarray) -> None:
        self._recent = _merge(self._recent, (np.asarray(keys, np.int64), np.asarray(times, np.int64)))
        if len(self._recent[0]) > max(1 << 14, len(self._base[0]) // 4):
            self._base = _merge(self._base, self._recent)
            self._recent = (np.empty(0, dtype=np.int64),) * 2

    def first(self, keys: np.ndarray) -> np.ndarray:
        """Earliest time per key; NEVER for keys never added."""
        keys = np.asarray(keys)
        order = np.argsort(keys.ravel())  # sorted needles search a large run several times faster
        ordered = keys.ravel()[order]
        found = np.empty(len(ordered), dtype=np.int64)
        found[order] = np.minimum(_search(self._base, ordered), _search(self._recent, ordered))
        return found.reshape(keys.shape)

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        return _merge(self._base, self._recent)


def _merge(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique keys of both, with each key's earliest time."""
    keys, times = np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])
    if not len(keys):
        return keys, times
    order = np.argsort(keys, kind="stable")  # timsort: near-linear on sorted runs
    keys, times = keys[order], times[order]
    start = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return keys[start], np.minimum.reduceat(times, start)


def _search(run: tuple[np.ndarray, np.ndarray], keys: np.ndarray) -> np.ndarray:
    run_keys, run_times = run
    if not len(run_keys):
        return np.full(np.shape(keys), NEVER, dtype=np.int64)
    position = np.minimum(np.searchsorted(run_keys, keys), len(run_keys) - 1)
    return np.where(run_keys[position] == keys, run_times[position], NEVER)


class _Log:
    """Arrays appended slot by slot under a kind ("impression", "registration", ...)."""

    def __init__(self) -> None:
        self._parts: dict[str, list[np.ndarray]] = {}

    def add(self, kind: str, **columns: np.ndarray) -> None:
        for name, values in columns.items():
            self._parts.setdefault(f"{kind}_{name}", []).append(np.asarray(values))

    def get(self, kind: str, *names: str) -> list[np.ndarray]:
        out = []
        for name in names:
            parts = self._parts[f"{kind}_{name}"]
            if len(parts) > 1:
                parts[:] = [np.concatenate(parts)]  # concatenated once, then extended
            out.append(parts[0])
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {key: np.concatenate(parts) for key, parts in self._parts.items()}


class _CityGroups:
    """Events sorted by city: draw candidates per session within a city (else its country,
    else anywhere) by weight."""

    def __init__(self, sorted_city: np.ndarray) -> None:
        cities = np.arange(len(CITIES))
        self.city_lo = np.searchsorted(sorted_city, cities, "left")
        self.city_hi = np.searchsorted(sorted_city, cities, "right")
        first_city = np.searchsorted(CITY_COUNTRY, np.arange(len(COUNTRIES)), "left")
        last_city = np.searchsorted(CITY_COUNTRY, np.arange(len(COUNTRIES)), "right") - 1
        self.country_lo, self.country_hi = self.city_lo[first_city], self.city_hi[last_city]
        self.n = len(sorted_city)

    def draw(self, rng, weight, user_city, user_country, size) -> np.ndarray:
        """(sessions, size) positions in the sorted events, -1 where there are none."""
        n_sessions = len(user_country)
        if not self.n:
            return np.full((n_sessions, size), -1)
        user_city = np.broadcast_to(user_city, n_sessions)
        known = user_city >= 0
        city = np.maximum(user_city, 0)
        lo = np.where(known, self.city_lo[city], self.country_lo[user_country])
        hi = np.where(known, self.city_hi[city], self.country_hi[user_country])
        empty = hi <= lo
        lo = np.where(empty, self.country_lo[user_country], lo)
        hi = np.where(empty, self.country_hi[user_country], hi)
        empty = hi <= lo
        lo, hi = np.where(empty, 0, lo), np.where(empty, self.n, hi)
        cumulative = np.concatenate([[0.0], np.cumsum(weight)])
        target = cumulative[lo][:, None] + rng.random((n_sessions, size)) * (cumulative[hi] - cumulative[lo])[:, None]
        return np.clip(np.searchsorted(cumulative, target, "right") - 1, lo[:, None], hi[:, None] - 1)


def _lookup(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """values[positions], -1 where a position is -1."""
    if not len(values):
        return np.full(positions.shape, -1, dtype=np.int64)
    return np.where(positions >= 0, values[np.maximum(positions, 0)], -1)


def _expand(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row position, neighbour) for every neighbour of every row in a CSR adjacency."""
    degree = indptr[rows + 1] - indptr[rows]
    pair = np.repeat(np.arange(len(rows)), degree)
    within = np.arange(len(pair)) - np.repeat(np.cumsum(degree) - degree, degree)
    return pair, indices[np.repeat(indptr[rows], degree) + within]


def _symmetric(a: np.ndarray, b: np.ndarray, n: int) -> sp.csr_matrix:
    """The symmetric 0/1 adjacency of undirected edges (a, b), duplicates merged."""
    graph = sp.csr_matrix((np.ones(2 * len(a)), (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(n, n))
    graph.sum_duplicates()
    graph.data[:] = 1.0
    graph.sort_indices()
    return graph


def _around(rng: np.random.Generator, city: np.ndarray, spread_km: float) -> tuple[np.ndarray, np.ndarray]:
    """Points scattered around the cities' centres (normal, `spread_km` per axis)."""
    lat = np.array([c.lat for c in CITIES])[city] + rng.normal(0, spread_km, len(city)) / KM_PER_DEGREE
    lng = np.array([c.lng for c in CITIES])[city]
    lng = lng + rng.normal(0, spread_km, len(city)) / (KM_PER_DEGREE * np.cos(np.radians(lat)))
    return lat, lng


def _haversine_km(lat1, lng1, lat2, lng2) -> np.ndarray:
    lat1, lng1, lat2, lng2 = (np.radians(x) for x in (lat1, lng1, lat2, lng2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def _random_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct random int64 ids in Kaggle's range (1e8 to 4.3e9), in random order."""
    draws = rng.integers(100_000_000, 4_300_000_000, n + n // 10 + 16)
    first = np.sort(np.unique(draws, return_index=True)[1])
    return draws[first[:n]]


def _index_of(ids: np.ndarray, wanted, name: str) -> np.ndarray:
    """Row of each wanted id in `ids`; unknown ids raise."""
    wanted = np.asarray(wanted, dtype=np.int64)
    order = np.argsort(ids)
    position = np.minimum(np.searchsorted(ids, wanted, sorter=order), len(ids) - 1)
    row = order[position]
    if (ids[row] != wanted).any():
        raise KeyError(f"unknown {name}: {wanted[ids[row] != wanted][:5].tolist()}")
    return row


def _milliseconds_since_start(at, n: int) -> np.ndarray:
    """`at` (a timestamp or one per pair; naive means UTC) as int64 ms since START, per pair."""
    if np.ndim(at) == 0:
        at = pd.Timestamp(at)
        at = at.tz_localize("UTC") if at.tzinfo is None else at
        return np.full(n, (at - START) // pd.Timedelta(milliseconds=1), dtype=np.int64)
    stamps = pd.DatetimeIndex(pd.to_datetime(at, utc=True))
    if len(stamps) != n:
        raise ValueError(f"{len(stamps)} timestamps for {n} pairs")
    return np.asarray((stamps - START) // pd.Timedelta(milliseconds=1), dtype=np.int64)


def _timestamps(ms: np.ndarray) -> pd.Series:
    return pd.Series(START + pd.to_timedelta(np.asarray(ms, dtype=np.int64), unit="ms")).astype(TIMESTAMP)


def _choose(rng: np.random.Generator, values_and_weights: tuple[np.ndarray, np.ndarray], n: int) -> np.ndarray:
    values, weights = values_and_weights
    return rng.choice(values, size=n, p=weights)
