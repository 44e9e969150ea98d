"""HTTP interface of the ads funnel: POST /ads/rank."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from common.serving.app import service_dependency
from common.serving.schemas import ModelOut, StageOut, stages_out
from systems.ads.serving import AdsService

MAX_K = 50  # the largest k a request may ask for


class AdContext(BaseModel):
    device: Literal["mobile", "desktop", "tablet"] = Field("mobile", description="Device of the request")
    hour: int | None = Field(None, ge=0, le=23, description="Hour of day (UTC); the current hour when omitted")


class RankRequest(BaseModel):
    user_id: int = Field(..., ge=0, description="User id; an unknown id takes the cold-start path")
    context: AdContext = Field(default_factory=AdContext)
    k: int = Field(10, ge=1, le=MAX_K, description="How many ads to return")


class AdOut(BaseModel):
    ad_id: int
    advertiser_id: int
    category: str
    bid: float = Field(description="Advertiser's bid per click")
    pctr: float = Field(description="Calibrated P(click) in the top slot")
    expected_value: float = Field(description="bid x pCTR, the re-ranking key")
    why: list[str] = Field(description="The candidate rules this ad passed")


class RankResponse(BaseModel):
    user_id: int
    known_user: bool = Field(description="False when the user has no profile (cold start)")
    ads: list[AdOut] = Field(description="At most k ads, best expected value first; fewer if the pool is smaller")
    model: ModelOut
    stages: dict[str, StageOut]


def router() -> APIRouter:
    routes = APIRouter()

    @routes.post(
        "/rank",
        response_model=RankResponse,
        summary="Rank ads for a user",
        responses={503: {"description": "No trained model yet; the detail names the command to run"}},
    )
    async def rank(request: RankRequest, service: AdsService = Depends(service_dependency("ads"))) -> RankResponse:
        """Candidate generation (targeting, fatigue) -> ranking (calibrated pCTR) ->
        re-ranking (bid x pCTR, advertiser diversity)."""
        # On the event loop on purpose: a request is ~3 ms of CPU-bound work that threads
        # could not run in parallel anyway (the GIL); the thread-pool hop cost more than it
        # gave. Parallelism comes from worker processes (`make serve` runs one per core).
        hour = request.context.hour if request.context.hour is not None else datetime.now(UTC).hour
        result = service.rank(request.user_id, request.context.device, hour, request.k)
        return RankResponse(
            user_id=request.user_id,
            known_user=result.known_user,
            ads=[AdOut(**vars(ad)) for ad in result.ads],
            model=ModelOut(name=service.champion.name, version=service.champion.version),
            stages=stages_out(result.stage_ms, result.stage_counts),
        )

    return routes
