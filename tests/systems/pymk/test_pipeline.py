"""People you may know end to end at tiny scale: the world -> Feast -> snapshots -> GNN and ranker ->
the registry -> precomputed and on-demand lists over HTTP; and the public edge-list format."""

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from common.app.config import load_config
from common.app.paths import REPO_ROOT, system_dir
from common.features.store import FeatureRepo
from common.models.distributed import ray_cluster
from common.serving.app import create_app
from common.tracking.runs import load_champion
from systems.pymk import load_data
from systems.pymk.batch import precompute_lists
from systems.pymk.features import FEATURES
from systems.pymk.serving import PymkService
from systems.pymk.snapshots import take_snapshot
from tests.common.serving.fuzz import fuzz_every_operation
from tests.common.serving.openapi_walk import assert_refused, check_every_endpoint
from tests.conftest import data_dir_at

SYSTEM = "pymk"
FIXTURES = REPO_ROOT / "tests" / "systems" / "pymk" / "fixtures" / "edgelist"


@pytest.fixture(scope="module")
def service(trained, config):
    return PymkService.load(config)


@pytest.fixture(scope="module")
def client(trained):
    with TestClient(create_app([SYSTEM], "tiny")) as test_client:
        yield test_client


def lists(trained, segment: str = "all") -> pd.DataFrame:
    table = trained["lists"]
    return table[table["segment"] == segment].set_index("list")


