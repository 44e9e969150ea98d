"""bm25s (our InvertedIndex) against tantivy as the BM25 index of product search, on one synthetic catalogue.

    python -m common.bench.text_index --products 1000000 [--queries 1000] [--seed 0]

The catalogue is made of real words with Zipfian frequencies: titles of 6-10 words (a brand, then product
words), descriptions of 30-60 words (function words, then the same product words), attributes (brand,
colour, material and three bullet points). Its vocabulary is small (a few thousand words, most of them
brands), so the frequent words sit in most documents and their posting lists are long: a hard case for
any inverted index. Queries are 2-4 distinct words of a random product's title.

Both libraries index the same terms (our `tokenise`, pre-joined with spaces for tantivy's whitespace
tokenizer) with the same field weights, k1 = 1.2 and b = 0.75, and score a document by the weighted sum
of its fields' BM25 (tantivy: one boolean OR of (field, word) term queries, each boosted by its field's
weight). Each builds on one thread, serves from its saved index, and answers one query at a time (as one
request does).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import bm25s
import numpy as np
import psutil
import tantivy
from tqdm import tqdm

from common.search.inverted_index import InvertedIndex
from common.search.query import tokenise

log = logging.getLogger(__name__)

WEIGHTS = {"title": 3.0, "description": 1.0, "attributes": 1.5}
K_SEARCH, K_SERVED, N_CANDIDATES = 100, 1000, 300  # the measured top-k, serving's k, the ranker's candidates
CHUNK = 100_000  # products generated at a time
ZIPF_EXPONENT = 1.0

# Frequency rank is list order: earlier words are drawn more often.
PRODUCT_WORDS = """
shoes shirt bag jacket dress watch phone case lamp chair table sofa bottle mug bed pillow blanket towel
headphones speaker charger cable keyboard mouse laptop backpack wallet belt hat scarf gloves socks boots
sneakers trainers sandals jeans shorts skirt hoodie sweater coat vest kettle toaster blender pan knife
fork spoon plate bowl glass vase mirror clock rug curtain shelf desk stool cushion tent stroller helmet
bicycle camera tripod drone printer monitor router tablet umbrella sunglasses earrings necklace bracelet
ring perfume soap shampoo brush comb razor dryer iron fan heater candle frame puzzle doll kite ball racket
""".split()
ADJECTIVES = """
new classic slim large small mini portable wireless waterproof lightweight soft warm durable premium
vintage modern casual sport running outdoor kids mens womens organic handmade compact foldable adjustable
ergonomic rechargeable insulated stretch breathable quick dry heavy duty smart electric digital cordless
stainless leather cotton wool linen silk denim bamboo ceramic wooden metal plastic glass velvet suede
""".split()
COLOURS = "black white blue red green grey pink brown beige navy yellow orange purple silver gold ivory".split()
MATERIALS = "cotton leather wool polyester steel aluminium oak walnut ceramic glass silk linen nylon rubber".split()
FUNCTION_WORDS = """
the and for with a of to in is this your it on that you are from by as be our an at or can all has will
made use one perfect great more its easy each size fit day any design quality every home also up out
""".split()
BRAND_SYLLABLES = "ka lo mi ve ra tu no si be da fe go hu ja ki le mo pa ru ta".split()

TITLE_WORDS = list(dict.fromkeys(ADJECTIVES + COLOURS + PRODUCT_WORDS))
DESCRIPTION_WORDS = list(dict.fromkeys(FUNCTION_WORDS + TITLE_WORDS + MATERIALS))
BRANDS = [a + b for a in BRAND_SYLLABLES for b in BRAND_SYLLABLES] + [
    a + b + c for a in BRAND_SYLLABLES[:10] for b in BRAND_SYLLABLES for c in BRAND_SYLLABLES
]  # 400 two-syllable and 4000 three-syllable brands


# --- the synthetic catalogue and its queries --------------------------------------------------


def zipf(n: int, exponent: float = ZIPF_EXPONENT) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


def _texts(words: Sequence[str], lengths: np.ndarray, rng: np.random.Generator, prefix=None) -> list[str]:
    """One text per length, its words drawn from `words` by Zipf's law, after `prefix[i]` when given."""
    drawn = rng.choice(len(words), size=int(lengths.sum()), p=zipf(len(words)))
    ends = np.cumsum(lengths)
    texts = [" ".join(words[w] for w in drawn[end - n : end]) for n, end in zip(lengths, ends, strict=True)]
    return texts if prefix is None else [f"{p} {t}" for p, t in zip(prefix, texts, strict=True)]


