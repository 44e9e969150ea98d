"""Shared fixtures: an isolated data dir and MLflow store per test session, one tiny ads training that the
pipeline, Feast and API tests share (real components, tiny scale), and torch on one thread for a module."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

from common.app.config import load_config


@contextmanager
def data_dir_at(data: Path):
    """Every generated artefact (worlds, Feast, MLflow) under `data` while the block runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLSD_DATA_DIR", str(data))
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{data / 'mlflow.db'}")
        yield data


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small torch models train several times faster on one thread than on two contended ones (the cores are
    shared with other test workers: OpenMP's waiting threads then spin against them). For a whole module:
    pytestmark = pytest.mark.usefixtures("one_torch_thread")."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def isolated_data_dir(tmp_path_factory):
    """Point every generated artefact at a temporary directory for the session."""
    with data_dir_at(tmp_path_factory.mktemp("data")) as data:
        yield data


@pytest.fixture(scope="session")
def tiny_ads_config():
    return load_config("ads", "tiny")


@pytest.fixture(scope="session")
def trained_ads(isolated_data_dir, tiny_ads_config):
    """The whole ads pipeline at tiny scale, once per session."""
    from common.app.registry import get_system

    return get_system("ads").train(tiny_ads_config)
