"""The ads batch feature pipeline (chapter section 5) and the request-time derivations that
training and serving share.

    build_feature_tables(dataset, config) -> {view name: table}   (systems.ads.dataset.load(config))

Snapshots (one row per key per day, stamped at 00:00 and covering events before it):
  user_activity        impressions / clicks over 1 and 7 days, hides over 7 days, smoothed CTR,
                       per-category impressions and clicks over 14 days (lists indexed by
                       CATEGORIES), the ads shown in the last 7 days (one entry per showing:
                       fatigue), the ads the user ever hid (negative feedback)
  ad_activity          impressions / clicks over 1 and 7 days and smoothed CTR
  campaign_activity    impressions / clicks over 7 days and smoothed CTR
  advertiser_activity  the same per advertiser
Static: user_profile (demographics, device habit), ad_metadata (ids, category, format, bid,
creative score, targeting criteria).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from common.data.dataset import Dataset
from common.features.lists import (
    category_count_lists,
    counts_or_zeros,
    ids_in_window,
    matches_per_row,
    pick_per_row,
)
from common.features.views import View
from common.features.windows import Count, Rate, activity_snapshots, day_index, smoothed_rate
from common.funnel.reranking import count_occurrences
from systems.ads.world import CATEGORIES

# Windows are part of the feature names (user_clicks_7d...), so they are constants, not config knobs.
WINDOWS_DAYS = (1, 7)
CATEGORY_WINDOW_DAYS = 14
DAILY_TTL = timedelta(days=2)  # a daily snapshot is valid for a day; two tolerate a late batch run
VIEWS = [
    View("user_profile", "user_id"),
    View("user_activity", "user_id", DAILY_TTL),
    View("ad_metadata", "ad_id"),
    View("ad_activity", "ad_id", DAILY_TTL),
    View("campaign_activity", "campaign_id", DAILY_TTL),
    View("advertiser_activity", "advertiser_id", DAILY_TTL),
]
CLICK_COUNTS = (("impressions", None), ("clicks", "clicked"))  # (count name, the label it sums)
RANKER_SERVICE = "ads_ranker"
# What the ranker reads per impression (None: every feature of the view); the targeting lists stay
# out (candidate generation reads them), the ids come as join keys.
RANKER_FEATURES = {view.name: None for view in VIEWS} | {"ad_metadata": ["category", "format", "bid", "creative_score"]}


def build_feature_tables(dataset: Dataset, config: dict) -> dict[str, pd.DataFrame | pa.Table]:
    """Static rows (profiles, ad metadata) valid from before the first event; daily snapshots of
    counts and smoothed CTRs per user, ad, campaign and advertiser; the user's list features."""
    prior = config["features"]["ctr_prior_impressions"]
    ads = dataset.items
    imp = dataset.events.merge(ads[["ad_id", "campaign_id", "advertiser_id", "category"]], on="ad_id")
    imp = imp.assign(day=day_index(imp["event_timestamp"], dataset.start))
    snapshots = np.arange(dataset.n_days + 1)  # the last one (after the last day) is what serving reads
    static_time = dataset.start - pd.Timedelta(days=1)

    def activity(key: str, ids, prefix: str, windows: tuple[int, ...], extra: tuple[Count, ...] = ()):
        """Impressions and clicks per window, the CTR over the longest one smoothed toward the platform's."""
        counts = [Count(f"{prefix}_{kind}_{w}d", w, label) for w in windows for kind, label in CLICK_COUNTS]
        w = max(windows)
        ctr = Rate(f"{prefix}_ctr_{w}d", f"{prefix}_clicks_{w}d", f"{prefix}_impressions_{w}d", prior)
        return activity_snapshots(imp, key, ids, dataset.start, snapshots, [*counts, *extra], [ctr])

    users = activity("user_id", dataset.users["user_id"], "user", WINDOWS_DAYS, (Count("user_hides_7d", 7, "hidden"),))
    return {
        "user_profile": dataset.users.assign(event_timestamp=static_time),
        "ad_metadata": ads.assign(event_timestamp=static_time),
        "user_activity": _with_user_lists(users, imp, len(dataset.users), len(snapshots)),
        "ad_activity": activity("ad_id", ads["ad_id"], "ad", WINDOWS_DAYS),
        "campaign_activity": activity("campaign_id", dataset.tables["campaigns"]["campaign_id"], "campaign", (7,)),
        "advertiser_activity": activity(
            "advertiser_id", dataset.tables["advertisers"]["advertiser_id"], "advertiser", (7,)
        ),
    }


