import numpy as np
import pandas as pd
import pyarrow as pa

from systems.ads.dataset import to_dataset
from systems.ads.features import build_feature_tables, derive_request_features
from systems.ads.world import CATEGORIES, START, AdsTables, AdsWorld


def _as_frame(table) -> pd.DataFrame:
    return table.to_pandas() if isinstance(table, pa.Table) else table


def test_changing_events_after_t_leaves_features_as_of_t_unchanged(tiny_ads_config):
    """No leakage: rewrite everything from day 12 on; every snapshot stamped at or before
    day 12 (which covers events before it) must be identical."""
    tables = AdsWorld(**tiny_ads_config["world"]).generate()
    cutoff = START + pd.Timedelta(days=12)
    imp = tables.impressions.copy()
    after = imp["event_timestamp"] >= cutoff
    imp.loc[after, "clicked"] = 1 - imp.loc[after, "clicked"]
    imp.loc[after, "hidden"] = 0
    changed = AdsTables(
        tables.users, tables.advertisers, tables.campaigns, tables.ads, imp.drop(imp.index[after][::3]), tables.oracle
    )

    original = build_feature_tables(to_dataset(tables), tiny_ads_config)
    rewritten = build_feature_tables(to_dataset(changed), tiny_ads_config)
    for view in ("user_activity", "ad_activity", "campaign_activity", "advertiser_activity"):
        a, b = _as_frame(original[view]), _as_frame(rewritten[view])
        past = a["event_timestamp"] <= cutoff
        pd.testing.assert_frame_equal(a[past].reset_index(drop=True), b[past.to_numpy()].reset_index(drop=True))
        assert not a[~past].reset_index(drop=True).equals(b[~past.to_numpy()].reset_index(drop=True)), view


def test_snapshots_are_dense(tiny_ads_config):
    tables = AdsWorld(**tiny_ads_config["world"]).generate()
    features = build_feature_tables(to_dataset(tables), tiny_ads_config)
    n_snapshots = tiny_ads_config["world"]["n_days"] + 1
    assert len(features["user_activity"]) == len(tables.users) * n_snapshots
    assert len(features["ad_activity"]) == len(tables.ads) * n_snapshots


def test_derive_request_features_known_answer():
    impressions = [0] * len(CATEGORIES)
    clicks = [0] * len(CATEGORIES)
    impressions[CATEGORIES.index("travel")], clicks[CATEGORIES.index("travel")] = 30, 3
    rows = pd.DataFrame(
        {
            "ad_id": [7, 8],
            "category": ["travel", "books"],
            "user_ctr_7d": [0.02, 0.02],
            "category_impressions_14d": [impressions, impressions],
            "category_clicks_14d": [clicks, clicks],
            "recent_ad_ids_7d": [[7, 9, 7], [7, 9, 7]],
            "hidden_ad_ids": [[], []],
        }
    )
    derived = derive_request_features(rows)
    assert derived["user_ad_impressions_7d"].tolist() == [2, 0]
    assert derived["user_category_impressions_14d"].tolist() == [30, 0]
    # travel: (3 + 0.02 * 20) / (30 + 20) = 0.068; books: no history -> the user's CTR.
    assert np.allclose(derived["user_category_ctr_14d"], [0.068, 0.02])
    assert "recent_ad_ids_7d" not in derived.columns


def test_serving_derivation_equals_training_derivation():
    """Skew guard: the one-user fast path gives what the per-row training path gives."""
    from systems.ads.features import derive_for_one_user

    rng = np.random.default_rng(1)
    user = {
        "user_ctr_7d": 0.031,
        "category_impressions_14d": rng.integers(0, 9, len(CATEGORIES)).tolist(),
        "category_clicks_14d": rng.integers(0, 2, len(CATEGORIES)).tolist(),
        "recent_ad_ids_7d": rng.integers(0, 6, 15).tolist(),
        "hidden_ad_ids": [],
    }
    ad_ids = np.arange(8)
    categories = rng.choice(CATEGORIES, 8)
    rows = pd.DataFrame(
        {"ad_id": ad_ids, "category": categories, **{k: [v] * 8 if isinstance(v, list) else v for k, v in user.items()}}
    )
    training = derive_request_features(rows)
    serving = derive_for_one_user(user, ad_ids, pd.Categorical(categories, CATEGORIES).codes.astype(np.int64))
    for name, values in serving.items():
        np.testing.assert_allclose(training[name].to_numpy(dtype=float), values, err_msg=name)
