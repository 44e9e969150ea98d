"""Tests every recommendation system must pass (video, game), imported by each system's test module,
which names SYSTEM, SOURCES (its candidate sources) and N_ITEMS (its tiny catalogue size). The
fixtures of tests/systems/conftest.py train the system once per module."""

import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from common.retrieval.bundle import RetrievalBundle
from common.serving.app import create_app
from common.tracking.runs import load_champion, registered_name

STAGES = ["user_features", "user_embedding", "candidate_generation", "ranking", "re_ranking"]


@pytest.fixture(scope="module")
def spec(request):
    """The system's test module: SYSTEM, SOURCES, N_ITEMS."""
    return request.module


def recommend(client, system: str, payload: dict) -> dict:
    response = client.post(f"/{system}/recommend", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


def test_champion_and_both_registered_models(trained, spec):
    system = spec.SYSTEM
    ranker, retrieval = load_champion(system), load_champion(system, kind="retrieval")
    assert ranker.name == registered_name(system) == f"{system}-ranker"
    assert retrieval.name == registered_name(system, "retrieval") == f"{system}-retrieval"
    assert ranker.version == trained["champion_version"] and retrieval.version == trained["retrieval_version"]
    metrics = trained["ranker_metrics"]
    assert set(metrics) == {"lightgbm", "multitask"}
    # The champion is the ranker whose served funnel has the best validation nDCG@10.
    assert trained["champion"] == max(metrics, key=lambda name: metrics[name]["validation_ndcg_at_10"])
    assert MlflowClient().get_run(ranker.run_id).info.run_name == trained["champion"]
    assert hasattr(ranker.classifier, "predict_proba")
    assert isinstance(retrieval.classifier, RetrievalBundle)
    assert retrieval.classifier.schema.item_name == system


def test_ann_recall_against_exact_search(trained, spec):
    ann = trained["evaluation"].ann
    assert ann["ann_recall_at_100"] >= 0.95 and ann["n_items"] == spec.N_ITEMS


def test_healthz(client, spec):
    assert client.get("/healthz").json()["systems"][spec.SYSTEM] == "ready"


def test_response_names_the_registered_versions_and_stage_counts(client, trained, heavy_users, config, spec):
    system = spec.SYSTEM
    body = recommend(client, system, {"user_id": heavy_users[0], "k": 10})
    assert body["models"] == {
        "retrieval": {"name": f"{system}-retrieval", "version": load_champion(system, kind="retrieval").version},
        "ranker": {"name": f"{system}-ranker", "version": load_champion(system).version},
    }
    assert body["models"]["ranker"]["version"] == trained["champion_version"]
    stages = body["stages"]
    assert list(stages) == STAGES and all(stage["milliseconds"] >= 0 for stage in stages.values())
    generation = stages["candidate_generation"]["counts"]
    per_source = {name: generation[name] for name in spec.SOURCES}
    assert all(0 < n <= config["serving"]["k_per_source"] for n in per_source.values())
    assert max(per_source.values()) <= generation["merged"] <= sum(per_source.values())
    assert 0 < generation["out"] <= generation["merged"]
    assert stages["ranking"]["counts"] == {"in": generation["out"], "out": generation["out"]}
    re_ranking = stages["re_ranking"]["counts"]
    assert re_ranking["in"] == generation["out"] and re_ranking["allowed"] <= re_ranking["in"]
    assert re_ranking["distinct"] <= re_ranking["allowed"]
    assert re_ranking["out"] == len(body["items"]) == 10


def test_no_trained_model_is_503_naming_the_command(tmp_path, monkeypatch, spec):
    system = spec.SYSTEM
    monkeypatch.setenv("MLSD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with TestClient(create_app([system], "tiny")) as empty:
        assert empty.get("/healthz").json()["systems"][system].startswith("unavailable")
        response = empty.post(f"/{system}/recommend", json={"user_id": 1, "k": 3})
    assert response.status_code == 503
    assert f"make train SYSTEM={system}" in response.json()["detail"]
