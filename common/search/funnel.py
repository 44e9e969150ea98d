"""The search funnel (the chapter's architecture): query understanding -> candidate sources -> fusion
(the blender) -> filters -> ranking stages, each keeping fewer candidates -> re-ranking rules -> the page.

    sources = [TextSource(index), VectorSource(encode, ann, known=index.vocabulary)]
    funnel = SearchFunnel(understanding, sources, {"kind": "rrf"}, stages=[stage_1, stage_2])
    result = funnel.search("red runing shoes", k=10, keep=lambda rows: price[rows] < 50, timer=timer)
    result.rows, result.scores, result.sources, result.counts, result.query.corrected

Sources return catalogue rows with their own scores; the fusion (reciprocal rank fusion, or a weighted sum
of min-max scaled scores) blends them into one list and remembers which source found each row. Filters run
on the blended candidates, before any ranking, so the ranking is spent on what can be shown and a narrow
filter still fills the page. A stage scores its candidates (a `Stage` computes its own features from the
`Candidates`, which carry every source's score per row) and passes its best `keep` on; the last stage's
order is the page. With no stage, the fusion's order is the page (a system with no ranker yet). Re-ranking
rules (common.funnel.reranking's steps: age, region, caps per channel...) see the searcher's attributes
(`SearchContext`) and move or drop what the last stage ordered.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from common.funnel.reranking import Slate
from common.search.fusion import reciprocal_rank_fusion, weighted_score_fusion
from common.search.query import SpellCorrector, expand, mine_synonyms, relaxations, tokenise
from common.serving.timing import StageTimer


@dataclass(frozen=True)
class Understood:
    """What query understanding made of a query."""

    original: str
    tokens: tuple[str, ...]  # normalised
    corrected: tuple[str, ...]  # after spell correction
    expanded: tuple[tuple[str, ...], ...]  # each corrected word with its synonyms
    relaxed: tuple[str, ...] | None = None  # the words kept when the whole query matched nothing

    @property
    def was_corrected(self) -> bool:
        return self.corrected != self.tokens

    @property
    def text(self) -> str:
        """The query the semantic sources read: corrected, not expanded (encoders know synonyms)."""
        return " ".join(self.corrected)


@dataclass
class QueryUnderstanding:
    speller: SpellCorrector | None
    synonyms: Mapping[str, set[str]]
    document_frequency: Mapping[str, int]

    @classmethod
    def build(
        cls,
        index,
        queries: Sequence[str],
        engaged: tuple[Sequence[str], Sequence],
        spelling: Mapping,
        synonyms: Mapping,
    ) -> QueryUnderstanding:
        """The speller knows the index's words, each counted by how often `queries` use it (plus one, so a word
        no query used yet still corrects); synonyms are mined from the engaged (query, item) pairs: queries
        that lead to the same items (common.search.query.mine_synonyms, its options in `synonyms`)."""
        counts = dict.fromkeys(index.term_counts(), 1)
        for query in queries:
            for word in tokenise(query):
                if word in counts:
                    counts[word] += 1
        speller = SpellCorrector.build(counts, **spelling)
        mined = mine_synonyms(list(engaged[0]), list(engaged[1]), **synonyms)
        return cls(speller, mined, index.document_frequency())

    def understand(self, query: str) -> Understood:
        tokens = tokenise(query)
        corrected = self.speller.correct(tokens)[0] if self.speller is not None else tokens
        return Understood(query, tokens, corrected, expand(corrected, self.synonyms))


class Source(Protocol):
    name: str

    def search(self, query: Understood, k: int) -> tuple[np.ndarray, np.ndarray, Understood]:
        """(rows, scores) best first, and the query as the source used it (a relaxation, say)."""


class TextSource:
    """An inverted index (common.search.inverted_index) over the expanded query.

    match_all (a shop's search box): every word required (one of its synonyms, in any field); when nothing
    holds them all, the query relaxed one word at a time (the least telling word dropped first); when even one
    word finds nothing, nothing. Otherwise (Elasticsearch's default match query): any word matches, and BM25
    puts the documents holding more of the query first, so nothing needs relaxing."""

    def __init__(self, index, name: str = "bm25", match_all: bool = True):
        self.index, self.name, self.match_all = index, name, match_all
        self.document_frequency = index.document_frequency()  # once: relaxation orders words by it

    def search(self, query: Understood, k: int) -> tuple[np.ndarray, np.ndarray, Understood]:
        rows, scores = self.index.search(query.expanded, k, match_all=self.match_all)
        if len(rows) or len(query.corrected) < 2 or not self.match_all:
            return rows, scores, query
        for words in relaxations(query.corrected, self.document_frequency):
            groups = tuple(group for group in query.expanded if group[0] in words)
            rows, scores = self.index.search(groups, k, match_all=True)
            if len(rows):
                break
        # The relaxation that matched, or the last one tried (a single word) when none did.
        return rows, scores, Understood(query.original, query.tokens, query.corrected, groups, words)

    def score(self, query: Understood, rows: np.ndarray) -> np.ndarray:
        """The fused BM25 of any rows, found by this source or not (0 for a row holding no query word)."""
        return self.index.field_scores(query.expanded, rows) @ self.index.weights


class VectorSource:
    """A query encoder and an ANN index of the catalogue's vectors (inner product of unit vectors). A query
    holding no word the catalogue knows gets nothing: its vector would still have nearest neighbours, but
    of noise. With the catalogue's `vectors` (by row) it also scores rows it did not return."""

    def __init__(
        self,
        encode: Callable[[list[str]], np.ndarray],
        ann,
        known: Container[str],
        name: str = "semantic",
        vectors: np.ndarray | None = None,
    ):
        self.encode, self.ann, self.known, self.name, self.vectors = encode, ann, known, name, vectors

    def search(self, query: Understood, k: int) -> tuple[np.ndarray, np.ndarray, Understood]:
        if not self._knows(query):
            return np.zeros(0, np.int64), np.zeros(0), query
        scores, rows = self.ann.search(self.encode([query.text]), k)
        found = rows[0] >= 0  # faiss pads a short answer with -1
        return rows[0][found], scores[0][found], query

    def score(self, query: Understood, rows: np.ndarray) -> np.ndarray:
        """The cosine of the query with any rows (0 for every row when the query holds no known word)."""
        if self.vectors is None:
            raise ValueError(f"source {self.name!r} has no catalogue vectors to score rows with")
        if not self._knows(query):
            return np.zeros(len(rows))
        return np.asarray(self.vectors[rows], np.float32) @ self.encode([query.text])[0]

    def _knows(self, query: Understood) -> bool:
        return any(word in self.known for word in query.corrected)


@dataclass
class Candidates:
    """The blended candidates of one request: rows, the fused score, each source's score (NaN where
    the source did not return the row), which sources found each, and a cache the stages share."""

    query: Understood
    rows: np.ndarray
    fused: np.ndarray
    source_scores: dict[str, np.ndarray]
    cache: dict = field(default_factory=dict)

    def take(self, positions: np.ndarray) -> Candidates:
        cache = {name: values[positions] for name, values in self.cache.items()}
        scores = {name: values[positions] for name, values in self.source_scores.items()}
        return Candidates(self.query, self.rows[positions], self.fused[positions], scores, cache)

    def sources(self) -> list[tuple[str, ...]]:
        found = {name: ~np.isnan(values) for name, values in self.source_scores.items()}
        return [tuple(name for name in found if found[name][i]) for i in range(len(self.rows))]


class Stage(Protocol):
    name: str
    keep: int  # how many of its best candidates it passes on

    def score(self, candidates: Candidates) -> np.ndarray: ...


@dataclass(frozen=True)
class SearchContext:
    """Who searches, as the re-ranking rules read it (age, country...); `now_s` for rules about time."""

    attributes: Mapping = field(default_factory=dict)
    now_s: float = float("inf")


@dataclass
class SearchResult:
    query: Understood
    rows: np.ndarray
    scores: np.ndarray
    sources: list[tuple[str, ...]]
    counts: dict[str, dict[str, int]]


def blend(results: Mapping[str, tuple[np.ndarray, np.ndarray]], fusion: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """The fused (rows, scores) of every source's list, as the config names it."""
    if fusion["kind"] == "rrf":
        return reciprocal_rank_fusion({name: rows for name, (rows, _) in results.items()}, fusion.get("k", 60))
    if fusion["kind"] == "weighted":
        return weighted_score_fusion(results, fusion["weights"])
    raise ValueError(f"unknown fusion {fusion['kind']!r}: rrf or weighted")


@dataclass
class SearchFunnel:
    understanding: QueryUnderstanding
    sources: Sequence[Source]
    fusion: Mapping
    stages: Sequence[Stage] = ()
    per_source: int = 500  # candidates each source returns
    re_ranking: Sequence[tuple[str, object]] = ()  # (name, step) of common.funnel.reranking.build_steps
    catalog: object = None  # the ItemTable the re-ranking steps read columns from

    def candidates(self, query: str, timer: StageTimer) -> tuple[Candidates, dict]:
        with timer.stage("understanding"):
            understood = self.understanding.understand(query)
        results, counts = {}, {}
        for source in self.sources:
            with timer.stage(source.name):
                rows, scores, used = source.search(understood, self.per_source)
            if used.relaxed is not None:
                understood = used
            results[source.name] = (rows, scores)
            counts[source.name] = {"in": 0, "out": len(rows)}
        with timer.stage("fusion"):
            rows, fused = blend(results, self.fusion)
            source_scores = {}
            for name, (found, scores) in results.items():
                column = np.full(len(rows), np.nan)
                order = np.argsort(found, kind="stable")
                at = np.searchsorted(found[order], rows)
                hit = at < len(found)
                hit[hit] = found[order][at[hit]] == rows[hit]
                column[hit] = scores[order][at[hit]]
                source_scores[name] = column
        counts["fusion"] = {"in": sum(len(r) for r, _ in results.values()), "out": len(rows)}
        return Candidates(understood, rows, fused, source_scores), counts

    def search(
        self,
        query: str,
        k: int,
        keep: Callable[[np.ndarray], np.ndarray] | None = None,
        timer: StageTimer | None = None,
        context: SearchContext | None = None,
    ) -> SearchResult:
        timer = timer or StageTimer()
        candidates, counts = self.candidates(query, timer)
        if keep is not None:
            with timer.stage("filter"):
                allowed = np.asarray(keep(candidates.rows), bool)
            counts["filter"] = {"in": len(candidates.rows), "out": int(allowed.sum())}
            candidates = candidates.take(np.flatnonzero(allowed))
        scores = candidates.fused
        for stage in self.stages:
            with timer.stage(stage.name):
                scores = stage.score(candidates) if len(candidates.rows) else np.zeros(0)
                best = np.argsort(-scores, kind="stable")[: stage.keep]
            counts[stage.name] = {"in": len(candidates.rows), "out": len(best)}
            candidates, scores = candidates.take(best), scores[best]
        keys = scores
        if self.re_ranking:
            candidates, scores, keys = self._re_rank(candidates, scores, context or SearchContext(), timer, counts)
        page = np.argsort(-keys, kind="stable")[:k]
        candidates = candidates.take(page)
        return SearchResult(candidates.query, candidates.rows, scores[page], candidates.sources(), counts)

    def _re_rank(
        self, candidates: Candidates, scores: np.ndarray, context: SearchContext, timer: StageTimer, counts: dict
    ) -> tuple[Candidates, np.ndarray, np.ndarray]:
        """The rules in order over the ranked candidates: (the candidates they kept, their scores, their
        ordering keys)."""
        slate = Slate(candidates.rows, scores, scores)
        for name, step in self.re_ranking:
            with timer.stage(name):
                moved = step(context, self.catalog, slate)
            counts[name] = {"in": len(slate.rows), "out": len(moved.rows)}
            slate = moved
        order = np.argsort(candidates.rows)  # candidates hold a row once: its position by binary search
        positions = order[np.searchsorted(candidates.rows, slate.rows, sorter=order)]
        return candidates.take(positions), slate.scores, slate.keys
