"""The search funnel (the chapter's architecture): query understanding -> candidate sources -> fusion
(the blender) -> filters -> ranking stages, each keeping fewer candidates -> the page.

    sources = [TextSource(index), VectorSource(encode, ann, known=index.vocabulary)]
    funnel = SearchFunnel(understanding, sources, {"kind": "rrf"}, stages=[stage_1, stage_2])
    result = funnel.search("red runing shoes", k=10, keep=lambda rows: price[rows] < 50, timer=timer)
    result.rows, result.scores, result.sources, result.counts, result.query.corrected

Sources return catalogue rows with their own scores; the fusion (reciprocal rank fusion, or a weighted sum
of min-max scaled scores) blends them into one list and remembers which source found each row. Filters run
on the blended candidates, before any ranking, so the ranking is spent on what can be shown and a narrow
filter still fills the page. A stage scores its candidates (a `Stage` computes its own features from the
`Candidates`, which carry every source's score per row) and passes its best `keep` on; the last stage's
order is the page. With no stage, the fusion's order is the page (a system with no ranker yet).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from common.search.fusion import reciprocal_rank_fusion, weighted_score_fusion
from common.search.query import SpellCorrector, expand, relaxations, tokenise
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

    def understand(self, query: str) -> Understood:
        tokens = tokenise(query)
        corrected = self.speller.correct(tokens)[0] if self.speller is not None else tokens
        return Understood(query, tokens, corrected, expand(corrected, self.synonyms))


class Source(Protocol):
    name: str

    def search(self, query: Understood, k: int) -> tuple[np.ndarray, np.ndarray, Understood]:
        """(rows, scores) best first, and the query as the source used it (a relaxation, say)."""


class TextSource:
    """An inverted index (common.search.inverted_index) over the expanded query, every word required (one
    of its synonyms, in any field) as a search box does; when nothing holds them all, the query relaxed one
    word at a time (the least telling word dropped first); when even one word finds nothing, nothing."""

    def __init__(self, index, name: str = "bm25"):
        self.index, self.name = index, name
        self.document_frequency = index.document_frequency()  # once: relaxation orders words by it

    def search(self, query: Understood, k: int) -> tuple[np.ndarray, np.ndarray, Understood]:
        rows, scores = self.index.search(query.expanded, k, match_all=True)
        if len(rows) or len(query.corrected) < 2:
            return rows, scores, query
        for words in relaxations(query.corrected, self.document_frequency):
            groups = tuple(group for group in query.expanded if group[0] in words)
            rows, scores = self.index.search(groups, k, match_all=True)
            if len(rows):
                break
        # The relaxation that matched, or the last one tried (a single word) when none did.
        return rows, scores, Understood(query.original, query.tokens, query.corrected, groups, words)


class VectorSource:
    """A query encoder and an ANN index of the catalogue's vectors (inner product of unit vectors). A query
    holding no word the catalogue knows gets nothing: its vector would still have nearest neighbours, but
    of noise."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], ann, known: Container[str], name: str = "semantic"):
        self.encode, self.ann, self.known, self.name = encode, ann, known, name

    def search(self, query: Understood, k: int) -> tuple[np.ndarray, np.ndarray, Understood]:
        if not any(word in self.known for word in query.corrected):
            return np.zeros(0, np.int64), np.zeros(0), query
        scores, rows = self.ann.search(self.encode([query.text]), k)
        found = rows[0] >= 0  # faiss pads a short answer with -1
        return rows[0][found], scores[0][found], query


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
        page = np.argsort(-scores, kind="stable")[:k]
        candidates = candidates.take(page)
        return SearchResult(candidates.query, candidates.rows, scores[page], candidates.sources(), counts)
