"""Known-answer tests of the multi-field BM25 index on tiny hand-built catalogues."""

import math

import numpy as np
import pytest

from common.search.inverted_index import InvertedIndex


def build(titles, descriptions=None, ids=None, title_weight=3.0):
    ids = np.arange(len(titles)) if ids is None else np.asarray(ids)
    descriptions = [""] * len(titles) if descriptions is None else descriptions
    return InvertedIndex.build(
        ids, {"title": titles, "description": descriptions}, {"title": title_weight, "description": 1.0}
    )


def test_lucene_bm25_known_value():
    index = build(["red lamp", "blue chair", "green sofa table"])
    ids, scores = index.search(["lamp"], k=10)
    # one field matches: idf = ln(1 + (3 - 1 + 0.5) / (1 + 0.5)), length 2 against the mean 7/3
    idf = math.log(1 + 2.5 / 1.5)
    bm25 = idf * 1 / (1 + 1.2 * (1 - 0.75 + 0.75 * 2 / (7 / 3)))
    assert ids.tolist() == [0]
    np.testing.assert_allclose(scores, [3.0 * bm25], rtol=1e-5)


def test_title_match_outranks_description_match_when_titles_weigh_more():
    # symmetric: "lamp" once in a two-word title (row 0) or once in a two-word description (row 1)
    titles, descriptions = ["lamp bright", "desk wooden"], ["oak finish", "lamp included"]
    ids, scores = build(titles, descriptions, title_weight=3.0).search(["lamp"], k=10)
    assert ids.tolist() == [0, 1]
    np.testing.assert_allclose(scores[0], 3 * scores[1], rtol=1e-5)
    assert build(titles, descriptions, title_weight=0.5).search(["lamp"], k=10)[0].tolist() == [1, 0]


def test_two_matched_terms_beat_one_at_equal_lengths():
    ids, _ = build(["red chair", "red lamp", "blue lamp"]).search(["red", "lamp"], k=10)
    assert ids[0] == 1 and sorted(ids[1:].tolist()) == [0, 2]


def test_shorter_document_wins_at_equal_term_counts():
    ids, scores = build(["lamp big heavy old", "lamp", "chair"]).search(["lamp"], k=10)
    assert ids.tolist() == [1, 0] and scores[0] > scores[1]


def test_unknown_word_and_empty_query_return_nothing():
    index = build(["red lamp", "blue chair"])
    for query in (["zebra"], [], [("zebra", "okapi")]):
        ids, scores = index.search(query, k=10)
        assert ids.shape == (0,) and scores.shape == (0,)
    assert index.search(["lamp", "zebra"], k=10)[0].tolist() == [0]  # unknown words are ignored, not fatal
    assert index.search(["lamp"], k=0)[0].tolist() == []
    with pytest.raises(TypeError, match="tokenise"):
        index.search("red lamp", k=10)


def test_field_scores_weighted_sum_is_the_search_score():
    titles = ["white sneakers", "red shoes", "white trainers", "blue lamp"]
    descriptions = ["comfy shoes for running", "", "white white white", "shoes lamp"]
    index = build(titles, descriptions, ids=[10, 20, 30, 40])
    query = [("sneakers", "trainers"), "white", "shoes"]
    ids, scores = index.search(query, k=10)
    per_field = index.field_scores(query, ids)
    assert per_field.shape == (len(ids), 2) and per_field.dtype == np.float32
    np.testing.assert_allclose(per_field @ np.array([3.0, 1.0]), scores, rtol=1e-5)
    # a non-matching id scores 0 in every field, in the order asked
    np.testing.assert_array_equal(index.field_scores(["sneakers"], np.array([20, 10]))[0], [0.0, 0.0])
    with pytest.raises(KeyError, match="99"):
        index.field_scores(query, np.array([10, 99]))


def test_or_group_finds_a_synonym_only_document():
    index = build(["white sneakers", "white trainers", "black boots"])
    ids, _ = index.search([("sneakers", "trainers"), ("white",)], k=10)
    assert sorted(ids.tolist()) == [0, 1]
    assert index.search(["sneakers"], k=10)[0].tolist() == [0]


def test_document_frequency_counts_documents_term_counts_occurrences():
    index = build(["white lamp", "red lamp"], ["white white white", "bright"])
    assert index.document_frequency()["white"] == 1  # title and description of one document
    assert index.document_frequency()["lamp"] == 2
    assert index.term_counts()["white"] == 4
    assert set(index.document_frequency()) == {"white", "lamp", "red", "bright"}


