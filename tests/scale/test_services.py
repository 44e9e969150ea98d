"""The scale path with its real engines on loopback: Feast's online store in Redis and its registry in
PostgreSQL, MLflow as a tracking server over PostgreSQL keeping the artifacts it is sent. The settings are
the ones docker-compose.yml passes (tests/scale/test_compose.py checks that); one tiny ads training
registers its champion on the server, and the API serves it from there with features read from Redis."""

from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from common.app.paths import system_dir
from common.features.store import REDIS_SETTING, REGISTRY_SETTING, FeatureRepo
from common.services.local import mlflow_server, postgres_server, redis_server
from common.serving.app import create_app
from common.tracking.runs import CHAMPION, registered_name
from tests.systems.ads.parity import assert_online_equals_offline


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """Redis, PostgreSQL (two databases' worth of tables in one: MLflow's and Feast's registry) and an MLflow
    server, with the environment a compose service gets."""
    tmp = tmp_path_factory.mktemp("scale")
    with redis_server(tmp / "redis") as redis_address, postgres_server() as database:
        with mlflow_server(database, tmp / "mlflow-artifacts") as tracking_uri, pytest.MonkeyPatch.context() as env:
            env.setenv("MLSD_DATA_DIR", str(tmp / "data"))
            env.setenv("MLFLOW_TRACKING_URI", tracking_uri)
            env.setenv(REDIS_SETTING, redis_address)
            env.setenv(REGISTRY_SETTING, database)
            yield {"redis": redis_address, "tracking_uri": tracking_uri, "artifacts": tmp / "mlflow-artifacts"}


@pytest.fixture(scope="module")
def trained(services, tiny_ads_config):
    from common.app.registry import get_system

    return get_system("ads").train(tiny_ads_config)


def test_training_registers_the_champion_on_the_tracking_server(services, trained):
    client = MlflowClient(tracking_uri=services["tracking_uri"])
    version = client.get_model_version_by_alias(registered_name("ads"), CHAMPION)
    assert version.version == trained["champion_version"]
    assert client.get_run(version.run_id).info.run_name == trained["champion"]
    # The server keeps the artifacts (compose: in the object store), not the training's machine.
    assert client.get_run(version.run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    assert list(Path(services["artifacts"]).rglob("MLmodel"))
    data = Path(system_dir("ads")).parent
    assert not (data / "mlflow.db").exists() and not (data / "mlartifacts").exists()


def test_feast_writes_to_redis_and_its_registry_to_postgres(services, trained):
    repo_files = {path.name for path in FeatureRepo("ads").dir.iterdir()}
    assert "online_store.db" not in repo_files and "registry.db" not in repo_files
    host, port = services["redis"].split(":")
    assert redis.Redis(host=host, port=int(port)).dbsize() > 1000  # an entry per entity key
    assert FeatureRepo("ads").exists()
    assert "ads_ranker" in {service.name for service in FeatureRepo("ads").store.list_feature_services()}


def test_feast_online_in_redis_equals_offline(services, trained, tiny_ads_config):
    assert_online_equals_offline(tiny_ads_config)


def test_the_api_serves_the_servers_champion_with_features_from_redis(services, trained):
    with TestClient(create_app(["ads"], "tiny")) as client:
        assert client.get("/healthz").json()["systems"]["ads"] == "ready"
        response = client.post("/ads/rank", json={"user_id": 3, "context": {"device": "desktop", "hour": 20}, "k": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["known_user"] is True and body["ads"]
    assert body["models"]["ranker"]["version"] == trained["champion_version"]
