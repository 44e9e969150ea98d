from datetime import timedelta

import pandas as pd
from feast.types import Array, Float64, Int64, String

from common.features.views import View, definitions, write_sources

T = pd.Timestamp("2026-01-05", tz="UTC")


def test_views_are_typed_from_the_tables_and_services_name_their_features(tmp_path):
    tables = {
        "user_profile": pd.DataFrame({"user_id": [1, 2], "country": ["de", "fr"], "event_timestamp": T}),
        "user_activity": pd.DataFrame(
            {"user_id": [1], "clicks_7d": [3], "ctr_7d": [0.1], "recent_ids": [[5, 6]], "event_timestamp": T}
        ),
        "empty_profile": pd.DataFrame({"user_id": [1], "event_timestamp": T}),  # keys only: no view
    }
    write_sources(tables, tmp_path)
    views = [
        View("user_profile", "user_id"),
        View("user_activity", "user_id", ttl=timedelta(days=2)),
        View("empty_profile", "user_id"),
    ]
    services = {"ranker": {"user_profile": None, "user_activity": ["clicks_7d"], "empty_profile": None}}
    objects = {type(o).__name__ + ":" + o.name: o for o in definitions("test", tmp_path, views, services)}

    assert set(objects) == {
        "Entity:user",
        "FeatureView:user_profile",
        "FeatureView:user_activity",
        "FeatureService:ranker",
    }
    activity = objects["FeatureView:user_activity"]
    assert {f.name: f.dtype for f in activity.features} == {
        "clicks_7d": Int64,
        "ctr_7d": Float64,
        "recent_ids": Array(Int64),
    }
    assert activity.ttl == timedelta(days=2) and objects["FeatureView:user_profile"].ttl == timedelta(0)
    assert {f.name: f.dtype for f in objects["FeatureView:user_profile"].features} == {"country": String}
    projections = {
        p.name: [f.name for f in p.features] for p in objects["FeatureService:ranker"].feature_view_projections
    }
    assert projections == {"user_profile": ["country"], "user_activity": ["clicks_7d"]}


def test_a_push_view_reads_its_batch_source_and_takes_fresh_values_online(tmp_path, monkeypatch):
    from common.features.store import FeatureRepo

    monkeypatch.setenv("MLSD_DATA_DIR", str(tmp_path))
    repo = FeatureRepo("pushtest")
    counts = pd.DataFrame({"post_id": [1, 2], "likes": [3, 0], "event_timestamp": T})
    views = [View("post_reactions", "post_id", push=True)]
    repo.publish({"post_reactions": counts}, views, {"ranker": {"post_reactions": None}}, T - timedelta(days=1), T)
    refs = repo.refs(("post_reactions",))
    assert repo.online(refs, [{"post_id": 1}, {"post_id": 2}])["likes"] == [3, 0]  # materialized from the batch

    later = T + timedelta(minutes=5)
    repo.push("post_reactions", pd.DataFrame({"post_id": [2], "likes": [40], "event_timestamp": [later]}))
    assert repo.online(refs, [{"post_id": 1}, {"post_id": 2}])["likes"] == [3, 40]
    # Training still reads the batch source, point in time.
    rows = pd.DataFrame({"post_id": [1, 2], "event_timestamp": [later, later]})
    assert repo.as_of(("post_reactions",), rows)["likes"].tolist() == [3, 0]
