"""HTTP interface of a recommendation funnel: POST /<system>/recommend."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from common.serving.app import service_dependency
from common.serving.recommender import RecService
from common.serving.schemas import ModelOut, StageOut, stages_out

MAX_K = 100  # the largest list a request may ask for


class RecommendRequest(BaseModel):
    user_id: int = Field(..., ge=0, description="User id; an id the store does not know takes the cold-start path")
    k: int = Field(10, ge=1, le=MAX_K, description="How many items to return")
    profile: dict[str, str | int | float] = Field(
        default_factory=dict,
        description="A new user's profile (e.g. age, gender, country, language); ignored where the store knows it",
    )
    favourite_genres: list[str] = Field(
        default_factory=list, description="Genres a new user picked at sign-up; personalises a list without history"
    )


class ItemOut(BaseModel):
    item_id: int
    title: str
    genre: str
    score: float = Field(
        description="The ranker's score before the freshness boost, higher is better: P(positive); for systems"
        " trained on sampled negatives (game) odds(engaged) x P(positive | engaged), which is not a probability"
    )
    sources: list[str] = Field(description="The candidate sources that found the item")


class RecommendResponse(BaseModel):
    user_id: int
    known_user: bool = Field(description="False for a user the feature store does not know (cold start)")
    as_of: str = Field(description="The serving clock: the end of the logs the models were trained on")
    items: list[ItemOut] = Field(description="At most k items, best first")
    models: dict[str, ModelOut] = Field(description="The retrieval and ranker versions that served the request")
    stages: dict[str, StageOut]


def router(system: str) -> APIRouter:
    routes = APIRouter()

    @routes.post(
        "/recommend",
        response_model=RecommendResponse,
        summary=f"Recommend {system} items to a user",
        responses={
            422: {"description": "Invalid request: the detail says which field and why"},
            503: {"description": "No trained model yet; the detail names the command to run"},
        },
    )
    async def recommend(
        request: RecommendRequest, service: RecService = Depends(service_dependency(system))
    ) -> RecommendResponse:
        """Candidate sources (two-tower ANN, popularity, trending) -> ranking -> re-ranking."""
        _check_profile(request, service)
        served = service.recommend(request.user_id, request.k, request.profile, request.favourite_genres)
        rec, catalog = served.recommendation, service.catalog
        titles = catalog.columns[service.schema.title_column]
        items = [
            ItemOut(
                item_id=int(catalog.item_ids[row]),
                title=str(titles[row]),
                genre=catalog.groups[catalog.group_codes[row]],
                score=float(score),
                sources=list(sources),
            )
            for row, score, sources in zip(rec.item_rows, rec.scores, rec.sources, strict=True)
        ]
        return RecommendResponse(
            user_id=request.user_id,
            known_user=served.known_user,
            as_of=service.as_of.isoformat(),
            items=items,
            models={
                "retrieval": ModelOut(name=service.retrieval.name, version=service.retrieval.version),
                "ranker": ModelOut(name=service.ranker.name, version=service.ranker.version),
            },
            stages=stages_out(served.stage_ms, rec.counts),
        )

    return routes


def _check_profile(request: RecommendRequest, service: RecService) -> None:
    schema = service.schema
    allowed = {*schema.user_categorical, *schema.user_numeric}
    unknown = sorted(set(request.profile) - allowed)
    if unknown:
        raise HTTPException(422, f"unknown profile fields {unknown}; this system's profile has {sorted(allowed)}")
    for column in schema.user_numeric:
        value = request.profile.get(column)
        # bool is an int to Python; JSON true is not an age.
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise HTTPException(422, f"profile field {column!r} must be a non-negative number, got {value!r}")
    bad_genres = sorted(set(request.favourite_genres) - service.genres)
    if bad_genres:
        raise HTTPException(422, f"unknown genres {bad_genres}; choose from {sorted(service.genres)}")
