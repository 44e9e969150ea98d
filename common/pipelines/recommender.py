"""Training pipeline shared by the recommendation systems (video, game):

  data -> batch features -> Feast (apply, materialize)
  -> two-tower on the positives before the ranker period -> item embeddings -> faiss index
  -> ranker examples of the later periods (Feast point-in-time join) -> LightGBM and multi-task rankers
  -> stage-by-stage evaluation at the test start (sources' recall, ANN recall and latency, final lists
     against popularity and the oracle) -> MLflow runs -> `<system>-retrieval@champion` and
     `<system>-ranker@champion`

Periods (config `periods`, common.data.periods), in order: two_tower trains the two-tower; the ranker
trains on train, picks its epoch / trees and the champion on validation, and every reported number
comes from test.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from common.app.paths import system_dir
from common.data.atomic import write_text_atomically
from common.data.dataset import Dataset, write_raw_tables
from common.data.periods import Periods
from common.evaluation.classification import markdown_table
from common.evaluation.metrics import auc, log_loss
from common.evaluation.ranking import (
    candidate_recall,
    list_metrics,
    oracle_gains,
    recall_curve_figure,
    relevant_items,
)
from common.features.activity import build_feature_tables, feature_views, ranker_service
from common.features.store import FeatureRepo
from common.funnel.examples import (
    catalog_from_data,
    item_activity_rows,
    period_events,
    training_examples,
    user_rows,
)
from common.funnel.funnel import Funnel
from common.funnel.ranking_features import (
    RecommenderScorer,
    UserStates,
    build_rankers,
    recommender_request,
    step_columns,
)
from common.retrieval.ann import ANNIndex, recall_against_exact
from common.retrieval.bundle import RetrievalBundle
from common.retrieval.tower_training import TwoTowerSource, fit_two_tower, nonpersonal_sources
from common.tracking import runs as tracking

log = logging.getLogger(__name__)


def train(system: str, config: dict, data: Dataset) -> dict:
    started = time.perf_counter()
    seed, features_config = config["seed"], config["features"]
    every = features_config["snapshot_every_days"]
    periods = Periods.from_config(data.start, data.n_days, config["periods"], every)
    with tqdm(total=5, desc=f"{system} pipeline", unit="stage") as stages:
        stages.set_postfix_str("raw tables, features, Feast")
        write_raw_tables(system, data)
        store = _features_into_feast(system, data, features_config, periods)
        stages.update()
        stages.set_postfix_str("two-tower")
        workers = config.get("workers")  # Ray Train workers for the two-tower, Ray Data for the catalogue
        tower, tower_info = fit_two_tower(
            data, periods.start("train"), config["retrieval"], features_config["activity_window_days"], seed, workers
        )
        activity = activity_as_of(store, data, periods.start("train"))
        catalog = catalog_from_data(data, tower, activity, workers=workers)
        stages.update()
        stages.set_postfix_str("ranker examples")
        events = period_events(data, periods.start("train"), config["ranking"]["negatives_per_event"], seed)
        X, targets, timestamps = training_examples(data, store, events, tower, catalog, every)
        splits = split_examples(X, targets, timestamps, periods)
        input_sample = X.head(100)
        stages.update()
        stages.set_postfix_str("rankers")
        rankers, ranker_metrics = _fit_rankers(data, config, splits, seed)
        stages.update()
        stages.set_postfix_str("evaluate, MLflow")
        fitted = FittedFunnel(data, periods, store, tower, rankers, ranker_metrics)
        evaluation, ranker_metrics = evaluate(config, fitted)
        summary = _track(
            system, config, data, periods, tower, tower_info, rankers, ranker_metrics, evaluation, input_sample
        )
        stages.update()
    summary["fitted"] = fitted
    summary["pipeline_seconds"] = time.perf_counter() - started
    log.info("%s pipeline done in %.0fs", system, summary["pipeline_seconds"])
    return summary


def _features_into_feast(system: str, data: Dataset, features_config: dict, periods: Periods):
    return publish_features(FeatureRepo(system), data, features_config, periods.end).store


def publish_features(repo: FeatureRepo, data: Dataset, features_config: dict, end: pd.Timestamp) -> FeatureRepo:
    """The feature tables of the whole dataset into Feast, the online store loaded with their values up to `end`
    (the last snapshot: the end of the logs): what a training does first, and a platform's daily feature job
    (the online simulator's end of day, common/online/recommender.py)."""
    start = (data.start - pd.Timedelta(days=2)).to_pydatetime()
    tables = build_feature_tables(data, features_config)
    views = feature_views(features_config["snapshot_every_days"])
    repo.publish(tables, views, ranker_service(repo.system), start, end.to_pydatetime())
    return repo


def split_examples(X: pd.DataFrame, targets: pd.DataFrame, timestamps: np.ndarray, periods: Periods) -> dict:
    """The ranker's examples (all from the train period on) by period."""
    masks = {name: periods.mask(name, timestamps) for name in ("train", "validation", "test")}
    return {name: (X[m].reset_index(drop=True), targets[m].reset_index(drop=True)) for name, m in masks.items()}


def _fit_rankers(data: Dataset, config: dict, splits: dict, seed: int) -> tuple[dict, dict]:
    rankers, metrics = {}, {}
    for name, model in build_rankers(data.schema, config, seed).items():
        rankers[name], metrics[name] = fit_ranker(name, model, splits)
    return rankers, metrics


def fit_ranker(name: str, model, splits: dict, fine_tune: bool = False) -> tuple[object, dict]:
    """One ranker fitted on splits["train"], its epoch (torch) or trees (LightGBM) chosen on
    splits["validation"]; with its fit time, and AUC and log loss of P(positive) on the validation and test
    splits. The multi-task ranker learns every target, the others the chapter's label. With `fine_tune`, a
    fitted multi-task ranker trains on from its own weights (common/models/multitask.py `fine_tune`) rather
    than from scratch: what continual training does with the champion's copy."""
    (X_train, y_train), (X_val, y_val) = splits["train"], splits["validation"]
    started = time.perf_counter()
    if name == "multitask":
        (model.fine_tune if fine_tune else model.fit)(X_train, y_train, eval_set=(X_val, y_val))
    else:
        model.fit(X_train, y_train["positive"].to_numpy(), eval_set=(X_val, y_val["positive"].to_numpy()))
    fit_seconds = time.perf_counter() - started
    metrics = {"fit_seconds": fit_seconds, "n_train": len(X_train)}
    for split in ("validation", "test"):
        metrics.update(positive_metrics(model, *splits[split], split))
    log.info("%s: fit %.0fs, validation AUC %.4f", name, fit_seconds, metrics["validation_auc_positive"])
    return model, metrics


def positive_metrics(model, X: pd.DataFrame, y: pd.DataFrame, split: str) -> dict[str, float]:
    """AUC and log loss of the ranker's P(positive) against the chapter's label on logged events:
    `<split>_auc_positive`, `<split>_logloss_positive`."""
    p = model.predict_proba(X)[:, 1]
    return {
        f"{split}_auc_positive": auc(y["positive"].to_numpy(), p),
        f"{split}_logloss_positive": log_loss(y["positive"].to_numpy(), p),
    }


@dataclass(frozen=True)
class FittedFunnel:
    """What training produced and the evaluation reads; `train` returns it as summary["fitted"], so the
    funnel can be evaluated again (another k, other users) without training again."""

    data: Dataset
    periods: Periods
    store: object  # the system's Feast FeatureStore
    tower: object  # the fitted TwoTowerModel
    rankers: dict
    fit_metrics: dict[str, dict]  # per ranker: fit time, AUC and log loss on the logged events


@dataclass
class FunnelEvaluation:
    """Every stage of the funnel as of `as_of`, final lists cut at `k`."""

    recall_curve: pd.DataFrame  # one row per source and the merge: recall at every k of curve_ks
    recall_ks: tuple[int, ...]  # the ks of the candidate table (config["evaluation"]["recall_ks"])
    lists: pd.DataFrame  # one row per list: list_columns(k), "users"
    ann: dict
    n_users: int
    k: int
    as_of: pd.Timestamp
    ranked: dict[str, dict[int, np.ndarray]]  # list name -> user id -> the list's top k item ids
    item_ids: np.ndarray  # the catalogue as of `as_of`: what the ANN index holds
    item_vectors: np.ndarray  # (n_items, d) item-tower embeddings
    user_vectors: np.ndarray  # (n_users, d) user-tower embeddings of the evaluated users: the ANN's queries

    @property
    def recall(self) -> pd.DataFrame:
        """The candidate table: each source's recall at the configured ks, read off the curve."""
        return self.recall_curve[["source", "users", *(f"recall@{k}" for k in self.recall_ks)]]


def evaluate(config: dict, fitted: FittedFunnel) -> tuple[FunnelEvaluation, dict[str, dict]]:
    """The served funnel with each ranker, at k = config["evaluation"]["k"], on the validation days,
    whose nDCG@k picks the champion, and on the test days, where every reported number comes from.
    Returns the test evaluation and each ranker's metrics with `validation_ndcg_at_<k>` added."""
    data, periods, k = fitted.data, fitted.periods, config["evaluation"]["k"]
    inputs = (data, config, fitted.store, fitted.tower, fitted.rankers)
    validation = _evaluate_funnel(*inputs, periods.start("validation"), periods.start("test"))
    evaluation = _evaluate_funnel(*inputs, periods.start("test"), periods.end)
    lists = validation.lists.set_index("list")
    metrics = {
        name: {**fitted.fit_metrics[name], validation_ndcg(k): float(lists.at[f"funnel: {name}", f"ndcg@{k}"])}
        for name in fitted.rankers
    }
    return evaluation, metrics


def _evaluate_funnel(
    data: Dataset, config: dict, store, tower, rankers: dict, now: pd.Timestamp, until: pd.Timestamp
) -> FunnelEvaluation:
    """Every stage as of `now`, for a seeded sample of the users active in [now, until)."""
    activity = activity_as_of(store, data, now)
    catalog = catalog_from_data(data, tower, activity, step_columns(config["serving"]))
    e, schema = config["evaluation"], data.schema
    period = data.events[(data.events["event_timestamp"] >= now) & (data.events["event_timestamp"] < until)]
    rng = np.random.default_rng(config["seed"])
    active = np.unique(period["user_id"].to_numpy())
    user_ids = np.sort(rng.choice(active, size=min(e["users"], len(active)), replace=False))
    states = UserStates.build(
        user_rows(store, pd.DataFrame({"user_id": user_ids, "event_timestamp": now})), tower, catalog
    )
    now_s = float(now.timestamp())
    requests = [recommender_request(states, row, schema, now_s) for row in range(len(user_ids))]

    index = ANNIndex.build(catalog.item_ids, catalog.vectors, queries=states.vectors, seed=config["seed"])
    ann = _ann_metrics(index, catalog, states.vectors)
    sources = nonpersonal_sources(data, data.users, now, config["retrieval"])
    serving, combination = config["serving"], config["serving"]["score"]
    funnel = Funnel(catalog, [TwoTowerSource(index), *sources], None, serving)
    relevant, gains = relevant_items(data, user_ids, now, until, e["relevant_per_user"])
    # Recall at the configured ks (the table) and along a curve of ks up to the largest (the plot).
    ks = tuple(e["recall_ks"])
    curve = candidate_recall(funnel, requests, relevant, curve_ks(ks))
    # The lists compared: popularity alone (under the funnel's filters), the funnel without a ranker (the
    # merge order), and the served funnel with each ranker.
    funnels = {
        "popularity": funnel.variant(sources=sources[:1], kinds=("filter",), k_per_source=len(sources[0].item_ids)),
        "merge order (no ranker)": funnel,
        **{
            f"funnel: {name}": funnel.variant(scorer=RecommenderScorer(ranker, catalog, activity, combination))
            for name, ranker in rankers.items()
        },
    }

    k = e["k"]
    lists = {
        name: {request.user_id: catalog.item_ids[variant.recommend(request, k).rows] for request in requests}
        for name, variant in funnels.items()
    }
    if data.oracle is not None:
        lists["oracle"] = {u: ids[:k] for u, ids in relevant.items()}
        gains = oracle_gains(data, {u: np.concatenate([lst[u] for lst in lists.values()]) for u in relevant}, now)
    group_of = dict(
        zip(catalog.item_ids.tolist(), np.asarray(catalog.groups)[catalog.group_codes].tolist(), strict=True)
    )
    rows = [list_metrics(name, lst, relevant, gains, group_of, len(catalog), k) for name, lst in lists.items()]
    return FunnelEvaluation(
        curve,
        ks,
        pd.DataFrame(rows),
        ann,
        len(user_ids),
        k,
        now,
        lists,
        catalog.item_ids,
        catalog.vectors,
        states.vectors,
    )


def activity_as_of(store, data: Dataset, as_of: pd.Timestamp) -> dict[str, np.ndarray]:
    """ITEM_ACTIVITY of every item (rows of data.items) at `as_of`, from the offline store."""
    return item_activity_rows(store, pd.DataFrame({"item_id": data.items["item_id"], "event_timestamp": as_of}))


def _ann_metrics(index: ANNIndex, catalog, queries: np.ndarray, k: int = 100) -> dict:
    """The index's recall@k against exact search on the evaluation users, and single-query latency."""
    recall = recall_against_exact(index, catalog.vectors, catalog.item_ids, queries, k)
    latencies = []
    for query in queries[:500]:
        started = time.perf_counter()
        index.search(query[None, :], k)
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "ann_kind": index.spec.kind,
        "ann_recall_at_100": recall,
        "ann_p50_ms": float(np.percentile(latencies, 50)),
        "ann_p99_ms": float(np.percentile(latencies, 99)),
        "n_items": len(catalog),
    }


