"""Video search's two sources and their fusion (chapter sections 6-7), as a training builds them and serving
loads them.

    text    BM25 over the title, description and tags (any query word matches, as Elasticsearch's match
            query does), behind query understanding (spell correction, synonyms mined from the pairs)
    visual  the query text encoder's vector against the video encoder's vectors in faiss
    fusion  "word": each query word held in a video's text or shown in its frames, the mean over the words;
            "weighted_sum": both sources score every candidate of the union for the whole query, the weighted
            sum orders them; "rrf": reciprocal rank fusion of the two lists (common/search/score_fusion.py,
            common/search/fusion.py)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common.retrieval.ann import ANNIndex
from common.search.funnel import QueryUnderstanding, SearchFunnel, TextSource, VectorSource
from common.search.inverted_index import InvertedIndex
from common.search.query import tokenise
from common.search.score_fusion import ScoreFusion, WordFusion, visualness
from common.search.video_encoder import VideoTextEncoder

log = logging.getLogger(__name__)
TEXT, VISUAL = "text", "visual"
FUSIONS = ("word", "weighted_sum", "rrf")


def index_fields(videos: pd.DataFrame) -> dict[str, list[str]]:
    """The text BM25 reads, per field; a tag such as "lets-play" reads as the words queries type."""
    return {
        "title": videos["title"].tolist(),
        "description": videos["description"].tolist(),
        "tags": [" ".join(tag.replace("-", " ") for tag in tags) for tags in videos["tags"]],
    }


@dataclass(frozen=True)
class Fusion:
    """A blend of the two sources: its kind and, for the weighted sum, the text source's weight."""

    kind: str  # one of FUSIONS
    text_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in FUSIONS:
            raise ValueError(f"unknown fusion {self.kind!r}: one of {FUSIONS}")
        if not 0 <= self.text_weight <= 1:
            raise ValueError(f"text_weight must be in [0, 1], got {self.text_weight}")


@dataclass
class VideoRetrieval:
    """What a request needs to find videos: the text index, query understanding, the encoder and the
    visual index with the videos' vectors (by catalogue row)."""

    index: InvertedIndex
    understanding: QueryUnderstanding
    encoder: VideoTextEncoder
    ann: ANNIndex
    vectors: np.ndarray
    known: frozenset[str]  # words the encoder was trained on or the catalogue holds
    visualness: dict[str, float]  # word -> how well the visual index finds the videos holding it, [0, 1]

    def sources(self) -> dict[str, TextSource | VectorSource]:
        return {
            TEXT: TextSource(self.index, TEXT, match_all=False),
            VISUAL: VectorSource(self.encoder.encode_texts, self.ann, self.known, VISUAL, self.vectors),
        }

    def funnel(
        self,
        config: dict,
        fusion: Fusion | None,
        only: str | None = None,
        re_ranking: list | None = None,
        catalog=None,
    ) -> SearchFunnel:
        """The funnel of one blend, or of one source alone (`only`, no fusion: the source's own order)."""
        sources = self.sources()
        serving = config["serving"]
        listed = [sources[only]] if only else list(sources.values())
        stages = []
        if fusion is not None and fusion.kind == "weighted_sum":
            weights = {TEXT: fusion.text_weight, VISUAL: 1 - fusion.text_weight}
            stages = [ScoreFusion(list(sources.values()), weights, serving["keep"])]
        elif fusion is not None and fusion.kind == "word":
            stages = [WordFusion(sources[TEXT], sources[VISUAL], self.visualness, serving["keep"])]
        return SearchFunnel(
            self.understanding,
            listed,
            {"kind": "rrf", "k": config["fusion"]["rrf_k"]},
            stages,
            serving["per_source"],
            re_ranking or (),
            catalog,
        )


def build_retrieval(config: dict, videos: pd.DataFrame, frames: np.ndarray, train: pd.DataFrame, folder: Path):
    """The text index, query understanding and the visual index from the catalogue and the training pairs
    (train: text, video_id); saved under `folder`. Returns the retrieval and what building it cost."""
    if not np.array_equal(videos["video_id"].to_numpy(), np.arange(len(videos))):
        raise ValueError("video ids must be the catalogue rows 0..n-1 (both indexes answer rows)")
    costs = {}
    started = time.perf_counter()
    index = InvertedIndex.build(videos["video_id"].to_numpy(), index_fields(videos), config["index"]["weights"])
    index.save(folder / "text")
    costs["bm25_seconds"] = time.perf_counter() - started
    u = config["understanding"]
    pairs = (train["text"].tolist(), train["video_id"].tolist())
    understanding = QueryUnderstanding.build(index, train["text"].tolist(), pairs, u["spelling"], u["synonyms"])
    log.info("text index over %d videos; %d synonym words mined", len(videos), len(understanding.synonyms))

    started = time.perf_counter()
    encoder = VideoTextEncoder(random_state=config["seed"], **config["models"]["encoder"])
    encoder.fit(train["text"].tolist(), frames, (np.arange(len(train)), train["video_id"].to_numpy()))
    vectors = encoder.encode_videos(frames)
    costs["encoder_seconds"] = time.perf_counter() - started
    log.info("video-text encoder: best epoch %d, fit in %.0fs", encoder.best_epoch_, costs["encoder_seconds"])

    started = time.perf_counter()
    probe = encoder.encode_texts(train["text"].drop_duplicates().head(2000).tolist())
    rows = np.arange(len(videos), dtype=np.int64)
    ann = ANNIndex.build(rows, vectors, queries=probe, seed=config["seed"])
    costs["faiss_seconds"] = time.perf_counter() - started
    costs["faiss"] = f"{ann.spec.kind} {ann.spec.params}, recall@100 {ann.recall:.3f}"
    known = frozenset(index.vocabulary) | {word for text in train["text"].unique() for word in tokenise(text)}
    visual_words = visualness(encoder.encode_texts, vectors, train["text"].tolist(), train["video_id"].to_numpy())
    return VideoRetrieval(index, understanding, encoder, ann, vectors, known, visual_words), costs