def synthetic_catalogue(n_products: int, rng: np.random.Generator) -> dict[str, list[str]]:
    """title, description and attributes texts of n products, generated CHUNK products at a time."""
    fields: dict[str, list[str]] = {name: [] for name in WEIGHTS}
    brand_p, colour_p, material_p = zipf(len(BRANDS)), zipf(len(COLOURS)), zipf(len(MATERIALS))
    for start in tqdm(range(0, n_products, CHUNK), desc="catalogue", unit="chunk"):
        n = min(CHUNK, n_products - start)
        brands = [BRANDS[i] for i in rng.choice(len(BRANDS), n, p=brand_p)]
        fields["title"] += _texts(TITLE_WORDS, rng.integers(5, 10, n), rng, prefix=brands)  # 6-10 words
        fields["description"] += _texts(DESCRIPTION_WORDS, rng.integers(30, 61, n), rng)
        colours = rng.choice(len(COLOURS), n, p=colour_p)
        materials = rng.choice(len(MATERIALS), n, p=material_p)
        bullets = _texts(TITLE_WORDS, rng.integers(9, 16, n), rng)  # three bullet points of 3-5 words
        fields["attributes"] += [
            f"{brand} {COLOURS[c]} {MATERIALS[m]} {b}"
            for brand, c, m, b in zip(brands, colours, materials, bullets, strict=True)
        ]
    return fields


