"""HTTP interface of the ads funnel: POST /ads/rank."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from common.serving.app import get_service
from common.serving.schemas import (
    ERROR_RESPONSES,
    STRICT_INTEGER,
    ModelOut,
    RequestModel,
    ResponseEnvelope,
    UserId,
    k_field,
    stages_out,
)
from systems.ads.serving import AdsService

MAX_K = 50  # the largest k a request may ask for


class AdContext(RequestModel):
    device: Literal["mobile", "desktop", "tablet"] = Field("mobile", description="Device of the request")
    hour: int | None = Field(
        None, ge=0, le=23, description=f"Hour of day (UTC), 0 to 23 ({STRICT_INTEGER}); now if null"
    )


class RankRequest(RequestModel):
    """An ad ranking request."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"user_id": 42, "context": {"device": "mobile", "hour": 20}, "k": 5}]}
    )

    user_id: UserId
    context: AdContext = Field(default_factory=AdContext, description="Where and when the ads are shown")
    k: int = k_field(MAX_K, "ads")


class AdOut(BaseModel):
    ad_id: int
    advertiser_id: int
    category: str
    bid: float = Field(description="Advertiser's bid per click")
    pctr: float = Field(description="Calibrated P(click) in the top slot")
    expected_value: float = Field(description="bid x pCTR, the re-ranking key")
    why: list[str] = Field(description="The candidate rules this ad passed")


class RankResponse(ResponseEnvelope):
    ads: list[AdOut] = Field(description="At most k ads, best expected value first; fewer if the pool is smaller")


def router() -> APIRouter:
    routes = APIRouter()

    @routes.post(
        "/rank",
        response_model=RankResponse,
        summary="Rank ads for a user",
        responses=ERROR_RESPONSES,
    )
    async def rank(body: RankRequest, request: Request) -> RankResponse:
        """Candidate generation (targeting, fatigue) -> ranking (calibrated pCTR) ->
        re-ranking (bid x pCTR, advertiser diversity)."""
        service: AdsService = get_service(request, "ads")
        # On the event loop on purpose: a request is ~3 ms of CPU-bound work that threads
        # could not run in parallel anyway (the GIL); the thread-pool hop cost more than it
        # gave. Parallelism comes from worker processes (`make serve` runs one per core).
        hour = body.context.hour if body.context.hour is not None else datetime.now(UTC).hour
        served = service.rank(body.user_id, body.context.device, hour, body.k)
        return RankResponse(
            user_id=body.user_id,
            known_user=served.known_user,
            ads=[AdOut(**ad) for ad in service.ads(served)],
            models={"ranker": ModelOut(name=service.champion.name, version=service.champion.version)},
            stages=stages_out(served.stage_ms, served.ranked.counts),
        )

    return routes
