"""Features of product search (chapter section 5): per (query, product), as the two ranking stages read them.

In Feast (cumulative counts, a row per key and day it had impressions; read as of each example's time for
training, from the online store at serving):
  product_engagement        per product: impressions, clicks, long dwells, purchases before t
  query_product_engagement  per (normalised query, product): the same counts for this query only: the
                            chapter's "historical engagement, e.g. click rate of the item for that query"
From the text and the models at request time:
  bm25 per field (title, description, attributes) and their weighted sum; the semantic cosine; intent
  match (P(the product's category | the query)); the share of query words (or their synonyms) in the
  title, and in any field
From the catalogue (static, in memory): price, review count, rating, availability.

Stage 1 reads the cheap ones (no per-pair lookup), stage 2 all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common.data.atomic import replaced_atomically
from common.features.views import View
from common.features.windows import cumulative_snapshots, smoothed_rate
from common.search.query import normalise

VIEWS = [View("product_engagement", "product"), View("query_product_engagement", "pair")]
COUNTS = ("impressions", "clicks", "long_dwells", "purchases")
PREFIXES = ("product_", "pair_")  # the two views' count columns: product_clicks, pair_clicks...
PRIOR_IMPRESSIONS = 20.0  # a product shown twice and clicked once is not a 50% CTR
BM25_FIELDS = ("title", "description", "attributes")
STAGE1 = (
    "bm25",
    "semantic",
    "intent_match",
    "title_coverage",
    "query_coverage",
    "log_reviews",
    "rating",
    "product_ctr",
)
STAGE2 = (
    *STAGE1,
    *(f"bm25_{field}" for field in BM25_FIELDS),
    "price",
    "available",
    "product_impressions",
    "product_purchase_rate",
    "query_impressions",
    "query_ctr",
    "query_long_dwell_rate",
    "query_purchase_rate",
)


class QueryKeys:
    """Normalised query text <-> an int key (Feast keys are ints here): the queries the logs have seen."""

    def __init__(self, queries):
        self.index = pd.Index(pd.unique(pd.Series([normalise(q) for q in queries], dtype=object)))

    def save(self, path: Path) -> None:
        with replaced_atomically(path) as temporary:
            pd.DataFrame({"query": self.index.astype(str)}).to_parquet(temporary, index=False)

    @classmethod
    def load(cls, path: Path) -> QueryKeys:
        return cls(pd.read_parquet(path)["query"])  # already normalised: normalising again is the identity

    def keys(self, queries) -> np.ndarray:
        """-1 for a query never logged (it has no engagement history)."""
        return self.index.get_indexer([normalise(q) for q in queries])


def engagement_tables(logs: pd.DataFrame, keys: QueryKeys, n_products: int, start: pd.Timestamp) -> dict:
    """Feast sources from the logs (query, product, timestamp, grade): cumulative daily snapshots."""
    events = pd.DataFrame(
        {
            "product": logs["product"].to_numpy(np.int64),
            "pair": keys.keys(logs["query"]) * n_products + logs["product"].to_numpy(np.int64),
            "event_timestamp": logs["timestamp"],
            "clicks": (logs["grade"] >= 1).astype(np.int64),
            "long_dwells": (logs["grade"] >= 2).astype(np.int64),
            "purchases": (logs["grade"] >= 4).astype(np.int64),
        }
    )
    sums = {"impressions": None, "clicks": "clicks", "long_dwells": "long_dwells", "purchases": "purchases"}
    return {
        view.name: cumulative_snapshots(events, view.key, start, 1, {prefix + c: s for c, s in sums.items()})
        for view, prefix in zip(VIEWS, PREFIXES, strict=True)
    }


def product_columns(counts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A product's rates from its counts (no row yet: zeros), shrunk toward typical rates."""
    return {
        "product_impressions": counts["impressions"],
        "product_ctr": smoothed_rate(counts["clicks"], counts["impressions"], 0.1, PRIOR_IMPRESSIONS),
        "product_purchase_rate": smoothed_rate(counts["purchases"], counts["impressions"], 0.01, PRIOR_IMPRESSIONS),
    }


