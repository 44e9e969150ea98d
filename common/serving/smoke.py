"""A bundle answers one request before it serves. Loading can succeed where serving fails: a model pickled by
an older version of the code loads, then lacks what today's code calls, and every request would be a 500
while /healthz said ready. So a freshly loaded bundle first answers its system's sample request (the one the
benchmark sends) through the system's own router, in process; a bundle that cannot is never put in service:
at start the system answers 503 saying to train again, and on a hot reload the previous bundle keeps serving.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient

from common.app.registry import get_system

SMOKE_K = 10


class _OnlyCandidate:
    """What the router's get_service asks for the bundle: the candidate, whatever the server holds."""

    def __init__(self, bundle: Any):
        self.bundle = bundle

    def get(self, name: str) -> Any:
        return self.bundle


def first_request_problem(name: str, bundle: Any, config: dict) -> str | None:
    """None when the system's router, serving `bundle`, answers its sample request with a 200; else what
    went wrong."""
    from common.bench.endpoint import Form

    system = get_system(name)
    app = FastAPI()
    app.include_router(system.router(), prefix=f"/{name}")
    app.state.services = _OnlyCandidate(bundle)
    try:
        path, body = system.sample_request(config, np.random.default_rng(0), SMOKE_K)
        client = TestClient(app, raise_server_exceptions=False)
        if isinstance(body, Form):
            response = client.post(path, data=body.fields, files=body.files)
        else:
            response = client.post(path, json=body)
    except Exception as error:  # the sample request itself could not be made from what training left
        return f"{type(error).__name__}: {error}"
    if response.status_code != 200:
        return f"HTTP {response.status_code} to {path}: {response.text[:300]}"
    return None
