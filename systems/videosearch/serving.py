"""The served video search (chapter section 7): the funnel the offline evaluation ran.

  query understanding    spell correction, synonyms mined from the annotated pairs
  sources                BM25 over title, description and tags; the query's vector over the videos' in faiss
  fusion                 the champion blend: a weighted sum of both sources' scores over every candidate, or RRF
  re-ranking rules       the searcher's age and country, at most two videos of one channel (config)
The blend and the query encoder come from the registry (`videosearch-ranker@champion`), the indexes and the
videos' vectors from data/videosearch/index, the catalogue from data/videosearch/raw.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from common.app.paths import system_dir
from common.app.system import ServiceUnavailable
from common.funnel.reranking import build_steps
from common.retrieval.ann import ANNIndex
from common.search.funnel import SearchContext, SearchFunnel, SearchResult
from common.search.inverted_index import InvertedIndex
from common.serving.service import release_freed_memory
from common.serving.timing import StageTimer
from common.tracking.runs import Champion, ChampionMissing, load_champion
from systems.videosearch.pipeline import SYSTEM, ServedVideoSearch, catalog_table, vectors_path
from systems.videosearch.retrieval import VideoRetrieval

TRAIN = f"run: make train SYSTEM={SYSTEM}"
SHOWN = ("video_id", "title", "genre", "language", "channel_id", "age_rating")


class VideoSearchService:
    def __init__(self, config: dict, champion: Champion, videos: pd.DataFrame):
        served: ServedVideoSearch = champion.classifier
        self.champion = champion
        self.videos = pa.Table.from_pandas(videos[list(SHOWN)], preserve_index=False)
        folder = system_dir(SYSTEM) / "index"
        index = InvertedIndex.load(folder / "text")
        ann = ANNIndex.load(folder / served.visual_index)
        # Memory-mapped: the server's worker processes share one copy in the page cache.
        vectors = np.load(vectors_path(folder, served.visual_index), mmap_mode="r")
        retrieval = VideoRetrieval(
            index, served.understanding, served.encoder, ann, vectors, served.known, served.visualness
        )
        catalog = catalog_table(videos)
        rules = build_steps(config["serving"]["re_ranking"], catalog)
        self.funnel = retrieval.funnel(config, served.fusion, re_ranking=rules, catalog=catalog)
        self.fusion = served.fusion
        release_freed_memory()

    @classmethod
    def load(cls, config: dict) -> VideoSearchService:
        path = system_dir(SYSTEM) / "raw" / "videos.parquet"
        try:
            champion = load_champion(SYSTEM)
        except ChampionMissing as error:
            raise ServiceUnavailable(str(error)) from error
        if not path.exists():
            raise ServiceUnavailable(f"no {SYSTEM} catalogue at {path}: {TRAIN}")
        return cls(config, champion, pd.read_parquet(path))

    def search(self, query: str, k: int, age: int | None, country: str | None, funnel: SearchFunnel | None = None):
        """The page for one searcher; `funnel`: another ranking in the served one's place (the online simulator's
        baseline, random and oracle policies: the same understanding, sources and rules)."""
        timer = StageTimer()
        context = SearchContext({"age": age, "country": country})
        result = (funnel or self.funnel).search(query, k, timer=timer, context=context)
        return result, timer.milliseconds

    def describe(self, result: SearchResult) -> list[dict]:
        shown = self.videos.take(pa.array(result.rows, pa.int64())).to_pylist()
        return [
            {**video, "score": float(score), "sources": list(sources)}
            for video, score, sources in zip(shown, result.scores, result.sources, strict=True)
        ]
