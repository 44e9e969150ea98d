"""The two ranking stages of product search (chapter section 6) and the features they read.

  stage 1  a pointwise logistic regression over every blended candidate (thousands): cheap features
           only (BM25, semantic cosine, intent match, query words held, reviews, rating, product CTR);
           trained on the logged impressions (engaged or not) plus random catalogue products as
           negatives, the chapter's "random negative samples from pages 10 and beyond"
  stage 2  LambdaMART (LightGBM lambdarank) over stage 1's best few hundred, with every feature,
           trained listwise on each logged page with the graded labels (impression 0 ... purchase 4)

`PairFeatures` computes the columns for one query and its candidate rows, the same way for training
examples (engagement counts read from Feast as of the example's time) and at serving (counts read from
the online store into memory at start).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from common.search.funnel import Candidates, Understood
from systems.search.features import STAGE1, STAGE2, CatalogueColumns, Engagement


@dataclass
class PairFeatures:
    catalogue: CatalogueColumns
    index: object  # common.search.inverted_index.InvertedIndex over the catalogue's rows
    product_vectors: np.ndarray  # (n_products, dim) unit rows of the semantic encoder
    encode_query: Callable[[list[str]], np.ndarray]
    intent: object | None  # common.search.intent.IntentClassifier, None without categories

    def __post_init__(self):
        self._query_vector = lru_cache(maxsize=1024)(lambda text: self.encode_query([text])[0])

    def cheap(self, query: Understood, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The columns of one request's candidates."""
        return self.cheap_many([query], np.zeros(len(rows), np.int64), rows, self._query_vector(query.text)[None])

    def cheap_many(
        self, queries: list[Understood], query_of: np.ndarray, rows: np.ndarray, query_vectors: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The columns of many (query, product) pairs at once (training examples): pair i is
        (queries[query_of[i]], rows[i]). The same code serves one request, so training and serving agree."""
        if query_vectors is None:
            query_vectors = self.encode_query([q.text for q in queries])
        fields = np.zeros((len(rows), len(self.index.fields)), np.float32)
        coverage, held = np.zeros(len(rows)), np.zeros(len(rows))
        for q, at in _by_query(query_of):
            fields[at] = self.index.field_scores(queries[q].expanded, rows[at])
            coverage[at] = self.catalogue.title_coverage(queries[q].corrected, rows[at])
            held[at] = self.query_coverage(queries[q], rows[at])
        columns = {f"bm25_{name}": fields[:, j] for j, name in enumerate(self.index.fields)}
        columns["bm25"] = fields @ self.index.weights
        columns["semantic"] = np.einsum("ij,ij->i", self.product_vectors[rows], query_vectors[query_of])
        if self.intent is not None and len(rows):
            texts = [queries[q].text for q in query_of]
            columns["intent_match"] = self.intent.match(texts, self.catalogue.category[rows])
        else:
            columns["intent_match"] = np.full(len(rows), np.nan)
        columns["title_coverage"] = coverage
        columns["query_coverage"] = held
        columns["log_reviews"] = self.catalogue.log_reviews[rows]
        columns["rating"] = self.catalogue.rating[rows]
        columns["price"] = self.catalogue.price[rows]
        columns["available"] = self.catalogue.available[rows]
        return columns

    def query_coverage(self, query: Understood, rows: np.ndarray) -> np.ndarray:
        """The share of the query's words each product holds, in any field, as the word or a synonym: what
        tells an exact match (every word: the brand, the colour, the size) from a substitute."""
        if not query.expanded:
            return np.zeros(len(rows))
        held = [self.index.field_scores(group, rows).sum(axis=1) > 0 for group in query.expanded]
        return np.mean(held, axis=0)


def _by_query(query_of: np.ndarray):
    """(query, positions of its pairs) for each query that has pairs."""
    if not len(query_of):
        return []
    order = np.argsort(query_of, kind="stable")
    bounds = np.flatnonzero(np.diff(query_of[order])) + 1
    return zip(query_of[order][np.r_[0, bounds]].tolist(), np.split(order, bounds), strict=True)


class ModelStage:
    """A ranking stage of the served funnel: features for its candidates -> the model's score."""

    def __init__(self, name: str, model, columns: tuple[str, ...], keep: int, features: Callable):
        self.name, self.model, self.columns, self.keep, self.features = name, model, columns, keep, features

    def score(self, candidates: Candidates) -> np.ndarray:
        columns = self.features(candidates)
        return self.model.predict_proba(pd.DataFrame({c: columns[c] for c in self.columns}))[:, 1]


def stage_features(features: PairFeatures, engagement: Engagement) -> tuple[Callable, Callable]:
    """The two stages' feature functions over a request's Candidates; stage 2 reuses stage 1's columns
    (kept in the candidates' cache, which `Candidates.take` carries along)."""

    def first(candidates: Candidates) -> dict[str, np.ndarray]:
        if "bm25" not in candidates.cache:
            candidates.cache.update(features.cheap(candidates.query, candidates.rows))
            candidates.cache.update(engagement.products(candidates.rows))
        return candidates.cache

    def second(candidates: Candidates) -> dict[str, np.ndarray]:
        columns = first(candidates)
        columns.update(engagement.pairs(candidates.query.original, candidates.rows))
        return columns

    return first, second


STAGE_COLUMNS = {"stage_1": STAGE1, "stage_2": STAGE2}
