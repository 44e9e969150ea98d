"""A training killed at any stage (SIGKILL: no cleanup runs) leaves the previous champion serving and the
registry consistent, and the next training succeeds. The trainings are `make train`'s command, in processes of
their own, killed when they print that a stage is under way; after each kill a new server (what a restart
after the crash starts) loads from what the killed training left: the registry, the feature store, the files."""

import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from common.app.paths import REPO_ROOT, tracking_uri
from common.app.registry import get_system
from common.serving.app import create_app
from common.serving.services import RELOAD_SETTING
from common.tracking.runs import CHAMPION, registered_name
from tests.conftest import data_dir_at

TRAIN = [sys.executable, "-m", "common.app.cli", "train", "--system", "ads", "--scale", "tiny"]
# What the training prints as each stage starts (the kill lands while it is under way).
STAGES = {
    "world": "training starts",
    "features": "building the feature tables",
    "feast materialisation": "materializing",
    "model fit": "fitting",
    "tracking": "tracking the runs",
}
# Killed as registration starts, the training may or may not have moved the alias by the time it dies: either
# way the champion must be a whole model that serves.
REGISTRATION = "registering"
RANK = {"user_id": 3, "context": {"device": "desktop", "hour": 20}, "k": 5}


@pytest.fixture(scope="module")
def first_training(tmp_path_factory, tiny_ads_config):
    """Its own data dir: the kills must not touch the champion the session's other tests read."""
    with data_dir_at(tmp_path_factory.mktemp("crash")), pytest.MonkeyPatch.context() as env:
        env.setenv(RELOAD_SETTING, "0")
        yield get_system("ads").train(tiny_ads_config)


def champion_version() -> str:
    return str(MlflowClient(tracking_uri()).get_model_version_by_alias(registered_name("ads"), CHAMPION).version)


def train_and_kill_when(marker: str) -> None:
    process = subprocess.Popen(
        TRAIN,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    printed = []
    for line in process.stdout:
        printed.append(line)
        if marker in line:
            process.kill()
            break
    process.stdout.close()
    process.wait()
    assert process.returncode == -9, f"the training ended before {marker!r}:\n{''.join(printed[-20:])}"


def served_version() -> str:
    with TestClient(create_app(["ads"], "tiny")) as client:
        assert client.get("/healthz").json()["systems"]["ads"] == "ready"
        response = client.post("/ads/rank", json=RANK)
    assert response.status_code == 200, response.text
    return response.json()["models"]["ranker"]["version"]


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_training_killed_at_a_stage_leaves_the_previous_champion_serving(first_training, stage):
    before = champion_version()
    train_and_kill_when(STAGES[stage])
    assert champion_version() == before
    assert served_version() == before


def test_a_training_killed_as_it_registers_leaves_a_champion_that_serves(first_training):
    before = champion_version()
    train_and_kill_when(REGISTRATION)
    after = champion_version()
    assert int(after) in (int(before), int(before) + 1)
    assert served_version() == after


def test_the_next_training_after_the_kills_succeeds_and_is_served(first_training):
    before = champion_version()
    subprocess.run(TRAIN, cwd=REPO_ROOT, check=True, capture_output=True)
    after = champion_version()
    assert after != before
    assert served_version() == after
