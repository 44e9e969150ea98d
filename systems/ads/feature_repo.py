"""Feast definitions of the ads system: entities, parquet sources, feature views and the
ranker's FeatureService. Training (get_historical_features) and serving
(get_online_features) name the same service, so they read the same feature set."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource
from feast.types import Array, Float64, Int64, String
from feast.value_type import ValueType

RANKER_SERVICE = "ads_ranker"
# Daily snapshots: a row is valid for a day; two days of TTL tolerate a late batch run.
DAILY_TTL = timedelta(days=2)
STATIC_TTL = timedelta(0)  # no expiry

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
ad = Entity(name="ad", join_keys=["ad_id"], value_type=ValueType.INT64)
campaign = Entity(name="campaign", join_keys=["campaign_id"], value_type=ValueType.INT64)
advertiser = Entity(name="advertiser", join_keys=["advertiser_id"], value_type=ValueType.INT64)

VIEW_SCHEMAS = {
    "user_profile": (
        user,
        STATIC_TTL,
        {"age_bucket": String, "gender": String, "location": String, "mobile_share": Float64},
    ),
    "user_activity": (
        user,
        DAILY_TTL,
        {
            "user_impressions_1d": Int64,
            "user_clicks_1d": Int64,
            "user_impressions_7d": Int64,
            "user_clicks_7d": Int64,
            "user_ctr_7d": Float64,
            "user_hides_7d": Int64,
            "category_impressions_14d": Array(Int64),
            "category_clicks_14d": Array(Int64),
            "recent_ad_ids_7d": Array(Int64),
            "hidden_ad_ids": Array(Int64),
        },
    ),
    "ad_metadata": (
        ad,
        STATIC_TTL,
        {
            "campaign_id": Int64,
            "advertiser_id": Int64,
            "category": String,
            "format": String,
            "bid": Float64,
            "creative_score": Float64,
            "target_age_buckets": Array(String),
            "target_genders": Array(String),
            "target_locations": Array(String),
        },
    ),
    "ad_activity": (
        ad,
        DAILY_TTL,
        {
            "ad_impressions_1d": Int64,
            "ad_clicks_1d": Int64,
            "ad_impressions_7d": Int64,
            "ad_clicks_7d": Int64,
            "ad_ctr_7d": Float64,
        },
    ),
    "campaign_activity": (
        campaign,
        DAILY_TTL,
        {"campaign_impressions_7d": Int64, "campaign_clicks_7d": Int64, "campaign_ctr_7d": Float64},
    ),
    "advertiser_activity": (
        advertiser,
        DAILY_TTL,
        {"advertiser_impressions_7d": Int64, "advertiser_clicks_7d": Int64, "advertiser_ctr_7d": Float64},
    ),
}

# What the ranker reads per impression; targeting lists stay out (candidate generation uses them).
RANKER_FEATURES = {
    "user_profile": ["age_bucket", "gender", "location", "mobile_share"],
    "user_activity": [name for name in VIEW_SCHEMAS["user_activity"][2]],
    "ad_metadata": ["category", "format", "bid", "creative_score"],  # ids come as join keys
    "ad_activity": list(VIEW_SCHEMAS["ad_activity"][2]),
    "campaign_activity": list(VIEW_SCHEMAS["campaign_activity"][2]),
    "advertiser_activity": list(VIEW_SCHEMAS["advertiser_activity"][2]),
}


def feature_views(sources_dir: Path) -> dict[str, FeatureView]:
    views = {}
    for name, (entity, ttl, schema) in VIEW_SCHEMAS.items():
        source = FileSource(
            name=f"{name}_source", path=str(sources_dir / f"{name}.parquet"), timestamp_field="event_timestamp"
        )
        views[name] = FeatureView(
            name=name,
            entities=[entity],
            ttl=ttl,
            source=source,
            online=True,
            schema=[Field(name=field, dtype=dtype) for field, dtype in schema.items()],
        )
    return views


def definitions(sources_dir: Path) -> list:
    """Everything `store.apply` registers."""
    views = feature_views(sources_dir)
    ranker = FeatureService(
        name=RANKER_SERVICE, features=[views[view][columns] for view, columns in RANKER_FEATURES.items()]
    )
    return [user, ad, campaign, advertiser, *views.values(), ranker]
