"""HTTP interface of the news feed: POST /newsfeed/feed and POST /newsfeed/events (streaming)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from common.serving.app import get_service
from common.serving.schemas import (
    ERROR_RESPONSES,
    MAX_ID,
    STRICT_INTEGER,
    ModelOut,
    RequestModel,
    ResponseEnvelope,
    UserId,
    k_field,
    stages_out,
)

MAX_K = 100
MAX_REACTIONS = 1000  # per POST /newsfeed/events


class FeedRequest(RequestModel):
    """A feed request: who opens the app, on what."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"user_id": 42, "k": 20, "device": "mobile"}]})

    user_id: UserId
    k: int = k_field(MAX_K, "posts", default=20)
    device: Literal["mobile", "desktop"] = Field("mobile", description="The device the feed is shown on")


class PostOut(BaseModel):
    post_id: int
    author_id: int
    topic: str
    media_type: str
    created_time: str = Field(description="ISO 8601, UTC")
    heads: dict[str, float] = Field(
        description="Each head: P(click), P(like), P(comment), P(share), P(hide), P(skip), and dwell_s in seconds"
    )
    score: float = Field(description="The weighted engagement the feed is ranked by (config serving.score.weights)")
    sources: list[str] = Field(description="The candidate sources that found the post: followed, popular")


class FeedResponse(ResponseEnvelope):
    posts: list[PostOut] = Field(description="At most k posts, best first; fewer if fewer are unseen")


class Reaction(RequestModel):
    user_id: UserId
    post_id: int = Field(ge=0, le=MAX_ID, strict=True, description=f"The post reacted to ({STRICT_INTEGER})")
    reaction: Literal["impression", "click", "like", "comment", "share", "hide"]


class EventsRequest(RequestModel):
    """Reactions as they happen."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"events": [{"user_id": 42, "post_id": 7, "reaction": "like"}]}]}
    )

    events: list[Reaction] = Field(
        min_length=1, max_length=MAX_REACTIONS, description=f"1 to {MAX_REACTIONS} reactions"
    )


class PostCountsOut(BaseModel):
    post_id: int
    counts: dict[str, float] = Field(description="The post's impressions and reactions so far, as now served")


class EventsResponse(BaseModel):
    accepted: int
    posts: list[PostCountsOut]


def router() -> APIRouter:
    routes = APIRouter()

    @routes.post("/feed", response_model=FeedResponse, summary="A user's feed", responses=ERROR_RESPONSES)
    async def feed(body: FeedRequest, request: Request) -> FeedResponse:
        """Candidates (followed accounts' recent posts, popular posts; unseen) -> the heads -> weighted
        engagement -> re-ranking (hidden authors demoted, near-duplicates dropped, an author cap)."""
        from systems.newsfeed.serving import NewsfeedService

        service: NewsfeedService = get_service(request, "newsfeed")
        served = service.feed(body.user_id, body.k, body.device)
        return FeedResponse(
            user_id=body.user_id,
            known_user=served.known_user,
            posts=[PostOut(**post) for post in service.posts(served)],
            models={"ranker": ModelOut(name=service.champion.name, version=service.champion.version)},
            stages=stages_out(served.stage_ms, served.ranked.counts),
        )

    @routes.post("/events", response_model=EventsResponse, summary="Record reactions", responses=ERROR_RESPONSES)
    async def events(body: EventsRequest, request: Request) -> EventsResponse:
        """Streaming features: each reaction updates its post's counts in the online store at once."""
        from systems.newsfeed.serving import NewsfeedService

        service: NewsfeedService = get_service(request, "newsfeed")
        unknown = service.known_posts([e.post_id for e in body.events])
        if unknown:
            raise HTTPException(422, f"unknown post ids {unknown[:10]}: not in the served catalogue")
        counts = service.record([e.model_dump() for e in body.events])
        return EventsResponse(
            accepted=len(body.events), posts=[PostCountsOut(post_id=p, counts=c) for p, c in counts.items()]
        )

    return routes
