"""The search funnel on a hand-built catalogue with the real index, speller and faiss: understanding,
AND-matching with relaxation, the semantic source's refusal of unknown words, fusion, filters, stages."""

import numpy as np
import pytest

from common.retrieval.ann import ANNIndex
from common.search.funnel import QueryUnderstanding, SearchFunnel, TextSource, VectorSource
from common.search.inverted_index import InvertedIndex
from common.search.query import SpellCorrector, tokenise
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