def pair_columns(counts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A (query, product) pair's rates from its counts: how this query's shoppers took the product."""
    return {
        "query_impressions": counts["impressions"],
        "query_ctr": smoothed_rate(counts["clicks"], counts["impressions"], 0.1, PRIOR_IMPRESSIONS),
        "query_long_dwell_rate": smoothed_rate(counts["long_dwells"], counts["impressions"], 0.05, PRIOR_IMPRESSIONS),
        "query_purchase_rate": smoothed_rate(counts["purchases"], counts["impressions"], 0.01, PRIOR_IMPRESSIONS),
    }


def counts_of(frame: pd.DataFrame, prefix: str) -> dict[str, np.ndarray]:
    """The count columns of a Feast read (a key with no row yet reads NaN: no history, zero)."""
    return {c: frame[prefix + c].fillna(0).to_numpy(float) for c in COUNTS}


class Engagement:
    """Every product's and every logged (query, product) pair's counts, in memory for serving: read from
    the online store once at start (a request reads hundreds of pairs; as many online lookups would cost
    more than the whole budget). The daily batch writes new counts; a restart reads them."""

    def __init__(self, keys: QueryKeys, n_products: int, products: pd.DataFrame, pairs: pd.DataFrame):
        self.keys, self.n_products = keys, n_products
        self.product_counts = np.zeros((n_products, len(COUNTS)))
        if len(products):
            counts = counts_of(products, PREFIXES[0])
            self.product_counts[products["product"].to_numpy(np.int64)] = np.column_stack([counts[c] for c in COUNTS])
        self.pair_rows = pd.Index(pairs["pair"].to_numpy(np.int64))
        counts = counts_of(pairs, PREFIXES[1])
        self.pair_counts = np.column_stack([counts[c] for c in COUNTS]).reshape(len(pairs), len(COUNTS))

    @classmethod
    def empty(cls, keys: QueryKeys, n_products: int) -> Engagement:
        """No logs (ESCI): every count zero."""
        columns = [prefix + c for prefix in PREFIXES for c in COUNTS]
        return cls(
            keys, n_products, pd.DataFrame(columns=["product", *columns]), pd.DataFrame(columns=["pair", *columns])
        )

    def products(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        counts = self.product_counts[rows]
        return product_columns({c: counts[:, j] for j, c in enumerate(COUNTS)})

    def pairs(self, query: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        key = self.keys.keys([query])[0]
        counts = np.zeros((len(rows), len(COUNTS)))
        if key >= 0 and len(self.pair_rows):
            at = self.pair_rows.get_indexer(key * self.n_products + rows)
            counts[at >= 0] = self.pair_counts[at[at >= 0]]
        return pair_columns({c: counts[:, j] for j, c in enumerate(COUNTS)})


# What serving reads of the catalogue: the static columns below, and what a response shows.
CATALOGUE_COLUMNS = (
    "product_id",
    "product_title",
    "product_brand",
    "category",
    "price",
    "review_count",
    "rating",
    "available",
)


@dataclass
class CatalogueColumns:
    """The static columns of every product, by row, in memory."""

    price: np.ndarray
    log_reviews: np.ndarray
    rating: np.ndarray
    available: np.ndarray
    category: np.ndarray  # str per row, or None everywhere (ESCI)

    @classmethod
    def from_products(cls, products: pd.DataFrame) -> CatalogueColumns:
        return cls(
            price=products["price"].to_numpy(float),
            log_reviews=np.log1p(products["review_count"].to_numpy(float)),
            rating=products["rating"].to_numpy(float),
            available=products["available"].to_numpy(bool).astype(float),
            category=products["category"].to_numpy(object),
        )


def engagement_as_of(logs: pd.DataFrame, keys: QueryKeys, n_products: int, before: pd.Timestamp) -> Engagement:
    """The counts the online store held at `before` (everything logged earlier), straight from the logs:
    the evaluation's view of a past day. A parity test holds it equal to the online store's at the end."""
    logs = logs[logs["timestamp"] < before]
    events = pd.DataFrame(
        {
            "product": logs["product"].to_numpy(np.int64),
            "pair": keys.keys(logs["query"]) * n_products + logs["product"].to_numpy(np.int64),
            "impressions": 1,
            "clicks": (logs["grade"] >= 1).astype(np.int64),
            "long_dwells": (logs["grade"] >= 2).astype(np.int64),
            "purchases": (logs["grade"] >= 4).astype(np.int64),
        }
    )
    frames = [
        events.groupby(view.key)[list(COUNTS)].sum().add_prefix(prefix).reset_index()
        for view, prefix in zip(VIEWS, PREFIXES, strict=True)
    ]
    return Engagement(keys, n_products, *frames)
