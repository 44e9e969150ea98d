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
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from common.app.paths import system_dir
from common.evaluation.classification import markdown_table
from common.evaluation.metrics import auc
from common.evaluation.requests import ORACLE, RequestLists, oracle_lists
from common.features.store import FeatureRepo
from common.graph import proximity
from common.graph.snapshots import seconds
from common.models.gnn import GraphSAGELinkPredictor, LinkGraph
from common.models.tabular import LightGBMCTR, LogisticRegressionCTR
from common.pipelines.ranking import Examples, fit_models, list_table
from common.tracking import runs as tracking
from systems.pymk.batch import precompute_lists, store_lists
from systems.pymk.dataset import SocialData, write_raw
from systems.pymk.features import (
    FEATURES,
    GNN_FEATURE,
    SERVICES,
    VIEWS,
    feature_tables,
    pair_features,
    side_columns,
    user_frame,
)
from systems.pymk.funnel import EmbeddingScorer, PairScorer, PymkFunnel, VectorScorer
from systems.pymk.serving import ServedPymk
from systems.pymk.state import GraphState

log = logging.getLogger(__name__)
LABEL = "friended"
GNN = "graphsage"
FEW_FRIENDS = 5


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


@dataclass
class Snapshot:
    """Everything read at one snapshot time t."""

    state: GraphState
    funnel: PymkFunnel
    sides: dict[str, np.ndarray]  # every user's features as of t (Feast), by node row
    graph: LinkGraph  # the GNN's input at t

    def gather(self, rows: np.ndarray) -> dict:
        return {name: values[rows] for name, values in self.sides.items()}


def node_features(sides: dict[str, np.ndarray]) -> np.ndarray:
    """The GNN's node features: log-scaled network counts, activity, account age, age, and the
    background (school, employer, city, industry) hashed into a few buckets each, so friends of a
    school share a direction the message passing can spread."""
    numeric = [
        np.log1p(np.maximum(np.nan_to_num(np.asarray(sides[c], float)), 0))
        for c in (
            "friends",
            "friends_added_7d",
            "requests_sent_7d",
            "requests_received_7d",
            "interactions_14d",
            "account_days",
            "activity",
        )
    ]
    numeric.append(np.nan_to_num(np.asarray(sides["age"], float)) / 50.0)
    columns = [np.stack(numeric, axis=1)]
    for column, buckets in (("school_id", 16), ("employer_id", 16), ("city", 8), ("industry", 8)):
        values = np.asarray(sides[column], np.int64)
        one_hot = np.zeros((len(values), buckets), np.float32)
        known = values >= 0
        one_hot[np.flatnonzero(known), (values[known] * 2654435761) % buckets] = 1.0
        columns.append(one_hot)
    return np.concatenate(columns, axis=1).astype(np.float32)


def take_snapshot(data: SocialData, repo: FeatureRepo, config: dict, at: pd.Timestamp) -> Snapshot:
    state = GraphState.build(data, at, config["features"])
    frame = user_frame(repo, state.user_ids, at)
    sides = side_columns(frame, seconds([at])[0])
    graph = LinkGraph(node_features(sides), data.edges.edges_at(seconds([at])[0]))
    return Snapshot(state, PymkFunnel(state, config["serving"]), sides, graph)


def requesting_users(snapshot: Snapshot, n: int, rng: np.random.Generator) -> np.ndarray:
    """A seeded sample of the users who connect with someone eligible at t (node rows, sorted)."""
    u, _ = snapshot.state.labels()
    users = np.unique(u)
    return np.sort(rng.choice(users, size=min(n, len(users)), replace=False))


@dataclass
class DayExamples:
    rows: list[int]  # the requesting users' node rows
    requests: list
    candidates: list[np.ndarray]  # node rows per request
    merged: list
    X: pd.DataFrame
    y: np.ndarray
    pairs: tuple[np.ndarray, np.ndarray]  # (user rows, candidate rows), aligned with X


