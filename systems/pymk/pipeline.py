"""Training of people you may know (chapter sections 5-6): snapshots of the graph, a GNN, a ranker.

  tables -> user features in Feast (profile; network counts as of each snapshot day)
  snapshot days, counted back from the last day: gnn | train | validation | test (config `periods`)
  each snapshot t: the graph before t (GraphState), labels = friendships formed in [t, t + step)
  -> GraphSAGE link predictor: the graph at the gnn period's start, the friendships formed during that
     period as positives, friends-of-friends that did not connect as hard negatives
  -> examples: for a sample of the users who connect on each later day, the funnel's candidates with
     their pair features and the GNN's score, labelled 1 if the friendship formed that day
  -> LightGBM (the chapter's lightweight ranker) and logistic regression on the examples
  -> evaluation on the validation and test days, request by request through the served funnel: mAP@k,
     recall@k of each model, of the GNN alone, of common neighbours, Adamic-Adar and personalised
     PageRank over the same candidates, and of the oracle's ranking of them; ROC-AUC of each as an edge
     classifier on the test pairs; the users with fewer than 5 friends apart
  -> the champion by validation mAP@k -> MLflow -> `pymk-ranker@champion`

The GNN learns from its own period, before the ranker's: its score on the ranker's examples is then a
forecast, not a memory of their labels (stacking without leakage).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
from tqdm import tqdm

from common.app.paths import system_dir
from common.features.store import FeatureRepo
from common.models.gnn import GraphSAGELinkPredictor
from common.models.tabular import LightGBMCTR, LogisticRegressionCTR
from common.pipelines.ranking import Examples, fit_models, funnel_metrics, list_table
from common.tracking import runs as tracking
from systems.pymk.batch import precompute_lists, store_lists
from systems.pymk.dataset import SocialData, write_raw
from systems.pymk.evaluation import GNN, LABEL, edge_auc, evaluate, results_markdown
from systems.pymk.features import FEATURES, GNN_FEATURE, SERVICES, VIEWS, feature_tables
from systems.pymk.serving import ServedPymk
from systems.pymk.snapshots import FEW_FRIENDS, DayExamples, day_examples, requesting_users, take_snapshot

log = logging.getLogger(__name__)


def snapshot_days(data: SocialData, config: dict) -> dict[str, list[pd.Timestamp]]:
    """Each period's snapshot times, consecutive and ending at the last step of the logs."""
    p = config["periods"]
    step = pd.Timedelta(days=p["step_days"])
    names = ["gnn", "train", "validation", "test"]
    total = sum(p[name] for name in names)
    first = data.end - total * step
    if first < data.start:
        raise ValueError(f"{(data.end - data.start).days} days of logs are too few for the periods {p}")
    times, days = [first + i * step for i in range(total)], {}
    for name in names:
        days[name], times = times[: p[name]], times[p[name] :]
    return days


def fit_gnn(config: dict, snapshots: dict, days: dict, examples: dict) -> GraphSAGELinkPredictor:
    """On the graph at the gnn period's start: the friendships formed during the period against random
    non-edges and the friends of friends who did not connect; early stopping on the ranker's first day."""
    first = snapshots[days["gnn"][0]]
    positives = [snapshots[day].state.labels() for day in days["gnn"]]
    u, v = np.concatenate([p[0] for p in positives]), np.concatenate([p[1] for p in positives])
    hard = [examples[day] for day in days["gnn"]]
    hard_u = np.concatenate([e.pairs[0][e.y == 0] for e in hard])
    hard_v = np.concatenate([e.pairs[1][e.y == 0] for e in hard])
    check = examples[days["train"][0]]
    model = GraphSAGELinkPredictor(seed=config["seed"], threads=config["models"]["threads"], **config["models"][GNN])
    started = time.perf_counter()
    model.fit(
        first.graph,
        np.stack([u, v]),
        negatives=np.stack([hard_u, hard_v]),
        validation=(snapshots[days["train"][0]].graph, np.stack(check.pairs), check.y),
    )
    log.info(
        "%s: fit in %.1fs, best epoch %d (validation ROC-AUC %.3f)",
        GNN,
        time.perf_counter() - started,
        model.best_epoch_,
        max(model.history_, default=float("nan")),
    )
    return model


def build_models(config: dict) -> dict:
    m, seed = config["models"], config["seed"]
    numeric = [*FEATURES, GNN_FEATURE]
    return {
        "lightgbm": LightGBMCTR((), numeric, random_state=seed, n_threads=m["threads"], **m["lightgbm"]),
        "logistic_regression": LogisticRegressionCTR((), numeric, **m["logistic_regression"]),
    }


