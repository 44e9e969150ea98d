"""Hot reload, with the real parts: a server (uvicorn, two workers) serving a tiny ads training while a second
training promotes a new champion; and a champion that cannot load, which must leave the old one serving."""

import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import httpx
import mlflow
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from common.app.paths import REPO_ROOT, tracking_uri
from common.app.registry import get_system
from common.bench.endpoint import server_at
from common.services.local import free_port
from common.serving.app import create_app
from common.serving.services import RELOAD_SETTING
from common.tracking.runs import CHAMPION, ProbabilityModel, registered_name, use_experiment
from tests.conftest import data_dir_at

RANK = {"user_id": 3, "context": {"device": "desktop", "hour": 20}, "k": 5}
SETTLED = 20  # consecutive answers from the new version: both workers have swapped
# Between two requests. Back to back they kept one of the two cores busy (client and server) and the second
# training took twice as long; with the pause, a request still starts every few hundredths of a second across
# the Feast rewrite and the swap.
PAUSE_S = 0.02


@pytest.fixture(scope="module")
def first_training(tmp_path_factory, tiny_ads_config):
    """Its own data dir: the session's tiny ads training must keep its champion for the other tests."""
    with data_dir_at(tmp_path_factory.mktemp("reload")):
        yield get_system("ads").train(tiny_ads_config)


class Traffic:
    """Requests one after another from a thread, each answer's status and the ranker version it names."""

    def __init__(self, url: str):
        self.url = url
        self.answers: list[tuple[int, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                response = client.post("/ads/rank", json=RANK)
                version = response.json()["models"]["ranker"]["version"] if response.status_code == 200 else None
                self.answers.append((response.status_code, version))
                self._stop.wait(PAUSE_S)

    def settled_on(self, version: str) -> bool:
        tail = self.answers[-SETTLED:]
        return len(tail) == SETTLED and all(answer == (200, version) for answer in tail)


def test_a_promotion_reaches_a_running_server_without_a_failed_request(first_training):
    url = f"http://127.0.0.1:{free_port()}"
    before = first_training["champion_version"]
    with server_at("ads", url, extra_env={RELOAD_SETTING: "1"}) as (health, started), Traffic(url) as traffic:
        assert started and health["models"]["ads"] == {registered_name("ads"): before}
        # The second training, as a user runs it, in its own process, while requests flow.
        subprocess.run(
            [sys.executable, "-m", "common.app.cli", "train", "--system", "ads", "--scale", "tiny"],
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
        )
        after = str(MlflowClient(tracking_uri()).get_model_version_by_alias(registered_name("ads"), CHAMPION).version)
        assert after != before
        deadline = time.monotonic() + 120
        while not traffic.settled_on(after) and time.monotonic() < deadline:
            time.sleep(0.5)
        health = httpx.get(f"{url}/healthz").json()
    statuses = {status for status, _ in traffic.answers}
    versions = [version for _, version in traffic.answers]
    assert statuses == {200}, f"failed requests across the promotion: {statuses}"
    assert versions[0] == before and versions[-1] == after and set(versions) == {before, after}
    assert health["models"]["ads"] == {registered_name("ads"): after}


def missing_files() -> str:
    """A version whose model files are not there: what an artifact store losing them looks like."""
    registry = MlflowClient(tracking_uri())
    return registry.create_model_version(registered_name("ads"), source="file:///nonexistent/model").version


def fails_on_requests() -> str:
    """A version that loads and then cannot rank: what a model pickled by older code does."""
    use_experiment("ads")
    with mlflow.start_run(run_name="broken"):
        info = mlflow.pyfunc.log_model(name="model", python_model=ProbabilityModel("not a classifier"))
    return MlflowClient(tracking_uri()).create_model_version(registered_name("ads"), info.model_uri).version


@contextmanager
def champion_moved_to(version: str):
    registry, name = MlflowClient(tracking_uri()), registered_name("ads")
    good = registry.get_model_version_by_alias(name, CHAMPION).version
    registry.set_registered_model_alias(name, CHAMPION, version)
    try:
        yield
    finally:
        registry.set_registered_model_alias(name, CHAMPION, good)


@pytest.mark.parametrize("broken", [missing_files, fails_on_requests])
def test_a_broken_champion_leaves_the_previous_one_serving(first_training, monkeypatch, broken):
    monkeypatch.setenv(RELOAD_SETTING, "0")  # the test drives the reload itself
    with TestClient(create_app(["ads"], "tiny")) as client:
        services = client.app.state.services
        serving, versions = services.loaded["ads"], services.versions["ads"]
        with champion_moved_to(broken()):
            assert services.reload_promoted() == []
            assert services.loaded["ads"] is serving and services.versions["ads"] == versions
            response = client.post("/ads/rank", json=RANK)
            assert response.status_code == 200
            assert response.json()["models"]["ranker"]["version"] == versions[registered_name("ads")]
        # With the alias back on a good version, nothing is reloaded.
        assert services.reload_promoted() == []


def test_a_server_starting_on_a_champion_that_fails_on_requests_answers_503_naming_the_fix(first_training, monkeypatch):
    monkeypatch.setenv(RELOAD_SETTING, "0")
    with champion_moved_to(fails_on_requests()), TestClient(create_app(["ads"], "tiny")) as client:
        status = client.get("/healthz").json()["systems"]["ads"]
        assert status.startswith("unavailable") and "fails on a sample request" in status
        response = client.post("/ads/rank", json=RANK)
        assert response.status_code == 503 and "make train SYSTEM=ads" in response.json()["detail"]