def day_examples(snapshot: Snapshot, users: np.ndarray) -> DayExamples:
    """Each user's candidates as the funnel finds them, their pair features (all the day's pairs in one
    pass: the served scorer computes the same per request), and whether they connected."""
    labels_u, labels_v = snapshot.state.labels()
    formed = set(zip(labels_u.tolist(), labels_v.tolist(), strict=True))
    generate = snapshot.funnel.funnel(None)
    requests, candidates, merged = [], [], []
    for row in users:
        request = snapshot.funnel.request(int(snapshot.state.user_ids[row]))
        slate, found, _ = generate.candidates(request)
        requests.append(request)
        candidates.append(slate.rows)
        merged.append(found)
    u = np.repeat(np.asarray(users, np.int64), [len(c) for c in candidates])
    v = np.concatenate(candidates) if candidates else np.zeros(0, np.int64)
    X = pair_features(snapshot.state, snapshot.gather(u), snapshot.gather(v), u, v)
    y = np.fromiter(((a, b) in formed for a, b in zip(u.tolist(), v.tolist(), strict=True)), bool, len(u))
    return DayExamples(list(users), requests, candidates, merged, X, y.astype(np.int64), (u, v))


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
        n = e["users_per_day"] if period in ("validation", "test") else config["examples"]["users_per_day"]
        for at in tqdm(period_days, desc=f"{period} snapshots", leave=False):
            snapshots[at] = take_snapshot(data, repo, config, at)
            examples[at] = day_examples(snapshots[at], requesting_users(snapshots[at], n, rng))
    gnn = fit_gnn(config, snapshots, days, examples)
    embeddings = {}
    for at in [*days["train"], *days["validation"], *days["test"]]:
        embeddings[at] = gnn.embed(snapshots[at].graph)
        u, v = examples[at].pairs
        examples[at].X[GNN_FEATURE] = gnn.score(embeddings[at], u, v)
    splits = {
        period: _stack([examples[at] for at in days[period]], days[period])
        for period in ("train", "validation", "test")
    }
    models, fit_metrics = fit_models(build_models(config), splits, (LABEL,))
    evaluation = {
        split: evaluate(config, data, {at: snapshots[at] for at in days[split]}, examples, models, gnn, embeddings)
        for split in ("validation", "test")
    }
    edge_table = edge_auc(splits["test"], models, gnn, days["test"], examples, snapshots, embeddings, data)
    final = take_snapshot(data, repo, config, data.end)  # the serving clock: the graph with every friendship
    served = {name: ServedPymk(models.get(name), gnn, data.end, gnn.embed(final.graph)) for name in [*models, GNN]}
    summary = _track(system, config, data, days, served, fit_metrics, evaluation, edge_table, splits, snapshots)
    champion = served[summary["champion"]]
    lists = precompute_lists(final, champion.scorer(final.state, final.gather), config["serving"]["precompute"])
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


def served_scorers(snapshot: Snapshot, models: dict, gnn, embeddings: np.ndarray) -> dict:
    """The scorer of each trained model at a snapshot, the GNN alone among them."""
    scorers = {
        name: PairScorer(snapshot.state, snapshot.gather, model, embeddings, gnn) for name, model in models.items()
    }
    scorers[GNN] = EmbeddingScorer(gnn, embeddings)
    return scorers


def evaluate(config, data, snapshots: dict, examples: dict, models: dict, gnn, embeddings: dict) -> RequestLists:
    """Every list for the sampled requests of each day: the funnel with each model, the baselines over the
    same candidates, and the oracle's ranking of them; relevant = the friendships formed that day."""
    k, result = config["evaluation"]["k"], RequestLists()
    for at, snapshot in snapshots.items():
        day = examples[at]
        ppr = proximity.personalized_pagerank(
            snapshot.state.adjacency, np.asarray(day.rows), **config["baselines"]["ppr"]
        )
        funnels = {
            f"funnel: {name}": snapshot.funnel.funnel(s)
            for name, s in served_scorers(snapshot, models, gnn, embeddings[at]).items()
        }
        funnels.update(snapshot.funnel.baselines())
        funnels["personalised PageRank"] = snapshot.funnel.funnel(VectorScorer(dict(zip(day.rows, ppr, strict=True))))
        labels_u, labels_v = snapshot.state.labels()
        for i, (row, request) in enumerate(zip(day.rows, day.requests, strict=True)):
            key = len(result.users)
            relevant = snapshot.state.user_ids[labels_v[labels_u == row]]
            lists = {name: f.catalog.item_ids[f.recommend(request, k).rows] for name, f in funnels.items()}
            if data.oracle is not None:
                candidates = snapshot.state.user_ids[day.candidates[i]]
                truth = data.oracle(np.full(len(candidates), request.user_id), candidates, at)
                lists[ORACLE] = oracle_lists(candidates, truth, k)
            result.add(key, request.user_id, lists, relevant, dict.fromkeys(relevant.tolist(), 1.0), day.merged[i])
    return result


