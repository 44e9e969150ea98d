"""Feast definitions of a recommendation system, generated from its feature tables: entities
user and item, the four views of common.features.activity, and a FeatureService `<system>_ranker`
listing them. Training reads the views point in time (get_historical_features: the user side once
per (user, snapshot), item activity per event) and serving reads the same views online
(get_online_features), by feature references built from the registered views (`feature_refs`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from feast import Entity, FeatureService, FeatureView, Field, FileSource
from feast.types import Array, Bool, Float64, Int64, String
from feast.value_type import ValueType

NO_TTL = timedelta(0)
VIEWS = ("user_profile", "user_activity", "item_metadata", "item_activity")
_KEYS = {"user_profile": "user_id", "user_activity": "user_id", "item_metadata": "item_id", "item_activity": "item_id"}
_ARROW_TO_FEAST = {
    pa.int8(): Int64,
    pa.int16(): Int64,
    pa.int32(): Int64,
    pa.int64(): Int64,
    pa.float32(): Float64,
    pa.float64(): Float64,
    pa.bool_(): Bool,
    pa.string(): String,
    pa.large_string(): String,
}


def service_name(system: str) -> str:
    return f"{system}_ranker"


def feast_type(arrow_type: pa.DataType):
    if pa.types.is_list(arrow_type):
        return Array(_ARROW_TO_FEAST[arrow_type.value_type])
    return _ARROW_TO_FEAST[arrow_type]


def view_fields(sources_dir: Path) -> dict[str, dict[str, object]]:
    """Feature name -> Feast type per view, read off the parquet sources' schemas."""
    fields = {}
    for view in VIEWS:
        schema = pq.read_schema(sources_dir / f"{view}.parquet")
        fields[view] = {f.name: feast_type(f.type) for f in schema if f.name not in (_KEYS[view], "event_timestamp")}
    return fields


def definitions(system: str, sources_dir: Path, snapshot_every_days: int) -> list:
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.INT64)
    entities = {"user_id": user, "item_id": item}
    # item_activity is dense: a snapshot is valid until the next one (plus a day for a late batch).
    ttls = {"item_activity": timedelta(days=snapshot_every_days + 1)}
    views = []
    for view, fields in view_fields(sources_dir).items():
        if not fields:  # e.g. Steam users have no profile: no view
            continue
        source = FileSource(
            name=f"{system}_{view}_source", path=str(sources_dir / f"{view}.parquet"), timestamp_field="event_timestamp"
        )
        views.append(
            FeatureView(
                name=view,
                entities=[entities[_KEYS[view]]],
                ttl=ttls.get(view, NO_TTL),
                source=source,
                online=True,
                schema=[Field(name=name, dtype=dtype) for name, dtype in fields.items()],
            )
        )
    return [user, item, *views, FeatureService(name=service_name(system), features=views)]


def feature_refs(store, views: tuple[str, ...]) -> list[str]:
    """ "view:feature" of every feature of the named views that the store has."""
    registered = {view.name: view for view in store.list_feature_views()}
    return [f"{view}:{f.name}" for view in views if view in registered for f in registered[view].features]


def write_sources(tables: dict[str, pd.DataFrame | pa.Table], sources_dir: Path) -> None:
    for name, table in tables.items():
        if isinstance(table, pd.DataFrame):
            table = pa.Table.from_pandas(table, preserve_index=False)
        pq.write_table(table, sources_dir / f"{name}.parquet")
