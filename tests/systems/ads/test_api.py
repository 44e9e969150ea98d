"""The ads endpoint through FastAPI's TestClient, on the tiny trained pipeline."""

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from common.app.paths import system_dir
from common.features.store import feature_repo_dir, open_store
from common.serving.app import create_app
from common.serving.schemas import MAX_ID
from tests.common.serving.fuzz import fuzz_every_operation
from tests.common.serving.openapi_walk import assert_refused, check_every_endpoint


@pytest.fixture(scope="module")
def client(trained_ads):
    with TestClient(create_app(["ads"], "tiny")) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def ads_table(trained_ads):
    return pd.read_parquet(system_dir("ads") / "raw" / "items.parquet").set_index("ad_id")


def _user_online(user_id: int) -> dict:
    store = open_store("ads", feature_repo_dir(system_dir("ads")))
    refs = [
        "user_profile:age_bucket",
        "user_profile:gender",
        "user_profile:location",
        "user_activity:recent_ad_ids_7d",
        "user_activity:hidden_ad_ids",
    ]
    return {
        k: v[0]
        for k, v in store.get_online_features(features=refs, entity_rows=[{"user_id": user_id}]).to_dict().items()
    }


def test_healthz(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["systems"]["ads"] == "ready"


@pytest.mark.parametrize("user_id", [3, 42, 777])
def test_rank_obeys_targeting_fatigue_and_diversity(client, ads_table, trained_ads, user_id):
    response = client.post("/ads/rank", json={"user_id": user_id, "context": {"device": "desktop", "hour": 20}, "k": 5})
    assert response.status_code == 200
    body = response.json()
    user = _user_online(user_id)
    assert body["known_user"] is True
    assert 1 <= len(body["ads"]) <= 5
    for ad in body["ads"]:
        row = ads_table.loc[ad["ad_id"]]
        assert user["age_bucket"] in row["target_age_buckets"]
        assert user["gender"] in row["target_genders"]
        assert user["location"] in row["target_locations"]
        assert ad["ad_id"] not in user["hidden_ad_ids"]
        assert list(user["recent_ad_ids_7d"]).count(ad["ad_id"]) < 3
        assert ad["expected_value"] == pytest.approx(ad["bid"] * ad["pctr"])
        assert 0 < ad["pctr"] < 1 and ad["why"]
    advertisers = [ad["advertiser_id"] for ad in body["ads"]]
    assert len(set(advertisers)) == len(advertisers)
    values = [ad["expected_value"] for ad in body["ads"]]
    assert values == sorted(values, reverse=True)
    assert body["models"] == {"ranker": {"name": "ads-ranker", "version": trained_ads["champion_version"]}}
    stages = body["stages"]
    assert list(stages) == ["user_features", "candidate_generation", "ranking", "re_ranking"]
    generation = stages["candidate_generation"]["counts"]
    # Targeting (hidden ads left out), then the exposure cap: each keeps no more than the one before.
    assert len(ads_table) >= generation["targeting"] == generation["merged"] >= generation["exposure_cap"]
    assert generation["exposure_cap"] == generation["out"] == stages["ranking"]["counts"]["in"]
    assert stages["re_ranking"]["counts"]["out"] == len(body["ads"])


def test_unknown_user_takes_the_cold_start_path(client, ads_table):
    response = client.post("/ads/rank", json={"user_id": 10**9, "k": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["known_user"] is False and body["ads"]
    for ad in body["ads"]:  # only ads with no demographic restriction
        row = ads_table.loc[ad["ad_id"]]
        assert (
            len(row["target_age_buckets"]) == 5
            and len(row["target_genders"]) == 2
            and len(row["target_locations"]) == 8
        )


def test_k_larger_than_the_pool_returns_what_there_is(client):
    body = client.post("/ads/rank", json={"user_id": 5, "k": 50}).json()
    assert len(body["ads"]) == body["stages"]["re_ranking"]["counts"]["out"] <= 50
    assert len({ad["ad_id"] for ad in body["ads"]}) == len(body["ads"])


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"user_id": 1, "k": 0}, "k"),
        ({"user_id": 1, "k": 51}, "k"),
        ({"user_id": -1}, "user_id"),
        ({"user_id": "abc"}, "user_id"),
        ({"k": 3}, "user_id"),
        ({"user_id": 1, "context": {"device": "toaster"}}, "device"),
        ({"user_id": 1, "context": {"hour": 24}}, "hour"),
        ({"user_id": 1, "context": {"hour": False}}, "hour"),  # a boolean is not an integer
        ({"user_id": True}, "user_id"),
        ({"user_id": 1, "k": 5.0}, "k"),  # nor is a float, even an integral one
        ({"user_id": 1, "context": {"hour": 20.5}}, "hour"),
        ({"user_id": MAX_ID + 1}, "user_id"),
        ({"user_id": 1, "K": 5}, "K"),  # an unknown field, not silently the default k
        ({"user_id": 1, "context": {"device": "mobile", "timezone": "CET"}}, "timezone"),
    ],
)
def test_bad_input_is_422_with_the_reason(client, payload, field):
    assert_refused(client.post("/ads/rank", json=payload), field, str(payload))


@pytest.mark.parametrize(
    "body, content_type",
    [(b"{user_id: 1", "application/json"), (b"\xff\xfe\x80", "application/json"), (b'{"user_id": 1}', "text/plain")],
)
def test_a_body_that_is_not_json_is_422(client, body, content_type):
    response = client.post("/ads/rank", content=body, headers={"content-type": content_type})
    assert_refused(response, None, repr(body))
    assert "JSON" in response.json()["detail"][0]["msg"]


def test_every_body_the_schema_accepts_is_served_and_every_other_refused(client):
    """The OpenAPI walk (tests/common/serving/openapi_walk.py) on the trained system: bounds included (the
    largest user id, k = 50, hour 23)."""
    assert check_every_endpoint(client, accepted_status=200) > 50


def test_no_trained_model_is_503_naming_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("MLSD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with TestClient(create_app(["ads"], "tiny")) as empty:
        assert empty.get("/healthz").json()["systems"]["ads"].startswith("unavailable")
        response = empty.post("/ads/rank", json={"user_id": 1, "k": 3})
        refused = empty.post("/ads/rank", json={"user_id": 1, "k": 0})
    assert response.status_code == 503
    assert "make train SYSTEM=ads" in response.json()["detail"]
    assert_refused(refused, "k", "k = 0 with no model: the 422 comes first")


def test_schemathesis_finds_no_server_error_and_no_response_off_its_schema(client):
    assert "POST /ads/rank" in fuzz_every_operation(client.app)
