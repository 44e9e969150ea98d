"""The search funnel on a hand-built catalogue with the real index, speller and faiss: understanding,
AND-matching with relaxation, any-word matching, the semantic source's refusal of unknown words, fusion
of lists and of every candidate's scores, filters, stages, re-ranking rules."""

import numpy as np
import pytest

from common.funnel.catalog import ItemTable
from common.funnel.reranking import build_steps
from common.retrieval.ann import ANNIndex
from common.search.funnel import (
    Candidates,
    QueryUnderstanding,
    SearchContext,
    SearchFunnel,
    TextSource,
    VectorSource,
)
from common.search.inverted_index import InvertedIndex
from common.search.query import SpellCorrector, tokenise
from common.search.score_fusion import ScoreFusion
from common.serving.timing import StageTimer

TITLES = [
    "red running sneakers",
    "white running trainers",
    "red leather boots",
    "blue denim jacket",
    "red wool jacket",
    "white ceramic mug",
]
PRICES = np.array([50.0, 60.0, 120.0, 80.0, 90.0, 10.0])


class BagOfWords:
    """A stand-in text encoder: unit vectors of word counts over the catalogue's words."""

    def __init__(self, texts):
        self.words = sorted({w for t in texts for w in tokenise(t)})

    def __call__(self, texts) -> np.ndarray:
        out = np.zeros((len(texts), len(self.words)), np.float32)
        for i, text in enumerate(texts):
            for word in tokenise(text):
                if word in self.words:
                    out[i, self.words.index(word)] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


class PriceStage:
    """A stage that prefers the cheaper candidates, keeping `keep`."""

    name = "cheapest"

    def __init__(self, keep):
        self.keep = keep

    def score(self, candidates):
        return -PRICES[candidates.rows]


@pytest.fixture(scope="module")
def funnel():
    ids = np.arange(len(TITLES))
    index = InvertedIndex.build(ids, {"title": TITLES}, {"title": 1.0})
    encode = BagOfWords(TITLES)
    ann = ANNIndex.build(ids, encode(TITLES))
    speller = SpellCorrector.build(index.term_counts())
    understanding = QueryUnderstanding(speller, {"sneakers": {"trainers"}, "trainers": {"sneakers"}}, {})
    sources = [TextSource(index), VectorSource(encode, ann, index.vocabulary)]
    return SearchFunnel(understanding, sources, {"kind": "rrf"}, per_source=10)


def test_a_misspelt_query_is_corrected_and_every_word_is_required(funnel):
    candidates, counts = funnel.candidates("red runing sneakers", StageTimer())
    assert candidates.query.corrected == ("red", "running", "sneakers") and candidates.query.was_corrected
    bm25 = candidates.rows[~np.isnan(candidates.source_scores["bm25"])]
    assert bm25.tolist() == [0]  # only row 0 holds red, running and sneakers (or trainers)
    assert counts["bm25"]["out"] == 1 and counts["fusion"]["out"] == len(candidates.rows)


def test_synonyms_find_the_other_word(funnel):
    candidates, _ = funnel.candidates("white running sneakers", StageTimer())
    bm25 = candidates.rows[~np.isnan(candidates.source_scores["bm25"])]
    assert bm25.tolist() == [1]  # "trainers" stands for "sneakers"


def test_when_no_product_holds_every_word_the_least_telling_word_is_dropped(funnel):
    candidates, _ = funnel.candidates("red denim jacket", StageTimer())
    # No red denim jacket: "red" is the most frequent word, dropped first -> denim jacket.
    assert candidates.query.relaxed == ("denim", "jacket")
    assert candidates.rows[~np.isnan(candidates.source_scores["bm25"])].tolist() == [3]


def test_a_query_of_unknown_words_matches_nothing_from_any_source(funnel):
    result = funnel.search("qzxv wqyj", k=5)
    assert len(result.rows) == 0 and result.counts["semantic"]["out"] == 0
    assert result.query.relaxed is not None  # the relaxation was tried


def test_fusion_remembers_who_found_each_product(funnel):
    result = funnel.search("red jacket", k=10)
    sources = dict(zip(result.rows.tolist(), result.sources, strict=True))
    assert sources[4] == ("bm25", "semantic")  # red wool jacket: both, so first
    assert result.rows[0] == 4
    assert sources[3] == ("semantic",)  # blue denim jacket: near in words, lacks "red"
    assert np.all(np.diff(result.scores) <= 0)