def curve_ks(ks: tuple[int, ...]) -> tuple[int, ...]:
    """The ks of the recall curve: a log-spaced ladder up to the largest configured k, and those ks."""
    return tuple(sorted({k for k in (10, 20, 50, 100, 200, 500, 1000) if k <= max(ks)} | set(ks)))


def recall_columns(recall: pd.DataFrame) -> list[str]:
    """The candidate table's columns: the source and its recall at each of config["evaluation"]["recall_ks"]."""
    return ["source", *(column for column in recall.columns if column.startswith("recall@"))]


def list_columns(k: int) -> list[str]:
    """The final-list table's columns at list length k (what `list_metrics` names)."""
    return ["list", f"precision@{k}", f"map@{k}", f"ndcg@{k}", "diversity", "coverage"]


def validation_ndcg(k: int) -> str:
    """The ranker metric that picks the champion: its served funnel's nDCG@k on the validation days."""
    return f"validation_ndcg_at_{k}"


def ranker_columns(k: int) -> list[str]:
    return [
        "model",
        validation_ndcg(k),
        "validation_auc_positive",
        "test_auc_positive",
        "test_logloss_positive",
        "fit_seconds",
    ]


@dataclass
class Report:
    champion: str  # the ranker with the best validation nDCG@k
    ranker_rows: list[dict]  # the rankers' table, champion marked
    funnel_metrics: dict[str, dict[str, float]]  # per ranker: its served funnel's list metrics, MLflow names
    table: str  # results.md


