"""Training of product search (chapter sections 3-6), from the world's logs or the ESCI files.

products -> the inverted index (BM25 over title, description, attributes) -> query understanding: a
   spell corrector over the index's words weighted by how often queries use them, synonyms mined from
   the training clicks
engaged (query, product) pairs -> the semantic two-tower (hashed words and character trigrams) -> the
   catalogue's vectors -> faiss; the pretrained MiniLM, alone and fine-tuned, measured beside it
clicks -> the intent classifier (query -> the clicked product's category)
logs -> engagement counts (product; query x product) in Feast, cumulative per day
training searches -> features (point-in-time engagement) -> stage 1 (logistic regression, logged
   impressions + random negatives) and stage 2 (LambdaMART over the graded pages; a pointwise LightGBM
   beside it)
-> the validation and test queries through the funnel (systems/search/evaluation.py)
-> the champion by validation nDCG@k -> MLflow -> `search-ranker@champion`
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from common.app.paths import system_dir
from common.evaluation.classification import markdown_table
from common.features.store import FeatureRepo
from common.models.tabular import LightGBMCTR, LightGBMRanker, LogisticRegressionCTR
from common.models.text import SentenceEncoder
from common.retrieval.ann import ANNIndex
from common.search.funnel import QueryUnderstanding, SearchFunnel, TextSource, Understood, VectorSource
from common.search.intent import IntentClassifier
from common.search.inverted_index import InvertedIndex
from common.search.query import SpellCorrector, mine_synonyms, tokenise
from common.search.semantic import QueryProductEncoder, fine_tune_sentence_encoder
from common.serving.timing import StageTimer
from common.tracking import runs as tracking
from systems.search.dataset import SearchData
from systems.search.evaluation import evaluate, stage_2
from systems.search.features import (
    COUNTS,
    PREFIXES,
    STAGE1,
    STAGE2,
    VIEWS,
    CatalogueColumns,
    Engagement,
    QueryKeys,
    counts_of,
    engagement_as_of,
    engagement_tables,
    pair_columns,
    product_columns,
)
from systems.search.ranking import ModelStage, PairFeatures, stage_features

log = logging.getLogger(__name__)
SYSTEM = "search"
DAY = pd.Timedelta(days=1)


@dataclass
class ServedSearch:
    """What the registry holds: everything a request needs besides the catalogue, its indexes and the
    engagement counts (files and the online store, under data/search/)."""

    understanding: QueryUnderstanding
    encoder: QueryProductEncoder
    intent: IntentClassifier | None
    stage_1: LogisticRegressionCTR
    stage_2: object  # LightGBMRanker (LambdaMART) or LightGBMCTR
    keep: dict[str, int]  # candidates each stage passes on
    semantic_index: str  # the faiss index of this encoder's product vectors, under data/search/index


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
    """The speller knows the catalogue's words, each counted by how often queries use it (plus one, so
    a word no query used yet still corrects); synonyms come from the training clicks."""
    counts = dict.fromkeys(index.term_counts(), 1)
    for tokens in queries.map(tokenise):
        for word in tokens:
            if word in counts:
                counts[word] += 1
    speller = SpellCorrector.build(counts, **config["understanding"]["spelling"])
    synonyms = mine_synonyms(
        engaged["query"].tolist(), engaged["product"].tolist(), **config["understanding"]["synonyms"]
    )
    log.info("speller: %d words; %d synonym words mined from the clicks", len(counts), len(synonyms))
    return QueryUnderstanding(speller, synonyms, index.document_frequency())


def sample_groups(examples: pd.DataFrame, n: int, rng) -> pd.DataFrame:
    groups = examples["group"].unique()
    if len(groups) > n:
        groups = rng.choice(groups, size=n, replace=False)
    return examples[examples["group"].isin(groups)].reset_index(drop=True)


def with_negatives(pages: pd.DataFrame, funnel: SearchFunnel, config: dict, n_products: int, rng) -> pd.DataFrame:
    """Each logged page plus negatives at grade 0, the chapter's "random negative samples, e.g. from pages
    10 and beyond": products the funnel's own candidate generation finds for the query beyond rank
    `deep_from` (they look like what the rankers will face: matching words, history of their own), and a
    few from anywhere in the catalogue. A page alone holds only what the old engine chose to show; a ranker
    that never saw a poor candidate would not know to push one down."""
    deep = {}
    for query in tqdm(pages["query"].unique(), desc="negatives from the candidates", leave=False):
        rows = funnel.candidates(query, StageTimer())[0].rows
        deep[query] = rows[config["deep_from"] :] if len(rows) > config["deep_from"] else rows[len(rows) // 2 :]
    first = pages.drop_duplicates("group")
    extra = []
    for group, query in zip(first["group"], first["query"], strict=True):
        pool = deep[query]
        take = rng.choice(pool, size=min(config["deep_negatives"], len(pool)), replace=False) if len(pool) else []
        anywhere = rng.integers(0, n_products, size=config["random_negatives"])
        extra.append((group, np.concatenate([np.asarray(take, np.int64), anywhere])))
    rows = first.set_index("group").loc[[g for g, products in extra for _ in products]].reset_index()
    rows["product"] = np.concatenate([products for _, products in extra])
    rows["grade"] = 0
    widened = pd.concat([pages, rows[pages.columns]], ignore_index=True)
    shown = widened.duplicated(["group", "product"], keep="first")  # a negative the page already holds
    return widened[~shown].reset_index(drop=True)


def example_features(examples: pd.DataFrame, understanding, features: PairFeatures, repo, keys, n_products):
    """Every stage-2 column of the examples: text and model columns, engagement as of each example."""
    distinct = examples["query"].unique().tolist()
    understood = [understanding.understand(q) for q in distinct]
    query_of = pd.Index(distinct).get_indexer(examples["query"])
    rows = examples["product"].to_numpy(np.int64)
    columns = features.cheap_many(understood, query_of, rows)
    if repo is None:  # no logs (ESCI): no engagement yet
        zeros = {c: np.zeros(len(rows)) for c in COUNTS}
        return pd.DataFrame({**columns, **product_columns(zeros), **pair_columns(zeros)})
    entity = pd.DataFrame(
        {
            "product": rows,
            "pair": keys.keys(examples["query"]) * n_products + rows,
            "event_timestamp": pd.to_datetime(examples["timestamp"], utc=True),
        }
    )
    counts = repo.as_of(tuple(view.name for view in VIEWS), entity)
    product, pair = (counts_of(counts, prefix) for prefix in PREFIXES)
    return pd.DataFrame({**columns, **product_columns(product), **pair_columns(pair)})


def fit_semantic(config: dict, data: SearchData, engaged: pd.DataFrame) -> tuple[QueryProductEncoder, np.ndarray]:
    """The two-tower on (query, engaged product) pairs; the catalogue's vectors."""
    queries = pd.Index(engaged["query"].unique())
    texts = data.product_text
    encoder = QueryProductEncoder(random_state=config["seed"], **config["models"]["two_tower"])
    started = time.perf_counter()
    encoder.fit(list(queries), texts, (queries.get_indexer(engaged["query"]), engaged["product"].to_numpy(np.int64)))
    vectors = encoder.encode_products(texts)
    log.info("two-tower: %d pairs, fit and %d products encoded in %.0fs", len(engaged), len(texts), _since(started))
    return encoder, vectors