def recommend(client, payload: dict) -> dict:
    response = client.post("/pymk/recommend", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


def test_champion_has_the_best_validation_map_and_is_served(trained):
    metrics = trained["metrics"]
    assert set(metrics) == {"lightgbm", "logistic_regression", "graphsage"}
    assert trained["champion"] == max(metrics, key=lambda name: metrics[name]["validation_map_at_10"])
    champion = load_champion(SYSTEM)
    assert champion.version == trained["champion_version"]
    assert MlflowClient().get_run(champion.run_id).info.run_name == trained["champion"]


def test_the_ranker_beats_mutual_friends_and_the_oracle_ranks_best(trained):
    table = lists(trained)
    served = table.loc[f"funnel: {trained['champion']}", "map@10"]
    assert served > table.loc["common neighbours", "map@10"]
    assert table.loc["oracle", "map@10"] > table.loc["Adamic-Adar", "map@10"]
    edges = trained["edges"].set_index("model")["roc_auc"]
    assert edges["oracle"] > edges["lightgbm"] > 0.7
    assert edges["graphsage"] > 0.6  # the GNN alone learned something beyond chance
    assert table["requests"].min() > 50


def test_friends_of_friends_find_most_friendships_that_form(trained):
    recall = trained["recall"].set_index("source")
    assert recall.loc["merged", "recall@200"] >= recall.loc["friends_of_friends", "recall@200"] > 0.3


def test_the_features_served_online_equal_the_training_snapshot(trained, service, config):
    """Feast parity: a pair's features from the online store at serving equal those the pipeline
    computes from the offline store's point-in-time read at the same clock."""
    data = load_data(config)
    snapshot = take_snapshot(data, FeatureRepo(SYSTEM), config, data.end)
    scorer = service.funnel.scorer
    rng = np.random.default_rng(0)
    for user_id in rng.choice(snapshot.state.user_ids[snapshot.state.degree > 3], size=5, replace=False):
        request = service.people.request(int(user_id))
        rows = service.funnel.candidates(request)[0].rows[:20]
        served = scorer.features(request, rows)
        offline = type(scorer)(snapshot.state, snapshot.gather, None).features(request, rows)
        pd.testing.assert_frame_equal(served[list(FEATURES)], offline[list(FEATURES)], check_dtype=False)


def test_the_batch_job_on_ray_data_computes_the_lists_the_pipeline_stored(trained, config):
    """The precomputed lists shared among Ray Data tasks are the ones the training computed in process."""
    data = load_data(config)
    snapshot = take_snapshot(data, FeatureRepo(SYSTEM), config, data.end)
    scorer = load_champion(SYSTEM).classifier.scorer(snapshot.state, snapshot.gather)
    precompute = {**config["serving"]["precompute"], "max_users": 12}
    with ray_cluster():
        on_ray = precompute_lists(snapshot, scorer, precompute, workers=2)
    stored = pd.read_parquet(system_dir(SYSTEM) / "feature_repo" / "sources" / "pymk_lists.parquet")
    stored = stored.set_index("user_id")
    assert len(on_ray) == 12
    for user_id, people, scores in on_ray[["user_id", "people", "scores"]].itertuples(index=False):
        assert people == list(stored.loc[user_id, "people"])
        np.testing.assert_allclose(scores, stored.loc[user_id, "scores"])


def test_active_users_read_their_stored_list_others_are_computed(client, service, trained):
    stored = pd.read_parquet(system_dir(SYSTEM) / "feature_repo" / "sources" / "pymk_lists.parquet")
    assert trained["precomputed_users"] == len(stored) > 0
    active = int(stored["user_id"].iloc[0])
    body = recommend(client, {"user_id": active, "k": 5})
    assert body["path"] == "precomputed" and len(body["people"]) == 5
    assert [p["user_id"] for p in body["people"]] == [int(i) for i in stored["people"].iloc[0][:5]]
    others = np.setdiff1d(service.state.user_ids[service.state.degree > 3], stored["user_id"])
    body = recommend(client, {"user_id": int(others[0]), "k": 10})
    assert body["path"] == "on demand" and body["people"]
    assert list(body["stages"]) == ["precomputed", "candidate_generation", "ranking", "re_ranking"]


def test_lists_never_hold_friends_pending_or_blocked_and_explain_themselves(client, service):
    state = service.state
    for user_id in state.user_ids[np.argsort(-state.degree)[:3]]:
        body = recommend(client, {"user_id": int(user_id), "k": 20})
        row = state.rows([user_id])[0]
        never = set(state.exclude_ids(row).tolist())
        friends = set(state.user_ids[state.adjacency[row].indices].tolist())
        for person in body["people"]:
            assert person["user_id"] not in never
            other = state.rows([person["user_id"]])[0]
            theirs = set(state.user_ids[state.adjacency[other].indices].tolist())
            assert person["mutual_friends"] == len(friends & theirs)
            assert (person["mutual_friends"] > 0) == any("in common" in r for r in person["reasons"])
        scores = [p["score"] for p in body["people"]]
        assert scores == sorted(scores, reverse=True)


def test_a_new_user_with_a_school_gets_classmates(client, service):
    users = service.state.data.users
    school = int(users["school_id"].value_counts().index[0])
    body = recommend(client, {"user_id": 2**52, "k": 10, "profile": {"school_id": school, "age": 21.0}})
    assert body["known_user"] is False and len(body["people"]) == 10
    classmates = set(users.loc[users["school_id"] == school, "user_id"].tolist())
    assert all(p["user_id"] in classmates and "same school" in p["reasons"] for p in body["people"])
    assert recommend(client, {"user_id": 2**52, "k": 10})["people"] == []  # nothing known: nothing to go on


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"user_id": 1, "k": 0}, "k"),
        ({"user_id": 1, "k": 51}, "k"),
        ({"user_id": 1, "k": True}, "k"),
        ({"user_id": -1}, "user_id"),
        ({"user_id": 1, "profile": {"school_id": "x"}}, "school_id"),
        ({"user_id": 1, "profile": {"age": 300.0}}, "age"),
        ({"user_id": 1, "friends": [2]}, "friends"),
    ],
)
def test_bad_requests_are_422_with_the_reason(client, payload, field):
    assert_refused(client.post("/pymk/recommend", json=payload), field, str(payload))


def test_the_schema_walk_accepts_what_it_documents(client):
    assert check_every_endpoint(client, accepted_status=200) > 10


def test_a_public_edge_list_trains_and_serves_end_to_end(tmp_path):
    """The same pipeline on `src,dst,timestamp` (+ nodes.csv) files: no oracle, no requests or
    interactions; relevance is the friendships that formed."""
    config = load_config(SYSTEM, "tiny")
    config["data"] = str(FIXTURES)
    config["models"]["lightgbm"].update(min_child_samples=5)
    with data_dir_at(tmp_path):
        from common.app.registry import get_system

        summary = get_system(SYSTEM).train(config)
        assert "oracle" not in set(summary["lists"]["list"])
        assert summary["lists"]["requests"].max() > 0
        with TestClient(create_app([SYSTEM], "tiny")) as client:
            edges = pd.read_csv(FIXTURES / "edges.csv")
            body = recommend(client, {"user_id": int(edges["src"].iloc[0]), "k": 5})
            assert body["models"]["ranker"]["version"] == summary["champion_version"]
            assert body["people"]


def test_schemathesis_finds_no_server_error_and_no_response_off_its_schema(client):
    """Requests generated from the schema, accepted and refused (tests/common/serving/fuzz.py)."""
    assert "POST /pymk/recommend" in fuzz_every_operation(client.app)
