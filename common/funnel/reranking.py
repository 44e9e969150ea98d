"""Re-ranking: an ordered list of steps a system's config names, applied to the scored candidates.

    steps = build_steps(config["serving"]["re_ranking"], catalog)
    re_ranking:                                   # video
      - {step: min_age, user: age, item: minimum_age}
      - {step: regions, user: country, item: available_regions}
      - {step: freshness, weight: 0.1, half_life_days: 3}
      - {step: dedupe, item: title}
      - {step: group_cap, item: genre, max_per_group: 3}
    re_ranking:                                   # ads
      - {step: expected_value, item: bid}
      - {step: group_cap, item: advertiser_id, max_per_group: 1}

A step sees a Slate (catalogue rows, the scorer's scores, the ordering keys) and returns a new one.
Three kinds: a filter drops candidates (age, region, exposure cap), a score step moves the keys
(freshness, bid x pCTR; skipped when the funnel has no scorer), a select step picks in key order
(de-duplication, group caps, MMR diversity). The functions below them are the rules themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from common.data.arrays import first_occurrence

DAY_S = 86_400.0


def top_k_with_group_cap(scores: np.ndarray, groups: np.ndarray, k: int, max_per_group: int) -> np.ndarray:
    """Indices of the k best scores, best first, taking at most `max_per_group` items of any
    group (advertiser, genre...); fewer than k when the cap runs the pool dry."""
    chosen: list[int] = []
    taken: dict = {}
    for index in np.argsort(-scores, kind="stable"):
        group = groups[index]
        if taken.get(group, 0) < max_per_group:
            chosen.append(int(index))
            taken[group] = taken.get(group, 0) + 1
            if len(chosen) == k:
                break
    return np.asarray(chosen, dtype=np.int64)


# ---- filters: boolean keep-masks over the candidates ---------------------------------------
def age_allowed(user_age: int | None, minimum_ages: np.ndarray) -> np.ndarray:
    """Items whose minimum age the user meets; an unknown age only sees unrestricted items."""
    minimum_ages = np.asarray(minimum_ages)
    return minimum_ages <= (user_age if user_age is not None else 0)


def region_allowed(region: str | None, available_regions: list) -> np.ndarray:
    """Items available in the user's region; an empty availability list means everywhere."""
    return np.array([not regions or region in regions for regions in available_regions], dtype=bool)


def freshness_boost(scores: np.ndarray, age_days: np.ndarray, weight: float, half_life_days: float) -> np.ndarray:
    """scores + weight * 2^(-age / half-life): new items get a lift that halves every half-life."""
    return np.asarray(scores, dtype=float) + weight * np.exp2(
        -np.maximum(np.asarray(age_days, float), 0) / half_life_days
    )


def maximal_marginal_relevance(scores: np.ndarray, vectors: np.ndarray, k: int, trade_off: float = 0.7) -> np.ndarray:
    """Indices of k items chosen greedily by trade_off * score - (1 - trade_off) * max cosine
    to the items already chosen (Carbonell & Goldstein 1998): relevant, but not all alike.
    `vectors` are L2-normalised item embeddings, one row per candidate."""
    scores = np.asarray(scores, dtype=float)
    k = min(k, len(scores))
    chosen: list[int] = []
    closest = np.full(len(scores), -np.inf)  # max similarity to anything chosen so far
    available = np.ones(len(scores), dtype=bool)
    for _ in range(k):
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        value = np.where(available, trade_off * scores - (1 - trade_off) * penalty, -np.inf)
        best = int(np.argmax(value))
        chosen.append(best)
        available[best] = False
        closest = np.maximum(closest, vectors @ vectors[best])
    return np.asarray(chosen, dtype=np.int64)


# ---- steps built from config ----------------------------------------------------------------
@dataclass(frozen=True)
class Slate:
    rows: np.ndarray  # (n,) catalogue rows
    scores: np.ndarray  # (n,) the scorer's score of each (what the response reports)
    keys: np.ndarray  # (n,) the ordering key, moved by score steps

    def take(self, positions: np.ndarray) -> Slate:
        return Slate(self.rows[positions], self.scores[positions], self.keys[positions])

    def by_key(self) -> Slate:
        return self.take(np.argsort(-self.keys, kind="stable"))