def exact_search(vectors: np.ndarray, codes: np.ndarray, encode, k: int):
    """A query -> the catalogue's rows by exact cosine (vectors: one unit row per distinct product text,
    codes: each product's text), the best k: how an encoder retrieves on its own, without faiss's error."""

    def search(query: Understood) -> np.ndarray:
        if not query.corrected:
            return np.zeros(0, np.int64)
        scores = (vectors @ encode([query.text])[0])[codes]  # (n_products,)
        top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        return top[np.lexsort((top, -scores[top]))]

    return search


def pretrained_encoders(config: dict, data: SearchData, engaged: pd.DataFrame) -> dict:
    """The pretrained sentence encoder all-MiniLM-L6-v2 as a retriever on its own, frozen and fine-tuned on
    the training pairs (config models.minilm; `path`: other local sentence-transformers weights), for the
    comparison with the two-tower. Products sharing a text are encoded once."""
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
    k = config["serving"]["per_source"]
    searches = {}
    for name, encoder in (("MiniLM alone", frozen), ("MiniLM fine-tuned", tuned)):
        searches[name] = exact_search(encoder.encode(list(distinct)), codes, encoder.encode, k)
    log.info("MiniLM: %d distinct texts encoded twice, fine-tuned in between, in %.0fs", len(distinct), _since(started))
    return searches


