"""Fusion of the sources' relevance scores over every candidate, as funnel stages: the multimodal
video-search chapter's "re-rank based on weighted sum of rel scores" (ScoreFusion), and the same word by
word (WordFusion).

    stage = ScoreFusion([text_source, visual_source], {"text": 0.4, "visual": 0.6}, keep=100)
    SearchFunnel(understanding, sources, {"kind": "rrf"}, stages=[stage])

Fusing the sources' lists (common.search.fusion) only knows a source's score for what that source returned:
a video that text search ranked 400th for "rome" and the visual index 600th for "bedroom" is in neither top
300, though it is the one video of Rome showing a bedroom. Here each source scores every candidate of the
union (BM25 of its text, cosine of its vector: what `score(query, rows)` of a source computes), each source's
scores are min-max scaled over the candidates (BM25 is unbounded, cosine in [-1, 1]), and the weighted sum
orders them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from common.search.funnel import Candidates
from common.search.fusion import min_max


@dataclass
class ScoreFusion:
    sources: Sequence  # each with a name and score(query, rows) -> (n,) scores
    weights: Mapping[str, float]  # source name -> weight
    keep: int
    name: str = "weighted_sum"

    def __post_init__(self) -> None:
        missing = {source.name for source in self.sources} - set(self.weights)
        if missing:
            raise ValueError(f"no weight for the sources {sorted(missing)}")

    def score(self, candidates: Candidates) -> np.ndarray:
        total = np.zeros(len(candidates.rows))
        for source in self.sources:
            total += self.weights[source.name] * min_max(source.score(candidates.query, candidates.rows))
        return total


@dataclass
class WordFusion:
    """Fusion word by word: a video fits a query when it holds each of its words somewhere, in its text or in
    its frames (the multimodal counterpart of a search box requiring every word). A word's evidence is the
    larger of its BM25 in the video's text (scaled by the best candidate's) and its visual score: the cosine of
    the word alone with the video's vector, min-max scaled over the candidates and weighted by how visual the
    word is (`visualness`, measured on training pairs: a place name never shows in frames, "kitchen" does).
    A candidate's score is the mean evidence over the query's words.

    Why not the whole query's weighted sum: for "rome bedroom", a video of Rome whose frames show a bedroom
    and a video anywhere whose text says "bedroom" get the same half of the text score and the same visual
    score; only per word does the first hold both words and the second one."""

    text: object  # a TextSource: its index scores each word group
    visual: object  # a VectorSource with the catalogue's vectors
    visualness: dict[str, float]  # word -> [0, 1]; words not listed count 0
    keep: int
    name: str = "word_fusion"

    def score(self, candidates: Candidates) -> np.ndarray:
        groups = candidates.query.expanded
        if not groups or not len(candidates.rows):
            return np.zeros(len(candidates.rows))
        index = self.text.index
        text = index.group_scores(groups, candidates.rows) @ index.weights  # (n_groups, n)
        text = text / np.maximum(text.max(axis=1, keepdims=True), 1e-12)
        words = [group[0] for group in groups]
        weight = np.array([self.visualness.get(word, 0.0) for word in words])
        visual = np.zeros_like(text)
        if weight.any():
            cosines = np.asarray(self.visual.vectors[candidates.rows], np.float32) @ self.visual.encode(words).T
            visual = weight[:, None] * np.stack([min_max(column) for column in cosines.T])
        return np.maximum(text, visual).mean(axis=0)


def visualness(
    encode, vectors: np.ndarray, queries: Sequence[str], items: np.ndarray, min_count: int = 5, seed: int = 0
) -> dict[str, float]:
    """How well the visual index tells apart the items holding each word: for every word of at least
    `min_count` training queries, the AUC of the word's cosine with the queries' annotated items against as
    many random items, as 2 x AUC - 1 clipped to [0, 1] (0: the frames say nothing of it, 1: they always do)."""
    from common.evaluation.metrics import auc
    from common.search.query import tokenise

    rng = np.random.default_rng(seed)
    holders: dict[str, list[int]] = {}
    for query, item in zip(queries, np.asarray(items), strict=True):
        for word in set(tokenise(query)):
            holders.setdefault(word, []).append(int(item))
    words = sorted(word for word, held in holders.items() if len(held) >= min_count)
    if not words:
        return {}
    word_vectors = encode(words)  # (n_words, dim)
    out = {}
    for word, vector in zip(words, word_vectors, strict=True):
        positives = rng.choice(holders[word], min(len(holders[word]), 200), replace=False)
        negatives = rng.integers(0, len(vectors), len(positives))
        cosines = np.asarray(vectors[np.concatenate([positives, negatives])], np.float32) @ vector
        labels = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
        out[word] = float(np.clip(2 * auc(labels, cosines) - 1, 0, 1))
    return out
