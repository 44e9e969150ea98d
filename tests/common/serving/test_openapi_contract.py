"""Every endpoint of the API against its own OpenAPI schema (the walk: tests/common/serving/openapi_walk.py): the
bodies the schema refuses are a 422 naming the field, and the bodies it accepts are never refused nor a
server error. Here on the app without trained models, where an accepted body is a 503: the 422 comes
first, before the system is asked for its models. tests/systems/ads/test_api.py walks the same bodies
on the trained ads system (an accepted body is a 200 there)."""

from __future__ import annotations

import importlib
import importlib.util

import pytest
from fastapi.testclient import TestClient

from common.app.registry import system_names
from common.serving.app import create_app
from tests.common.serving.openapi_walk import assert_refused, body_routes, check_every_endpoint, resolve, sample
from tests.conftest import data_dir_at

# ---- the app without trained models -------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """Every registered system, none trained (a data dir of its own): each answers 503 once a body passes."""
    with data_dir_at(tmp_path_factory.mktemp("untrained")):
        with TestClient(create_app(system_names(), "tiny")) as test_client:
            yield test_client


@pytest.fixture(scope="module")
def spec(client) -> dict:
    return client.get("/openapi.json").json()


def test_every_system_has_an_endpoint_with_a_body(spec):
    """A JSON body (walked below), or a form: image search's upload, whose refusals its own tests check."""
    prefixes = {
        path.split("/")[1]
        for path, operations in spec["paths"].items()
        for operation in operations.values()
        if operation.get("requestBody")
    }
    assert prefixes == set(system_names())


def test_every_endpoint_documents_its_errors(spec):
    for path, _ in body_routes(spec):
        responses = spec["paths"][path]["post"]["responses"]
        for status in ("200", "422", "503"):
            assert responses[status]["description"], (path, status)
            assert responses[status]["content"]["application/json"]["schema"], (path, status)
        invalid = resolve(spec, responses["422"]["content"]["application/json"]["schema"])
        assert "detail" in invalid["required"]


def test_refused_bodies_are_422_before_the_missing_model_and_accepted_ones_reach_it(client):
    """Validation runs before the system is asked for its models: a refused body is a 422 even though
    the system cannot serve, and only an accepted body gets the 503."""
    assert check_every_endpoint(client, accepted_status=503) > 100


def test_the_503_names_the_command(client, spec):
    for path, schema in body_routes(spec):
        response = client.post(path, json=sample(spec, schema, "low"))
        assert response.status_code == 503
        assert f"make train SYSTEM={path.split('/')[1]}" in response.json()["detail"]


def test_a_recommenders_profile_has_exactly_its_systems_profile_fields(spec):
    """The schema states each system's own profile (video: age, gender, country, language; game: none)."""
    recommenders = [  # the shared recommenders' routes (events and pymk have their own)
        (path, schema)
        for path, schema in body_routes(spec)
        if path.endswith("/recommend")
        and "profile" in schema["properties"]
        and importlib.util.find_spec(f"systems.{path.split('/')[1]}.recdata") is not None
    ]
    assert {path for path, _ in recommenders} >= {"/video/recommend", "/game/recommend"}
    for path, schema in recommenders:
        data_schema = importlib.import_module(f"systems.{path.split('/')[1]}.recdata").SCHEMA
        profile = resolve(spec, schema["properties"]["profile"])
        assert profile["additionalProperties"] is False
        properties = profile.get("properties", {})
        assert set(properties) == {*data_schema.user_categorical, *data_schema.user_numeric}
        assert not profile.get("required")
        for column in data_schema.user_categorical:
            assert properties[column]["type"] == "string"
        for column in data_schema.user_numeric:
            assert properties[column]["type"] == "number" and properties[column]["minimum"] == 0
        if data_schema.user_age_column:
            assert properties[data_schema.user_age_column]["maximum"] == 120
    video = resolve(spec, dict(recommenders)["/video/recommend"]["properties"]["profile"])
    assert set(video["properties"]) == {"age", "gender", "country", "language"}
    assert resolve(spec, dict(recommenders)["/game/recommend"]["properties"]["profile"]).get("properties") == {}


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/video/recommend", {"user_id": False}, "user_id"),
        ("/game/recommend", {"user_id": True}, "user_id"),
        ("/video/recommend", {"user_id": 1, "k": True}, "k"),
        ("/ads/rank", {"user_id": 1, "context": {"hour": False}}, "hour"),
        ("/ads/rank", {"user_id": 1, "k": 5.0}, "k"),
        ("/video/recommend", {"user_id": 1, "profile": {"age": True}}, "age"),
        ("/video/recommend", {"user_id": 1, "profile": {"height": 180}}, "height"),
        ("/game/recommend", {"user_id": 1, "profile": {"age": 30}}, "age"),
        ("/video/recommend", {"user_id": 1, "K": 5}, "K"),
    ],
)
def test_the_reported_defects_are_422(client, path, body, field):
    assert_refused(client.post(path, json=body), field, str(body))


def test_a_game_request_may_send_an_empty_profile(client):
    assert client.post("/game/recommend", json={"user_id": 1, "profile": {}}).status_code == 503


def test_healthz_and_unknown_paths_are_not_server_errors(client):
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.post("/no/such/path", json={}).status_code == 404
    assert client.get("/ads/rank").status_code == 405
