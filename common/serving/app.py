"""The API: an app factory that mounts each system's router under /<system>.

    uvicorn --factory common.serving.app:create_app

Serving bundles (champion models, feature-store handles, in-memory item features) load in
`lifespan`, and again when a training promotes a new champion (common/serving/services.py: hot reload).
A system that cannot serve yet answers 503 saying what to run, and is retried, so training while the
server runs needs no restart.

Every bad request is a 422 whose detail lists the fields refused and why: the bodies are
validated before the serving bundle is asked for (a bad request is a 422 even while the
system answers 503), and a body that is not JSON at all is a 422 too, not FastAPI's 400, as is a body over
MAX_BODY_BYTES (common/serving/body_limit.py), before it is read whole.
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from common.app.logs import quiet_libraries
from common.app.registry import get_system, system_names
from common.serving.body_limit import MAX_BODY_BYTES, BodyLimit
from common.serving.services import ChampionWatcher, Services, reload_interval, settle_memory


def get_service(request: Request, name: str) -> Any:
    """The system's serving bundle, or a 503 naming the command to run. A route calls it in its body,
    after FastAPI validated the request: as a dependency it would run before the body's validation,
    and a bad request to a system that cannot serve would answer 503 instead of 422."""
    return request.app.state.services.get(name)


class HealthOut(BaseModel):
    status: str
    pid: int
    systems: dict[str, str] = Field(description='Each system: "ready", or "unavailable: <why>"')
    models: dict[str, dict[str, str]] = Field(
        description="Each serving system: the version of each registered model it serves (the champions when loaded)"
    )


def _json_safe(value: Any) -> Any:
    """A refused input as JSON can carry it: NaN and infinities (Python's JSON reader takes NaN,
    Infinity and 1e999) as strings, bytes decoded; the default handler would fail on them (a 500)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _invalid(errors: list[dict]) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(_json_safe(errors))})


async def _request_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for error in exc.errors():
        error = dict(error)
        if error.get("type") == "json_invalid":  # FastAPI's JSONDecodeError: "JSON decode error" alone
            error["msg"] = f"The body is not valid JSON: {error.get('ctx', {}).get('error', 'decode error')}"
        elif tuple(error.get("loc", ())) == ("body",):
            # The body as a whole: say so, rather than pydantic's "Field required" or "Input should
            # be a valid dictionary". FastAPI reads a body as JSON only under content-type
            # application/json; any other arrives as text.
            content_type = request.headers.get("content-type", "")
            sent_as_json = content_type.split(";")[0].strip().lower().endswith(("/json", "+json"))
            given = f"not {content_type!r}" if content_type else "none was given"
            hint = "" if sent_as_json else f", sent with content-type: application/json ({given})"
            if error.get("type") == "missing":
                error["msg"] = f"The body is missing: send a JSON object{hint}"
            elif error.get("type") in ("model_attributes_type", "dict_type", "model_type"):
                error["msg"] = f"The body must be a JSON object{hint}"
        errors.append(error)
    return _invalid(errors)


async def _http_error(request: Request, exc: StarletteHTTPException):
    # FastAPI answers 400 "There was an error parsing the body" (raised from the parse error) when
    # the JSON reader fails with something other than a JSONDecodeError: bytes that are not UTF-8,
    # an integer of more than 4300 digits. Bad input like any other: a 422 with the reason.
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
        return _invalid(
            [
                {
                    "type": "json_invalid",
                    "loc": ["body"],
                    # (what precedes a ";" only: Python's advice on the digit limit is not the client's)
                    "msg": f"The body is not valid JSON: {str(exc.__cause__).split(';')[0]}",
                    "input": {},
                }
            ]
        )
    # Starlette answers 400 when a multipart form (an upload) cannot be parsed: bad input too.
    if exc.status_code == 400 and isinstance(exc.__context__, MultiPartException):
        return _invalid([{"type": "form_invalid", "loc": ["body"], "msg": f"The form is not valid: {exc.detail}"}])
    return await http_exception_handler(request, exc)


# Every refused request a 422 with the reason (a body that is not JSON included), as the schemas document.
ERROR_HANDLERS = {RequestValidationError: _request_validation_error, StarletteHTTPException: _http_error}


def body_too_large(size: int, limit: int) -> JSONResponse:
    """The answer of common/serving/body_limit.py: a 422 like any other refusal, with the sizes."""
    message = f"The body is {size} bytes or more; the limit is {limit}"
    return _invalid([{"type": "too_large", "loc": ["body"], "msg": message}])


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
        settle_memory()
        watcher = ChampionWatcher(services, reload_interval())
        watcher.start()
        yield
        watcher.stop()

    app = FastAPI(
        title="ML system designs",
        description="Candidate generation -> ranking -> re-ranking endpoints, one per system design chapter.",
        lifespan=lifespan,
        exception_handlers=ERROR_HANDLERS,
    )
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES, refuse=body_too_large)
    for name in names:
        app.include_router(get_system(name).router(), prefix=f"/{name}", tags=[name])

    @app.get("/healthz", summary="Liveness, and which systems can serve")
    def healthz(request: Request) -> HealthOut:
        services: Services = request.app.state.services
        return HealthOut(
            status="ok",
            pid=os.getpid(),
            systems={
                name: "ready" if name in services.loaded else f"unavailable: {services.unavailable.get(name)}"
                for name in services.names
            },
            models=dict(services.versions),
        )

    return app