def fit_rankers(config: dict, data: SearchData, examples: pd.DataFrame) -> dict:
    """Stage 1 pointwise (engaged or not): a small GBDT, and a logistic regression beside it; the stage-2
    candidates on the graded pages: LambdaMART, and a pointwise LightGBM beside it. Every model reads the
    negatives beside each page (with_negatives).

    No early stopping: the validation pages' engagement labels are mostly position (clicks fall 8x from
    the first slot to the tenth), and stopping on their NDCG kept LambdaMART at one tree at the default
    scale, while the oracle's nDCG of the same validation groups rose from 0.938 at 30 trees to 0.949 at
    300. The champion is chosen on the funnel's nDCG of the validation queries instead."""
    m, seed, threads = config["models"], config["seed"], config["models"]["threads"]
    train = examples[examples["split"] == "train"]
    engaged = (train["grade"] >= data.engaged_grade).to_numpy()
    first = LightGBMCTR((), STAGE1, random_state=seed, n_threads=threads, **m["stage_1"])
    first_lr = LogisticRegressionCTR((), STAGE1, **m["stage_1_lr"])
    lambdamart = LightGBMRanker((), STAGE2, random_state=seed, n_threads=threads, **m["lambdamart"])
    pointwise = LightGBMCTR((), STAGE2, random_state=seed, n_threads=threads, **m["lightgbm"])
    return {
        "stage_1": first.fit(train[list(STAGE1)], engaged),
        "stage_1_lr": first_lr.fit(train[list(STAGE1)], engaged),
        "lambdamart": lambdamart.fit(train[list(STAGE2)], train["grade"].to_numpy(), train["group"].to_numpy()),
        "lightgbm": pointwise.fit(train[list(STAGE2)], engaged),
    }


def train(config: dict, data: SearchData) -> dict:
    started = time.perf_counter()
    rng = np.random.default_rng(config["seed"])
    folder = system_dir(SYSTEM)
    products, n = data.products, len(data.products)
    write_raw(data, folder / "raw")
    train_rows = data.examples[data.examples["split"] == "train"]
    engaged = train_rows[train_rows["grade"] >= data.engaged_grade]

    log.info("data: %d products, %d logged impressions", n, len(data.logs))
    index = InvertedIndex.build(np.arange(n), index_fields(products), config["index"]["weights"])
    index.save(folder / "index" / "text")
    understanding = build_understanding(index, train_rows.drop_duplicates("group")["query"], engaged, config)
    encoder, product_vectors = fit_semantic(config, data, engaged)
    probe = encoder.encode_queries(engaged["query"].drop_duplicates().head(2000).tolist())
    ann = ANNIndex.build(np.arange(n, dtype=np.int64), product_vectors, queries=probe, seed=config["seed"])
    semantic_index = f"semantic-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}"
    ann.save(folder / "index" / semantic_index)
    np.save(vectors_path(folder / "index", semantic_index), product_vectors)
    category = data.category()
    intent = None
    if category is not None:
        intent = IntentClassifier(**config["models"]["intent"])
        intent.fit(engaged["query"].tolist(), category.to_numpy(object)[engaged["product"].to_numpy()].tolist())

    keys = QueryKeys(data.logs["query"])
    repo = publish_engagement(data, keys) if len(data.logs) else None
    features = PairFeatures(
        CatalogueColumns.from_products(products), index, product_vectors, encoder.encode_queries, intent
    )
    e = config["examples"]
    pages = pd.concat(
        [
            sample_groups(data.examples[data.examples["split"] == s], e[f"{s}_groups"], rng)
            for s in ("train", "validation")
        ],
        ignore_index=True,
    )
    sources = [TextSource(index), VectorSource(encoder.encode_queries, ann, index.vocabulary)]
    funnel = SearchFunnel(understanding, sources, config["fusion"], per_source=config["serving"]["per_source"])
    pages = with_negatives(pages, funnel, e, n, rng)
    examples = pd.concat([pages, example_features(pages, understanding, features, repo, keys, n)], axis=1)
    log.info("%d ranking examples (%d groups) in %.0fs", len(examples), pages["group"].nunique(), _since(started))
    models = fit_rankers(config, data, examples)
    log.info("rankers fit at %.0fs", _since(started))
    alone = pretrained_encoders(config, data, engaged)
    evaluation = {}
    for split in ("validation", "test"):
        before = _split_start(data, split)
        engagement = engagement_as_of(data.logs, keys, n, before) if repo is not None else Engagement.empty(keys, n)
        cheap, full = stage_features(features, engagement)
        keep = config["serving"]["keep"]
        firsts = {
            name: ModelStage("stage_1", models[model], STAGE1, keep["stage_1"], cheap)
            for name, model in (("small GBDT", "stage_1"), ("logistic regression", "stage_1_lr"))
        }
        seconds = {name: ModelStage("stage_2", models[name], STAGE2, keep["stage_2"], full) for name in RANKERS}
        evaluation[split] = evaluate(funnel, firsts, seconds, data.judged[split], config["evaluation"]["k"], alone)
    served = {
        name: ServedSearch(
            understanding, encoder, intent, models["stage_1"], models[name], config["serving"]["keep"], semantic_index
        )
        for name in RANKERS
    }
    log.info("evaluated at %.0fs", _since(started))
    summary = _track(config, data, served, evaluation)
    summary["pipeline_seconds"] = time.perf_counter() - started
    log.info("search pipeline done in %.0fs; champion %s", summary["pipeline_seconds"], summary["champion"])
    return summary