def _with_user_lists(users: pd.DataFrame, imp: pd.DataFrame, n_users: int, n_snapshots: int) -> pa.Table:
    """The user's per-category impressions and clicks over 14 days (lists indexed by CATEGORIES), the ads
    shown in the last 7 days (one entry per showing: fatigue) and the ads ever hidden, snapshot-major
    like `users` (user ids are 0..n_users-1)."""
    table = pa.Table.from_pandas(users, preserve_index=False)
    user, day, ad = imp["user_id"].to_numpy(), imp["day"].to_numpy(), imp["ad_id"].to_numpy()
    category = pd.Categorical(imp["category"], CATEGORIES).codes
    for name, weights in (("category_impressions", None), ("category_clicks", imp["clicked"].to_numpy(float))):
        lists = category_count_lists(
            user, category, day, n_users, len(CATEGORIES), n_snapshots, CATEGORY_WINDOW_DAYS, weights
        )
        table = table.append_column(f"{name}_{CATEGORY_WINDOW_DAYS}d", lists)
    table = table.append_column("recent_ad_ids_7d", ids_in_window(user, day, ad, n_users, n_snapshots, 7))
    hidden = imp["hidden"].to_numpy() == 1
    return table.append_column(
        "hidden_ad_ids", ids_in_window(user[hidden], day[hidden], ad[hidden], n_users, n_snapshots, None)
    )


# ---- derivations shared by training and serving ------------------------------------------
LIST_FEATURES = ["category_impressions_14d", "category_clicks_14d", "recent_ad_ids_7d", "hidden_ad_ids"]


CATEGORY_CTR_PRIOR = 20.0  # pseudo-impressions pulling a category CTR toward the user's CTR


def derive_request_features(rows: pd.DataFrame) -> pd.DataFrame:
    """Turn each row's user list features into per-(user, ad) features: fatigue, and the
    user's history in this ad's category. Training rows come from get_historical_features,
    one user per row; `derive_for_one_user` is the same derivation for a serving request."""
    category, width = pd.Categorical(rows["category"], CATEGORIES).codes, len(CATEGORIES)
    impressions = pick_per_row(rows["category_impressions_14d"], category, width)
    clicks = pick_per_row(rows["category_clicks_14d"], category, width)
    return rows.assign(
        user_ad_impressions_7d=matches_per_row(rows["recent_ad_ids_7d"], rows["ad_id"].to_numpy()),
        user_category_impressions_14d=impressions,
        user_category_clicks_14d=clicks,
        # Smoothed toward the user's overall 7-day CTR (itself smoothed toward the global CTR).
        user_category_ctr_14d=smoothed_rate(clicks, impressions, rows["user_ctr_7d"].to_numpy(), CATEGORY_CTR_PRIOR),
    ).drop(columns=LIST_FEATURES, errors="ignore")


def derive_for_one_user(user: dict, ad_ids: np.ndarray, category_codes: np.ndarray) -> dict[str, np.ndarray]:
    """derive_request_features for many ads and one user, without broadcasting the user's
    lists to every row (a serving request scores hundreds of ads for one user)."""
    impressions = counts_or_zeros(user["category_impressions_14d"], len(CATEGORIES))[category_codes]
    clicks = counts_or_zeros(user["category_clicks_14d"], len(CATEGORIES))[category_codes]
    return {
        "user_ad_impressions_7d": count_occurrences(user["recent_ad_ids_7d"], ad_ids),
        "user_category_impressions_14d": impressions,
        "user_category_clicks_14d": clicks,
        "user_category_ctr_14d": smoothed_rate(clicks, impressions, user["user_ctr_7d"], CATEGORY_CTR_PRIOR),
    }
