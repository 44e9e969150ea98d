"""Training pipeline of a rule-based funnel whose ranker learns from logged impressions (news feed,
events): candidates come from rules (who the user follows, where and when an event is), every
impression the logs hold is a labelled example.

  dataset -> raw tables -> the system's feature tables -> Feast (apply, materialize)
  -> one example per logged impression, its features as of its time (the task's `examples`)
  -> Periods: train / validation / test
  -> every model fits on train (early stopping on validation; a listwise ranker by request)
  -> each label's AUC, log loss and calibration on the test impressions, beside the oracle's
  -> the served funnel request by request over the validation and test days: each day a sample of the
     users active that day asks for k items as of the day's start; the lists of the funnel with each
     model, the task's baselines and the oracle's own ranking are scored against the same relevance
  -> the champion by the config's validation metric -> MLflow runs -> `<system>-ranker@champion`

A system supplies a RankingTask: its features, its models and its funnel at a time (FunnelState).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from tqdm import tqdm

from common.data.dataset import Dataset, write_raw_tables
from common.data.periods import Periods
from common.evaluation.classification import markdown_table, reliability_figure
from common.evaluation.metrics import auc, expected_calibration_error, log_loss
from common.evaluation.requests import ORACLE, RequestLists, oracle_lists
from common.features.lists import distinct_ids_by_key
from common.features.store import FeatureRepo
from common.features.views import View
from common.funnel.funnel import Funnel
from common.models.scorer import heads
from common.retrieval.sources import RetrievalRequest, merge_candidates
from common.tracking import runs as tracking

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Examples:
    X: pd.DataFrame  # the models' inputs, one row per logged impression
    targets: pd.DataFrame  # one column per label
    timestamps: np.ndarray  # each impression's time
    groups: np.ndarray  # each impression's request (user and day): what a listwise ranker ranks within


class FunnelState(Protocol):
    """A system's served funnel as it stood at one time (offline: features read as of then)."""

    def requests(self, user_ids: np.ndarray) -> list[RetrievalRequest]:
        """One request per user, at the state's time."""

    def funnel(self, model) -> Funnel:
        """The served funnel, ranking with `model`."""

    def baselines(self, models: dict) -> dict[str, Funnel]:
        """The lists a ranker must beat (chronological, popular, nearby and popular...), and variants of
        the trained ones (a score without some heads)."""

    def eligible(self, request: RetrievalRequest) -> np.ndarray:
        """The item ids the oracle ranks for this request: what the funnel could have shown."""


class PairOracle(Protocol):
    def gain(self, user_ids: np.ndarray, item_ids: np.ndarray, at: pd.Timestamp) -> np.ndarray:
        """The true expected value of showing each item to its user at `at` (P(register); expected
        weighted engagement)."""

    def label_probabilities(self, events: pd.DataFrame) -> pd.DataFrame:
        """The true probability of each label of the logged impressions, one column per label."""


@dataclass(frozen=True)
class RankingTask:
    labels: tuple[str, ...]  # the labels models learn; the first is the one single-label models learn
    feature_tables: Callable[[Dataset, dict], dict]  # (dataset, config) -> {view name: table}
    views: list[View]
    services: dict[str, dict[str, list[str] | None]]
    # (dataset, repo, config, since) -> one example per logged impression from `since` on (the warm-up
    # days before the first period only feed the features)
    examples: Callable[[Dataset, FeatureRepo, dict, pd.Timestamp], Examples]
    build_models: Callable[[dict], dict]  # config -> {name: estimator}
    state_at: Callable[[Dataset, FeatureRepo, dict, pd.Timestamp], FunnelState]
    item_segments: Callable[[Dataset, Periods], dict[str, set]] = lambda data, periods: {}
    user_segments: Callable[[Dataset], dict[str, set]] = lambda data: {}


@dataclass
class ServedRanker:
    """What the registry holds for a ranking funnel: the model, and the time its features were last
    computed (the serving clock of a frozen world: the wall clock would find every event over)."""

    model: object
    now: pd.Timestamp

    def predict_proba(self, X) -> np.ndarray:
        return self.model.predict_proba(X)

    def predict_heads(self, X) -> dict[str, np.ndarray]:
        return heads(self.model, X)