def test_save_load_round_trip(tmp_path):
    index = build(["white sneakers", "red shoes", "white trainers"], ["soft", "", "white"], ids=[5, 3, 9])
    index.save(tmp_path / "index")
    loaded = InvertedIndex.load(tmp_path / "index")
    assert len(loaded) == 3 and loaded.fields == ("title", "description")
    query = [("sneakers", "trainers"), "white"]
    for got, expected in zip(loaded.search(query, 10), index.search(query, 10), strict=True):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(loaded.field_scores(query, np.array([9, 3])), index.field_scores(query, [9, 3]))
    assert loaded.document_frequency() == index.document_frequency()
    assert loaded.term_counts() == index.term_counts()


def test_k_larger_than_the_matches_returns_only_matches():
    ids, scores = build(["red lamp", "blue chair", "red chair", "green sofa"]).search(["red"], k=50)
    assert sorted(ids.tolist()) == [0, 2] and (scores > 0).all()


def test_ids_are_the_callers_not_row_numbers():
    index = build(["blue chair", "red lamp", "red chair"], ids=[30, 10, 20])
    ids, _ = index.search(["red", "lamp"], k=10)
    assert ids.tolist() == [10, 20]
    assert index.field_scores(["lamp"], np.array([10, 30]))[:, 0].tolist()[1] == 0.0
    assert index.field_scores(["lamp"], np.array([10, 30]))[0, 0] > 0


def test_tokenises_documents_like_queries():
    ids, _ = build(["Café-Lamp, WHITE", "chair"]).search(["cafe", "white"], k=10)
    assert ids.tolist() == [0]


def test_rejects_inconsistent_input():
    with pytest.raises(ValueError, match="unique"):
        build(["a", "b"], ids=[1, 1])
    with pytest.raises(ValueError, match="texts"):
        InvertedIndex.build(np.arange(2), {"title": ["a"]}, {"title": 1.0})
    with pytest.raises(ValueError, match="weight"):
        InvertedIndex.build(np.arange(1), {"title": ["a"]}, {"body": 1.0})
    with pytest.raises(ValueError, match="positive"):
        InvertedIndex.build(np.arange(1), {"title": ["a"]}, {"title": 0.0})


def test_match_all_keeps_the_documents_holding_every_group_in_any_field():
    index = build(["red lamp", "red chair", "blue lamp"], ["", "", "red glass"])
    ids, scores = index.search(["red", "lamp"], k=10, match_all=True)
    assert sorted(ids.tolist()) == [0, 2]  # row 2 holds "red" in its description
    either = dict(zip(*index.search(["red", "lamp"], k=10), strict=True))
    np.testing.assert_allclose(scores, [either[i] for i in ids])  # the same scores, fewer documents
    assert index.search([("sofa", "lamp"), ("blue",)], k=10, match_all=True)[0].tolist() == [2]
    assert index.search(["red", "zebra"], k=10, match_all=True)[0].tolist() == []  # an unknown word: nothing


def test_an_and_query_scores_the_same_by_lookup_and_by_a_pass(monkeypatch):
    import common.search.inverted_index as inverted_index

    index = build(["red lamp", "red chair", "blue lamp", "red lamp shade"], ["", "lamp", "red glass", ""])
    by_lookup = index.search(["red", "lamp"], k=10, match_all=True)
    monkeypatch.setattr(inverted_index, "FEW_MATCHES", -1)  # every query takes the pass over the postings
    by_pass = index.search(["red", "lamp"], k=10, match_all=True)
    assert by_lookup[0].tolist() == by_pass[0].tolist()
    assert sorted(by_lookup[0].tolist()) == [0, 1, 2, 3]  # each holds both words, in one field or two
    np.testing.assert_allclose(by_lookup[1], by_pass[1], rtol=1e-6)


def test_an_and_query_holds_exactly_the_documents_with_a_word_of_every_group():
    """The words' bitmaps (unions within a group, intersections across groups) against a brute force."""
    rng = np.random.default_rng(4)
    words = ["red", "blue", "lamp", "chair", "glass", "oak"]
    titles = [" ".join(rng.choice(words, 3)) for _ in range(203)]
    descriptions = [" ".join(rng.choice(words, 2)) if i % 3 else "" for i in range(203)]
    index = build(titles, descriptions)
    queries = [["red", "lamp"], [("lamp", "chair"), "oak"], ["blue", ("glass", "zebra")], ["oak", "oak"], ["zebra"]]
    for query in queries:
        groups = [set(g) if isinstance(g, tuple) else {g} for g in query]
        texts = [set(f"{t} {d}".split()) for t, d in zip(titles, descriptions, strict=True)]
        holding = [i for i, text in enumerate(texts) if all(group & text for group in groups)]
        assert sorted(index.search(query, k=300, match_all=True)[0].tolist()) == holding