def edge_auc(test: Examples, models, gnn, days, examples, snapshots, embeddings, data) -> pd.DataFrame:
    """ROC-AUC of each model and baseline as an edge classifier on the test candidate pairs (the
    chapter's offline metric of the GNN), beside the oracle's."""
    y = test.targets[LABEL].to_numpy()
    scores = {name: model.predict_proba(test.X)[:, 1] for name, model in models.items()}
    scores[GNN] = test.X[GNN_FEATURE].to_numpy()
    scores["common neighbours"] = test.X["mutual_friends"].to_numpy()
    scores["Adamic-Adar"] = test.X["adamic_adar"].to_numpy()
    if data.oracle is not None:
        truth = []
        for at in days:
            u, v = examples[at].pairs
            ids = snapshots[at].state.user_ids
            truth.append(data.oracle(ids[u], ids[v], at))
        scores[ORACLE] = np.concatenate(truth)
    return pd.DataFrame(
        [
            {"model": name, "roc_auc": auc(y, s), "pairs": len(y), "positives": int(y.sum())}
            for name, s in scores.items()
        ]
    )


def _track(system, config, data, days, served: dict, fit_metrics, evaluation, edge_table, splits, snapshots):
    k = config["evaluation"]["k"]
    few = {
        split: {
            int(snapshots[at].state.user_ids[row])
            for at in days[split]
            for row in np.flatnonzero(snapshots[at].state.degree < FEW_FRIENDS)
        }
        for split in ("validation", "test")
    }
    test_lists = list_table(
        evaluation["test"], k, {f"users with fewer than {FEW_FRIENDS} friends": (None, few["test"])}
    )
    validation = evaluation["validation"].metrics(k).set_index("list")
    metrics = {}
    for name in served:
        row = validation.loc[f"funnel: {name}"]
        metrics[name] = {
            **fit_metrics.get(name, {}),
            **{f"validation_{c.replace('@', '_at_')}": float(row[c]) for c in validation.columns if "@" in c},
        }
        test_row = test_lists[(test_lists["list"] == f"funnel: {name}") & (test_lists["segment"] == "all")].iloc[0]
        metrics[name].update({f"test_{c.replace('@', '_at_')}": float(test_row[c]) for c in test_row.index if "@" in c})
        metrics[name]["test_roc_auc"] = float(edge_table.loc[edge_table["model"] == name, "roc_auc"].iloc[0])
    champion = tracking.choose_champion(metrics, config["champion"], k=k)
    recall = evaluation["test"].candidate_recall(tuple(config["evaluation"]["recall_ks"]))
    table = results_markdown(k, test_lists, edge_table, recall, champion, evaluation["test"])
    tracking.use_experiment(system)
    pipeline_run = f"{system}-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}"
    data_params = {
        "scale": config["scale"],
        "seed": config["seed"],
        "n_users": len(data.users),
        "n_edges": len(data.edges.src),
        **{f"n_{split}": len(examples.X) for split, examples in splits.items()},
        **{f"{period}_start": str(period_days[0].date()) for period, period_days in days.items()},
    }
    uris = {}
    for name, bundle in served.items():
        params = {**data_params, "model": name, **config["models"].get(name, {})}
        tags = {"pipeline_run": pipeline_run, "champion": str(name == champion)}
        uris[name] = tracking.log_object_run(name, params, metrics[name], bundle, {}, tags)
    version = tracking.promote(system, uris[champion])
    (system_dir(system) / "results.md").write_text(table)
    tracking.log_summary_run(
        f"{pipeline_run}-summary",
        {"champion": champion, "champion_version": version, **data_params},
        figures={},
        texts={"results.md": table},
        tags={"pipeline_run": pipeline_run},
    )
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


def results_markdown(k, lists: pd.DataFrame, edges: pd.DataFrame, recall: pd.DataFrame, champion, evaluation) -> str:
    list_columns = ["list", f"precision@{k}", f"recall@{k}", f"map@{k}", "requests"]
    parts = [
        f"Candidate sources: recall@k of the friendships formed, {len(evaluation.merged)} test requests",
        "",
        markdown_table(recall.to_dict("records"), ["source", *(c for c in recall.columns if c.startswith("recall@"))]),
        "",
    ]
    for segment, table in lists.groupby("segment", sort=False):
        title = "all requests" if segment == "all" else segment
        rows = [
            {**r, "list": r["list"] + (" (champion)" if r["list"] == f"funnel: {champion}" else "")}
            for r in table.to_dict("records")
        ]
        parts += [f"Lists (k={k}), {title}", "", markdown_table(rows, list_columns), ""]
    parts += [
        "Edge classifier on the test candidate pairs",
        "",
        markdown_table(edges.to_dict("records"), list(edges.columns)),
    ]
    return "\n".join(parts)