def train(system: str, config: dict, data: Dataset, task: RankingTask) -> dict:
    started = time.perf_counter()
    every = config["features"]["snapshot_every_days"]
    periods = Periods.from_config(data.start, data.n_days, config["periods"], every)
    with tqdm(total=4, desc=f"{system} pipeline", unit="stage") as stages:
        stages.set_postfix_str("raw tables, features, Feast")
        write_raw_tables(system, data)
        repo = FeatureRepo(system)
        day = pd.Timedelta(days=1)
        repo.publish(
            task.feature_tables(data, config),
            task.views,
            task.services,
            (data.start - 2 * day).to_pydatetime(),
            (periods.end + day).to_pydatetime(),
        )
        stages.update()
        stages.set_postfix_str("examples")
        examples = task.examples(data, repo, config, periods.start(periods.names[0]))
        splits = {
            name: _select(examples, periods.mask(name, examples.timestamps)) for name in ("train", "validation", "test")
        }
        stages.update()
        stages.set_postfix_str("models")
        models, fit_metrics = fit_models(task.build_models(config), splits, task.labels)
        stages.update()
        stages.set_postfix_str("evaluate, MLflow")
        label_table = label_metrics(models, splits["test"], task.labels, data, periods)
        evaluation = {
            split: evaluate_requests(task, data, repo, config, models, periods.start(split), periods.stop(split))
            for split in ("validation", "test")
        }
        summary = _track(system, config, data, periods, task, models, fit_metrics, label_table, evaluation, splits)
        stages.update()
    summary["pipeline_seconds"] = time.perf_counter() - started
    log.info("%s pipeline done in %.0fs; champion %s", system, summary["pipeline_seconds"], summary["champion"])
    return summary


def _select(examples: Examples, mask: np.ndarray) -> Examples:
    return Examples(
        examples.X[mask].reset_index(drop=True),
        examples.targets[mask].reset_index(drop=True),
        examples.timestamps[mask],
        examples.groups[mask],
    )


def fit_models(models: dict, splits: dict[str, Examples], labels: tuple[str, ...]) -> tuple[dict, dict]:
    """Fit each model on the train split, stopping early on validation where it can. A model with
    `predict_heads` learns every label; a listwise ranker (fit takes `groups`) ranks within requests;
    any other learns the first label."""
    train, validation = splits["train"], splits["validation"]
    metrics = {}
    for name, model in tqdm(models.items(), desc="models", leave=False):
        started = time.perf_counter()
        parameters = inspect.signature(model.fit).parameters
        if hasattr(model, "predict_heads"):
            model.fit(train.X, train.targets, eval_set=(validation.X, validation.targets))
        elif "groups" in parameters:
            y, y_val = train.targets[labels[0]].to_numpy(), validation.targets[labels[0]].to_numpy()
            model.fit(train.X, y, groups=train.groups, eval_set=(validation.X, y_val, validation.groups))
        elif "eval_set" in parameters:
            y, y_val = train.targets[labels[0]].to_numpy(), validation.targets[labels[0]].to_numpy()
            model.fit(train.X, y, eval_set=(validation.X, y_val))
        else:
            model.fit(train.X, train.targets[labels[0]].to_numpy())
        metrics[name] = {"fit_seconds": time.perf_counter() - started, "n_train": len(train.X)}
        log.info("%s: fit in %.1fs", name, metrics[name]["fit_seconds"])
    return models, metrics


