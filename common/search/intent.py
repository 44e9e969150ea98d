"""Query intent: which category a query is after (the search chapter's "intent / domain classification"),
learnt from the logs: each click is a (query, category of the clicked item) example.

    intent = IntentClassifier().fit(queries, categories)     # one row per click
    intent.predict_proba(["red runing shoes"])                # (1, n_categories), columns intent.classes_
    intent.category_columns(["shoes", "kitchen"])              # each item's column: P(its category | query)

Character n-grams within words (2 to 4 letters) and whole words, TF-IDF weighted, into a multinomial
logistic regression: the character n-grams keep a misspelt query ("runing") close to its clicks, and the
classifier needs no vocabulary of its own. Its probability of an item's category is the ranking feature
"intent match"; its top category can also narrow retrieval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sklearn
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from common.search.query import normalise


class IntentClassifier:
    def __init__(self, C: float = 4.0, max_iter: int = 300, min_df: int = 2):
        self.C = C
        self.max_iter = max_iter
        self.min_df = min_df

    def _matrix(self, queries: Sequence[str]):
        texts = [normalise(q) for q in queries]
        return hstack([self.characters_.transform(texts), self.words_.transform(texts)]).tocsr()

    def fit(self, queries: Sequence[str], categories: Sequence[str]) -> IntentClassifier:
        texts = [normalise(q) for q in queries]
        if len(set(categories)) < 2:
            raise ValueError("the clicks name fewer than two categories: no intent to learn")
        self.characters_ = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 4), min_df=self.min_df, sublinear_tf=True, dtype=np.float32
        ).fit(texts)
        self.words_ = TfidfVectorizer(min_df=self.min_df, sublinear_tf=True, dtype=np.float32).fit(texts)
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(self._matrix(queries), categories)
        self.classes_ = self.model_.classes_
        self._column = {category: j for j, category in enumerate(self.classes_)}
        return self

    def predict_proba(self, queries: Sequence[str]) -> np.ndarray:
        """(len(queries), n_categories): P(category | query), columns in `classes_` order."""
        # Our own TF-IDF rows are finite and the parameters were checked at fit: scikit-learn's per-call
        # checks were a quarter of a served query's 1.2 ms here.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return self.model_.predict_proba(self._matrix(queries))

    def category_columns(self, categories: Sequence[str]) -> np.ndarray:
        """The column of `predict_proba` each category reads, -1 for a category no click ever had: an item's
        "intent match" is P(its category | query) = predict_proba(query)[column], 0 where -1."""
        return np.array([self._column.get(c, -1) for c in categories], dtype=np.int64)
