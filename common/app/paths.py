"""Where things live, resolved from the repository root, never from the working directory."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "configs"


def data_dir() -> Path:
    """Root of generated content; `MLSD_DATA_DIR` moves it (tests use a temporary one)."""
    return Path(os.environ.get("MLSD_DATA_DIR", REPO_ROOT / "data")).resolve()


def system_dir(system: str) -> Path:
    """Generated content of one system: raw tables, features, its Feast repo."""
    path = data_dir() / system
    path.mkdir(parents=True, exist_ok=True)
    return path


def tracking_uri() -> str:
    """MLflow tracking store: `MLFLOW_TRACKING_URI`, else a SQLite file in the data dir."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    data_dir().mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir() / 'mlflow.db'}"