def label_metrics(
    models: dict, test: Examples, labels: tuple[str, ...], data: Dataset, periods: Periods
) -> pd.DataFrame:
    """AUC, log loss and expected calibration error of every model's prediction of each label on the
    test impressions, with the oracle's row where the world knows the truth."""
    rows = []
    truth = None
    if data.oracle is not None:
        test_events = data.events.loc[periods.mask("test", data.events["event_timestamp"])].reset_index(drop=True)
        truth = data.oracle.label_probabilities(test_events)
    predictions = {name: heads(model, test.X) for name, model in models.items()}
    if truth is not None:
        predictions[ORACLE] = {label: truth[label].to_numpy() for label in labels if label in truth}
    for name, predicted in predictions.items():
        for label in labels:
            p = predicted.get(label, predicted.get("probability") if label == labels[0] else None)
            y = test.targets[label].to_numpy()
            if p is None or len(np.unique(y)) < 2:
                continue
            binary = np.isin(y, (0, 1)).all()
            rows.append(
                {
                    "model": name,
                    "label": label,
                    "auc": auc(y, p) if binary else np.nan,
                    "logloss": log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)) if binary else np.nan,
                    "ece": expected_calibration_error(y, p) if binary else np.nan,
                    # A regression label (dwell seconds): the error of the expected value, which the oracle minimises.
                    "rmse": float(np.sqrt(np.mean((y - p) ** 2))) if not binary else np.nan,
                }
            )
    return pd.DataFrame(rows)


def evaluate_requests(
    task: RankingTask, data: Dataset, repo: FeatureRepo, config: dict, models: dict, start: pd.Timestamp, stop
) -> RequestLists:
    """The lists of every funnel for a seeded sample of the users active on each day of [start, stop),
    as of the day's start, scored against the oracle's relevance (or the logged positives on real data)."""
    e, k = config["evaluation"], config["evaluation"]["k"]
    rng = np.random.default_rng(config["seed"])
    times = data.events["event_timestamp"]
    result = RequestLists()
    for day in pd.date_range(start, stop, freq="D", inclusive="left"):
        today = data.events[(times >= day) & (times < day + pd.Timedelta(days=1))]
        active = np.unique(today["user_id"].to_numpy(np.int64))
        if len(active) == 0:
            continue
        users = np.sort(rng.choice(active, size=min(e["users_per_day"], len(active)), replace=False))
        state = task.state_at(data, repo, config, day)
        funnels = {
            **{f"funnel: {name}": state.funnel(model) for name, model in models.items()},
            **state.baselines(models),
        }
        served = next(iter(funnels.values()))
        later = data.events[(times >= day) & (times < stop) & (data.events[task.labels[0]] > 0)]
        logged = distinct_ids_by_key(later["user_id"], later["item_id"])
        for request in state.requests(users):
            key = len(result.users)
            lists = {name: f.catalog.item_ids[f.recommend(request, k).rows] for name, f in funnels.items()}
            if data.oracle is not None:
                eligible = state.eligible(request)
                value = data.oracle.gain(np.full(len(eligible), request.user_id), eligible, day)
                lists[ORACLE] = oracle_lists(eligible, value, k)
                relevant = _relevant(eligible, value, e["relevance"], rng)
                gains = dict(zip(eligible.tolist(), value.tolist(), strict=True))
            else:
                relevant = logged.get(request.user_id, np.zeros(0, np.int64))
                gains = dict.fromkeys(relevant.tolist(), 1.0)
            merged = merge_candidates(request, served.sources, max(e["recall_ks"]), exclude=request.exclude)
            result.add(key, request.user_id, lists, relevant, gains, merged)
    return result


def _relevant(eligible: np.ndarray, value: np.ndarray, relevance: dict, rng: np.random.Generator) -> np.ndarray:
    """What a binary metric counts on a synthetic world: `drawn` (each item relevant with its gain as a
    probability: what the user would register for if shown) or `top` (the n highest gains)."""
    if relevance["kind"] == "drawn":
        return eligible[rng.random(len(eligible)) < value]
    order = np.argsort(-value, kind="stable")[: relevance["n"]]
    return eligible[order[value[order] > 0]]


def list_table(evaluation: RequestLists, k: int, segments: dict[str, tuple]) -> pd.DataFrame:
    """The list metrics for all requests and for each segment (name -> (items, users))."""
    tables = [evaluation.metrics(k).assign(segment="all")]
    for name, (items, users) in segments.items():
        tables.append(evaluation.metrics(k, items=items, users=users).assign(segment=name))
    return pd.concat(tables, ignore_index=True)