@dataclass
class MinimumAge:
    """Items whose minimum age the user meets; a user of unknown age sees unrestricted items only."""

    user: str
    item: str
    kind: ClassVar[str] = "filter"

    def __call__(self, request, catalog, slate: Slate) -> Slate:
        age = request.attributes.get(self.user)
        age = None if age is None or age != age else int(age)  # NaN: unknown
        return slate.take(np.flatnonzero(age_allowed(age, catalog.columns[self.item][slate.rows])))


@dataclass
class Regions:
    """Items available in the user's region (an empty list: everywhere)."""

    user: str
    item: str
    kind: ClassVar[str] = "filter"

    def __call__(self, request, catalog, slate: Slate) -> Slate:
        available = list(catalog.columns[self.item][slate.rows])
        return slate.take(np.flatnonzero(region_allowed(request.attributes.get(self.user), available)))


@dataclass
class ExposureCap:
    """Fatigue: drop items shown to the user `max_exposures` times or more recently (the request
    attribute `user` lists one id per showing)."""

    user: str
    max_exposures: int
    kind: ClassVar[str] = "filter"

    def __call__(self, request, catalog, slate: Slate) -> Slate:
        shown = count_occurrences(request.attributes.get(self.user), catalog.item_ids[slate.rows])
        return slate.take(np.flatnonzero(shown < self.max_exposures))


@dataclass
class Released:
    """Items already in the catalogue at the request's time."""

    item: str = "release_s"
    kind: ClassVar[str] = "filter"

    def __call__(self, request, catalog, slate: Slate) -> Slate:
        return slate.take(np.flatnonzero(catalog.columns[self.item][slate.rows] < request.now_s))


@dataclass
class Upcoming:
    """Items whose time (an event's start) is after the request and at most `horizon_days` ahead:
    a short-lived item cannot be recommended once it has begun."""

    item: str = "start_s"
    horizon_days: float | None = None
    kind: ClassVar[str] = "filter"

    def __call__(self, request, catalog, slate: Slate) -> Slate:
        starts = catalog.columns[self.item][slate.rows]
        keep = starts > request.now_s
        if self.horizon_days is not None:
            keep &= starts <= request.now_s + self.horizon_days * DAY_S
        return slate.take(np.flatnonzero(keep))


@dataclass
class Demote:
    """Lower keys, by `factor` (< 1), for items whose `item` value the user listed in the request
    attribute `user` (a news feed's authors the user hid): shown less, not banned. A negative key (a
    weighted sum with a negative hide weight) is divided by it instead, so it falls too."""

    user: str
    item: str
    factor: float
    kind: ClassVar[str] = "score"

    def __call__(self, request, catalog, slate: Slate) -> Slate:
        listed = count_occurrences(request.attributes.get(self.user), catalog.columns[self.item][slate.rows]) > 0
        lowered = np.where(slate.keys > 0, slate.keys * self.factor, slate.keys / self.factor)
        return replace(slate, keys=np.where(listed, lowered, slate.keys))


@dataclass
class Freshness:
    """A lift for new items, added to log(score): multiplicative, the same for a niche item as for a hit,
    halving every half-life."""

    weight: float
    half_life_days: float
    item: str = "release_s"
    kind: ClassVar[str] = "score"

    def __call__(self, request, catalog, slate: Slate) -> Slate:
        age_days = (request.now_s - catalog.columns[self.item][slate.rows]) / DAY_S
        log_keys = np.log(np.maximum(slate.keys, 1e-12))
        return replace(slate, keys=freshness_boost(log_keys, age_days, self.weight, self.half_life_days))


@dataclass
class ExpectedValue:
    """keys x an item column: bid x pCTR, the expected revenue of showing the ad."""

    item: str
    kind: ClassVar[str] = "score"

    def __call__(self, request, catalog, slate: Slate) -> Slate:
        return replace(slate, keys=slate.keys * catalog.columns[self.item][slate.rows].astype(float))


@dataclass
class Dedupe:
    """Near-duplicates share a lower-cased value of `item` (re-uploads, mirrors): the best-keyed copy stays."""

    item: str
    codes: np.ndarray = field(default=None, repr=False)
    kind: ClassVar[str] = "select"

    def prepare(self, catalog) -> None:
        self.codes = pd.factorize(pd.Series(catalog.columns[self.item]).astype(str).str.lower())[0]

    def __call__(self, request, catalog, slate: Slate) -> Slate:
        ranked = slate.by_key()
        return ranked.take(np.flatnonzero(first_occurrence(self.codes[ranked.rows])))