def report(
    evaluation: FunnelEvaluation, ranker_metrics: dict[str, dict], relevance_note: str, champion_config: dict
) -> Report:
    """The champion (by the config's validation metric) and the results tables, every list metric named
    by the evaluation's k."""
    k = evaluation.k
    champion = tracking.choose_champion(ranker_metrics, champion_config, k=k)
    lists = evaluation.lists.set_index("list")
    funnel_metrics = {
        name: {
            f"funnel_{column.replace('@', '_at_')}": float(lists.at[f"funnel: {name}", column])
            for column in list_columns(k)[1:]
        }
        for name in ranker_metrics
    }
    ranker_rows = [
        {
            "model": f"{name} (champion)" if name == champion else name,
            **{c: metrics[c] for c in ranker_columns(k)[1:]},
        }
        for name, metrics in ranker_metrics.items()
    ]
    return Report(champion, ranker_rows, funnel_metrics, results_markdown(evaluation, ranker_rows, relevance_note))


def relevance_note(config: dict, data: Dataset) -> str:
    if data.oracle is not None:
        return f"the oracle's top {config['evaluation']['relevant_per_user']} unseen items per user at the test start"
    return "each user's positives in the test period"


def results_markdown(evaluation: FunnelEvaluation, ranker_rows: list[dict], relevance_note: str) -> str:
    ann, k = evaluation.ann, evaluation.k
    return "\n".join(
        [
            f"Candidate sources: recall@k against {relevance_note}, {evaluation.n_users} test users",
            "",
            markdown_table(evaluation.recall.to_dict("records"), recall_columns(evaluation.recall)),
            "",
            f"ANN over {ann['n_items']} items ({ann['ann_kind']}): recall@100 against exact search"
            f" {ann['ann_recall_at_100']:.3f}, single-query p50 {ann['ann_p50_ms']:.2f} ms,"
            f" p99 {ann['ann_p99_ms']:.2f} ms",
            "",
            f"Final lists (k={k}): {relevance_note}",
            "",
            markdown_table(evaluation.lists.to_dict("records"), list_columns(k)),
            "",
            f"Rankers: the champion has the best served-funnel nDCG@{k} on the validation days;"
            " AUC and log loss of P(positive) on the logged events",
            "",
            markdown_table(ranker_rows, ranker_columns(k)),
        ]
    )


