"""HTTP interface of a recommendation funnel: POST /<system>/recommend.

The request body is built per system from its data schema (common.data.dataset.Schema): the profile
a new user may send has exactly the system's profile columns, so the OpenAPI schema states them with
their types and bounds, and the router exists before any model is loaded."""

# No `from __future__ import annotations`: the route's body annotation is the model built in router(),
# a local name FastAPI could not resolve from a string.

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field, create_model

from common.data.dataset import Schema
from common.serving.app import get_service
from common.serving.recommender import RecService
from common.serving.schemas import (
    ERROR_RESPONSES,
    MAX_TEXT,
    ModelOut,
    RequestModel,
    ResponseEnvelope,
    UserId,
    k_field,
    profile_description,
    profile_model,
    stages_out,
)

MAX_K = 100  # the largest list a request may ask for
MAX_GENRES = 50  # the most genres a new user may pick


class ItemOut(BaseModel):
    item_id: int
    title: str
    genre: str
    score: float = Field(
        description="The ranker's score before the freshness boost, higher is better: P(positive); for systems"
        " trained on sampled negatives (game) odds(engaged) x P(positive | engaged), which is not a probability"
    )
    sources: list[str] = Field(description="The candidate sources that found the item")


class RecommendResponse(ResponseEnvelope):
    as_of: str = Field(description="The serving clock: the end of the logs the models were trained on")
    items: list[ItemOut] = Field(description="At most k items, best first")


def request_model(system: str, schema: Schema) -> type[RequestModel]:
    """The body of POST /<system>/recommend, named after the system (one OpenAPI component each)."""
    profile = profile_model(system, schema)
    return create_model(
        f"{system.capitalize()}RecommendRequest",
        __base__=RequestModel,
        __doc__=f"A {schema.item_name} recommendation request",
        user_id=(UserId, ...),
        k=(int, k_field(MAX_K, f"{schema.item_name}s")),
        profile=(profile, Field(default_factory=dict, description=profile_description(schema))),
        favourite_genres=(
            list[Annotated[str, Field(max_length=MAX_TEXT)]],
            Field(
                default_factory=list,
                max_length=MAX_GENRES,
                description="Genres a new user picked at sign-up; personalises a list without history. Genres"
                " of the served catalogue only: an unknown genre is a 422 listing the known ones",
            ),
        ),
    )


def router(system: str, schema: Schema) -> APIRouter:
    routes = APIRouter()
    body_model = request_model(system, schema)

    @routes.post(
        "/recommend",
        response_model=RecommendResponse,
        summary=f"Recommend {schema.item_name}s to a user",
        responses=ERROR_RESPONSES,
    )
    async def recommend(body: body_model, request: Request) -> RecommendResponse:  # type: ignore[valid-type]
        """Candidate sources (two-tower ANN, popularity, trending) -> ranking -> re-ranking."""
        service: RecService = get_service(request, system)
        _check_genres(body.favourite_genres, service)
        served = service.recommend(body.user_id, body.k, dict(body.profile), body.favourite_genres)
        rec, catalog = served.ranked, service.catalog
        titles = catalog.columns[service.schema.title_column]
        items = [
            ItemOut(
                item_id=int(catalog.item_ids[row]),
                title=str(titles[row]),
                genre=catalog.groups[catalog.group_codes[row]],
                score=float(score),
                sources=list(sources),
            )
            for row, score, sources in zip(rec.rows, rec.scores, rec.sources, strict=True)
        ]
        return RecommendResponse(
            user_id=body.user_id,
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


def _check_genres(favourite_genres: list[str], service: RecService) -> None:
    """The genres are the served catalogue's, known once the bundle is loaded: checked per request."""
    bad_genres = sorted(set(favourite_genres) - service.genres)
    if bad_genres:
        raise HTTPException(422, f"unknown genres {bad_genres}; choose from {sorted(service.genres)}")