@dataclass
class NearDuplicates:
    """Near-duplicates by content: an item whose embedding (`catalog.vectors`, unit length) has a cosine
    above `threshold` with a better-keyed item already kept is dropped (a reshare, a copied post with a
    word changed: equal titles would miss them)."""

    threshold: float = 0.9
    kind: ClassVar[str] = "select"

    def __call__(self, request, catalog, slate: Slate) -> Slate:
        ranked = slate.by_key()
        vectors = np.asarray(catalog.vectors[ranked.rows], dtype=np.float32)
        similar = np.triu(vectors @ vectors.T > self.threshold, k=1)  # [j, i]: a better-keyed j copies i
        kept = np.ones(len(ranked.rows), dtype=bool)
        for i in np.flatnonzero(similar.any(axis=0)):  # only the items some better one copies
            kept[i] = not (similar[:i, i] & kept[:i]).any()
        return ranked.take(np.flatnonzero(kept))


@dataclass
class GroupCap:
    """At most `max_per_group` items of one value of `item` (genre, advertiser), best keys first."""

    item: str
    max_per_group: int
    codes: np.ndarray = field(default=None, repr=False)
    kind: ClassVar[str] = "select"

    def prepare(self, catalog) -> None:
        self.codes = pd.factorize(pd.Series(catalog.columns[self.item]))[0]

    def __call__(self, request, catalog, slate: Slate) -> Slate:
        chosen = top_k_with_group_cap(slate.keys, self.codes[slate.rows], len(slate.rows), self.max_per_group)
        return slate.take(chosen)


@dataclass
class Diversify:
    """Maximal marginal relevance over the item embeddings (`catalog.vectors`, unit length): among the
    `pool` best-keyed candidates, each next pick maximises trade_off x relevance - (1 - trade_off) x
    its closest cosine to the picks so far, relevance being the keys scaled to [0, 1]. The picks come
    first, in that order; the rest follow by key."""

    trade_off: float = 0.7
    pool: int = 50
    kind: ClassVar[str] = "select"

    def __call__(self, request, catalog, slate: Slate) -> Slate:
        ranked = slate.by_key()
        n = min(self.pool, len(ranked.rows))
        if n == 0:
            return ranked
        keys = ranked.keys[:n]
        relevance = (keys - keys.min()) / max(keys.max() - keys.min(), 1e-12)
        vectors = np.asarray(catalog.vectors[ranked.rows[:n]], dtype=np.float32)
        picked = maximal_marginal_relevance(relevance, vectors, n, self.trade_off)
        order = np.concatenate([picked, np.arange(n, len(ranked.rows))])
        reordered = ranked.take(order)
        # Keys that keep the picks' order on top when the funnel sorts by key at the end.
        top = np.arange(n, 0, -1, dtype=float) + (ranked.keys[0] if len(ranked.keys) else 0.0)
        return replace(reordered, keys=np.concatenate([top, reordered.keys[n:]]))


STEPS: dict[str, Any] = {
    "min_age": MinimumAge,
    "regions": Regions,
    "exposure_cap": ExposureCap,
    "released": Released,
    "upcoming": Upcoming,
    "demote": Demote,
    "freshness": Freshness,
    "expected_value": ExpectedValue,
    "dedupe": Dedupe,
    "near_duplicates": NearDuplicates,
    "group_cap": GroupCap,
    "diversify": Diversify,
}


def build_steps(config: list[dict], catalog) -> list[tuple[str, Any]]:
    """(name, step) in config order, each prepared on the catalogue it will see."""
    steps = []
    for entry in config:
        options = dict(entry)
        name = options.pop("step")
        if name not in STEPS:
            raise ValueError(f"unknown re-ranking step {name!r}; choose one of {sorted(STEPS)}")
        step = STEPS[name](**options)
        if hasattr(step, "prepare"):
            step.prepare(catalog)
        steps.append((name, step))
    return steps


def count_occurrences(listed, item_ids: np.ndarray) -> np.ndarray:
    """How often each of `item_ids` occurs in `listed` (e.g. a user's recent exposures, one per showing)."""
    listed = np.asarray(listed if listed is not None else [], dtype=np.int64)
    if len(listed) == 0:
        return np.zeros(len(item_ids), dtype=np.int64)
    return (listed[None, :] == np.asarray(item_ids)[:, None]).sum(axis=1)
