"""Ads training pipeline: world -> raw tables -> batch features -> Feast -> point-in-time
training set -> five models -> evaluation against LR and the oracle -> MLflow -> champion.

    python -m common.cli train --system ads [--scale tiny]
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from common import tracking
from common.batch_features import day_index
from common.evaluation import (
    classification_metrics,
    markdown_table,
    oracle_lift_share,
    reliability_figure,
    roc_figure,
)
from common.feature_store import apply_and_materialize, feature_repo_dir, historical_features, open_store
from common.models.calibration import PlattCalibrated
from common.models.deep import DeepCTRClassifier
from common.models.tabular import GBDTLogisticCTR, LightGBMCTR, LogisticRegressionCTR
from common.paths import system_dir
from systems.ads import feature_repo
from systems.ads.features import build_feature_tables, derive_request_features
from systems.ads.world import START, AdsTables, AdsWorld

log = logging.getLogger(__name__)

SYSTEM = "ads"
BASELINE = "logistic_regression"
# Model inputs. Context (device, hour, position) comes with the request; the rest from Feast.
LOW_CARDINALITY = ["age_bucket", "gender", "location", "device", "category", "format"]
ID_FEATURES = ["user_id", "ad_id", "advertiser_id", "campaign_id"]
NUMERIC = [
    "hour", "position", "mobile_share", "bid", "creative_score",
    "user_impressions_1d", "user_clicks_1d", "user_impressions_7d", "user_clicks_7d", "user_ctr_7d", "user_hides_7d",
    "ad_impressions_1d", "ad_clicks_1d", "ad_impressions_7d", "ad_clicks_7d", "ad_ctr_7d",
    "advertiser_impressions_7d", "advertiser_clicks_7d", "advertiser_ctr_7d",
    "user_ad_impressions_7d", "user_category_impressions_14d", "user_category_clicks_14d", "user_category_ctr_14d",
]
CONTEXT = ["device", "hour", "position"]
MODEL_INPUTS = list(dict.fromkeys(LOW_CARDINALITY + ID_FEATURES + NUMERIC))  # what any model reads


@dataclass(frozen=True)
class Split:
    X: pd.DataFrame
    y: np.ndarray
    oracle: np.ndarray


def build_models(config: dict) -> dict[str, object]:
    """The chapter's model ladder: LR baseline, GBDT, GBDT+LR, DCN v2, DeepFM. Trees and
    LR see no raw IDs (too many values to one-hot or split on); the deep models embed them."""
    m, seed, threads = config["models"], config["seed"], config["models"]["threads"]
    tree_categorical = LOW_CARDINALITY
    deep_categorical = LOW_CARDINALITY + ID_FEATURES
    return {
        # A linear model needs hour and slot as categories: their effects are not monotone.
        BASELINE: LogisticRegressionCTR(LOW_CARDINALITY + ["hour", "position"],
                                        [c for c in NUMERIC if c not in ("hour", "position")], **m["logistic_regression"]),
        "lightgbm": LightGBMCTR(tree_categorical, NUMERIC, random_state=seed, n_threads=threads, **m["lightgbm"]),
        "gbdt_lr": GBDTLogisticCTR(tree_categorical, NUMERIC, random_state=seed, n_threads=threads, **m["gbdt_lr"]),
        "dcn_v2": DeepCTRClassifier("dcn", deep_categorical, NUMERIC, random_state=seed, n_threads=threads, **m["dcn"]),
        "deepfm": DeepCTRClassifier("deepfm", deep_categorical, NUMERIC, random_state=seed, n_threads=threads,
                                    **m["deepfm"]),
    }


def generate_data(config: dict) -> AdsTables:
    """Raw tables of the world (parquet under data/ads/raw), then the feature sources, then
    Feast apply + materialize."""
    tables = AdsWorld(**config["world"]).generate()
    raw = system_dir(SYSTEM) / "raw"
    raw.mkdir(exist_ok=True)
    for name in ("users", "advertisers", "ads", "impressions", "oracle"):
        getattr(tables, name).to_parquet(raw / f"{name}.parquet", index=False)

    repo = feature_repo_dir(system_dir(SYSTEM))
    for name, table in build_feature_tables(tables, config["features"]).items():
        if isinstance(table, pd.DataFrame):
            table = pa.Table.from_pandas(table, preserve_index=False)
        pq.write_table(table, repo / "sources" / f"{name}.parquet")
    end = tables.impressions["event_timestamp"].max().normalize() + pd.Timedelta(days=2)
    apply_and_materialize(open_store(SYSTEM, repo), feature_repo.definitions(repo / "sources"),
                          START - pd.Timedelta(days=2), end.to_pydatetime())
    return tables


def training_rows(tables: AdsTables) -> pd.DataFrame:
    """Every impression with its features as of its own timestamp (Feast point-in-time join)."""
    impressions = tables.impressions.merge(tables.ads[["ad_id", "advertiser_id"]], on="ad_id")
    entity_rows = impressions[["impression_id", "user_id", "ad_id", "advertiser_id", "event_timestamp",
                               *CONTEXT, "clicked"]]
    store = open_store(SYSTEM, feature_repo_dir(system_dir(SYSTEM)))
    rows = derive_request_features(historical_features(store, feature_repo.RANKER_SERVICE, entity_rows))
    return rows.merge(tables.oracle, on="impression_id")


def time_split(rows: pd.DataFrame, split_config: dict, warmup_days: int = 1) -> dict[str, Split]:
    """Train on the early days, select and calibrate on the next, test on the last. Day 0
    is dropped: its features have no history at all."""
    day = day_index(rows["event_timestamp"], START)
    last = day.max()
    test_start = last - split_config["test_days"] + 1
    validation_start = test_start - split_config["validation_days"]
    masks = {
        "train": (day >= warmup_days) & (day < validation_start),
        "validation": (day >= validation_start) & (day < test_start),
        "test": day >= test_start,
    }
    return {name: Split(rows.loc[mask].reset_index(drop=True), rows.loc[mask, "clicked"].to_numpy(),
                        rows.loc[mask, "p_click"].to_numpy()) for name, mask in masks.items()}


def train(config: dict) -> dict:
    """The whole pipeline; returns the summary (metrics per model, champion)."""
    started = time.perf_counter()
    stages = tqdm(total=4, desc="ads pipeline", unit="stage")
    stages.set_postfix_str("world, features, Feast"); tables = generate_data(config); stages.update()
    stages.set_postfix_str("training set"); splits = time_split(training_rows(tables), config["split"]); stages.update()
    base_rate = float(splits["train"].y.mean())

    fitted, validation_nce = {}, {}
    stages.set_postfix_str("models")
    for name, model in tqdm(build_models(config).items(), desc="models", leave=False):
        t0 = time.perf_counter()
        # Models that can stop early watch the validation days (never the test days).
        early_stopping = "eval_set" in inspect.signature(model.fit).parameters
        fit_args = {"eval_set": (splits["validation"].X, splits["validation"].y)} if early_stopping else {}
        model.fit(splits["train"].X, splits["train"].y, **fit_args)
        p_val = model.predict_proba(splits["validation"].X)[:, 1]
        validation_nce[name] = classification_metrics(splits["validation"].y, p_val, base_rate, "validation")["validation_nce"]
        fitted[name] = (model, time.perf_counter() - t0)
        log.info("%s: fit %.1fs, validation NCE %.4f", name, fitted[name][1], validation_nce[name])
    stages.update()

    champion = min(validation_nce, key=validation_nce.get)
    stages.set_postfix_str("evaluate, MLflow"); summary = _evaluate_and_track(config, splits, fitted, champion, base_rate, tables); stages.update()
    stages.close()
    summary["pipeline_seconds"] = time.perf_counter() - started
    log.info("ads pipeline done in %.0fs; champion %s", summary["pipeline_seconds"], champion)
    return summary


def _evaluate_and_track(config, splits, fitted, champion, base_rate, tables) -> dict:
    test, validation = splits["test"], splits["validation"]
    oracle_test = classification_metrics(test.y, test.oracle, base_rate, "test")
    oracle_metrics = {f"oracle_{k}": v for k, v in oracle_test.items() if not k.endswith("_ece")}
    data_params = {
        "scale": config["scale"], "seed": config["seed"], "feature_service": feature_repo.RANKER_SERVICE,
        "n_impressions": len(tables.impressions), "n_train": len(splits["train"].y),
        "n_validation": len(validation.y), "n_test": len(test.y), "train_ctr": round(base_rate, 5),
    }
    experiment_id = tracking.use_experiment(SYSTEM)
    pipeline_run = f"ads-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}"
    rows, curves, results = [], {"oracle": test.oracle}, {}
    for name, (model, fit_seconds) in fitted.items():
        # Calibrate on the validation days; the test days stay untouched.
        raw_test = model.predict_proba(test.X)[:, 1]
        calibrated = PlattCalibrated(model).fit(validation.X, validation.y)
        p_test = calibrated.predict_proba(test.X)[:, 1]
        metrics = classification_metrics(test.y, p_test, base_rate, "test")
        metrics["test_ece_uncalibrated"] = classification_metrics(test.y, raw_test, base_rate, "test")["test_ece"]
        metrics.update(oracle_lift_share(metrics, oracle_test, "test"))
        metrics.update(oracle_metrics)
        metrics["fit_seconds"] = fit_seconds
        curves[name] = p_test
        params = {**data_params, **{k: v for k, v in vars(model).items() if not k.endswith("_") and k not in ("categorical", "numeric")},
                  "model": name, "n_features": len(getattr(model, "categorical", ())) + len(getattr(model, "numeric", ()))}
        figures = {"roc.png": roc_figure(test.y, {name: p_test, "oracle": test.oracle}),
                   "reliability.png": reliability_figure(test.y, {name: p_test, "oracle": test.oracle})}
        uri = tracking.log_model_run(name, params, metrics, figures, calibrated, test.X[MODEL_INPUTS].head(100),
                                     tags={"pipeline_run": pipeline_run, "champion": str(name == champion)})
        results[name] = {"metrics": metrics, "model_uri": uri}
        rows.append({"model": name, **{k.removeprefix("test_"): metrics[k] for k in
                     ("test_auc", "test_logloss", "test_nce", "test_ece", "test_auc_oracle_share", "test_nce_oracle_share")}})
    rows.append({"model": "oracle (true P(click))", "auc": oracle_test["test_auc"], "logloss": oracle_test["test_logloss"],
                 "nce": oracle_test["test_nce"], "ece": oracle_test["test_ece"], "auc_oracle_share": 1.0, "nce_oracle_share": 1.0})
    version = tracking.promote(SYSTEM, results[champion]["model_uri"])
    table = markdown_table(rows, ["model", "auc", "logloss", "nce", "ece", "auc_oracle_share", "nce_oracle_share"])
    (system_dir(SYSTEM) / "results.md").write_text(table)
    tracking.log_summary_run(
        f"{pipeline_run}-summary", {"champion": champion, "champion_version": version, **data_params},
        figures={"roc_all_models.png": roc_figure(test.y, curves),
                 "reliability_all_models.png": reliability_figure(test.y, curves)},
        texts={"results.md": table}, tags={"pipeline_run": pipeline_run})
    return {"experiment_id": experiment_id, "champion": champion, "champion_version": version,
            "results": results, "table": table}