def train(config: dict, data: SocialData) -> dict:
    started = time.perf_counter()
    system, rng = "pymk", np.random.default_rng(config["seed"])
    days = snapshot_days(data, config)
    all_days = [day for period in days.values() for day in period]
    repo = FeatureRepo(system)
    write_raw(data, system_dir(system) / "raw")
    day = pd.Timedelta(days=1)
    tables = feature_tables(data, [*all_days, data.end])
    # From the oldest account on: materialization loads only the rows inside its range.
    first = min(tables["user_profile"]["event_timestamp"].min(), data.start) - day
    repo.publish(
        tables,
        VIEWS,
        SERVICES,
        first.to_pydatetime(),
        (data.end + day).to_pydatetime(),
    )
    e = config["evaluation"]
    snapshots, examples = {}, {}
    for period, period_days in days.items():
        sample = e if period in ("validation", "test") else config["examples"]
        for at in tqdm(period_days, desc=f"{period} snapshots", leave=False):
            snapshots[at] = take_snapshot(data, repo, config, at)
            users = requesting_users(snapshots[at], sample["users_per_day"], sample["few_friends_per_day"], rng)
            examples[at] = day_examples(snapshots[at], users)
    gnn = fit_gnn(config, snapshots, days, examples)
    embeddings = {}
    for at in [*days["train"], *days["validation"], *days["test"]]:
        embeddings[at] = gnn.node_embeddings(snapshots[at].graph)
        examples[at].X[GNN_FEATURE] = embeddings[at].score(*examples[at].pairs)
    splits = {
        period: _stack([examples[at] for at in days[period]], days[period])
        for period in ("train", "validation", "test")
    }
    models, fit_metrics = fit_models(build_models(config), splits, (LABEL,))
    evaluation = {
        split: evaluate(config, data, {at: snapshots[at] for at in days[split]}, examples, models, embeddings)
        for split in ("validation", "test")
    }
    edge_table = edge_auc(splits["test"], models, days["test"], examples, snapshots, data)
    final = take_snapshot(data, repo, config, data.end)  # the serving clock: the graph with every friendship
    links = gnn.node_embeddings(final.graph)
    served = {name: ServedPymk(models.get(name), data.end, links) for name in [*models, GNN]}
    summary = _track(system, config, data, days, served, fit_metrics, evaluation, edge_table, splits, snapshots)
    champion = served[summary["champion"]]
    scorer = champion.scorer(final.state, final.gather)
    lists = precompute_lists(final, scorer, config["serving"]["precompute"], config.get("workers"))
    if len(lists):
        store_lists(repo, lists, first.to_pydatetime(), (data.end + day).to_pydatetime())
    summary["precomputed_users"] = len(lists)
    summary["pipeline_seconds"] = time.perf_counter() - started
    log.info("pymk pipeline done in %.0fs; champion %s", summary["pipeline_seconds"], summary["champion"])
    return summary


def _stack(day_examples_list: list[DayExamples], days: list[pd.Timestamp]) -> Examples:
    X = pd.concat([d.X for d in day_examples_list], ignore_index=True)
    y = np.concatenate([d.y for d in day_examples_list])
    times = np.concatenate([np.full(len(d.y), at.value) for d, at in zip(day_examples_list, days, strict=True)])
    groups = np.concatenate([d.pairs[0] + i * 10**9 for i, d in enumerate(day_examples_list)])
    return Examples(X[[*FEATURES, GNN_FEATURE]], pd.DataFrame({LABEL: y}), pd.to_datetime(times, utc=True), groups)


def _track(system, config, data, days, served: dict, fit_metrics, evaluation, edge_table, splits, snapshots):
    k = config["evaluation"]["k"]
    few = {
        int(snapshots[at].state.user_ids[row])
        for at in days["test"]
        for row in np.flatnonzero(snapshots[at].state.degree < FEW_FRIENDS)
    }
    test_lists = list_table(evaluation["test"], k, {f"users with fewer than {FEW_FRIENDS} friends": (None, few)})
    metrics = funnel_metrics(served, fit_metrics, evaluation["validation"], test_lists, k)
    for name in served:
        metrics[name]["test_roc_auc"] = float(edge_table.loc[edge_table["model"] == name, "roc_auc"].iloc[0])
    champion = tracking.choose_champion(metrics, config["champion"], k=k)
    recall = evaluation["test"].candidate_recall(tuple(config["evaluation"]["recall_ks"]))
    table = results_markdown(k, test_lists, edge_table, recall, champion, evaluation["test"])
    data_params = {
        "scale": config["scale"],
        "seed": config["seed"],
        "n_users": len(data.users),
        "n_edges": len(data.edges.src),
        **{f"n_{split}": len(examples.X) for split, examples in splits.items()},
        **{f"{period}_start": str(period_days[0].date()) for period, period_days in days.items()},
    }

    version = tracking.record_bundles(system, config, champion, served, metrics, data_params, table)
    return {
        "champion": champion,
        "champion_version": version,
        "metrics": metrics,
        "table": table,
        "lists": test_lists,
        "edges": edge_table,
        "recall": recall,
        "evaluation": evaluation,
    }