def test_filters_run_before_the_stages_and_stages_keep_their_best(funnel):
    stage = PriceStage(keep=2)
    staged = SearchFunnel(funnel.understanding, funnel.sources, funnel.fusion, [stage], per_source=10)
    result = staged.search("red", k=10, keep=lambda rows: PRICES[rows] < 100)
    assert np.all(PRICES[result.rows] < 100)
    # The semantic source brings every product (six in all): the two cheapest under 100 are the mug and row 0.
    assert result.rows.tolist() == [5, 0]
    assert result.counts["filter"]["out"] <= result.counts["filter"]["in"]
    assert result.counts["cheapest"] == {"in": result.counts["filter"]["out"], "out": 2}


def test_any_word_matching_ranks_the_documents_holding_more_words_first(funnel):
    index = funnel.sources[0].index
    source = TextSource(index, "text", match_all=False)
    rows, _, used = source.search(funnel.understanding.understand("red ceramic mug"), 10)
    assert rows[0] == 5  # the mug holds two of the words
    assert set(rows[1:].tolist()) == {0, 2, 4}  # the red things, each one word
    assert used.relaxed is None  # nothing to relax: no word is required


def test_score_fusion_scores_every_candidate_by_every_source(funnel):
    """A row the text source did not return still gets its text score (0 here), and the semantic source
    scores the rows only BM25 found: the weights move the order."""
    text, semantic = (
        funnel.sources[0],
        VectorSource(
            funnel.sources[1].encode,
            funnel.sources[1].ann,
            funnel.sources[1].known,
            "semantic",
            BagOfWords(TITLES)(TITLES),
        ),
    )
    query = funnel.understanding.understand("red jacket")
    rows = np.array([3, 4, 0])  # blue denim jacket, red wool jacket, red running sneakers
    # Cosines of (red, jacket) with the rows' word counts: 1, 2 and 1 shared words over three-word titles.
    np.testing.assert_allclose(semantic.score(query, rows), np.array([1, 2, 1]) / np.sqrt(6), rtol=1e-5)
    bm25 = text.score(query, rows)
    assert bm25[1] > bm25[0] > 0 and bm25[2] > 0  # both words against one
    candidates = Candidates(query, rows, np.zeros(3), {"bm25": np.full(3, np.nan), "semantic": np.full(3, np.nan)})
    by_text = ScoreFusion([text, semantic], {"bm25": 1.0, "semantic": 0.0}, keep=3).score(candidates)
    by_meaning = ScoreFusion([text, semantic], {"bm25": 0.0, "semantic": 1.0}, keep=3).score(candidates)
    np.testing.assert_allclose(by_meaning, [0.0, 1.0, 0.0], atol=1e-6)  # min-max scaled over the candidates
    np.testing.assert_allclose(by_text, (bm25 - bm25.min()) / (bm25.max() - bm25.min()), rtol=1e-5)
    halves = ScoreFusion([text, semantic], {"bm25": 0.5, "semantic": 0.5}, keep=3).score(candidates)
    np.testing.assert_allclose(halves, (by_text + by_meaning) / 2, rtol=1e-5)
    with pytest.raises(ValueError, match="no weight"):
        ScoreFusion([text, semantic], {"bm25": 1.0}, keep=3)


def test_re_ranking_rules_read_the_searcher_and_come_after_the_stages(funnel):
    """A minimum-age rule drops what the searcher may not see; a cap keeps one product per colour."""
    colour = np.array(["red", "white", "red", "blue", "red", "white"])
    minimum_age = np.array([0, 0, 18, 0, 0, 0])
    catalog = ItemTable(np.arange(len(TITLES)), {"colour": colour, "minimum_age": minimum_age})
    rules = build_steps(
        [
            {"step": "min_age", "user": "age", "item": "minimum_age"},
            {"step": "group_cap", "item": "colour", "max_per_group": 1},
        ],
        catalog,
    )
    ruled = SearchFunnel(
        funnel.understanding, funnel.sources, funnel.fusion, per_source=10, re_ranking=rules, catalog=catalog
    )
    everything = ruled.search("red", k=10, context=SearchContext({"age": 30}))
    assert len(set(colour[everything.rows])) == len(everything.rows)  # one per colour
    assert everything.rows[0] == funnel.search("red", k=1).rows[0]  # the best one stays first
    young = ruled.search("red boots", k=10, context=SearchContext({"age": 12}))
    assert 2 not in young.rows and young.counts["min_age"]["out"] < young.counts["min_age"]["in"]
    assert 2 in ruled.search("red boots", k=10, context=SearchContext({"age": 30})).rows
