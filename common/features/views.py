"""Feast definitions generated from a system's feature tables: one entity per join key, one view
per table with its types read off the parquet source (feature names are declared once, by the
tables themselves), and one FeatureService per model so training (get_historical_features) and
serving (get_online_features) name the same feature set.

    views = [View("user_activity", "user_id", ttl=timedelta(days=2)), View("ad_metadata", "ad_id")]
    definitions("ads", sources_dir, views, {"ads_ranker": {"user_activity": None, "ad_metadata": ["bid"]}})

A view with `push=True` reads a push source (`<view>_push`) backed by its parquet batch source:
training and materialization read the parquet as for any view, and the service pushes fresh values
into the online store as they happen (common.features.store.FeatureRepo.push): the chapters'
streaming features, such as a post's reaction counts minutes after it was posted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource
from feast.types import Array, Bool, Float64, Int64, String
from feast.value_type import ValueType

from common.data.atomic import replaced_atomically

NO_TTL = timedelta(0)  # static rows and cumulative snapshots: valid until replaced
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


@dataclass(frozen=True)
class View:
    name: str  # also the name of its source table, sources/<name>.parquet
    key: str  # the join key: user_id, item_id, ad_id...
    ttl: timedelta = NO_TTL  # dense daily snapshots: a row is valid for a day, plus slack for a late batch
    push: bool = False  # fresh values are also pushed online at serving time (a streaming feature)


def push_source_name(view: str) -> str:
    return f"{view}_push"


def feast_type(arrow_type: pa.DataType):
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return Array(_ARROW_TO_FEAST[arrow_type.value_type])
    return _ARROW_TO_FEAST[arrow_type]


def view_fields(sources_dir: Path, view: View) -> dict[str, object]:
    """Feature name -> Feast type, read off the parquet source's schema."""
    schema = pq.read_schema(sources_dir / f"{view.name}.parquet")
    return {f.name: feast_type(f.type) for f in schema if f.name not in (view.key, "event_timestamp")}


def definitions(
    project: str, sources_dir: Path, views: list[View], services: dict[str, dict[str, list[str] | None]]
) -> list:
    """Everything `store.apply` registers. `services`: service name -> {view: its features, None for all};
    a view whose table has no feature columns (Steam users have no profile) is left out."""
    entities = {
        key: Entity(name=key.removesuffix("_id"), join_keys=[key], value_type=ValueType.INT64)
        for key in dict.fromkeys(view.key for view in views)
    }
    feature_views = {}
    for view in views:
        fields = view_fields(sources_dir, view)
        if not fields:
            continue
        source = FileSource(
            name=f"{project}_{view.name}_source",
            path=str(sources_dir / f"{view.name}.parquet"),
            timestamp_field="event_timestamp",
        )
        if view.push:
            source = PushSource(name=push_source_name(view.name), batch_source=source)
        feature_views[view.name] = FeatureView(
            name=view.name,
            entities=[entities[view.key]],
            ttl=view.ttl,
            source=source,
            online=True,
            schema=[Field(name=name, dtype=dtype) for name, dtype in fields.items()],
        )
    feature_services = [
        FeatureService(
            name=name,
            features=[
                feature_views[view] if columns is None else feature_views[view][columns]
                for view, columns in members.items()
                if view in feature_views
            ],
        )
        for name, members in services.items()
    ]
    return [*entities.values(), *feature_views.values(), *feature_services]


def write_sources(tables: dict[str, pd.DataFrame | pa.Table], sources_dir: Path) -> None:
    """Each table as sources/<name>.parquet, with scalar columns widened to the types their Feast
    fields declare (float32 -> float64, small ints -> int64): materialization refuses a narrower one."""
    for name, table in tables.items():
        if isinstance(table, pd.DataFrame):
            table = pa.Table.from_pandas(table, preserve_index=False)
        with replaced_atomically(sources_dir / f"{name}.parquet") as temporary:
            pq.write_table(table.cast(pa.schema([_widened(field) for field in table.schema])), temporary)


def _widened(field: pa.Field) -> pa.Field:
    if pa.types.is_floating(field.type):
        return field.with_type(pa.float64())
    if pa.types.is_integer(field.type):
        return field.with_type(pa.int64())
    return field