def sample_queries(titles: Sequence[str], n_queries: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
    """2-4 distinct words of a random product's title, in title order (what a shopper who saw it types)."""
    queries = []
    for row in rng.integers(0, len(titles), n_queries):
        words = list(dict.fromkeys(tokenise(titles[row])))
        picked = np.sort(rng.choice(len(words), size=min(len(words), int(rng.integers(2, 5))), replace=False))
        queries.append(tuple(words[i] for i in picked))
    return queries


# --- tantivy with the same fields, terms, weights and fusion ----------------------------------


@dataclass
class TantivyIndex:
    index: tantivy.Index
    weights: Mapping[str, float]

    @classmethod
    def build(
        cls, ids: np.ndarray, fields: Mapping[str, Sequence[str]], weights: Mapping[str, float], directory: Path
    ) -> TantivyIndex:
        builder = tantivy.SchemaBuilder()
        builder.add_unsigned_field("id", indexed=True, fast=True)  # fast: hits to ids; indexed: filter by ids
        for name in fields:
            # Whitespace tokenizer over our tokens joined by spaces: exactly our terms. Frequencies without
            # positions: BM25 needs no more (and bm25s keeps no positions either).
            builder.add_text_field(name, tokenizer_name="whitespace", index_option="freq")
        index = tantivy.Index(builder.build(), path=str(directory))
        writer = index.writer(num_threads=1)
        for row, product_id in enumerate(ids):
            document = tantivy.Document()
            document.add_unsigned("id", int(product_id))
            for name, texts in fields.items():
                document.add_text(name, " ".join(tokenise(texts[row])))
            writer.add_document(document)
        writer.commit()
        writer.wait_merging_threads()
        return cls.open(directory, weights)

    @classmethod
    def open(cls, directory: Path, weights: Mapping[str, float]) -> TantivyIndex:
        return cls(tantivy.Index.open(str(directory)), weights)

    def _term_queries(self, name: str, words: Sequence[str], boost: float = 1.0) -> list[tuple]:
        schema = self.index.schema
        return [
            (tantivy.Occur.Should, tantivy.Query.boost_query(tantivy.Query.term_query(schema, name, w, "freq"), boost))
            for w in words
        ]

    def _ids(self, searcher: tantivy.Searcher, hits) -> np.ndarray:
        return np.array(searcher.fast_field_values("id", [address for _, address in hits]), dtype=np.int64)

    def search(self, words: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        # One flat OR of boosted term queries, what tantivy's query parser builds from field boosts: nesting a
        # boolean query per field scores the same and took twice as long.
        clauses = [
            clause for name, weight in self.weights.items() for clause in self._term_queries(name, words, weight)
        ]
        searcher = self.index.searcher()
        hits = searcher.search(tantivy.Query.boolean_query(clauses), limit=k, count=False).hits
        return self._ids(searcher, hits), np.array([score for score, _ in hits], dtype=np.float32)

    def field_scores(self, words: Sequence[str], ids: np.ndarray) -> np.ndarray:
        """(len(ids), n_fields) BM25 per field: per field, its query restricted to the ids (a zero-scored
        filter), so only the candidates are scored."""
        searcher = self.index.searcher()
        candidates = tantivy.Query.const_score_query(
            tantivy.Query.term_set_query(self.index.schema, "id", [int(i) for i in ids]), 0.0
        )
        out = np.zeros((len(ids), len(self.weights)), np.float32)
        position = {int(product_id): i for i, product_id in enumerate(ids)}
        for column, name in enumerate(self.weights):
            field_query = tantivy.Query.boolean_query(self._term_queries(name, words))
            query = tantivy.Query.boolean_query([(tantivy.Occur.Must, candidates), (tantivy.Occur.Must, field_query)])
            hits = searcher.search(query, limit=max(len(ids), 1), count=False).hits
            rows = [position[product_id] for product_id in self._ids(searcher, hits).tolist()]
            out[rows, column] = [score for score, _ in hits]
        return out


# --- the measurements ---------------------------------------------------------------------------


@dataclass
class LibraryResult:
    library: str
    build_s: float
    disk_bytes: int
    serving_rss_bytes: int
    search_ms: np.ndarray  # (n_queries,) top-K_SEARCH
    served_ms: np.ndarray  # (n_queries,) top-K_SERVED
    field_scores_ms: np.ndarray  # (n_queries,) per-field scores of N_CANDIDATES ids
    top: list[np.ndarray]  # each query's top-K_SEARCH ids
    top_scores: np.ndarray  # (n_queries,) each query's best score (nan when nothing matched)


def _open(library: str, directory: Path):
    return InvertedIndex.load(directory) if library == "bm25s" else TantivyIndex.open(directory, WEIGHTS)


def _run_queries(index, queries: Sequence[tuple[str, ...]]) -> None:
    for words in queries:
        ids, _ = index.search(words, K_SERVED)
        index.field_scores(words, ids[:N_CANDIDATES])


def serving_rss(library: str, directory: Path, queries: Sequence[tuple[str, ...]]) -> int:
    """Resident memory a fresh process gains by opening the saved index and answering the queries (run in a
    child process: a build's freed memory would blur it here)."""
    process = psutil.Process()
    before = process.memory_info().rss
    index = _open(library, directory)  # held until measured: collecting it would unmap its pages
    _run_queries(index, queries)
    return process.memory_info().rss - before


def _timed(call, queries) -> tuple[np.ndarray, list]:
    latencies, results = np.empty(len(queries)), []
    for i, words in enumerate(queries):
        started = time.perf_counter()
        results.append(call(words))
        latencies[i] = (time.perf_counter() - started) * 1000
    return latencies, results


def measure(
    library: str,
    ids: np.ndarray,
    fields: Mapping[str, Sequence[str]],
    queries: Sequence[tuple[str, ...]],
    directory: Path,
) -> LibraryResult:
    log.info("%s: building over %d products", library, len(ids))
    started = time.perf_counter()
    if library == "bm25s":
        InvertedIndex.build(ids, fields, WEIGHTS).save(directory)
    else:
        TantivyIndex.build(ids, fields, WEIGHTS, directory)
    build_s = time.perf_counter() - started
    disk = sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())
    log.info("%s: built in %.1f s, %.0f MB on disk; measuring memory", library, build_s, disk / 2**20)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as child:
        rss = child.submit(serving_rss, library, directory, queries).result()
    log.info("%s: timing %d queries", library, len(queries))
    index = _open(library, directory)
    _run_queries(index, queries)  # steady state: every page the queries need is mapped, as in a warm server
    search_ms, found = _timed(lambda words: index.search(words, K_SEARCH), queries)
    served_ms, served = _timed(lambda words: index.search(words, K_SERVED), queries)
    candidates = iter([ids[:N_CANDIDATES] for ids, _ in served])
    field_ms, _ = _timed(lambda words: index.field_scores(words, next(candidates)), queries)
    top_scores = np.array([scores[0] if len(scores) else np.nan for _, scores in found])
    return LibraryResult(library, build_s, disk, rss, search_ms, served_ms, field_ms, [i for i, _ in found], top_scores)


def overlap(a: Sequence[np.ndarray], b: Sequence[np.ndarray], k: int) -> float:
    """Mean over queries of |top-k(a) & top-k(b)| / the larger of the two lists (queries matching nothing in
    both are skipped)."""
    shares = [
        len(np.intersect1d(x[:k], y[:k])) / max(len(x[:k]), len(y[:k])) for x, y in zip(a, b, strict=True) if len(x)
    ]
    return float(np.mean(shares)) if shares else float("nan")


def _p(latencies: np.ndarray, q: float) -> str:
    return f"{np.percentile(latencies, q):.2f}"


def format_report(n_products: int, n_queries: int, results: Sequence[LibraryResult]) -> str:
    header = (
        "| library | build s | disk MB | serving RSS MB | "
        f"top-{K_SEARCH} p50 ms | p99 | top-{K_SERVED} p50 ms | p99 | field scores ({N_CANDIDATES} ids) p50 ms | p99 |"
    )
    rows = [
        f"| {r.library} | {r.build_s:.1f} | {r.disk_bytes / 2**20:.0f} | {r.serving_rss_bytes / 2**20:.0f} "
        f"| {_p(r.search_ms, 50)} | {_p(r.search_ms, 99)} | {_p(r.served_ms, 50)} | {_p(r.served_ms, 99)} "
        f"| {_p(r.field_scores_ms, 50)} | {_p(r.field_scores_ms, 99)} |"
        for r in results
    ]
    bm25s_result, tantivy_result = results
    ratio = np.nanmedian(tantivy_result.top_scores / bm25s_result.top_scores)
    return "\n".join(
        [
            f"text_index: {n_products} products, {n_queries} queries of 2-4 title words, fields weighted {WEIGHTS}; "
            f"bm25s {bm25s.__version__} vs {tantivy.__version__.split(',')[0]}",
            "",
            header,
            "|" + "---|" * 10,
            *rows,
            "",
            f"overlap of the two libraries' top-10: {overlap(bm25s_result.top, tantivy_result.top, 10):.3f}, "
            f"top-{K_SEARCH}: {overlap(bm25s_result.top, tantivy_result.top, K_SEARCH):.3f}; "
            f"median tantivy / bm25s best score {ratio:.3f} (tantivy's BM25 carries the constant factor k1 + 1 = 2.2)",
            "build s: tokenising, indexing and saving on one thread; serving RSS: what a fresh process gains by "
            "opening the saved index and answering every query (bm25s memory-maps its score matrices, tantivy its "
            "segments)",
            "latency: one query per call, one thread, after one untimed pass over the queries (a warm server); "
            f"field scores for the top {N_CANDIDATES} of the top-{K_SERVED}",
        ]
    )


def run_text_index_benchmark(n_products: int = 200_000, n_queries: int = 1000, seed: int = 0) -> str:
    if min(n_products, n_queries) < 1:
        raise ValueError("n_products and n_queries must be positive")
    catalogue_rng, query_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    fields = synthetic_catalogue(n_products, catalogue_rng)
    queries = sample_queries(fields["title"], n_queries, query_rng)
    ids = np.arange(n_products, dtype=np.int64) * 10 + 7  # not row numbers: both must map rows back to ids
    results = []
    for library in ("bm25s", "tantivy"):
        with tempfile.TemporaryDirectory(prefix=f"bench-text-{library}-") as directory:
            results.append(measure(library, ids, fields, queries, Path(directory)))
    return format_report(n_products, n_queries, results)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=200_000, help="catalogue size")
    parser.add_argument("--queries", type=int, default=1000, help="queries timed per library")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every field's build at DEBUG
    print(run_text_index_benchmark(args.products, args.queries, args.seed))


if __name__ == "__main__":
    main()
