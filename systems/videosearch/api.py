"""HTTP interface of video search: POST /videosearch/query."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from common.search.api import QueryRequest, query_field, stages_out
from common.serving.app import get_service
from common.serving.schemas import ERROR_RESPONSES, MAX_AGE, STRICT_INTEGER, ModelOut, StageOut, k_field
from systems.video.world import COUNTRIES

MAX_K = 50
Country = Literal[tuple(COUNTRIES)]  # type: ignore[valid-type]


class VideoSearchRequest(QueryRequest):
    """A search: the text a viewer typed, and who the viewer is as far as the re-ranking rules ask."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"query": "street food lisbon kitchen", "k": 10}]})

    query: str = query_field("the viewer")
    k: int = k_field(MAX_K, "videos")
    age: int | None = Field(
        None,
        ge=0,
        le=MAX_AGE,
        strict=True,
        description=f"The viewer's age ({STRICT_INTEGER}); unknown: only videos rated for everyone",
    )
    country: Country | None = Field(None, description="The viewer's country; unknown: only videos available everywhere")


class VideoOut(BaseModel):
    video_id: int
    title: str
    genre: str
    language: str
    channel_id: int
    age_rating: str
    score: float = Field(description="The blend's score: the weighted sum of both sources' scaled scores, or RRF")
    sources: list[str] = Field(description="What found the video: text, visual")


class QueryOut(BaseModel):
    original: str
    corrected: str = Field(description="After spell correction")
    showing_results_for: str | None = Field(description='"showing results for ..." when the query was corrected')


class VideoSearchResponse(BaseModel):
    query: QueryOut
    videos: list[VideoOut] = Field(description="At most k videos, best first; empty when nothing matched")
    models: dict[str, ModelOut]
    stages: dict[str, StageOut]


def router() -> APIRouter:
    routes = APIRouter()

    @routes.post("/query", response_model=VideoSearchResponse, summary="Search the videos", responses=ERROR_RESPONSES)
    async def query(body: VideoSearchRequest, request: Request) -> VideoSearchResponse:
        """Understanding -> text (BM25) + visual (faiss) -> fusion -> re-ranking rules -> the page."""
        from systems.videosearch.serving import VideoSearchService

        service: VideoSearchService = get_service(request, "videosearch")
        result, stage_ms = service.search(body.query, body.k, body.age, body.country)
        understood = result.query
        return VideoSearchResponse(
            query=QueryOut(
                original=body.query,
                corrected=understood.text,
                showing_results_for=understood.text if understood.was_corrected else None,
            ),
            videos=service.describe(result),
            models={"blend": ModelOut(name=service.champion.name, version=service.champion.version)},
            stages=stages_out(result.counts, stage_ms),
        )

    return routes
