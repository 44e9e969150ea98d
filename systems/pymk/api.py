"""HTTP interface of people you may know: POST /pymk/recommend."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from common.serving.app import get_service
from common.serving.schemas import (
    ERROR_RESPONSES,
    MAX_AGE,
    MAX_ID,
    STRICT_INTEGER,
    ModelOut,
    RequestModel,
    ResponseEnvelope,
    UserId,
    k_field,
    stages_out,
)

MAX_K = 50


def _group(what: str):
    return Field(None, ge=0, le=MAX_ID, strict=True, description=f"The new user's {what} id ({STRICT_INTEGER})")


class Profile(RequestModel):
    """What a new account told us; ignored for a user the graph knows."""

    school_id: int | None = _group("school")
    employer_id: int | None = _group("employer")
    city: int | None = _group("city")
    industry: int | None = _group("industry")
    age: float | None = Field(None, ge=0, le=MAX_AGE, allow_inf_nan=False, description=f"Age, 0 to {MAX_AGE}")
    lat: float | None = Field(None, ge=-90, le=90, allow_inf_nan=False, description="Latitude in degrees")
    lng: float | None = Field(None, ge=-180, le=180, allow_inf_nan=False, description="Longitude in degrees")


class RecommendRequest(RequestModel):
    """A people-you-may-know request."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"user_id": 42, "k": 10}]})

    user_id: UserId
    k: int = k_field(MAX_K, "people")
    profile: Profile | None = Field(None, description="A new user's attributes: their school and employer find people")


class PersonOut(BaseModel):
    user_id: int
    score: float = Field(description="The champion's P(the friendship forms)")
    mutual_friends: int
    reasons: list[str] = Field(description="Friends in common, same school, same employer, same city")
    sources: list[str] = Field(
        description="What found the person: friends_of_friends, same_school, same_employer, precomputed"
    )


class RecommendResponse(ResponseEnvelope):
    path: str = Field(description="precomputed (an active user's stored list) or on demand")
    people: list[PersonOut] = Field(
        description="At most k people, best first; never the user, a friend, a"
        " pending request, a declined or blocked person"
    )


def router() -> APIRouter:
    routes = APIRouter()

    @routes.post(
        "/recommend", response_model=RecommendResponse, summary="People you may know", responses=ERROR_RESPONSES
    )
    async def recommend(body: RecommendRequest, request: Request) -> RecommendResponse:
        """A stored list for an active user; else friends of friends (and school, employer) -> P(friendship)."""
        from systems.pymk.serving import PymkService

        service: PymkService = get_service(request, "pymk")
        profile = body.profile.model_dump(exclude_none=True) if body.profile is not None else None
        served = service.recommend(body.user_id, body.k, profile)
        return RecommendResponse(
            user_id=body.user_id,
            known_user=served.known_user,
            path=served.user["path"],
            people=[PersonOut(**person) for person in service.explain(served)],
            models={"ranker": ModelOut(name=service.champion.name, version=service.champion.version)},
            stages=stages_out(served.stage_ms, served.ranked.counts),
        )

    return routes
