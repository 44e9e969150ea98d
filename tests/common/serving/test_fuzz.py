"""tests/common/serving/fuzz.py finds what it is there to find: a server error on a body the schema accepts, and a
response off its documented schema; an app without either passes."""

from typing import Annotated

import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from schemathesis.core.failures import FailureGroup

from common.serving.app import ERROR_HANDLERS
from common.serving.schemas import RequestModel
from tests.common.serving.fuzz import fuzz_every_operation


class Body(RequestModel):
    k: Annotated[int, Field(ge=1, le=50, strict=True)] = 10


class Answer(BaseModel):
    items: list[int]


def app_with(handler) -> FastAPI:
    """One endpoint, with the error answers every app of ours has."""
    app = FastAPI(exception_handlers=ERROR_HANDLERS)
    app.post("/rank", response_model=Answer)(handler)
    return app


def failures(app: FastAPI, messages: bool = False) -> set[str]:
    """The titles (or messages) of the failures the fuzzing found."""
    with pytest.raises(FailureGroup) as found:
        fuzz_every_operation(app)
    return {failure.message if messages else failure.title for failure in found.value.exceptions}


def test_a_sound_app_passes():
    def rank(body: Body) -> Answer:
        return Answer(items=list(range(body.k)))

    assert fuzz_every_operation(app_with(rank)) == ["POST /rank"]


def test_a_server_error_on_an_accepted_body_is_found():
    def rank(body: Body) -> Answer:
        return Answer(items=[list(range(40))[body.k]])  # k of 40 or more: IndexError, a 500

    with pytest.raises(IndexError):  # in process, the server's exception itself (a 500 over HTTP)
        fuzz_every_operation(app_with(rank))


def test_a_response_off_its_schema_is_found():
    def rank(body: Body) -> JSONResponse:
        return JSONResponse({"items": "not a list"})

    assert "Response violates schema" in failures(app_with(rank))


def test_a_schema_valid_body_refused_for_its_type_is_found():
    def rank(body: Body) -> Answer:
        if body.k > 20:  # as if a bound were tighter than the schema says
            raise RequestValidationError([{"type": "less_than_equal", "loc": ("body", "k"), "msg": "too big"}])
        return Answer(items=[body.k])

    assert "a body the schema accepts was refused" in "".join(failures(app_with(rank), messages=True))
