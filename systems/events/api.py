"""HTTP interface of the event funnel: POST /events/recommend."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from common.serving.app import get_service
from common.serving.schemas import (
    ERROR_RESPONSES,
    ModelOut,
    RequestModel,
    ResponseEnvelope,
    UserId,
    k_field,
    stages_out,
)

MAX_K = 100


class Location(RequestModel):
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="Latitude in degrees, -90 to 90")
    lng: float = Field(ge=-180, le=180, allow_inf_nan=False, description="Longitude in degrees, -180 to 180")


class RecommendRequest(RequestModel):
    """An event recommendation request."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"user_id": 42, "k": 10}]})

    user_id: UserId
    k: int = k_field(MAX_K, "events")
    location: Location | None = Field(
        None,
        description="Where the user is now: replaces the profile's home (a new user needs one for nearby events)",
    )


class EventOut(BaseModel):
    event_id: int
    score: float = Field(description="The ranker's P(register) (lambdarank: its score through a sigmoid)")
    distance_km: float | None = Field(description="From the user's location; null where either is unknown")
    start_time: str = Field(description="ISO 8601, UTC")
    city: str
    price: float | None = Field(description="null where the data has no price")
    friends_going: int = Field(description="The user's friends registered so far")
    registered: int = Field(description="Registrations so far")
    why: list[str] = Field(description="The candidate sources that found the event and the filters it passed")


class RecommendResponse(ResponseEnvelope):
    events: list[EventOut] = Field(description="At most k events, best first; fewer if fewer are open")


def router() -> APIRouter:
    routes = APIRouter()

    @routes.post("/recommend", response_model=RecommendResponse, summary="Recommend events", responses=ERROR_RESPONSES)
    async def recommend(body: RecommendRequest, request: Request) -> RecommendResponse:
        """Candidates (nearby, friends going, popular; open events only) -> P(register) -> host cap."""
        from systems.events.serving import EventsService

        service: EventsService = get_service(request, "events")
        location = (body.location.lat, body.location.lng) if body.location is not None else None
        served = service.recommend(body.user_id, body.k, location)
        return RecommendResponse(
            user_id=body.user_id,
            known_user=served.known_user,
            events=[EventOut(**event) for event in service.events(served)],
            models={"ranker": ModelOut(name=service.champion.name, version=service.champion.version)},
            stages=stages_out(served.stage_ms, served.ranked.counts),
        )

    return routes
