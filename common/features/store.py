"""Feast, embedded by default: a DuckDB offline store over parquet files, a SQLite online store and a
file registry, one repo per system under data/<system>/feature_repo. Paths are absolute, resolved from
the repo's data dir, so the store opens the same from any working directory.

The scale path (docker-compose.yml) changes only `open_store`, by two settings:
    MLSD_FEAST_REDIS      Feast's Redis connection string ("redis:6379", "host:port,password=..."):
                          the online store is Redis instead of the SQLite file
    MLSD_FEAST_REGISTRY   a SQLAlchemy URL ("postgresql+psycopg://user:password@host/db"): the registry
                          lives in that database instead of registry.db

    repo = FeatureRepo("ads")
    repo.publish(tables, views, services, start, end)     # write sources, apply, materialize
    repo.historical("ads_ranker", entity_rows)            # training: point-in-time joins
    repo.online(["user_activity:user_clicks_7d"], [{"user_id": 3}])   # serving
    repo.push("post_reactions", fresh_rows)               # streaming: fresh values online now
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from feast import FeatureStore, RepoConfig
from feast.data_source import PushMode
from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig
from feast.infra.online_stores.redis import RedisOnlineStoreConfig
from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
from feast.infra.registry.sql import SqlRegistryConfig
from feast.repo_config import RegistryConfig

from common.app.paths import system_dir
from common.features.registry_store import AtomicFileRegistryStore
from common.features.views import View, definitions, push_source_name, write_sources

log = logging.getLogger(__name__)
ONLINE_CHUNK = 20_000  # entity rows per online read when loading a whole catalogue


def feature_repo_dir(system_data_dir: Path) -> Path:
    path = system_data_dir / "feature_repo"
    (path / "sources").mkdir(parents=True, exist_ok=True)
    return path


REDIS_SETTING = "MLSD_FEAST_REDIS"
REGISTRY_SETTING = "MLSD_FEAST_REGISTRY"


def online_store_config(repo_dir: Path) -> RedisOnlineStoreConfig | SqliteOnlineStoreConfig:
    redis = os.environ.get(REDIS_SETTING)
    if not redis:
        return SqliteOnlineStoreConfig(path=str(repo_dir / "online_store.db"))
    # Last write wins, as in the SQLite store: by default Feast's Redis store skips a value whose timestamp
    # is not newer than the stored one, so a retrained world with the same clock would keep the old values.
    # Every write here comes from one process, in the order the values were computed.
    return RedisOnlineStoreConfig(connection_string=redis, skip_dedup=True)


def registry_config(repo_dir: Path) -> RegistryConfig:
    url = os.environ.get(REGISTRY_SETTING)
    if not url:
        store = f"{AtomicFileRegistryStore.__module__}.{AtomicFileRegistryStore.__name__}"
        return RegistryConfig(path=str(repo_dir / "registry.db"), registry_store_type=store)
    # A short cache: a server sees definitions a new training applied within a minute.
    return SqlRegistryConfig(path=url, cache_ttl_seconds=60, sqlalchemy_config_kwargs={"pool_pre_ping": True})


def open_store(project: str, repo_dir: Path) -> FeatureStore:
    config = RepoConfig(
        project=project,
        provider="local",
        registry=registry_config(repo_dir),
        online_store=online_store_config(repo_dir),
        offline_store=DuckDBOfflineStoreConfig(),
        entity_key_serialization_version=3,
        repo_path=repo_dir,
    )
    return FeatureStore(config=config)


def feature_refs(store: FeatureStore, views: tuple[str, ...]) -> list[str]:
    """ "view:feature" of every feature of the named views that the store has."""
    registered = {view.name: view for view in store.list_feature_views()}
    return [f"{view}:{f.name}" for view in views if view in registered for f in registered[view].features]


class FeatureRepo:
    """One system's feature repo: its sources, definitions, offline and online reads."""

    def __init__(self, system: str):
        self.system = system
        self.dir = feature_repo_dir(system_dir(system))
        self.sources_dir = self.dir / "sources"

    def exists(self) -> bool:
        """Whether training has applied definitions here (serving needs them)."""
        if os.environ.get(REGISTRY_SETTING):
            return bool(self.store.list_feature_views())
        return (self.dir / "registry.db").exists()

    @cached_property
    def store(self) -> FeatureStore:
        return open_store(self.system, self.dir)

    def publish(
        self,
        tables: dict,
        views: list[View],
        services: dict[str, dict[str, list[str] | None]],
        start: datetime,
        end: datetime,
        materialize: list[str] | None = None,
    ) -> None:
        """Write the tables as sources, register their views and services, and load the online store
        with the latest value per key. The range spans the world's whole time axis: materializing
        "the last day" of old synthetic timestamps would load nothing. `materialize` names the views to
        load (default: all): a view added after training (precomputed lists) loads alone, its sources
        beside the ones already written."""
        write_sources(tables, self.sources_dir)
        self.store.apply(definitions(self.system, self.sources_dir, views, services))
        log.info("materializing %s .. %s into the online store", start, end)
        self.store.materialize(start_date=start, end_date=end, feature_views=materialize)

    def historical(self, service_name: str, entity_rows: pd.DataFrame) -> pd.DataFrame:
        """Point-in-time join of the service's features onto `entity_rows` (keys + event_timestamp),
        returned in the order of `entity_rows`."""
        rows = entity_rows.reset_index(drop=True).assign(_row=lambda f: range(len(f)))
        service = self.store.get_feature_service(service_name)
        joined = self.store.get_historical_features(entity_df=rows, features=service).to_df()
        return joined.sort_values("_row").drop(columns="_row").reset_index(drop=True)

    def as_of(self, views: tuple[str, ...], entity_rows: pd.DataFrame) -> pd.DataFrame:
        """Every feature of `views` for each row of `entity_rows` (keys + event_timestamp) as of its time
        (point-in-time join), in the order of `entity_rows`; keys without a row yet read NaN / None."""
        rows = entity_rows.reset_index(drop=True).assign(_row=lambda f: range(len(f)))
        joined = self.store.get_historical_features(entity_df=rows, features=self.refs(views)).to_df()
        return joined.sort_values("_row").drop(columns="_row").reset_index(drop=True)

    def refs(self, views: tuple[str, ...]) -> list[str]:
        return feature_refs(self.store, views)

    def online(self, refs: list[str], entity_rows: list[dict]) -> dict[str, list]:
        """The online store's latest values: feature name (and keys) -> one value per entity row."""
        return self.store.get_online_features(features=refs, entity_rows=entity_rows).to_dict()

    def push(self, view: str, rows: pd.DataFrame) -> None:
        """Write fresh values of a push view (View(push=True)) into the online store: `rows` hold the
        key, event_timestamp and every feature of the view. The last write wins, whatever its timestamp
        (neither online store compares them, see online_store_config): push in the order the values were
        computed."""
        self.store.push(push_source_name(view), rows, to=PushMode.ONLINE)

    def online_frame(self, view: str, key: str, ids) -> pd.DataFrame:
        """Every feature of `view` for `ids`, read in chunks (a whole catalogue at serving start)."""
        refs = self.refs((view,))
        ids = np.asarray(ids, dtype=np.int64)
        chunks = [
            pd.DataFrame(self.online(refs, [{key: int(i)} for i in ids[lo : lo + ONLINE_CHUNK]]))
            for lo in range(0, len(ids), ONLINE_CHUNK)
        ]
        return pd.concat(chunks, ignore_index=True)

    def online_catalog(self, views: tuple[str, ...], key: str, parents: dict[str, str] | None = None) -> pd.DataFrame:
        """Every key of the first view's source with the features of `views`, joined with the features of
        each parent view (view -> its key, a column of the first views: an ad's campaign and advertiser),
        read from the online store; keys missing from a parent read 0. Sorted by key."""
        ids = self.source_keys(views[0], key)
        table = self.online_frame(views[0], key, ids)
        for view in views[1:]:
            table = table.merge(self.online_frame(view, key, ids), on=key)
        for view, parent_key in (parents or {}).items():
            table = table.dropna(subset=[parent_key]).astype({parent_key: np.int64})
            table = table.merge(
                self.online_frame(view, parent_key, table[parent_key].unique()), on=parent_key, how="left"
            )
        return table.fillna(0).sort_values(key).reset_index(drop=True)

    def source_keys(self, view: str, key: str) -> np.ndarray:
        """The keys of a view's batch source: the catalogue the online store was loaded from."""
        return pd.read_parquet(self.sources_dir / f"{view}.parquet", columns=[key])[key].to_numpy(np.int64)