def _track(system, config, data, periods, task, models, fit_metrics, label_table, evaluation, splits) -> dict:
    k = config["evaluation"]["k"]
    segments = {
        **{name: (items, None) for name, items in task.item_segments(data, periods).items()},
        **{name: (None, users) for name, users in task.user_segments(data).items()},
    }
    test_lists = list_table(evaluation["test"], k, segments)
    metrics = funnel_metrics(models, fit_metrics, evaluation["validation"], test_lists, k)
    for name in models:
        for row in label_table[label_table["model"] == name].to_dict("records"):
            metrics[name].update(
                {f"test_{row['label']}_{m}": row[m] for m in ("auc", "logloss", "ece", "rmse") if row[m] == row[m]}
            )
    champion = tracking.choose_champion(metrics, config["champion"], k=k)
    recall = evaluation["test"].candidate_recall(tuple(config["evaluation"]["recall_ks"]))
    table = results_markdown(config, test_lists, label_table, recall, champion, evaluation["test"])

    data_params = {
        "scale": config["scale"],
        "seed": config["seed"],
        "n_users": len(data.users),
        "n_items": len(data.items),
        "n_impressions": len(data.events),
        **{f"n_{split}": len(examples.X) for split, examples in splits.items()},
        **periods.describe(),
    }
    figures = {}
    test = splits["test"]
    label = task.labels[0]
    if len(np.unique(test.targets[label])) == 2:
        curves = {
            name: heads(model, test.X).get(label, heads(model, test.X).get("probability"))
            for name, model in models.items()
        }
        figures["reliability.png"] = reliability_figure(
            test.targets[label].to_numpy(), {n: c for n, c in curves.items() if c is not None}
        )

    def log_model(name: str, params: dict, tags: dict) -> str:
        served = ServedRanker(models[name], periods.end)
        return tracking.log_model_run(name, params, metrics[name], {}, served, test.X.head(100), tags)

    version = tracking.record_pipeline(system, config, champion, models, data_params, table, log_model, figures)
    return {
        "champion": champion,
        "champion_version": version,
        "metrics": metrics,
        "table": table,
        "lists": test_lists,
        "labels": label_table,
        "recall": recall,
        "evaluation": evaluation,
    }


def funnel_metrics(
    names, fit_metrics: dict, validation: RequestLists, test_lists: pd.DataFrame, k: int
) -> dict[str, dict[str, float]]:
    """Per model: its fit metrics and its served funnel's list metrics on the validation requests and on
    all test requests (validation_map_at_10, test_ndcg_at_10...): what the champion is chosen by."""
    validation_table = validation.metrics(k).set_index("list")
    metrics = {}
    for name in names:
        row = validation_table.loc[f"funnel: {name}"]
        test_row = test_lists[(test_lists["list"] == f"funnel: {name}") & (test_lists["segment"] == "all")].iloc[0]
        metrics[name] = {
            **fit_metrics.get(name, {}),
            **{f"validation_{c.replace('@', '_at_')}": float(row[c]) for c in validation_table.columns if "@" in c},
            **{f"test_{c.replace('@', '_at_')}": float(test_row[c]) for c in test_row.index if "@" in c},
        }
    return metrics


def lists_markdown(
    k: int, lists: pd.DataFrame, recall: pd.DataFrame, champion: str, n_requests: int, relevant: str, columns: list
) -> list[str]:
    """The candidate sources' recall of the `relevant` items, then one table of the lists per segment."""
    parts = [
        f"Candidate sources: recall@k of {relevant}, {n_requests} test requests",
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
        parts += [f"Final lists (k={k}), {title}", "", markdown_table(rows, columns), ""]
    return parts


def results_markdown(
    config, lists: pd.DataFrame, labels: pd.DataFrame, recall: pd.DataFrame, champion: str, evaluation: RequestLists
) -> str:
    k = config["evaluation"]["k"]
    list_columns = ["list", f"precision@{k}", f"recall@{k}", f"map@{k}", f"ndcg@{k}", "requests"]
    parts = lists_markdown(k, lists, recall, champion, len(evaluation.merged), "the relevant items", list_columns)
    parts += [
        "Each label on the test impressions (the oracle: the world's true probability)",
        "",
        markdown_table(labels.to_dict("records"), [c for c in labels.columns if labels[c].notna().any()]),
    ]
    return "\n".join(parts)