RANKERS = ("lambdamart", "lightgbm")


def _since(started: float) -> float:
    return time.perf_counter() - started


def vectors_path(index_dir: Path, semantic_index: str) -> Path:
    """The catalogue's vectors beside their faiss index: every candidate's semantic cosine reads them."""
    return index_dir / f"{semantic_index}.vectors.npy"


def write_raw(data: SearchData, folder: Path) -> None:
    """What serving reads besides the models: the catalogue and the logged queries' keys."""
    folder.mkdir(parents=True, exist_ok=True)
    data.products.to_parquet(folder / "products.parquet", index=False)


def publish_engagement(data: SearchData, keys: QueryKeys) -> FeatureRepo:
    """The engagement counts into Feast: offline sources, definitions, the online store."""
    repo = FeatureRepo(SYSTEM)
    start = data.logs["timestamp"].min().normalize()
    end = data.logs["timestamp"].max().normalize() + 2 * DAY
    tables = engagement_tables(data.logs, keys, len(data.products), start)
    services = {"search_ranker": {view.name: None for view in VIEWS}}
    repo.publish(tables, VIEWS, services, start.to_pydatetime(), end.to_pydatetime())
    keys.save(system_dir(SYSTEM) / "raw" / "query_keys.parquet")
    return repo


def _split_start(data: SearchData, split: str) -> pd.Timestamp | None:
    """Midnight of the split's first query: the evaluation reads the counts logged before it."""
    queries = data.judged[split].queries
    return queries["timestamp"].min().normalize() if "timestamp" in queries else None


def _track(config: dict, data: SearchData, served: dict, evaluation: dict) -> dict:
    k = config["evaluation"]["k"]
    metrics = {}
    for name in served:
        metrics[name] = {}
        for split, result in evaluation.items():
            row = result.lists.set_index("list").loc[stage_2(name)]
            metrics[name][f"{split}_ndcg_at_{k}"] = float(row[f"ndcg@{k}"])
            metrics[name][f"{split}_exact_recall_at_{k}"] = float(row[f"exact_recall@{k}"])
    champion = tracking.choose_champion(metrics, config["champion"], k=k)
    table = results_markdown(k, evaluation["test"], champion, data)
    data_params = {
        "scale": config["scale"],
        "seed": config["seed"],
        "source": data.source,
        "n_products": len(data.products),
        "n_logged_impressions": len(data.logs),
        "n_train_examples": int((data.examples["split"] == "train").sum()),
        **{f"n_{split}_queries": len(judged) for split, judged in data.judged.items()},
    }

    def log_model(name: str, params: dict, tags: dict) -> str:
        return tracking.log_object_run(name, params, metrics[name], served[name], {}, tags)

    version = tracking.record_pipeline(SYSTEM, config, champion, served, data_params, table, log_model)
    return {
        "champion": champion,
        "champion_version": version,
        "metrics": metrics,
        "table": table,
        "evaluation": evaluation,
    }


def results_markdown(k: int, test, champion: str, data: SearchData) -> str:
    lists = test.lists.copy()
    lists["list"] = [f"{name} (champion)" if name == stage_2(champion) else name for name in lists["list"]]
    n = int(lists["queries"].max())
    graded = "every product graded by the oracle" if data.source == "world" else "among the annotated products"
    parts = [
        f"Test queries: {n}, nDCG@{k} over the ESCI gains (exact 1, substitute 0.1, complement 0.01)",
        "",
        markdown_table(lists.to_dict("records"), list(lists.columns)),
        "",
        f"Candidate sources: recall of the exact products ({graded})",
        "",
        markdown_table(test.recall.to_dict("records"), list(test.recall.columns)),
    ]
    s = test.spelling
    if s["misspelt_queries"]:
        parts += [
            "",
            f"Misspelt test queries: {s['misspelt_queries']}; spell correction restored {s['share_fixed']:.0%} of them;"
            f" fusion recall of their exact products {s['fusion_recall_corrected']:.3f} with correction,"
            f" {s['fusion_recall_uncorrected']:.3f} without",
        ]
    return "\n".join(parts)
