"""Training pipeline of an event classifier: one probability per logged event (ads: P(click) of
an impression; later chapters: P(report), P(harmful) per label).

  dataset -> raw tables -> feature tables -> Feast (apply, materialize)
  -> one training row per event, its features as of its own time (point-in-time join)
  -> Periods: train / validation / test
  -> every model fits on train (early stopping, where it has any, on validation)
  -> Platt calibration on validation -> test metrics beside the baseline and the oracle
  -> an MLflow run per model, a summary run -> `<system>-ranker@champion` by the config's metric

A system supplies a ClassifierTask: what is truly its own (its features, its models).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from common.app.paths import system_dir
from common.data.atomic import write_text_atomically
from common.data.dataset import Dataset, write_raw_tables
from common.data.periods import Periods
from common.evaluation.classification import (
    classification_metrics,
    markdown_table,
    oracle_lift_share,
    reliability_figure,
    roc_figure,
)
from common.features.store import FeatureRepo
from common.features.views import View
from common.models import distributed
from common.models.calibration import PlattCalibrated
from common.tracking import runs as tracking

log = logging.getLogger(__name__)
TABLE_COLUMNS = ["model", "auc", "logloss", "nce", "ece", "auc_oracle_share", "nce_oracle_share"]


@dataclass(frozen=True)
class ClassifierTask:
    label: str  # the event column predicted
    feature_tables: Callable[[Dataset, dict], dict]  # (dataset, config) -> {view name: table}
    views: list[View]
    service: str  # the FeatureService training and serving both read
    service_features: dict[str, list[str] | None]  # view -> its features in the service (None: all)
    training_rows: Callable[[Dataset, FeatureRepo], pd.DataFrame]  # one row per event: inputs, label, time
    build_models: Callable[[dict], dict]  # config -> {name: estimator}; scikit-learn's contract
    model_inputs: list[str]  # the columns any model reads (the logged signature)
    baseline: str  # the simple model every other is compared with


@dataclass(frozen=True)
class Split:
    X: pd.DataFrame
    y: np.ndarray
    oracle: np.ndarray | None  # the true probability of each row's label, on a synthetic world


@dataclass(frozen=True)
class Fitted:
    model: object
    fit_seconds: float
    validation: dict[str, float]


def train(system: str, config: dict, dataset: Dataset, task: ClassifierTask) -> dict:
    """The whole pipeline; returns the summary (metrics per model, champion, the table)."""
    started = time.perf_counter()
    periods = Periods.from_config(dataset.start, dataset.n_days, config["periods"])
    with tqdm(total=4, desc=f"{system} pipeline", unit="stage") as stages:
        stages.set_postfix_str("raw tables, features, Feast")
        write_raw_tables(system, dataset)
        repo = publish_features(FeatureRepo(system), config, dataset, task)
        stages.update()
        stages.set_postfix_str("training set")
        splits = split_rows(task.training_rows(dataset, repo), dataset, task.label, periods)
        stages.update()
        stages.set_postfix_str("models")
        base_rate = float(splits["train"].y.mean())
        fitted = fit_models(task.build_models(config), splits, base_rate, config.get("workers"))
        stages.update()
        stages.set_postfix_str("evaluate, MLflow")
        summary = evaluate_and_track(system, config, task, periods, splits, fitted, base_rate)
        stages.update()
    summary["pipeline_seconds"] = time.perf_counter() - started
    log.info("%s pipeline done in %.0fs; champion %s", system, summary["pipeline_seconds"], summary["champion"])
    return summary


def publish_features(repo: FeatureRepo, config: dict, dataset: Dataset, task: ClassifierTask) -> FeatureRepo:
    """The feature tables of the whole dataset into Feast, the online store loaded with their latest values:
    what a training does first, and a platform's daily feature job (the online simulator's end of day)."""
    log.info("%s: building the feature tables", repo.system)
    tables = task.feature_tables(dataset, config)
    day = pd.Timedelta(days=1)
    first, after_last = dataset.start - 2 * day, dataset.day_start(dataset.n_days) + day
    repo.publish(
        tables, task.views, {task.service: task.service_features}, first.to_pydatetime(), after_last.to_pydatetime()
    )
    return repo


def split_rows(rows: pd.DataFrame, dataset: Dataset, label: str, periods: Periods) -> dict[str, Split]:
    """The rows of each period (train, validation, test), each with the oracle's probability of its label."""
    if isinstance(dataset.oracle, pd.DataFrame):
        rows = rows.merge(dataset.oracle[[dataset.event_key, label]].rename(columns={label: "_oracle"}))
    splits = {}
    for name in ("train", "validation", "test"):
        part = rows.loc[periods.mask(name, rows["event_timestamp"])].reset_index(drop=True)
        oracle = part["_oracle"].to_numpy() if "_oracle" in part else None
        splits[name] = Split(part.drop(columns="_oracle", errors="ignore"), part[label].to_numpy(), oracle)
    return splits