def _track(system, config, data, periods, tower, tower_info, rankers, ranker_metrics, evaluation, input_sample):
    """One MLflow run for retrieval, one per ranker, a summary run; both champions registered."""
    experiment_id = tracking.use_experiment(system)
    pipeline_run = f"{system}-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}"
    tags = {"pipeline_run": pipeline_run}
    data_params = {
        "scale": config["scale"],
        "seed": config["seed"],
        "n_users": len(data.users),
        "n_items": len(data.items),
        "n_events": len(data.events),
        **periods.describe(),
    }
    recall = evaluation.recall.set_index("source")
    retrieval_metrics = {
        f"{source}_recall_at_{k}": float(recall.at[source, f"recall@{k}"])
        for source in recall.index
        for k in config["evaluation"]["recall_ks"]
    }
    retrieval_metrics.update({k: v for k, v in evaluation.ann.items() if isinstance(v, float)})
    retrieval_metrics["two_tower_final_loss"] = float(tower.train_loss_[-1])
    bundle = RetrievalBundle(
        tower, nonpersonal_sources(data, data.users, periods.end, config["retrieval"]), periods.end, data.schema
    )
    retrieval_uri = tracking.log_object_run(
        "retrieval",
        {**data_params, **tower_info, **{f"two_tower_{k}": v for k, v in config["retrieval"]["two_tower"].items()}},
        retrieval_metrics,
        bundle,
        {"recall.md": markdown_table(evaluation.recall.to_dict("records"), recall_columns(evaluation.recall))},
        tags,
        figures={"recall_at_k.png": recall_curve_figure(evaluation.recall_curve)},
    )
    retrieval_version = tracking.promote(system, retrieval_uri, kind="retrieval", config=config)

    results = report(evaluation, ranker_metrics, relevance_note(config, data), config["champion"])
    champion, table = results.champion, results.table
    uris = {}
    for name, model in rankers.items():
        metrics = {**ranker_metrics[name], **results.funnel_metrics[name]}
        params = {**data_params, "model": name, **{k: v for k, v in config["models"][name].items()}}
        uris[name] = tracking.log_model_run(
            name, params, metrics, {}, model, input_sample, tags={**tags, "champion": str(name == champion)}
        )
    ranker_version = tracking.promote(system, uris[champion], config=config)
    write_text_atomically(system_dir(system) / "results.md", table)
    tracking.log_summary_run(
        f"{pipeline_run}-summary",
        {
            "champion": champion,
            "champion_version": ranker_version,
            "retrieval_version": retrieval_version,
            **data_params,
        },
        figures={},
        texts={"results.md": table},
        tags=tags,
    )
    return {
        "experiment_id": experiment_id,
        "champion": champion,
        "champion_version": ranker_version,
        "retrieval_version": retrieval_version,
        "table": table,
        "evaluation": evaluation,
        "ranker_metrics": ranker_metrics,
    }
