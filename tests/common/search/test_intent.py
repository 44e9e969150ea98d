import numpy as np
import pytest

from common.search.intent import IntentClassifier

CLICKS = [
    ("running shoes", "shoes"),
    ("white sneakers", "shoes"),
    ("leather boots", "shoes"),
    ("trail running shoes", "shoes"),
    ("kitchen knife", "kitchen"),
    ("chef knife set", "kitchen"),
    ("non stick frying pan", "kitchen"),
    ("cast iron pan", "kitchen"),
    ("wireless headphones", "electronics"),
    ("bluetooth speaker", "electronics"),
    ("noise cancelling headphones", "electronics"),
    ("portable speaker", "electronics"),
] * 3


def fitted() -> IntentClassifier:
    queries, categories = zip(*CLICKS, strict=True)
    return IntentClassifier(min_df=1).fit(queries, categories)


def test_the_clicked_category_is_the_most_likely_even_misspelt():
    intent = fitted()
    for query, expected in [("runing shoes", "shoes"), ("frying pann", "kitchen"), ("headphnes", "electronics")]:
        assert intent.classes_[intent.predict_proba([query]).argmax()] == expected


def test_probabilities_sum_to_one_and_each_category_has_its_column():
    intent = fitted()
    p = intent.predict_proba(["chef knife", "speaker"])
    assert np.allclose(p.sum(axis=1), 1.0)
    columns = intent.category_columns(["kitchen", "shoes", "electronics", "garden"])
    assert [intent.classes_[c] for c in columns[:3]] == ["kitchen", "shoes", "electronics"]
    assert columns[3] == -1  # no click had the category
    assert p[0, columns[0]] > p[0, columns[1]]  # a chef knife is kitchen, not shoes


def test_one_category_is_no_intent():
    with pytest.raises(ValueError, match="fewer than two"):
        IntentClassifier().fit(["a", "b"], ["shoes", "shoes"])
