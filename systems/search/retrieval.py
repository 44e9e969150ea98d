"""Candidate generation of product search, as a training builds it (chapter section 3): the BM25 index over
the catalogue's fields, query understanding from the index's words and the training clicks, the hashed
two-tower and its faiss index; and the pretrained MiniLM, frozen and fine-tuned, measured as a retriever
beside the two-tower."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common.app.paths import system_dir
from common.models.text import SentenceEncoder
from common.retrieval.ann import ANNIndex
from common.search.funnel import QueryUnderstanding, SearchFunnel, TextSource, Understood, VectorSource
from common.search.inverted_index import InvertedIndex
from common.search.semantic import QueryProductEncoder, fine_tune_sentence_encoder
from systems.search.dataset import SYSTEM, SearchData

log = logging.getLogger(__name__)


def index_fields(products: pd.DataFrame) -> dict[str, list[str]]:
    """The text BM25 reads, per field: the title; the description and bullet points; the attributes."""
    attributes = products["product_brand"] + " " + products["product_color"]
    for column in ("material", "size", "product_type", "category"):
        attributes = attributes + " " + products[column].fillna("").astype(str)
    return {
        "title": products["product_title"].tolist(),
        "description": (products["product_description"] + " " + products["product_bullet_point"]).tolist(),
        "attributes": attributes.tolist(),
    }


def build_understanding(index: InvertedIndex, queries: pd.Series, engaged: pd.DataFrame, config: dict):
    """The speller over the catalogue's words weighted by the training queries; synonyms from the clicks."""
    u = config["understanding"]
    pairs = (engaged["query"].tolist(), engaged["product"].tolist())
    understanding = QueryUnderstanding.build(index, queries.tolist(), pairs, u["spelling"], u["synonyms"])
    log.info(
        "speller over %d words; %d synonym words mined from the clicks",
        len(index.vocabulary),
        len(understanding.synonyms),
    )
    return understanding


def fit_semantic(config: dict, data: SearchData, engaged: pd.DataFrame) -> tuple[QueryProductEncoder, np.ndarray]:
    """The two-tower on (query, engaged product) pairs; the catalogue's vectors."""
    queries = pd.Index(engaged["query"].unique())
    texts = data.product_text
    encoder = QueryProductEncoder(random_state=config["seed"], **config["models"]["two_tower"])
    started = time.perf_counter()
    encoder.fit(list(queries), texts, (queries.get_indexer(engaged["query"]), engaged["product"].to_numpy(np.int64)))
    vectors = encoder.encode_products(texts)
    seconds = time.perf_counter() - started
    log.info("two-tower: %d pairs, fit and %d products encoded in %.0fs", len(engaged), len(texts), seconds)
    return encoder, vectors


@dataclass
class Retrieval:
    """The candidate generation a training builds: the text index, query understanding, the two-tower and
    its faiss index over the catalogue, and what building the indexes cost."""

    index: InvertedIndex
    understanding: QueryUnderstanding
    encoder: QueryProductEncoder
    product_vectors: np.ndarray
    ann: ANNIndex
    semantic_index: str  # its name under data/search/index
    costs: dict

    def funnel(self, config: dict) -> SearchFunnel:
        sources = [TextSource(self.index), VectorSource(self.encoder.encode_queries, self.ann, self.index.vocabulary)]
        return SearchFunnel(self.understanding, sources, config["fusion"], per_source=config["serving"]["per_source"])


def build_retrieval(config: dict, data: SearchData, train_rows: pd.DataFrame, engaged: pd.DataFrame) -> Retrieval:
    folder, n = system_dir(SYSTEM) / "index", len(data.products)
    built = time.perf_counter()
    index = InvertedIndex.build(np.arange(n), index_fields(data.products), config["index"]["weights"])
    index.save(folder / "text")
    costs = {"bm25": _index_size(folder / "text", time.perf_counter() - built)}
    understanding = build_understanding(index, train_rows.drop_duplicates("group")["query"], engaged, config)
    encoder, product_vectors = fit_semantic(config, data, engaged)
    probe = encoder.encode_queries(engaged["query"].drop_duplicates().head(2000).tolist())
    built = time.perf_counter()
    ann = ANNIndex.build(np.arange(n, dtype=np.int64), product_vectors, queries=probe, seed=config["seed"])
    semantic_index = f"semantic-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}"
    ann.save(folder / semantic_index)
    np.save(vectors_path(folder, semantic_index), product_vectors)
    costs["faiss"] = _index_size(folder / semantic_index, time.perf_counter() - built)
    costs["faiss"].update(kind=f"{ann.spec.kind} {ann.spec.params}", recall_at_100=ann.recall, dim=ann.dim)
    return Retrieval(index, understanding, encoder, product_vectors, ann, semantic_index, costs)


def vectors_path(index_dir: Path, semantic_index: str) -> Path:
    """The catalogue's vectors beside their faiss index: every candidate's semantic cosine reads them."""
    return index_dir / f"{semantic_index}.vectors.npy"


def _index_size(path: Path, seconds: float) -> dict:
    """Build seconds and megabytes on disk of an index (a directory, or a file and its side files)."""
    files = [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else list(path.parent.glob(f"{path.name}*"))
    return {"build_seconds": seconds, "megabytes": sum(f.stat().st_size for f in files) / 1e6}


def exact_search(vectors: np.ndarray, codes: np.ndarray, query_vectors: dict[str, np.ndarray], k: int):
    """A query -> the catalogue's rows by exact cosine (vectors: one unit row per distinct product text,
    codes: each product's text), the best k: how an encoder retrieves on its own, without faiss's error.
    `query_vectors`: the encoded text of every query it will be asked (encoded in one batch beforehand)."""

    def search(query: Understood) -> np.ndarray:
        if not query.corrected:
            return np.zeros(0, np.int64)
        scores = (vectors @ query_vectors[query.text])[codes]  # (n_products,)
        top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        return top[np.lexsort((top, -scores[top]))]

    return search


def pretrained_encoders(config: dict, data: SearchData, engaged: pd.DataFrame, understanding) -> dict:
    """The pretrained sentence encoder all-MiniLM-L6-v2 as a retriever on its own, frozen and fine-tuned on
    the training pairs (config models.minilm; `path`: other local sentence-transformers weights), for the
    comparison with the two-tower on the test queries. Products sharing a text are encoded once."""
    c = config["models"]["minilm"]
    if not c["compare"]:
        return {}
    started = time.perf_counter()
    codes, distinct = pd.factorize(pd.Series(data.product_text))
    queries = pd.Index(engaged["query"].unique())
    pairs = (queries.get_indexer(engaged["query"]), engaged["product"].to_numpy(np.int64))
    frozen = SentenceEncoder(path=c.get("path"), n_threads=config["models"]["threads"]).fit()
    tuned = fine_tune_sentence_encoder(
        list(queries), data.product_text, pairs, path=c.get("path"), random_state=config["seed"], **c["fine_tune"]
    )
    tests = sorted({understanding.understand(q).text for q in data.judged["test"].queries["query"]})
    k = config["serving"]["per_source"]
    searches = {}
    for name, encoder in (("MiniLM alone", frozen), ("MiniLM fine-tuned", tuned)):
        query_vectors = dict(zip(tests, encoder.encode(tests), strict=True))
        searches[name] = exact_search(encoder.encode(list(distinct)), codes, query_vectors, k)
    seconds = time.perf_counter() - started
    log.info("MiniLM: %d distinct texts encoded twice, fine-tuned in between, in %.0fs", len(distinct), seconds)
    return searches
