"""Feast, embedded: a DuckDB offline store over parquet files, a SQLite online store and a file
registry, one repo per system under data/<system>/feature_repo. Paths are absolute,
resolved from the repo's data dir, so the store opens the same from any working directory.
The scale path (Redis online store, SQL registry) changes only this config.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import pandas as pd
from feast import FeatureStore, RepoConfig
from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig
from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig

log = logging.getLogger(__name__)


def feature_repo_dir(system_data_dir: Path) -> Path:
    path = system_data_dir / "feature_repo"
    (path / "sources").mkdir(parents=True, exist_ok=True)
    return path


def open_store(project: str, repo_dir: Path) -> FeatureStore:
    config = RepoConfig(
        project=project,
        provider="local",
        registry=str(repo_dir / "registry.db"),
        online_store=SqliteOnlineStoreConfig(path=str(repo_dir / "online_store.db")),
        offline_store=DuckDBOfflineStoreConfig(),
        entity_key_serialization_version=3,
        repo_path=repo_dir,
    )
    return FeatureStore(config=config)


def apply_and_materialize(store: FeatureStore, objects: list, start: datetime, end: datetime) -> None:
    """Register the definitions and load the online store with the latest value per key.
    The range spans the world's whole time axis: materializing "the last day" of old
    synthetic timestamps would load nothing."""
    store.apply(objects)
    log.info("materializing %s .. %s into the online store", start, end)
    store.materialize(start_date=start, end_date=end)


def historical_features(store: FeatureStore, service_name: str, entity_rows: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join of the service's features onto `entity_rows` (keys + event_timestamp),
    returned in the order of `entity_rows`."""
    rows = entity_rows.reset_index(drop=True).assign(_row=lambda f: range(len(f)))
    service = store.get_feature_service(service_name)
    joined = store.get_historical_features(entity_df=rows, features=service).to_df()
    return joined.sort_values("_row").drop(columns="_row").reset_index(drop=True)
