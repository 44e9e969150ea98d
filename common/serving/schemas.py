"""What every endpoint shares, defined once: the base of request bodies (strict types, no unknown
fields), the user id and k fields, a recommender's profile built from the system's data schema, the
model versions and stage timings of a response, and the error answers (422, 503) with their schemas."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic needs this one below Python 3.12

from common.data.dataset import Schema

# The largest id: ids are int64 in the feature store, but the OpenAPI schema writes its bounds as
# floats (2**63 - 1 would read as 2**63) and JavaScript clients lose integers beyond 2**53.
MAX_ID = 2**53 - 1
MAX_AGE = 120  # the bounds of a profile's age (the schema's user_age_column)
MAX_TEXT = 100  # the longest string a profile field takes


class RequestModel(BaseModel):
    """Base of every request body. Strict: JSON true is not the integer 1, 2.0 is not an integer and
    "3" is not a number (JSON Schema cannot say "strict", so the types say it: "integer" is a JSON
    integer). Closed: a field the schema does not list is a 422, not silently ignored (a typo such
    as "K" would otherwise answer with the default)."""

    model_config = ConfigDict(strict=True, extra="forbid")


# JSON Schema counts 3.0 as an integer; these fields do not (strict): the descriptions say so.
STRICT_INTEGER = 'a JSON integer: 3, not 3.0, "3" or true'

UserId = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_ID,
        strict=True,
        description=f"User id, {STRICT_INTEGER}; an id the feature store does not know takes the cold-start path",
    ),
]


def k_field(max_k: int, items: str, default: int = 10) -> Any:
    """The `k` of a request: how many items to return, 1..max_k."""
    return Field(
        default, ge=1, le=max_k, strict=True, description=f"How many {items} to return, 1 to {max_k} ({STRICT_INTEGER})"
    )


def profile_model(system: str, schema: Schema) -> type:
    """The request's profile of a new user for a system: one optional field per profile column of its
    data schema (categorical: a string; numeric: a finite non-negative number, an age at most
    MAX_AGE), nothing else. A system without profile columns gets an object that takes no field."""
    fields: dict[str, Any] = {}
    for column in schema.user_categorical:
        fields[column] = Annotated[str, Field(min_length=1, max_length=MAX_TEXT, description=f"The user's {column}")]
    for column in schema.user_numeric:
        upper = MAX_AGE if column == schema.user_age_column else None
        bounds = f"0 to {upper}" if upper is not None else "non-negative"
        fields[column] = Annotated[
            float, Field(ge=0, le=upper, allow_inf_nan=False, description=f"The user's {column} ({bounds})")
        ]
    # A TypedDict with total=False: every field optional but none nullable, and the value a plain dict
    # of the fields given.
    profile = TypedDict(f"{system.capitalize()}Profile", fields, total=False)  # type: ignore[misc]
    profile.__pydantic_config__ = ConfigDict(strict=True, extra="forbid")  # type: ignore[attr-defined]
    return profile


def profile_description(schema: Schema) -> str:
    columns = [*schema.user_categorical, *schema.user_numeric]
    if not columns:
        return "This system's users have no profile fields: only {} is accepted"
    return (
        f"A new user's profile ({', '.join(columns)}), every field optional;"
        " ignored where the feature store knows the user"
    )


class ModelOut(BaseModel):
    name: str
    version: str


class StageOut(BaseModel):
    milliseconds: float
    counts: dict[str, int] = Field(default_factory=dict, description="Candidates in and out of the stage")


class ResponseEnvelope(BaseModel):
    """What every endpoint answers around its items: who asked, whether the store knew them, which
    registered model versions answered, and each stage's time and candidate counts."""

    user_id: int
    known_user: bool = Field(description="False for a user the feature store does not know (cold start)")
    models: dict[str, ModelOut] = Field(description="The registered model versions that served the request")
    stages: dict[str, StageOut]


def stages_out(stage_ms: dict[str, float], counts: dict[str, dict[str, int]]) -> dict[str, StageOut]:
    return {name: StageOut(milliseconds=ms, counts=counts.get(name, {})) for name, ms in stage_ms.items()}


class ValidationErrorOut(BaseModel):
    type: str = Field(description="What is wrong: int_type, less_than_equal, extra_forbidden, json_invalid...")
    loc: list[str | int] = Field(description='Where: ["body", field, ...]')
    msg: str = Field(description="Why, in words")
    input: Any = Field(None, description="The value refused")
    ctx: dict[str, Any] | None = Field(None, description="The constraint, e.g. {'le': 100}")


class InvalidRequestOut(BaseModel):
    detail: list[ValidationErrorOut] | str = Field(
        description="The fields refused and why; a sentence for a check against the served catalogue"
        " (e.g. an unknown genre)"
    )


class UnavailableOut(BaseModel):
    detail: str = Field(description="Why the system cannot serve, and the command to run")


# The error answers of every endpoint that takes a body (FastAPI adds 200 from the response model).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {
        "model": InvalidRequestOut,
        "description": "Invalid request (a field of the wrong type or out of bounds, an unknown field, a body"
        " that is not a JSON object): the detail says which field and why",
    },
    503: {
        "model": UnavailableOut,
        "description": "The system cannot serve yet (no trained model); the detail names the command to run",
    },
}
