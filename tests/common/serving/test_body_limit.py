"""common/serving/body_limit.py: a body over the limit is a 422 saying so, whether its size is declared or it
arrives in chunks; a body within the limit is served; the real app carries the limit."""

import asyncio

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from common.serving.app import ERROR_HANDLERS, body_too_large, create_app
from common.serving.body_limit import MAX_BODY_BYTES, BodyLimit
from tests.conftest import data_dir_at

LIMIT = 1_000


def echo_app() -> TestClient:
    app = FastAPI(exception_handlers=ERROR_HANDLERS)
    app.add_middleware(BodyLimit, max_bytes=LIMIT, refuse=body_too_large)

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        return {"bytes": len(await request.body())}

    return TestClient(app)


def test_a_body_within_the_limit_is_served_and_a_larger_one_refused_with_the_sizes():
    client = echo_app()
    assert client.post("/echo", content=b"x" * LIMIT).json() == {"bytes": LIMIT}
    refused = client.post("/echo", content=b"x" * (LIMIT + 1))
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["msg"] == f"The body is {LIMIT + 1} bytes or more; the limit is {LIMIT}"


def test_a_body_in_chunks_without_a_declared_size_is_counted_and_cut_short():
    """At the ASGI level, as a server passes a chunked body: 300 bytes a message, no Content-Length."""
    app = echo_app().app
    pulled, sent = [], []

    async def receive():
        pulled.append(300)
        return {"type": "http.request", "body": b"x" * 300, "more_body": len(pulled) < 40}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/echo", "headers": [], "query_string": b""}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 422
    assert b"The body is 1200 bytes or more; the limit is 1000" in sent[1]["body"]
    assert len(pulled) == 4  # not the 40 messages of the whole body


def test_every_endpoint_of_the_app_carries_the_limit(tmp_path):
    with data_dir_at(tmp_path), TestClient(create_app(["ads"], "tiny")) as client:
        response = client.post(
            "/ads/rank", content=b" " * (MAX_BODY_BYTES + 1), headers={"content-type": "application/json"}
        )
        assert response.status_code == 422 and "the limit is" in response.text
