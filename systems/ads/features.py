"""The ads batch feature pipeline (chapter section 5) and the request-time derivations that
training and serving share.

    tables = AdsWorld(...).generate(); build_feature_tables(tables, config) -> {view name: DataFrame}

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

import numpy as np
import pandas as pd
import pyarrow as pa

from common.features.windows import (
    daily_counts,
    day_index,
    list_column,
    smoothed_rate,
    snapshot_times,
    trailing_window_sums,
)
from systems.ads.world import CATEGORIES, START, AdsTables

STATIC_TIMESTAMP = START - pd.Timedelta(days=1)  # static rows are valid from before the first event
# Windows are part of the feature names the Feast schema declares (user_clicks_7d...), so
# they are constants here rather than config knobs.
WINDOWS_DAYS = (1, 7)
CATEGORY_WINDOW_DAYS = 14


def build_feature_tables(tables: AdsTables, feature_config: dict) -> dict[str, pd.DataFrame | pa.Table]:
    imp = tables.impressions.merge(tables.ads[["ad_id", "campaign_id", "advertiser_id", "category"]], on="ad_id")
    n_days = int(day_index(imp["event_timestamp"], START).max()) + 1
    n_snapshots = n_days + 1  # the last snapshot (after the last day) is what serving reads
    imp = imp.assign(day=day_index(imp["event_timestamp"], START))
    global_ctr = _global_ctr_before(imp, n_days)
    return {
        "user_profile": tables.users.assign(event_timestamp=STATIC_TIMESTAMP),
        "ad_metadata": tables.ads.assign(event_timestamp=STATIC_TIMESTAMP),
        "user_activity": _user_activity(imp, len(tables.users), n_days, n_snapshots, feature_config, global_ctr),
        "ad_activity": _entity_activity(
            imp,
            "ad_id",
            "ad",
            len(tables.ads),
            n_days,
            feature_config,
            global_ctr,
            windows=WINDOWS_DAYS,
        ),
        "campaign_activity": _entity_activity(
            imp, "campaign_id", "campaign", len(tables.campaigns), n_days, feature_config, global_ctr, windows=[7]
        ),
        "advertiser_activity": _entity_activity(
            imp, "advertiser_id", "advertiser", len(tables.advertisers), n_days, feature_config, global_ctr, windows=[7]
        ),
    }


def _global_ctr_before(imp: pd.DataFrame, n_days: int) -> np.ndarray:
    """(n_snapshots,) CTR of all events before each snapshot: the prior of the smoothed CTRs.
    Before any event it is 0 (nothing is known yet)."""
    per_day = imp.groupby("day")["clicked"].agg(["sum", "size"]).reindex(range(n_days), fill_value=0)
    clicks = np.concatenate([[0.0], per_day["sum"].cumsum().to_numpy(float)])
    shows = np.concatenate([[0.0], per_day["size"].cumsum().to_numpy(float)])
    return np.divide(clicks, shows, out=np.zeros_like(clicks), where=shows > 0)


def _window_counts(
    imp: pd.DataFrame, key: str, n_keys: int, n_days: int, window: int | None, column: str | None = None
):
    """(n_keys, n_snapshots) events (or the sum of `column`) per key over the trailing window."""
    weights = None if column is None else imp[column].to_numpy(float)
    per_day = daily_counts(imp[key].to_numpy(), imp["day"].to_numpy(), n_keys, n_days, weights)
    return trailing_window_sums(per_day, window)


def _entity_activity(imp, key, prefix, n_keys, n_days, feature_config, global_ctr, windows) -> pd.DataFrame:
    columns = {}
    for w in windows:
        columns[f"{prefix}_impressions_{w}d"] = _window_counts(imp, key, n_keys, n_days, w)
        columns[f"{prefix}_clicks_{w}d"] = _window_counts(imp, key, n_keys, n_days, w, "clicked")
    longest = max(windows)
    columns[f"{prefix}_ctr_{longest}d"] = smoothed_rate(
        columns[f"{prefix}_clicks_{longest}d"],
        columns[f"{prefix}_impressions_{longest}d"],
        global_ctr[None, :],
        feature_config["ctr_prior_impressions"],
    )
    return _dense_frame(key, n_keys, columns)


def _dense_frame(key: str, n_keys: int, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Flatten (n_keys, n_snapshots) arrays into one row per key and snapshot, snapshot-major."""
    n_snapshots = next(iter(columns.values())).shape[1]
    frame = pd.DataFrame(
        {
            key: np.tile(np.arange(n_keys), n_snapshots),
            "event_timestamp": np.repeat(snapshot_times(START, n_snapshots), n_keys),
        }
    )
    for name, values in columns.items():
        flat = values.T.ravel()
        frame[name] = flat if "_ctr_" in name else flat.astype(np.int64)  # rates stay floats, counts are whole
    return frame


