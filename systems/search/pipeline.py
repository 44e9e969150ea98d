"""Training of product search (chapter sections 3-6), from the world's logs or the ESCI files.

products -> the inverted index (BM25 over title, description, attributes) -> query understanding: a
   spell corrector over the index's words weighted by how often queries use them, synonyms mined from
   the training clicks
engaged (query, product) pairs -> the semantic two-tower (hashed words and character trigrams) -> the
   catalogue's vectors -> faiss; the pretrained MiniLM, alone and fine-tuned, measured beside it
clicks -> the intent classifier (query -> the clicked product's category)
logs -> engagement counts (product; query x product) in Feast, cumulative per day
training searches -> their pages + negatives (the funnel's deep candidates) -> features (engagement as of
   each search) -> stage 1 (a small GBDT; a logistic regression beside it) and stage 2 (LambdaMART over
   the graded pages; a pointwise LightGBM beside it)
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

from common.app.paths import system_dir
from common.data.atomic import replaced_atomically
from common.evaluation.classification import markdown_table
from common.features.store import FeatureRepo
from common.models.tabular import LightGBMCTR, LightGBMRanker, LogisticRegressionCTR
from common.search.funnel import QueryUnderstanding
from common.search.intent import IntentClassifier
from common.search.semantic import QueryProductEncoder
from common.tracking import runs as tracking
from systems.search.dataset import SYSTEM, SearchData
from systems.search.evaluation import evaluate, stage_2
from systems.search.examples import example_features, sample_groups, with_negatives
from systems.search.features import (
    STAGE1,
    STAGE2,
    VIEWS,
    CatalogueColumns,
    Engagement,
    QueryKeys,
    engagement_as_of,
    engagement_tables,
)
from systems.search.ranking import ModelStage, PairFeatures, stage_features
from systems.search.retrieval import build_retrieval, pretrained_encoders

log = logging.getLogger(__name__)
DAY = pd.Timedelta(days=1)


@dataclass
class ServedSearch:
    """What the registry holds: everything a request needs besides the catalogue, its indexes and the
    engagement counts (files and the online store, under data/search/)."""

    understanding: QueryUnderstanding
    encoder: QueryProductEncoder
    intent: IntentClassifier | None
    stage_1: LightGBMCTR  # the small GBDT
    stage_2: LightGBMRanker | LightGBMCTR  # LambdaMART, or the pointwise LightGBM
    keep: dict[str, int]  # candidates each stage passes on
    semantic_index: str  # the faiss index of this encoder's product vectors, under data/search/index


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


def fit_intent(config: dict, data: SearchData, engaged: pd.DataFrame) -> IntentClassifier | None:
    """The category of each click's product, learnt from its query; None when products have no category."""
    category = data.category()
    if category is None:
        return None
    categories = category.to_numpy(object)[engaged["product"].to_numpy()]
    return IntentClassifier(**config["models"]["intent"]).fit(engaged["query"].tolist(), categories.tolist())


def train(config: dict, data: SearchData) -> dict:
    started = time.perf_counter()
    rng = np.random.default_rng(config["seed"])
    n = len(data.products)
    write_raw(data, system_dir(SYSTEM) / "raw")
    train_rows = data.examples[data.examples["split"] == "train"]
    engaged = train_rows[train_rows["grade"] >= data.engaged_grade]
    log.info("data: %d products, %d logged impressions", n, len(data.logs))
    retrieval = build_retrieval(config, data, train_rows, engaged)
    intent = fit_intent(config, data, engaged)
    keys = QueryKeys(data.logs["query"])
    repo = publish_engagement(data, keys) if len(data.logs) else None
    catalogue = CatalogueColumns.from_products(data.products)
    r = retrieval
    features = PairFeatures(catalogue, r.index, r.product_vectors, r.encoder.encode_queries, intent)
    e, funnel = config["examples"], retrieval.funnel(config)
    pages = pd.concat(
        [sample_groups(data.examples[data.examples["split"] == s], e[f"{s}_groups"], rng) for s in SPLITS],
        ignore_index=True,
    )
    pages = with_negatives(pages, funnel, e, n, rng)
    examples = pd.concat([pages, example_features(pages, r.understanding, features, repo, keys, n)], axis=1)
    log.info("%d ranking examples (%d groups) in %.0fs", len(examples), pages["group"].nunique(), _since(started))
    models = fit_rankers(config, data, examples)
    log.info("rankers fit at %.0fs", _since(started))
    alone = pretrained_encoders(config, data, engaged, r.understanding)
    evaluation = {}
    for split in ("validation", "test"):
        before = _split_start(data, split)
        engagement = engagement_as_of(data.logs, keys, n, before) if repo is not None else Engagement.empty(keys, n)
        firsts, seconds = stages(config, models, features, engagement)
        compared = alone if split == "test" else {}
        evaluation[split] = evaluate(funnel, firsts, seconds, data.judged[split], config["evaluation"]["k"], compared)
    log.info("evaluated at %.0fs", _since(started))
    keep = config["serving"]["keep"]
    served = {
        name: ServedSearch(r.understanding, r.encoder, intent, models["stage_1"], models[name], keep, r.semantic_index)
        for name in RANKERS
    }
    summary = _track(config, data, served, evaluation, retrieval.costs)
    summary["pipeline_seconds"] = _since(started)
    log.info("search pipeline done in %.0fs; champion %s", summary["pipeline_seconds"], summary["champion"])
    return summary


