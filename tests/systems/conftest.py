"""Fixtures shared by the recommendation systems' end-to-end tests (video, game). A test module names
its system in a module-level SYSTEM; each module trains its system once, at tiny scale, into the
session's isolated data dir."""

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from common.app.config import load_config
from common.app.paths import system_dir
from common.features.store import feature_repo_dir
from common.retrieval.bundle import RetrievalBundle
from common.serving.app import create_app
from common.tracking.runs import load_champion


def sources_table(system: str, name: str) -> pd.DataFrame:
    """A Feast source table of the system as written by its last training."""
    return pd.read_parquet(feature_repo_dir(system_dir(system)) / "sources" / f"{name}.parquet")


@pytest.fixture(scope="module")
def system(request) -> str:
    return request.module.SYSTEM


@pytest.fixture(scope="module")
def config(system):
    return load_config(system, "tiny")


@pytest.fixture(scope="module")
def trained(isolated_data_dir, system, config):
    from common.app.registry import get_system

    return get_system(system).train(config)


@pytest.fixture(scope="module")
def bundle(trained, system) -> RetrievalBundle:
    return load_champion(system, kind="retrieval").classifier


@pytest.fixture(scope="module")
def client(trained, system):
    with TestClient(create_app([system], "tiny")) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def items(trained, system) -> pd.DataFrame:
    return sources_table(system, "item_metadata").set_index("item_id")


@pytest.fixture(scope="module")
def latest_activity(trained, system) -> pd.DataFrame:
    """Each user's last user_activity row: the state the online store serves."""
    activity = sources_table(system, "user_activity").sort_values("event_timestamp", kind="stable")
    return activity.groupby("user_id").tail(1).set_index("user_id")


@pytest.fixture(scope="module")
def heavy_users(latest_activity, bundle, config) -> list[int]:
    """Users who already engaged with many of the most popular items: the seen / owned filter has work to do."""
    popular = set(bundle.sources[0].item_ids[: config["serving"]["k_per_source"]].tolist())
    overlap = latest_activity["seen_item_ids"].map(lambda seen: len(popular & set(seen.tolist())))
    return overlap.sort_values(ascending=False, kind="stable").index[:3].tolist()


def step_option(config: dict, step: str, option: str):
    """An option of one of the config's re-ranking steps (e.g. group_cap's max_per_group)."""
    return next(s[option] for s in config["serving"]["re_ranking"] if s["step"] == step)
