"""The API: an app factory that mounts each system's router under /<system>.

    uvicorn --factory common.serving.app:create_app

Serving bundles (champion models, feature-store handles, in-memory item features) load
once in `lifespan`. A system that cannot serve yet answers 503 saying what to run, and is
retried (at most every RETRY_SECONDS), so training while the server runs needs no restart.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import FastAPI, HTTPException, Request

from common.app.config import load_config
from common.app.logs import quiet_libraries
from common.app.registry import get_system, system_names
from common.app.system import ServiceUnavailable

log = logging.getLogger(__name__)
RETRY_SECONDS = 5.0  # how often an unavailable system is tried again


class Services:
    """The loaded serving bundle of each system, or why it is not loaded."""

    def __init__(self, names: list[str], scale: str | None):
        self.names = names
        self.scale = scale
        self.loaded: dict[str, Any] = {}
        self.unavailable: dict[str, str] = {}
        self._last_attempt: dict[str, float] = {}
        self._lock = threading.Lock()

    def load(self, name: str) -> None:
        self._last_attempt[name] = time.monotonic()
        try:
            self.loaded[name] = get_system(name).load_service(load_config(name, self.scale))
            self.unavailable.pop(name, None)
            log.info("%s: serving bundle loaded", name)
        except ServiceUnavailable as error:
            self.unavailable[name] = str(error)
            log.warning("%s: cannot serve yet: %s", name, error)

    def get(self, name: str) -> Any:
        # Retry a system that could not serve, but not on every request: a load attempt
        # queries MLflow and opens the feature store.
        if name not in self.loaded and time.monotonic() - self._last_attempt.get(name, 0.0) >= RETRY_SECONDS:
            with self._lock:
                if name not in self.loaded:
                    self.load(name)
        if name not in self.loaded:
            raise HTTPException(status_code=503, detail=f"{self.unavailable[name]}. Run: make train SYSTEM={name}")
        return self.loaded[name]


def service_dependency(name: str) -> Callable[[Request], Any]:
    """A FastAPI dependency that hands a route its system's serving bundle (or answers 503)."""

    # async: a plain def would cost every request a hop through the thread pool.
    async def dependency(request: Request) -> Any:
        return request.app.state.services.get(name)

    return dependency


def create_app(systems: list[str] | None = None, scale: str | None = None) -> FastAPI:
    quiet_libraries()
    names = systems or os.environ.get("MLSD_SYSTEMS", ",".join(system_names())).split(",")
    scale = scale or os.environ.get("MLSD_SCALE") or None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Requests already run in parallel threads; intra-op threads on a few hundred rows
        # would only fight them for the same cores.
        torch.set_num_threads(1)
        # Requests are a few ms of CPU each; the default 5 ms GIL slice lets one request hold
        # up the others in its worker for whole slices (seen as a long p99 at concurrency 8).
        sys.setswitchinterval(0.0005)
        services = Services(names, scale)
        for name in names:
            services.load(name)
        app.state.services = services
        # The loaded bundles live as long as the process: keep the garbage collector from
        # walking them again and again (long pauses in the latency tail).
        gc.freeze()
        yield

    app = FastAPI(
        title="ML system designs",
        description="Candidate generation -> ranking -> re-ranking endpoints, one per system design chapter.",
        lifespan=lifespan,
    )
    for name in names:
        app.include_router(get_system(name).router(), prefix=f"/{name}", tags=[name])

    @app.get("/healthz", summary="Liveness, and which systems can serve")
    def healthz(request: Request) -> dict:
        services: Services = request.app.state.services
        return {
            "status": "ok",
            "pid": os.getpid(),
            "systems": {
                name: "ready" if name in services.loaded else f"unavailable: {services.unavailable.get(name)}"
                for name in services.names
            },
        }

    return app
