"""Query understanding: known-answer cases for normalisation, spell correction (symspellpy over the
index's vocabulary), synonyms mined from clicks, expansion and relaxation."""

import pytest

from common.search.query import SpellCorrector, expand, mine_synonyms, normalise, relaxations, tokenise

VOCABULARY = {"red": 400, "running": 300, "shoes": 500, "shoe": 80, "jacket": 200, "rain": 150, "rung": 2, "bed": 90}


@pytest.fixture(scope="module")
def speller() -> SpellCorrector:
    return SpellCorrector.build(VOCABULARY)


def test_normalise_folds_case_accents_and_punctuation():
    assert normalise("  Café  CRÈME-brûlée!! 42 ") == "cafe creme brulee 42"
    assert tokenise("Red  Runing-Shoes!") == ("red", "runing", "shoes")
    assert tokenise("!!!") == ()


def test_unknown_words_go_to_the_most_frequent_closest_known_word(speller):
    assert speller.correct(("red", "runing", "shoos")) == (("red", "running", "shoes"), True)
    # "shoee" is one edit from "shoe" and from "shoes": the tie goes to the more frequent word;
    # "runng" is one edit from the rare "rung", two from "running": the closest word wins.
    assert speller.correct_word("shoee") == "shoes"
    assert speller.correct_word("runng") == "rung"
    assert speller.correct_word("jackett") == "jacket"


def test_known_words_numbers_and_hopeless_words_stay(speller):
    assert speller.correct(("red", "shoe", "42")) == (("red", "shoe", "42"), False)  # "shoe" is known
    assert speller.correct_word("xyzzyq") == "xyzzyq"
    # A short word gets one edit: "rde" -> "red" (a transposition is two plain edits, one Damerau edit).
    assert speller.correct_word("rde") == "red"
    assert speller.correct_word("bd") == "bed"


def test_synonyms_are_word_pairs_that_lead_to_the_same_clicks():
    log = [
        ("white sneakers", 1), ("white trainers", 1), ("white sneakers", 2), ("white trainers", 2),
        ("running sneakers", 3), ("running trainers", 3),
        ("kids sneakers", 4), ("kids trainers", 4),
        ("red shoes", 5), ("blue shoes", 6),  # one word apart, different clicks: not synonyms
        ("red boots", 7), ("red shoes", 7),  # shared clicks, but a single vote
    ]  # fmt: skip
    queries, clicks = zip(*log, strict=True)
    synonyms = mine_synonyms(queries, clicks, min_support=3)
    assert synonyms == {"sneakers": {"trainers"}, "trainers": {"sneakers"}}
    assert mine_synonyms(queries, clicks, min_support=1)["boots"] == {"shoes"}


def test_expansion_and_relaxation():
    synonyms = {"sneakers": {"trainers"}, "trainers": {"sneakers"}}
    assert expand(("white", "sneakers"), synonyms) == (("white",), ("sneakers", "trainers"))
    frequency = {"good": 900, "red": 300, "waterproof": 20, "jacket": 100}
    # The least telling word goes first: an unknown word, then the most common ones, never the last.
    assert relaxations(("good", "red", "waterproof", "jacket", "zzz"), frequency) == [
        ("good", "red", "waterproof", "jacket"),
        ("red", "waterproof", "jacket"),
        ("waterproof", "jacket"),
        ("waterproof",),
    ]
    assert relaxations(("jacket",), frequency) == []