def fit_models(
    models: dict, splits: dict[str, Split], base_rate: float, workers: int | None = None
) -> dict[str, Fitted]:
    """Every model fitted on the train rows; with `workers`, the torch ones on that many Ray Train workers."""
    train_split, validation = splits["train"], splits["validation"]
    log.info("fitting %d models on %d rows", len(models), len(train_split.y))
    fitted = {}
    for name, model in tqdm(models.items(), desc="models", leave=False):
        started = time.perf_counter()
        # Models that can stop early watch the validation days (never the test days).
        early_stopping = "eval_set" in inspect.signature(model.fit).parameters
        evaluation = {"eval_set": (validation.X, validation.y)} if early_stopping else {}
        model = distributed.fit(model, workers, train_split.X, train_split.y, **evaluation)
        p_validation = model.predict_proba(validation.X)[:, 1]
        metrics = classification_metrics(validation.y, p_validation, base_rate, "validation")
        fitted[name] = Fitted(model, time.perf_counter() - started, metrics)
        log.info("%s: fit %.1fs, validation NCE %.4f", name, fitted[name].fit_seconds, metrics["validation_nce"])
    return fitted


def evaluate_and_track(
    system: str,
    config: dict,
    task: ClassifierTask,
    periods: Periods,
    splits: dict[str, Split],
    fitted: dict[str, Fitted],
    base_rate: float,
) -> dict:
    """Calibrate each model on the validation days, evaluate it on the test days beside the oracle, log
    a run per model, register the champion."""
    test, validation = splits["test"], splits["validation"]
    champion = tracking.choose_champion({name: fit.validation for name, fit in fitted.items()}, config["champion"])
    oracle = classification_metrics(test.y, test.oracle, base_rate, "test") if test.oracle is not None else None
    data_params = {
        "scale": config["scale"],
        "seed": config["seed"],
        "feature_service": task.service,
        "n_train": len(splits["train"].y),
        "n_validation": len(validation.y),
        "n_test": len(test.y),
        "train_rate": round(base_rate, 5),
        **periods.describe(),
    }
    tracking.use_experiment(system)
    pipeline_run = f"{system}-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}"
    reference = {} if test.oracle is None else {"oracle": test.oracle}
    rows, curves, results = [], dict(reference), {}
    for name, fit in fitted.items():
        calibrated = PlattCalibrated(fit.model).fit(validation.X, validation.y)
        p_test = calibrated.predict_proba(test.X)[:, 1]
        metrics = _test_metrics(test, p_test, fit, oracle, base_rate)
        curves[name] = p_test
        figures = {
            "roc.png": roc_figure(test.y, {name: p_test, **reference}),
            "reliability.png": reliability_figure(test.y, {name: p_test, **reference}),
        }
        params = {**data_params, **_model_params(fit.model), "model": name}
        tags = {"pipeline_run": pipeline_run, "champion": str(name == champion)}
        uri = tracking.log_model_run(
            name, params, metrics, figures, calibrated, test.X[task.model_inputs].head(100), tags
        )
        results[name] = {"metrics": metrics, "model_uri": uri, "validation": fit.validation}
        label = name + (" (champion)" if name == champion else "") + (" (baseline)" if name == task.baseline else "")
        rows.append({"model": label, **{column: metrics.get(f"test_{column}", np.nan) for column in TABLE_COLUMNS[1:]}})
    if oracle is not None:
        rows.append(
            {
                "model": f"oracle (true P({task.label}))",
                "auc_oracle_share": 1.0,
                "nce_oracle_share": 1.0,
                **{column: oracle[f"test_{column}"] for column in ("auc", "logloss", "nce", "ece")},
            }
        )
    version = tracking.promote(system, results[champion]["model_uri"], config=config)
    table = markdown_table(rows, TABLE_COLUMNS)
    write_text_atomically(system_dir(system) / "results.md", table)
    tracking.log_summary_run(
        f"{pipeline_run}-summary",
        {"champion": champion, "champion_version": version, **data_params},
        figures={
            "roc_all_models.png": roc_figure(test.y, curves),
            "reliability_all_models.png": reliability_figure(test.y, curves),
        },
        texts={"results.md": table},
        tags={"pipeline_run": pipeline_run},
    )
    return {"champion": champion, "champion_version": version, "results": results, "table": table}


def _test_metrics(test: Split, p_test: np.ndarray, fit: Fitted, oracle: dict | None, base_rate: float) -> dict:
    """The shared metric names: test_* (calibrated model), oracle_test_*, the oracle shares."""
    metrics = classification_metrics(test.y, p_test, base_rate, "test")
    raw = fit.model.predict_proba(test.X)[:, 1]
    metrics["test_ece_uncalibrated"] = classification_metrics(test.y, raw, base_rate, "test")["test_ece"]
    if oracle is not None:
        metrics.update(oracle_lift_share(metrics, oracle, "test"))
        metrics.update({f"oracle_{name}": value for name, value in oracle.items() if not name.endswith("_ece")})
    metrics.update(fit.validation, fit_seconds=fit.fit_seconds)
    return metrics


def _model_params(model) -> dict:
    """Hyper-parameters as MLflow params (the estimator's __init__ arguments)."""
    params = {k: v for k, v in vars(model).items() if not k.endswith("_") and k not in ("categorical", "numeric")}
    params["n_features"] = len(getattr(model, "categorical", ())) + len(getattr(model, "numeric", ()))
    return params
