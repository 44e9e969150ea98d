"""The served product search (chapter section 7): the funnel the offline evaluation ran.

  query understanding    spell correction, synonyms, relaxation when nothing matches
  sources                BM25 over the inverted index, the two-tower's query vector over faiss
  fusion                 reciprocal rank fusion: one list, each product remembering who found it
  filter                 the request's category, price range and availability
  stage 1 -> stage 2     logistic regression over every candidate, LambdaMART over its best
Models come from the registry (`search-ranker@champion`), the indexes from data/search/index, the
catalogue's static columns from data/search/raw, the engagement counts from the online store (read into
memory once at start: a request reads hundreds of pairs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from common.app.paths import system_dir
from common.app.system import ServiceUnavailable
from common.features.store import FeatureRepo
from common.retrieval.ann import ANNIndex
from common.search.funnel import SearchFunnel, SearchResult, TextSource, VectorSource
from common.search.inverted_index import InvertedIndex
from common.serving.service import release_freed_memory
from common.serving.timing import StageTimer
from common.tracking.runs import Champion, ChampionMissing, load_champion
from systems.search.dataset import SYSTEM
from systems.search.features import (
    CATALOGUE_COLUMNS,
    STAGE1,
    STAGE2,
    VIEWS,
    CatalogueColumns,
    Engagement,
    QueryKeys,
)
from systems.search.pipeline import ServedSearch
from systems.search.ranking import ModelStage, PairFeatures, stage_features
from systems.search.retrieval import vectors_path

TRAIN = f"run: make train SYSTEM={SYSTEM}"
SHOWN = ("product_id", "product_title", "product_brand", "category", "price", "available")


@dataclass(frozen=True)
class Filters:
    category: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    available_only: bool = False


def online_engagement(repo: FeatureRepo, keys: QueryKeys, n_products: int) -> Engagement:
    """Every product's and logged pair's counts from the online store (the keys its sources hold: a key has
    a row per day it had impressions, the store its latest)."""
    frames = [
        repo.online_frame(view.name, view.key, np.unique(repo.source_keys(view.name, view.key))) for view in VIEWS
    ]
    return Engagement(keys, n_products, *frames)


def serving_inputs() -> tuple[pd.DataFrame, Engagement]:
    """What a service reads besides its models: the catalogue's columns and the engagement counts (from the
    online store where the training published logs; none on the ESCI files). The online simulator's days
    read them the same way after each day's features are refreshed."""
    raw = system_dir(SYSTEM) / "raw"
    if not (raw / "products.parquet").exists():
        raise ServiceUnavailable(f"no {SYSTEM} catalogue at {raw}: {TRAIN}")
    products = pd.read_parquet(raw / "products.parquet", columns=list(CATALOGUE_COLUMNS))
    keys_path = raw / "query_keys.parquet"
    if not keys_path.exists():
        return products, Engagement.empty(QueryKeys([]), len(products))
    repo = FeatureRepo(SYSTEM)  # logs were published (the world): counts from the online store
    if not repo.exists():
        raise ServiceUnavailable(f"no {SYSTEM} feature store at {repo.dir}: {TRAIN}")
    return products, online_engagement(repo, QueryKeys.load(keys_path), len(products))


class SearchService:
    def __init__(self, config: dict, champion: Champion, products: pd.DataFrame, engagement: Engagement):
        served: ServedSearch = champion.classifier
        self.champion, self.engagement = champion, engagement
        # What a response shows, as Arrow columns: a million titles as Python strings held ~250 MB a worker.
        self.products = pa.Table.from_pandas(products[list(SHOWN)], preserve_index=False)
        folder = system_dir(SYSTEM) / "index"
        index = InvertedIndex.load(folder / "text")
        # Memory-mapped lists: the workers share one copy (256 MB at a million products), for ~1 ms of page
        # faults a request until each worker has touched the pages its queries probe.
        ann = ANNIndex.load(folder / served.semantic_index, mmap=True)
        # Memory-mapped: the server's worker processes share one copy in the page cache.
        # A plain view of the mapping: np.memmap's own indexing runs Python code on every request.
        vectors = np.asarray(np.load(vectors_path(folder, served.semantic_index), mmap_mode="r"))
        self.catalogue = CatalogueColumns.from_products(products)
        self.categories = frozenset(products["category"].dropna().unique())
        features = PairFeatures(self.catalogue, index, vectors, served.encoder.encode_queries, served.intent)
        cheap, full = stage_features(features, engagement)
        stages = [
            ModelStage("stage_1", served.stage_1, STAGE1, served.keep["stage_1"], cheap),
            ModelStage("stage_2", served.stage_2, STAGE2, served.keep["stage_2"], full),
        ]
        sources = [TextSource(index), VectorSource(features.query_vectors, ann, index.vocabulary)]
        self.funnel = SearchFunnel(
            served.understanding, sources, config["fusion"], stages, config["serving"]["per_source"]
        )
        release_freed_memory()

    @classmethod
    def load(cls, config: dict) -> SearchService:
        try:
            champion = load_champion(SYSTEM)
        except ChampionMissing as error:
            raise ServiceUnavailable(str(error)) from error
        return cls(config, champion, *serving_inputs())

    def unknown_category(self, category: str | None) -> bool:
        return category is not None and category not in self.categories

    def keep(self, filters: Filters):
        """The filter over candidate rows, or None when the request sets none."""
        if filters == Filters():
            return None
        c = self.catalogue

        def allowed(rows: np.ndarray) -> np.ndarray:
            ok = np.ones(len(rows), bool)
            if filters.category is not None:
                ok &= c.category[rows] == filters.category
            if filters.min_price is not None:
                ok &= c.price[rows] >= filters.min_price  # an unknown price (NaN) passes no price filter
            if filters.max_price is not None:
                ok &= c.price[rows] <= filters.max_price
            if filters.available_only:
                ok &= c.available[rows] > 0
            return ok

        return allowed

    def search(self, query: str, k: int, filters: Filters) -> tuple[SearchResult, dict[str, float]]:
        timer = StageTimer()
        result = self.funnel.search(query, k, self.keep(filters), timer)
        return result, timer.milliseconds

    def describe(self, result: SearchResult) -> list[dict]:
        shown = self.products.take(pa.array(result.rows, pa.int64())).to_pylist()  # NaN prices read None
        return [
            {
                "product_id": str(product["product_id"]),
                "title": product["product_title"],
                "brand": product["product_brand"],
                "category": product["category"],
                "price": product["price"],
                "available": bool(product["available"]),
                "score": float(score),
                "sources": list(sources),
            }
            for product, score, sources in zip(shown, result.scores, result.sources, strict=True)
        ]
