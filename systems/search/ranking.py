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

from common.search.funnel import Candidates, Understood
from systems.search.features import CatalogueColumns, Engagement


@dataclass
class PairFeatures:
    catalogue: CatalogueColumns
    index: object  # common.search.inverted_index.InvertedIndex over the catalogue's rows
    product_vectors: np.ndarray  # (n_products, dim) unit rows of the semantic encoder
    encode_query: Callable[[list[str]], np.ndarray]
    intent: object | None  # common.search.intent.IntentClassifier, None without categories

    def __post_init__(self):
        # What depends on the query alone, once per distinct query text (head queries repeat).
        self._query_side = lru_cache(maxsize=4096)(lambda text: self.query_side([text]))
        # Each product's category as a column of the intent classifier's probabilities (-1: no click had it).
        if self.intent is not None:
            self._intent_column = self.intent.category_columns(self.catalogue.category)

    def query_vectors(self, texts: list[str]) -> np.ndarray:
        """The encoder's vectors of texts, one text through the cache the features read (the semantic source
        and stage 1 then encode a request's query once)."""
        if len(texts) == 1:
            return self._query_side(texts[0])[0]
        return self.encode_query(texts)

    def query_side(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """(len(texts), dim) query vectors and (len(texts), n_categories) P(category | query), or None."""
        probabilities = self.intent.predict_proba(texts) if self.intent is not None else None
        return self.encode_query(texts), probabilities

    def cheap(self, query: Understood, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The columns of one request's candidates."""
        return self.cheap_many([query], np.zeros(len(rows), np.int64), rows, self._query_side(query.text))

    def cheap_many(self, queries: list[Understood], query_of: np.ndarray, rows: np.ndarray, query_side=None) -> dict:
        """The columns of many (query, product) pairs at once (training examples): pair i is
        (queries[query_of[i]], rows[i]). The same code serves one request, so training and serving agree.

        BM25 per field is the sum over the query's words (with their synonyms) of each word's BM25; the
        coverages are the share of those words a product holds in its title, and anywhere: what tells an
        exact match (every word: the brand, the colour, the size) from a substitute."""
        vectors, intent = query_side if query_side is not None else self.query_side([q.text for q in queries])
        fields = np.zeros((len(rows), len(self.index.fields)), np.float32)
        title, anywhere = np.zeros(len(rows)), np.zeros(len(rows))
        for q, at in _by_query(query_of):
            groups = queries[q].expanded
            if not groups:
                continue
            scores = self.index.group_scores(groups, rows[at])  # (groups, pairs, fields)
            fields[at] = scores.sum(axis=0)
            title[at] = (scores[:, :, self.index.fields.index("title")] > 0).mean(axis=0)
            anywhere[at] = (scores.sum(axis=2) > 0).mean(axis=0)
        columns = {f"bm25_{name}": fields[:, j] for j, name in enumerate(self.index.fields)}
        columns["bm25"] = fields @ self.index.weights
        columns["semantic"] = np.einsum("ij,ij->i", self.product_vectors[rows], vectors[query_of])
        columns["intent_match"] = np.full(len(rows), np.nan)
        if intent is not None:
            column = self._intent_column[rows]
            columns["intent_match"] = np.where(column >= 0, intent[query_of, np.maximum(column, 0)], 0.0)
        columns["title_coverage"] = title
        columns["query_coverage"] = anywhere
        columns["log_reviews"] = self.catalogue.log_reviews[rows]
        columns["rating"] = self.catalogue.rating[rows]
        columns["price"] = self.catalogue.price[rows]
        columns["available"] = self.catalogue.available[rows]
        return columns


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
        # Column -> array, no DataFrame: building one for a few hundred rows cost 0.5 ms a stage.
        return self.model.predict_proba({c: columns[c] for c in self.columns})[:, 1]


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