def stages(config: dict, models: dict, features: PairFeatures, engagement: Engagement) -> tuple[dict, dict]:
    """The stage-1 models (the served one first) and the stage-2 candidates as funnel stages."""
    cheap, full = stage_features(features, engagement)
    keep = config["serving"]["keep"]
    firsts = {
        name: ModelStage("stage_1", models[model], STAGE1, keep["stage_1"], cheap)
        for name, model in (("small GBDT", "stage_1"), ("logistic regression", "stage_1_lr"))
    }
    seconds = {name: ModelStage("stage_2", models[name], STAGE2, keep["stage_2"], full) for name in RANKERS}
    return firsts, seconds


RANKERS = ("lambdamart", "lightgbm")
SPLITS = ("train", "validation")


def _since(started: float) -> float:
    return time.perf_counter() - started


def write_raw(data: SearchData, folder: Path) -> None:
    """What serving reads besides the models: the catalogue and the logged queries' keys."""
    folder.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(folder / "products.parquet") as temporary:
        data.products.to_parquet(temporary, index=False)


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


def _track(config: dict, data: SearchData, served: dict, evaluation: dict, indexes: dict) -> dict:
    k = config["evaluation"]["k"]
    metrics = {}
    for name in served:
        metrics[name] = {}
        for split, result in evaluation.items():
            row = result.lists.set_index("list").loc[stage_2(name)]
            metrics[name][f"{split}_ndcg_at_{k}"] = float(row[f"ndcg@{k}"])
            metrics[name][f"{split}_exact_recall_at_{k}"] = float(row[f"exact_recall@{k}"])
    champion = tracking.choose_champion(metrics, config["champion"], k=k)
    table = results_markdown(k, evaluation["test"], champion, data, indexes)
    data_params = {
        "scale": config["scale"],
        "seed": config["seed"],
        "source": data.source,
        "n_products": len(data.products),
        "n_logged_impressions": len(data.logs),
        "n_train_examples": int((data.examples["split"] == "train").sum()),
        **{f"n_{split}_queries": len(judged) for split, judged in data.judged.items()},
    }

    version = tracking.record_bundles(SYSTEM, config, champion, served, metrics, data_params, table)
    return {
        "champion": champion,
        "champion_version": version,
        "metrics": metrics,
        "table": table,
        "evaluation": evaluation,
    }


def results_markdown(k: int, test, champion: str, data: SearchData, indexes: dict) -> str:
    lists = test.lists.copy()
    lists["list"] = [f"{name} (champion)" if name == stage_2(champion) else name for name in lists["list"]]
    n = int(lists["queries"].max())
    graded = "every product graded by the oracle" if data.source == "world" else "among the annotated products"
    parts = [
        f"Test queries: {n}, nDCG@{k} over the ESCI gains (exact 1, substitute 0.1, complement 0.01); beside it,"
        " the mean per-query difference from BM25 alone and its 95% paired bootstrap interval",
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
    bm25, faiss = indexes["bm25"], indexes["faiss"]
    parts += [
        "",
        f"Indexes over {len(data.products)} products: BM25 (bm25s, {len(data.products)} x 3 fields) built in"
        f" {bm25['build_seconds']:.1f} s, {bm25['megabytes']:.0f} MB on disk; faiss {faiss['kind']} over the"
        f" two-tower's {faiss['dim']}-d vectors built in {faiss['build_seconds']:.1f} s, {faiss['megabytes']:.0f} MB"
        f" with the vectors, recall@100 against exact search {faiss['recall_at_100']:.3f}",
    ]
    return "\n".join(parts)
