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


def test_probabilities_sum_to_one_and_match_reads_the_category_column():
    intent = fitted()
    p = intent.predict_proba(["chef knife", "speaker"])
    assert np.allclose(p.sum(axis=1), 1.0)
    matched = intent.match(["chef knife", "chef knife", "speaker"], ["kitchen", "shoes", "electronics"])
    column = {c: j for j, c in enumerate(intent.classes_)}
    assert matched[0] == pytest.approx(p[0, column["kitchen"]])
    assert matched[1] == pytest.approx(p[0, column["shoes"]])
    assert matched[2] == pytest.approx(p[1, column["electronics"]])
    assert matched[0] > matched[1]


def test_a_category_no_click_had_matches_nothing():
    assert fitted().match(["chef knife"], ["garden"])[0] == 0.0


def test_one_category_is_no_intent():
    with pytest.raises(ValueError, match="fewer than two"):
        IntentClassifier().fit(["a", "b"], ["shoes", "shoes"])
