"""The ads click model (chapter section 6): its inputs, the chapter's model ladder, and one training
row per impression; common.pipelines.classifier trains, calibrates, evaluates and registers them.

    python -m common.app.cli train --system ads [--scale tiny]
"""

from __future__ import annotations

import pandas as pd

from common.data.dataset import Dataset
from common.features.store import FeatureRepo
from common.models.deep import DeepCTRClassifier
from common.models.tabular import GBDTLogisticCTR, LightGBMCTR, LogisticRegressionCTR
from common.pipelines.classifier import ClassifierTask
from systems.ads.features import RANKER_FEATURES, RANKER_SERVICE, VIEWS, build_feature_tables, derive_request_features

BASELINE = "logistic_regression"
LOW_CARDINALITY = ["age_bucket", "gender", "location", "device", "category", "format"]
# The deep models embed these. Not user_id: with ~25 impressions a user its embedding overfit
# after one epoch (validation NCE 0.938 with it, 0.925 without); the user comes in through
# demographics and history features instead.
ID_FEATURES = ["ad_id", "advertiser_id", "campaign_id"]
CONTEXT = ["device", "hour", "position"]  # comes with the request; the rest from Feast
COUNTS = [f"{entity}_{kind}_{w}d" for entity in ("user", "ad") for w in (1, 7) for kind in ("impressions", "clicks")]
COUNTS += [f"{entity}_{kind}_7d" for entity in ("campaign", "advertiser") for kind in ("impressions", "clicks")]
RATES = [f"{entity}_ctr_7d" for entity in ("user", "ad", "campaign", "advertiser")]
DERIVED = [
    "user_ad_impressions_7d",
    "user_category_impressions_14d",
    "user_category_clicks_14d",
    "user_category_ctr_14d",
]
NUMERIC = ["hour", "position", "mobile_share", "bid", "creative_score", *COUNTS, *RATES, "user_hides_7d", *DERIVED]
MODEL_INPUTS = list(dict.fromkeys(LOW_CARDINALITY + ID_FEATURES + NUMERIC))  # what any model reads


def build_models(config: dict) -> dict[str, object]:
    """The chapter's model ladder: LR baseline, GBDT, GBDT+LR, DCN v2, DeepFM. Trees and LR see no
    raw IDs (too many values to one-hot or split on); the deep models embed the ad's."""
    m, seed = config["models"], config["seed"]
    threads, torch_threads = m["threads"], m["torch_threads"]
    deep_categorical = LOW_CARDINALITY + ID_FEATURES
    return {
        # A linear model needs hour and slot as categories: their effects are not monotone.
        BASELINE: LogisticRegressionCTR(
            LOW_CARDINALITY + ["hour", "position"],
            [c for c in NUMERIC if c not in ("hour", "position")],
            **m["logistic_regression"],
        ),
        "lightgbm": LightGBMCTR(LOW_CARDINALITY, NUMERIC, random_state=seed, n_threads=threads, **m["lightgbm"]),
        "gbdt_lr": GBDTLogisticCTR(LOW_CARDINALITY, NUMERIC, random_state=seed, n_threads=threads, **m["gbdt_lr"]),
        "dcn_v2": DeepCTRClassifier(
            "dcn", deep_categorical, NUMERIC, random_state=seed, n_threads=torch_threads, **m["dcn"]
        ),
        "deepfm": DeepCTRClassifier(
            "deepfm", deep_categorical, NUMERIC, random_state=seed, n_threads=torch_threads, **m["deepfm"]
        ),
    }


def training_rows(dataset: Dataset, repo: FeatureRepo) -> pd.DataFrame:
    """Every impression with its features as of its own timestamp (Feast point-in-time join)."""
    ids = dataset.items[["ad_id", "campaign_id", "advertiser_id"]]
    impressions = dataset.events.merge(ids, on="ad_id")
    keys = ["impression_id", "user_id", "ad_id", "campaign_id", "advertiser_id", "event_timestamp"]
    return derive_request_features(repo.historical(RANKER_SERVICE, impressions[[*keys, *CONTEXT, "clicked"]]))


TASK = ClassifierTask(
    label="clicked",
    feature_tables=build_feature_tables,
    views=VIEWS,
    service=RANKER_SERVICE,
    service_features=RANKER_FEATURES,
    training_rows=training_rows,
    build_models=build_models,
    model_inputs=MODEL_INPUTS,
    baseline=BASELINE,
)
