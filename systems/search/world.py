"""The product-search world: a seeded catalogue, the intents shoppers search with, their queries,
what the old search engine showed them and what they did, with the ESCI grade of every
(intent, product) pair known exactly (the oracle).

    python -c "from systems.search.world import *; print(ProductWorld(3000, n_intents=400).generate()['searches'])"

Catalogue: products are variants (sizes) of models. A model is a product type with a brand, a
colour, a material, an adjective and, for its title, one of the type's noun forms (the canonical
one most often), so many products share a title and a query with another synonym can miss it.
Latent quality drives the rating and, with the model's popularity, the review count.
Intents: a product's type and 0-3 of its attributes (brand, colour, material, size), so each has
an exact product; popularity is Zipf with the general intents ("sneakers") at the head.
Searches: an intent drawn by popularity, its query written by systems/search/queries.py (and
clean_query, the same before its misspelling, the truth spell correction is judged against).
Pages (the logging policy): a pool of the intent's exact products, products of its type, of its
substitute and complement types and random ones, ranked by a noisy mix of grade and log reviews;
the top page_size are shown. Reactions: examined with probability position^-0.7; clicked with a
probability rising with the grade and the rating and falling with a price above the type's median;
dwell lognormal, long mostly on exact products; add to cart after a long dwell on an available
product, purchase after add to cart.
After the logs (the online simulator, systems/search/online.py): `day_searches` draws a later day's
searches as the logs' were drawn (their shoppers' activity kept), `reactions` the shoppers' answer to
any page, and `click_probability` / `purchase_probability` are the truth those reactions are drawn from.

Grades (ESCI): exact 3 when the type is the intent's and every attribute it specifies matches;
substitute 2 when the type is the intent's but an attribute differs, or a declared substitute type;
complement 1 for a complement type; irrelevant 0 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr

from systems.search.queries import COLOUR_SYNONYM, FILLER, MISSPELLED, SHUFFLED, SYNONYM, VAGUE, Intent, compose
from systems.search.vocabulary import BULLETS, CATEGORIES, COLOURS, DESCRIPTIONS

EXACT, SUBSTITUTE, COMPLEMENT, IRRELEVANT = 3, 2, 1, 0
ATTRIBUTES = ("brand", "color", "material", "size")  # what an intent can specify, in the attribute arrays' order

PRODUCTS_PER_MODEL = 10  # on average: keeps distinct titles (and text encoding) to a fraction of the catalogue
CANONICAL_NOUN_SHARE = 0.6  # of titles naming the type by its canonical noun
CANONICAL_COLOUR_SHARE = 0.7
ATTRIBUTE_COUNT_SHARES = (0.3, 0.35, 0.22, 0.13)  # intents specifying 0, 1, 2, 3 attributes
ZIPF_EXPONENT = 0.9
REVIEW_LOG_BASE = 2.0  # a typical product has e^2 ~ 7 reviews; popular ones thousands
AVAILABLE_SHARE = 0.95

# The logging policy: pool sizes per source, then score = grade score + popularity * log1p(reviews) + noise.
POOL = {"exact": 6, "type": 10, "substitute": 6, "complement": 6}  # plus page_size random products
POLICY_GRADE_SCORE = np.array([0.0, 1.0, 1.6, 2.4])  # indexed by grade
POLICY_POPULARITY = 0.3
POLICY_NOISE = 1.2

# Shopper reactions, indexed by grade where an array.
EXAMINATION_DECAY = 0.7  # P(examined) = position ** -decay
CLICK_LOGIT = np.array([-4.0, -2.8, -1.8, -0.3])
RATING_WEIGHT = 0.5  # per star above 4.2; unreviewed products count as 4.0
PRICE_WEIGHT = 0.8  # per unit of log(price / the type's median price) above it
DWELL_MEDIAN_SECONDS = np.array([6.0, 12.0, 20.0, 45.0])
DWELL_SIGMA = 0.8
LONG_DWELL_SECONDS = 30.0
CART_AFTER_LONG_DWELL = np.array([0.02, 0.15, 0.1, 0.35])
PURCHASE_AFTER_CART = 0.6

_HOURLY = np.array([2, 1, 1, 1, 1, 2, 3, 4, 5, 5, 5, 6, 7, 6, 5, 5, 5, 6, 8, 9, 9, 8, 6, 3], float)
HOUR_WEIGHTS = _HOURLY / _HOURLY.sum()
COUNTRIES, COUNTRY_SHARES = ("us", "ca", "mx"), (0.85, 0.1, 0.05)

# ---- the vocabulary as integer codes ------------------------------------------------------
TYPES = tuple((category, name) for category, spec in CATEGORIES.items() for name in spec.types)
TYPE_INDEX = {name: t for t, (_, name) in enumerate(TYPES)}
TYPE_CATEGORY, TYPE_NAME = (np.array(column, object) for column in zip(*TYPES, strict=True))
_SPECS = [(CATEGORIES[category], CATEGORIES[category].types[name]) for category, name in TYPES]
TYPE_COLOURS = [spec.colours if spec.colours is not None else category.colours for category, spec in _SPECS]
TYPE_SIZES = [spec.sizes if spec.sizes is not None else category.sizes for category, spec in _SPECS]
TYPE_PRICE = np.array([spec.price for _, spec in _SPECS])
TYPE_SIZE_LABEL = np.array([category.size_label + " " if category.size_label else "" for category, _ in _SPECS], object)
BRANDS = tuple(brand for category in CATEGORIES.values() for brand in category.brands)
MATERIALS = tuple(sorted({m for _, spec in _SPECS for m in spec.materials}))
SIZES = tuple(sorted({s for sizes in TYPE_SIZES for s in sizes}))
# Code -> text for each attribute, "" at code -1 (unspecified, or none: a colourless or sizeless type).
VALUES = {
    name: np.array([*values, ""], object)
    for name, values in zip(ATTRIBUTES, (BRANDS, COLOURS, MATERIALS, SIZES), strict=True)
}


def _relations() -> np.ndarray:
    """(type, type) -> EXACT for the same type (exact unless an attribute differs), SUBSTITUTE,
    COMPLEMENT or IRRELEVANT; both relations symmetric whichever side the vocabulary declares them on."""
    relation = np.full((len(TYPES), len(TYPES)), IRRELEVANT, np.int8)
    for grade, field in ((COMPLEMENT, "complements"), (SUBSTITUTE, "substitutes")):
        for t, (_, spec) in enumerate(_SPECS):
            for other in getattr(spec, field):
                relation[t, TYPE_INDEX[other]] = relation[TYPE_INDEX[other], t] = grade
    np.fill_diagonal(relation, EXACT)
    return relation


RELATION = _relations()


@dataclass
class ProductWorld:
    n_products: int = 200_000
    n_intents: int = 20_000  # distinct shopper intents; popularity Zipf so head queries repeat
    n_shoppers: int = 50_000
    days: int = 14
    impressions: int = 1_000_000  # total over all days, page_size per search
    page_size: int = 10
    misspelling_rate: float = 0.12  # share of queries with one misspelled word
    synonym_rate: float = 0.4  # share of noun (and colour) mentions using a non-canonical synonym
    vague_rate: float = 0.08  # share of queries that name only the category or the noun
    shuffle_rate: float = 0.2  # share of queries whose phrases come in another order
    filler_rate: float = 0.1
    start: str = "2026-01-01"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_products < len(TYPES):
            raise ValueError(f"n_products must be at least the number of product types ({len(TYPES)})")
        rng = np.random.default_rng([self.seed, 0])
        self._models, self._products = _sample_catalogue(rng, self.n_products)
        self._intents = _sample_intents(rng, self._products, self.n_intents)
        self._by_type = _groups(self._products["type"], len(TYPES))  # CSR: the products of each type

    # ---- the oracle ------------------------------------------------------------------------
    def grades(self, intent_ids, product_ids) -> np.ndarray:
        """The ESCI grade of each (intent, product) pair, elementwise (broadcast), int8."""
        intents, products = np.broadcast_arrays(np.asarray(intent_ids), np.asarray(product_ids))
        relation = RELATION[self._intents["type"][intents], self._products["type"][products]]
        wanted, has = self._intents["attributes"][intents], self._products["attributes"][products]
        fits = ((wanted < 0) | (wanted == has)).all(axis=-1)
        return np.where((relation == EXACT) & ~fits, SUBSTITUTE, relation).astype(np.int8)

    def intent_grades(self, intent_id: int) -> np.ndarray:
        """The grade of every product for one intent (n_products,), int8: what ideal DCG needs."""
        return self.grades(intent_id, np.arange(self.n_products))

    # ---- the tables --------------------------------------------------------------------------
    def generate(self) -> dict[str, pd.DataFrame]:
        rng = np.random.default_rng([self.seed, 1])
        searches = self._searches(rng)
        return {
            "products": self._products_table(rng),
            "intents": self._intents_table(),
            "searches": searches,
            "impressions": self._impressions(rng, searches["intent_id"].to_numpy()),
            "shoppers": self._shoppers(rng),
        }

    def _searches(self, rng: np.random.Generator) -> pd.DataFrame:
        n = self.impressions // self.page_size
        seconds = np.sort(
            rng.integers(0, self.days, n) * 86_400 + rng.choice(24, n, p=HOUR_WEIGHTS) * 3600 + rng.integers(0, 3600, n)
        )
        # Who searches how often: kept, so the days after the logs (the online simulator's) have the same shoppers.
        self.activity = rng.lognormal(0.0, 1.0, self.n_shoppers)
        return self._searches_at(rng, seconds, first_id=0)

    def day_searches(self, rng: np.random.Generator, day: int, n: int, first_id: int) -> pd.DataFrame:
        """n searches of day `day` (counted from the start; the logs' days are 0 .. days - 1) in time order, ids
        from `first_id`, drawn as the logs' were: shoppers by their activity, hours by the daily curve, intents
        by popularity, their queries by the same phrasings. After generate(), whose shoppers they are."""
        if not hasattr(self, "activity"):
            raise RuntimeError("generate() first: the shoppers' activity is drawn with the logs")
        seconds = np.sort(day * 86_400 + rng.choice(24, n, p=HOUR_WEIGHTS) * 3600 + rng.integers(0, 3600, n))
        return self._searches_at(rng, seconds, first_id)

    def _searches_at(self, rng: np.random.Generator, seconds: np.ndarray, first_id: int) -> pd.DataFrame:
        """A search at each of `seconds` (since the start): who, which intent, the query typed."""
        n = len(seconds)
        users = rng.choice(self.n_shoppers, n, p=self.activity / self.activity.sum())
        intents = rng.choice(self.n_intents, n, p=self._intents["popularity"])
        flags = np.zeros(n, np.int64)
        for bit, rate in (
            (SYNONYM, self.synonym_rate),
            (COLOUR_SYNONYM, self.synonym_rate),
            (SHUFFLED, self.shuffle_rate),
            (VAGUE, self.vague_rate),
            (FILLER, self.filler_rate),
            (MISSPELLED, self.misspelling_rate),
        ):
            flags |= np.where(rng.random(n) < rate, bit, 0)
        # An intent's queries are a handful of variants: write each (intent, flags) once.
        variants, which = np.unique(np.stack([intents, flags], axis=1), axis=0, return_inverse=True)
        said = self._intents_table()[["category", "product_type", "brand", "color", "material", "size"]]
        wants = [Intent(*row) for row in said.itertuples(index=False)]
        texts = [compose(wants[i], f, int(self._intents["query_seed"][i])) for i, f in variants.tolist()]
        query, clean_query = (np.array(column, object)[which.ravel()] for column in zip(*texts, strict=True))
        return pd.DataFrame(
            {
                "search_id": first_id + np.arange(n, dtype=np.int64),
                "timestamp": pd.Timestamp(self.start) + pd.to_timedelta(seconds, "s"),
                "user_id": users.astype(np.int64),
                "intent_id": intents.astype(np.int64),
                "query": query,
                "clean_query": clean_query,  # before the misspelling: the truth a spell corrector is judged on
            }
        )

    def _impressions(self, rng: np.random.Generator, intents: np.ndarray) -> pd.DataFrame:
        shown, _ = self._pages(rng, intents)
        n, k = shown.shape
        return pd.DataFrame(
            {"search_id": np.repeat(np.arange(n, dtype=np.int64), k), **self.reactions(rng, intents, shown)}
        )

    def reactions(self, rng: np.random.Generator, intents: np.ndarray, shown: np.ndarray) -> dict[str, np.ndarray]:
        """The shoppers' reactions to pages `shown` (n, k: product ids, best first) of searches for `intents`
        (n,), as the impressions table's columns (n * k rows): each slot examined with its position bias,
        clicked by the click model, a dwell, an add to cart after a long dwell, a purchase after the cart."""
        n, k = shown.shape
        grade = self.grades(intents[:, None], shown)
        position = np.broadcast_to(np.arange(1, k + 1), (n, k))
        p = self._products
        examined = rng.random((n, k)) < examination_probability(position)
        clicked = examined & (rng.random((n, k)) < self.click_probability(intents[:, None], shown))
        dwell = np.where(clicked, rng.lognormal(np.log(DWELL_MEDIAN_SECONDS[grade]), DWELL_SIGMA), 0.0)
        added = (
            (dwell > LONG_DWELL_SECONDS) & p["available"][shown] & (rng.random((n, k)) < CART_AFTER_LONG_DWELL[grade])
        )
        purchased = added & (rng.random((n, k)) < PURCHASE_AFTER_CART)
        return {
            "product_id": shown.ravel().astype(np.int64),
            "position": position.ravel().astype(np.int64),
            "clicked": clicked.ravel(),
            "dwell_seconds": dwell.ravel().round(1),
            "added_to_cart": added.ravel(),
            "purchased": purchased.ravel(),
        }

    def click_probability(self, intent_ids, product_ids) -> np.ndarray:
        """P(click | the slot examined) of each (intent, product) pair (broadcast): the grade, the rating
        (unreviewed: 4.0) and a price above the type's median."""
        intents, products = np.broadcast_arrays(np.asarray(intent_ids), np.asarray(product_ids))
        p = self._products
        rating = np.nan_to_num(p["rating"][products], nan=4.0)
        overpriced = np.maximum(0.0, np.log(p["price"][products] / TYPE_PRICE[p["type"][products]]))
        logit = CLICK_LOGIT[self.grades(intents, products)] + RATING_WEIGHT * (rating - 4.2) - PRICE_WEIGHT * overpriced
        return 1.0 / (1.0 + np.exp(-logit))

    def purchase_probability(self, intent_ids, product_ids, positions) -> np.ndarray:
        """P(purchase) of each (intent, product) pair shown at `positions` (broadcast): examined, clicked, a
        dwell beyond LONG_DWELL_SECONDS, available, added to the cart, bought. The expected purchases of a
        page are their sum; position bias multiplies, so the best page sorts products by it at any slot."""
        intents, products, positions = np.broadcast_arrays(*map(np.asarray, (intent_ids, product_ids, positions)))
        grade = self.grades(intents, products)
        long_dwell = ndtr((np.log(DWELL_MEDIAN_SECONDS[grade]) - np.log(LONG_DWELL_SECONDS)) / DWELL_SIGMA)
        return (
            examination_probability(positions)
            * self.click_probability(intents, products)
            * long_dwell
            * self._products["available"][products]
            * CART_AFTER_LONG_DWELL[grade]
            * PURCHASE_AFTER_CART
        )

    def _pages(self, rng: np.random.Generator, intents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The old engine's pages (n, page_size) of product ids, best first, and their grades."""
        n, intent_type = len(intents), self._intents["type"][intents]
        exact = _draw(rng, *_groups_of(*self._exact_products(), self.n_intents), intents, POOL["exact"])
        same_type = _draw(rng, *self._by_type, intent_type, POOL["type"])
        related = [
            self._products_of_related_types(rng, intent_type, kind, POOL[name])
            for kind, name in ((SUBSTITUTE, "substitute"), (COMPLEMENT, "complement"))
        ]
        pool = np.concatenate([exact, same_type, *related, np.full((n, self.page_size), -1)], axis=1)
        missing = pool < 0  # empty sources and the random part
        pool[missing] = rng.integers(0, self.n_products, missing.sum())
        pool.sort(axis=1)
        repeated = np.zeros(pool.shape, bool)
        repeated[:, 1:] = pool[:, 1:] == pool[:, :-1]
        grade = self.grades(intents[:, None], pool)
        score = (
            POLICY_GRADE_SCORE[grade]
            + POLICY_POPULARITY * np.log1p(self._products["review_count"][pool])
            + rng.normal(0.0, POLICY_NOISE, pool.shape)
        )
        score[repeated] = -np.inf
        top = np.argsort(-score, axis=1, kind="stable")[:, : self.page_size]
        return np.take_along_axis(pool, top, axis=1), np.take_along_axis(grade, top, axis=1)

    def _products_of_related_types(self, rng, types: np.ndarray, kind: int, k: int) -> np.ndarray:
        """(n, k) products of a random type related to each type by `kind`; -1 when there is none."""
        related_type = _draw(rng, *_groups_of(*np.nonzero(RELATION == kind), len(TYPES)), types, k).ravel()
        products = _draw(rng, *self._by_type, np.maximum(related_type, 0), 1).ravel()
        return np.where(related_type >= 0, products, -1).reshape(len(types), k)

    def _exact_products(self) -> tuple[np.ndarray, np.ndarray]:
        """(intent, product) pairs of every exact match, found type by type."""
        intent_type, offsets, ids = self._intents["type"], *self._by_type
        pairs = []
        for t in np.unique(intent_type):
            intents, products = np.flatnonzero(intent_type == t), ids[offsets[t] : offsets[t + 1]]
            wanted = self._intents["attributes"][intents][:, None, :]
            fits = ((wanted < 0) | (wanted == self._products["attributes"][products][None])).all(axis=2)
            i, p = np.nonzero(fits)
            pairs.append((intents[i], products[p]))
        return tuple(np.concatenate(column) for column in zip(*pairs, strict=True))

    def _products_table(self, rng: np.random.Generator) -> pd.DataFrame:
        m, p = self._models, self._products
        stem, description, bullets = _model_texts(rng, m)
        model, size = p["model"], p["attributes"][:, 3]
        size_text = VALUES["size"][size]
        title = stem[model] + np.where(size >= 0, ", " + TYPE_SIZE_LABEL[p["type"]] + size_text, "")
        return pd.DataFrame(
            {
                "product_id": np.arange(self.n_products, dtype=np.int64),
                "product_title": title,
                "product_description": description[model],
                "product_bullet_point": bullets[model],
                "product_brand": VALUES["brand"][p["attributes"][:, 0]],
                "product_color": VALUES["color"][p["attributes"][:, 1]],
                "product_locale": "us",
                "category": TYPE_CATEGORY[p["type"]],
                "product_type": TYPE_NAME[p["type"]],
                "size": size_text,
                "material": VALUES["material"][p["attributes"][:, 2]],
                "price": p["price"],
                "review_count": p["review_count"],
                "rating": p["rating"],
                "available": p["available"],
            }
        )

    def _intents_table(self) -> pd.DataFrame:
        i = self._intents
        attributes = {name: VALUES[name][i["attributes"][:, a]] for a, name in enumerate(ATTRIBUTES)}
        return pd.DataFrame(
            {
                "intent_id": np.arange(self.n_intents, dtype=np.int64),
                "category": TYPE_CATEGORY[i["type"]],
                "product_type": TYPE_NAME[i["type"]],
                **{name: attributes[name] for name in ("color", "brand", "material", "size")},
                "popularity": i["popularity"],
            }
        )

    def _shoppers(self, rng: np.random.Generator) -> pd.DataFrame:
        tenure_days = rng.uniform(1, 4 * 365, self.n_shoppers)
        return pd.DataFrame(
            {
                "user_id": np.arange(self.n_shoppers, dtype=np.int64),
                "country": rng.choice(COUNTRIES, self.n_shoppers, p=COUNTRY_SHARES).astype(object),
                "signup_timestamp": pd.Timestamp(self.start) - pd.to_timedelta(tenure_days * 86_400, "s").round("s"),
            }
        )


def examination_probability(position) -> np.ndarray:
    """P(a shopper looks at slot `position`, 1-based): the world's position bias."""
    return np.asarray(position, float) ** -EXAMINATION_DECAY


# ---- sampling the catalogue and the intents ----------------------------------------------------
def _sample_catalogue(rng: np.random.Generator, n_products: int) -> tuple[dict, dict]:
    """Models (type, attributes, title words, latent quality, popularity) and their products
    (model, size, price, reviews, rating, availability)."""
    n_types = len(TYPES)
    n_models = min(n_products, max(n_types, n_products // PRODUCTS_PER_MODEL))
    model_type = np.concatenate([np.arange(n_types), _choice(rng, rng.lognormal(0, 0.5, n_types), n_models - n_types)])
    brand_popularity = rng.lognormal(0.0, 0.6, len(BRANDS))
    brand_quality = rng.normal(0.0, 0.4, len(BRANDS))
    columns = {
        name: np.full(n_models, -1) for name in ("brand", "color", "material", "adjective", "noun", "colour_form")
    }
    for t, (category, spec) in enumerate(_SPECS):
        rows = np.flatnonzero(model_type == t)
        brands = np.array([BRANDS.index(b) for b in category.brands])
        columns["brand"][rows] = brands[_choice(rng, brand_popularity[brands], len(rows))]
        materials = np.array([MATERIALS.index(m) for m in spec.materials])
        columns["material"][rows] = materials[rng.integers(0, len(materials), len(rows))]
        columns["adjective"][rows] = rng.integers(0, len(category.adjectives), len(rows))
        columns["noun"][rows] = _form(rng, np.full(len(rows), len(spec.nouns)), CANONICAL_NOUN_SHARE)
        if TYPE_COLOURS[t]:
            codes = np.array([list(COLOURS).index(c) for c in TYPE_COLOURS[t]])
            colour = codes[_choice(rng, 1.0 / np.arange(1, len(codes) + 1) ** 0.8, len(rows))]
            n_forms = np.array([len(forms) for forms in COLOURS.values()])[colour]
            columns["color"][rows], columns["colour_form"][rows] = colour, _form(rng, n_forms, CANONICAL_COLOUR_SHARE)
    quality = brand_quality[columns["brand"]] + rng.normal(0.0, 0.9, n_models)
    models = {
        "type": model_type,
        **columns,
        "quality": quality,
        "popularity": np.log(brand_popularity[columns["brand"]]) + rng.normal(0.0, 1.2, n_models),
        "price_factor": rng.lognormal(0.0, 0.35, n_models) * np.exp(0.15 * quality),
    }

    model = rng.permutation(
        np.concatenate([np.arange(n_models), _choice(rng, rng.lognormal(0, 0.7, n_models), n_products - n_models)])
    )
    product_type = model_type[model]
    size = np.full(n_products, -1)
    for t, sizes in enumerate(TYPE_SIZES):
        rows = np.flatnonzero(product_type == t)
        if sizes and len(rows):  # middle sizes sell most
            size[rows] = np.array([SIZES.index(s) for s in sizes])[rng.binomial(len(sizes) - 1, 0.5, len(rows))]
    attributes = np.stack([columns["brand"][model], columns["color"][model], columns["material"][model], size], axis=1)
    quality = models["quality"][model] + rng.normal(0.0, 0.3, n_products)
    price = TYPE_PRICE[product_type] * models["price_factor"][model] * rng.lognormal(0.0, 0.05, n_products)
    reviews = rng.poisson(np.exp(REVIEW_LOG_BASE + 0.6 * quality + models["popularity"][model]))
    # A rating averages the reviews: the fewer there are, the further it strays from the true quality.
    noisy = 4.1 + 0.4 * quality + rng.normal(0.0, 1.0, n_products) / np.sqrt(np.maximum(reviews, 1))
    products = {
        "model": model,
        "type": product_type,
        "attributes": attributes,
        "price": np.maximum(np.round(price), 1.0) - 0.01,
        "review_count": reviews.astype(np.int64),
        "rating": np.where(reviews > 0, np.clip(noisy, 1.0, 5.0).round(1), np.nan),
        "available": rng.random(n_products) < AVAILABLE_SHARE,
    }
    return models, products


def _sample_intents(rng: np.random.Generator, products: dict, n_intents: int, max_rounds: int = 5) -> dict:
    """Distinct intents, each a product's type with 0-3 of its attributes (so it has an exact product),
    with Zipf popularity ranked mostly by generality, and the seed of its query variants."""
    drawn = np.empty((0, 1 + len(ATTRIBUTES)), np.int64)
    for _ in range(max_rounds):
        base = rng.integers(0, len(products["type"]), 2 * n_intents)
        has = products["attributes"][base]
        n_wanted = rng.choice(len(ATTRIBUTE_COUNT_SHARES), len(base), p=ATTRIBUTE_COUNT_SHARES)
        keys = np.where(has >= 0, rng.random(has.shape), 2.0)  # a product's missing attributes are never picked
        picked = keys.argsort(axis=1).argsort(axis=1) < n_wanted[:, None]
        drawn = np.concatenate([drawn, np.column_stack([products["type"][base], np.where(picked, has, -1)])])
        _, first = np.unique(drawn, axis=0, return_index=True)
        if len(first) >= n_intents:
            break
    else:
        raise ValueError(f"the catalogue holds fewer than n_intents={n_intents} distinct intents")
    rows = drawn[np.sort(first)[:n_intents]]
    n_specified = (rows[:, 1:] >= 0).sum(axis=1)
    rank = np.argsort(np.argsort(n_specified + rng.normal(0.0, 1.0, n_intents)))
    popularity = 1.0 / (rank + 1.0) ** ZIPF_EXPONENT
    return {
        "type": rows[:, 0],
        "attributes": rows[:, 1:],
        "popularity": popularity / popularity.sum(),
        "query_seed": rng.integers(0, 2**31, n_intents),
    }


def _model_texts(rng: np.random.Generator, models: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per model: the title stem (brand adjective material noun, colour), a description (maybe
    with another noun form) and bullet points, newline-separated as in ESCI's files."""
    n = len(models["type"])
    u = rng.random((n, 6))
    stems, descriptions, bullets = (np.empty(n, object) for _ in range(3))
    for m in range(n):
        category, spec = _SPECS[models["type"][m]]
        adjectives = category.adjectives
        a = models["adjective"][m]
        fields = {
            "brand": BRANDS[models["brand"][m]],
            "material": MATERIALS[models["material"][m]],
            "adjective": adjectives[a],
            "adjective2": adjectives[(a + 1 + int(u[m, 0] * (len(adjectives) - 1))) % len(adjectives)],
            "use": category.uses[int(u[m, 1] * len(category.uses))],
        }
        colour = models["color"][m]
        stem = f"{fields['brand']} {fields['adjective']} {fields['material']} {spec.nouns[models['noun'][m]]}"
        stems[m] = stem + (f", {COLOURS[VALUES['color'][colour]][models['colour_form'][m]]}" if colour >= 0 else "")
        fields["noun"] = spec.nouns[int(u[m, 2] * len(spec.nouns))]
        lines = category.lines
        descriptions[m] = (
            DESCRIPTIONS[int(u[m, 3] * len(DESCRIPTIONS))].format(**fields) + f" {lines[int(u[m, 4] * len(lines))]}."
        )
        bullets[m] = "\n".join([b.format(**fields) for b in BULLETS] + [lines[int(u[m, 5] * len(lines))]])
    return stems, descriptions, bullets


# ---- small helpers --------------------------------------------------------------------------------
def _choice(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """n indices drawn with probability proportional to `weights`."""
    return rng.choice(len(weights), n, p=weights / weights.sum())


def _form(rng: np.random.Generator, n_forms: np.ndarray, canonical_share: float) -> np.ndarray:
    """Which of its n forms each thing is named by: 0 (canonical) with `canonical_share`, else another."""
    other = 1 + (rng.random(len(n_forms)) * (n_forms - 1)).astype(np.int64)
    return np.where((rng.random(len(n_forms)) < canonical_share) | (n_forms == 1), 0, other)


def _groups(keys: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR of 0..len(keys)-1 by key: the members of group g are ids[offsets[g]:offsets[g + 1]]."""
    ids = np.argsort(keys, kind="stable")
    return np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=n_groups))]), ids


def _groups_of(groups: np.ndarray, members: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR of (group, member) pairs."""
    offsets, order = _groups(groups, n_groups)
    return offsets, members[order]


def _draw(rng, offsets: np.ndarray, ids: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """(len(groups), k) members drawn with replacement from each group; -1 for an empty group."""
    start = offsets[groups]
    count = offsets[groups + 1] - start
    pick = start[:, None] + (rng.random((len(groups), k)) * count[:, None]).astype(np.int64)
    return np.where(count[:, None] > 0, ids[np.minimum(pick, len(ids) - 1)], -1)
