"""A walk of an app's endpoints against its own OpenAPI schema: for every operation that takes a JSON body,
the bodies the schema refuses (a boolean or a float for an integer, out-of-bound values, unknown fields,
missing required fields, a body that is not a JSON object) and the bodies it accepts. The walk reads only
the schema, so a new system's endpoint is covered as soon as it is mounted. Used by
tests/common/serving/test_openapi_contract.py (no trained model) and tests/systems/ads/test_api.py (trained)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

UNKNOWN_FIELD = "unknown_field"
JSON = {"content-type": "application/json"}
# Bodies that are not a JSON object at all: (label, raw bytes, content type).
RAW_BODIES = [
    ("not JSON", b"{user_id: 1", "application/json"),
    ("truncated JSON", b'{"user_id": 1', "application/json"),
    ("not UTF-8", b'{"user_id": "\xff"}', "application/json"),
    ("empty", b"", "application/json"),
    ("JSON array", b"[1, 2]", "application/json"),
    ("JSON string", b'"user_id"', "application/json"),
    ("JSON null", b"null", "application/json"),
    ("NaN literal", b'{"user_id": NaN}', "application/json"),
    ("Infinity literal", b'{"user_id": Infinity}', "application/json"),
    ("overflowing number", b'{"user_id": 1e999}', "application/json"),
    ("integer of 5000 digits", b'{"user_id": ' + b"1" * 5000 + b"}", "application/json"),
    ("JSON sent as text/plain", b'{"user_id": 1}', "text/plain"),
    ("form body", b"user_id=1", "application/x-www-form-urlencoded"),
]


# ---- reading the schema -------------------------------------------------------------------------


def resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def body_routes(spec: dict) -> list[tuple[str, dict]]:
    """(path, request body schema) of every operation that takes a JSON body."""
    routes = []
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                routes.append((path, resolve(spec, content["application/json"]["schema"])))
    return routes


def split_nullable(spec: dict, schema: dict) -> tuple[dict, bool]:
    """The schema without its null alternative, and whether null is accepted."""
    schema = resolve(spec, schema)
    options = schema.get("anyOf")
    if options is None:
        return schema, schema.get("type") == "null"
    others = [resolve(spec, option) for option in options if option.get("type") != "null"]
    assert len(others) == 1, f"a walk of this schema needs a case for {schema}"
    return {**others[0], **{k: v for k, v in schema.items() if k != "anyOf"}}, len(others) < len(options)


def sample(spec: dict, schema: dict, end: str) -> Any:
    """A value the schema accepts: at the low end of every bound (and required fields only) or at the high
    end (every field). Arrays hold as few items as the schema allows (none, mostly): an item the schema
    accepts may still be unknown to the served catalogue (a genre, a post id), which is a 422 saying so."""
    schema, _ = split_nullable(spec, schema)
    low = end == "low"
    if "enum" in schema:
        return schema["enum"][0 if low else -1]
    kind = schema.get("type")
    if kind == "integer":
        return int(schema.get("minimum", 0)) if low else int(schema.get("maximum", schema.get("minimum", 0) + 1000))
    if kind == "number":
        return float(schema.get("minimum", 0.0)) if low else float(schema.get("maximum", 1e6))
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 1)) if low else "x" * min(100, schema.get("maxLength", 100))
    if kind == "boolean":
        return not low
    if kind == "array":
        return [sample(spec, schema["items"], end)] * schema.get("minItems", 0)
    if kind == "object":
        properties = schema.get("properties", {})
        names = schema.get("required", []) if low else list(properties)
        return {name: sample(spec, properties[name], end) for name in names}
    raise AssertionError(f"a walk of this schema needs a case for {schema}")


def valid_bodies(spec: dict, schema: dict) -> list[dict]:
    bodies = [*schema.get("examples", []), sample(spec, schema, "low"), sample(spec, schema, "high")]
    required = sample(spec, schema, "low")
    for name, prop in schema.get("properties", {}).items():  # each field alone, at both ends
        bodies += [{**required, name: sample(spec, prop, "low")}, {**required, name: sample(spec, prop, "high")}]
    return bodies


def wrong_values(spec: dict, schema: dict) -> Iterator[tuple[str, Any]]:
    """(label, value) pairs the schema refuses for a field of this schema."""
    schema, nullable = split_nullable(spec, schema)
    kind = schema.get("type")
    if not nullable:
        yield "null", None
    if kind in ("integer", "number"):
        yield "true", True
        yield "false", False
        yield "a numeric string", "1"
        step = int if kind == "integer" else float  # (the OpenAPI document writes every bound as a float)
        if "minimum" in schema:
            yield "below the minimum", step(schema["minimum"]) - 1
        if "maximum" in schema:
            yield "above the maximum", step(schema["maximum"]) + 1
    if kind == "integer":
        valid = sample(spec, schema, "low")
        yield "a float", valid + 0.5
        yield "an integral float", float(valid)  # strict: 3.0 is not the integer 3
    if kind == "string":
        yield "a number", 1
        yield "a boolean", True
        if "enum" in schema:
            yield "not one of the choices", "no-such-choice"
        if "maxLength" in schema:
            yield "too long", "x" * (schema["maxLength"] + 1)
        if schema.get("minLength", 0) > 0:
            yield "empty", ""
    if kind == "array":
        yield "a string", "x"
        yield "an object", {}
        item, _ = split_nullable(spec, schema["items"])
        yield "an item of the wrong type", [1] if item.get("type") == "string" else ["x"]
        if "maxItems" in schema:
            yield "too many items", [sample(spec, item, "low")] * (schema["maxItems"] + 1)
    if kind == "object":
        yield "a string", "x"
        yield "a list", []


def invalid_bodies(spec: dict, schema: dict) -> Iterator[tuple[str, dict, str]]:
    """(label, body, the field the 422 must name) for every field of the body, nested ones included."""
    full = sample(spec, schema, "high")

    def walk(schema: dict, path: tuple[str, ...]) -> Iterator[tuple[str, dict, str]]:
        schema, _ = split_nullable(spec, schema)
        if schema.get("type") != "object":
            return
        where = ".".join(path) or "body"
        assert schema.get("additionalProperties") is False, f"{where} takes unknown fields"
        yield f"{where}: an unknown field", with_value(full, (*path, UNKNOWN_FIELD), 1), UNKNOWN_FIELD
        for name in schema.get("required", []):
            yield f"{'.'.join((*path, name))}: missing", without(full, (*path, name)), name
        for name, prop in schema.get("properties", {}).items():
            for label, value in wrong_values(spec, prop):
                yield f"{'.'.join((*path, name))}: {label}", with_value(full, (*path, name), value), name
            yield from walk(prop, (*path, name))

    yield from walk(schema, ())


def with_value(body: dict, path: tuple[str, ...], value: Any) -> dict:
    body = copy.deepcopy(body)
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return body


def without(body: dict, path: tuple[str, ...]) -> dict:
    body = copy.deepcopy(body)
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return body


def assert_refused(response, field: str | None, label: str) -> None:
    """A 422 whose detail lists the errors, each with where and why, one of them at `field`."""
    assert response.status_code == 422, f"{label}: {response.status_code} {response.text}"
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, f"{label}: {detail}"
    assert all(isinstance(error["msg"], str) and error["msg"] and error["loc"][0] == "body" for error in detail)
    if field is not None:
        assert any(field in map(str, error["loc"]) for error in detail), f"{label}: {detail}"


def check_every_endpoint(client: TestClient, accepted_status: int, catalogue_fields: tuple[str, ...] = ()) -> int:
    """Post every refused and accepted body of every endpoint; the number of requests made.
    `catalogue_fields`: scalar fields whose values the served catalogue checks (a search's category
    filter), which a body the schema accepts may name wrongly, like the items of an array."""
    spec = client.get("/openapi.json").json()
    routes = body_routes(spec)
    assert routes
    posted = 0
    for path, schema in routes:
        for label, body, field in invalid_bodies(spec, schema):
            assert_refused(client.post(path, json=body), field, f"{path} {label}")
            posted += 1
        for label, raw, content_type in RAW_BODIES:
            assert_refused(client.post(path, content=raw, headers={"content-type": content_type}), None, label)
            posted += 1
        for body in valid_bodies(spec, schema):
            response = client.post(path, json=body)
            # A body the schema accepts whose items the catalogue does not hold: a 422 that says so in words.
            unknown_item = response.status_code == 422 and isinstance(response.json()["detail"], str)
            accepted = response.status_code == accepted_status or (unknown_item and _has_items(body, catalogue_fields))
            assert accepted, f"{path} {body}: {response.status_code} {response.text}"
            posted += 1
    return posted


def _has_items(value: Any, catalogue_fields: tuple[str, ...] = ()) -> bool:
    """Whether a body holds a non-empty array, or a value in one of `catalogue_fields`, anywhere."""
    if isinstance(value, list):
        return len(value) > 0
    if not isinstance(value, dict):
        return False
    named = any(value.get(name) is not None for name in catalogue_fields)
    return named or any(_has_items(v, catalogue_fields) for v in value.values())