def _user_activity(imp, n_users, n_days, n_snapshots, feature_config, global_ctr) -> pa.Table:
    frame = _entity_activity(imp, "user_id", "user", n_users, n_days, feature_config, global_ctr, windows=WINDOWS_DAYS)
    frame["user_hides_7d"] = _window_counts(imp, "user_id", n_users, n_days, 7, "hidden").T.ravel().astype(np.int64)
    table = pa.Table.from_pandas(frame, preserve_index=False)

    # Per-category history: key = user * n_categories + category, reshaped to one list per row.
    n_cat = len(CATEGORIES)
    cat_key = imp["user_id"].to_numpy() * n_cat + pd.Categorical(imp["category"], CATEGORIES).codes
    window = CATEGORY_WINDOW_DAYS
    for name, column in (("category_impressions", None), ("category_clicks", "clicked")):
        counts = _window_counts(imp.assign(cat_key=cat_key), "cat_key", n_users * n_cat, n_days, window, column)
        per_row = counts.reshape(n_users, n_cat, n_snapshots).transpose(2, 0, 1).reshape(-1, n_cat)  # snapshot-major
        offsets = pa.array(np.arange(0, per_row.size + 1, n_cat, dtype=np.int32))
        table = table.append_column(
            f"{name}_{window}d", pa.ListArray.from_arrays(offsets, pa.array(per_row.ravel().astype(np.int64)))
        )

    table = table.append_column("recent_ad_ids_7d", _ads_per_snapshot(imp, n_users, n_snapshots, window_days=7))
    table = table.append_column("hidden_ad_ids", _ads_per_snapshot(imp[imp["hidden"] == 1], n_users, n_snapshots, None))
    return table


def _ads_per_snapshot(events: pd.DataFrame, n_users: int, n_snapshots: int, window_days: int | None) -> pa.ListArray:
    """For each (snapshot, user) row, the ad ids of the user's events in the window before
    the snapshot, one entry per event."""
    days = events["day"].to_numpy()
    users = events["user_id"].to_numpy()
    ads = events["ad_id"].to_numpy()
    owners, values = [], []
    for snapshot in range(n_snapshots):
        in_window = (days < snapshot) & ((days >= snapshot - window_days) if window_days else True)
        owners.append(snapshot * n_users + users[in_window])
        values.append(ads[in_window])
    return list_column(np.concatenate(owners), np.concatenate(values), n_snapshots * n_users)


# ---- derivations shared by training and serving ------------------------------------------
LIST_FEATURES = ["category_impressions_14d", "category_clicks_14d", "recent_ad_ids_7d", "hidden_ad_ids"]


CATEGORY_CTR_PRIOR = 20.0  # pseudo-impressions pulling a category CTR toward the user's CTR


def derive_request_features(rows: pd.DataFrame) -> pd.DataFrame:
    """Turn each row's user list features into per-(user, ad) features: fatigue, and the
    user's history in this ad's category. Training rows come from get_historical_features,
    one user per row; `derive_for_one_user` is the same derivation for a serving request."""
    category = pd.Categorical(rows["category"], CATEGORIES).codes
    impressions = _pick(rows["category_impressions_14d"], category)
    clicks = _pick(rows["category_clicks_14d"], category)
    return rows.assign(
        user_ad_impressions_7d=_count_matches(rows["recent_ad_ids_7d"], rows["ad_id"].to_numpy()),
        user_category_impressions_14d=impressions,
        user_category_clicks_14d=clicks,
        # Smoothed toward the user's overall 7-day CTR (itself smoothed toward the global CTR).
        user_category_ctr_14d=smoothed_rate(clicks, impressions, rows["user_ctr_7d"].to_numpy(), CATEGORY_CTR_PRIOR),
    ).drop(columns=LIST_FEATURES, errors="ignore")


def derive_for_one_user(user: dict, ad_ids: np.ndarray, category_codes: np.ndarray) -> dict[str, np.ndarray]:
    """derive_request_features for many ads and one user, without broadcasting the user's
    lists to every row (a serving request scores hundreds of ads for one user)."""
    impressions = _as_category_counts(user["category_impressions_14d"])[category_codes]
    clicks = _as_category_counts(user["category_clicks_14d"])[category_codes]
    return {
        "user_ad_impressions_7d": exposures_per_ad(user["recent_ad_ids_7d"], ad_ids),
        "user_category_impressions_14d": impressions,
        "user_category_clicks_14d": clicks,
        "user_category_ctr_14d": smoothed_rate(clicks, impressions, user["user_ctr_7d"], CATEGORY_CTR_PRIOR),
    }


def exposures_per_ad(recent_ad_ids, ad_ids: np.ndarray) -> np.ndarray:
    """How often each of `ad_ids` occurs in the user's recent exposures (fatigue)."""
    recent = np.asarray(recent_ad_ids if recent_ad_ids is not None else [], dtype=np.int64)
    if len(recent) == 0:
        return np.zeros(len(ad_ids), dtype=np.int64)
    return (recent[None, :] == np.asarray(ad_ids)[:, None]).sum(axis=1)


def _as_category_counts(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64) if values is not None and len(values) else _ZEROS


def _pick(lists: pd.Series, index: np.ndarray) -> np.ndarray:
    """lists[i][index[i]] for equal-length lists; missing lists (unknown users) read 0."""
    filled = [v if v is not None and len(v) else _ZEROS for v in lists]
    return np.stack(filled)[np.arange(len(index)), index].astype(np.int64)


_ZEROS = np.zeros(len(CATEGORIES), dtype=np.int64)


def _count_matches(lists: pd.Series, targets: np.ndarray) -> np.ndarray:
    """How often targets[i] occurs in lists[i], without a Python loop over elements."""
    lengths = np.fromiter((0 if v is None else len(v) for v in lists), dtype=np.int64, count=len(lists))
    if lengths.sum() == 0:
        return np.zeros(len(lists), dtype=np.int64)
    flat = np.concatenate([np.asarray(v, dtype=np.int64) for v in lists if v is not None and len(v)])
    owner = np.repeat(np.arange(len(lists)), lengths)
    return np.bincount(owner, weights=flat == targets[owner], minlength=len(lists)).astype(np.int64)
