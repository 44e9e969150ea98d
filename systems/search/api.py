"""HTTP interface of product search: POST /search/query."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from common.search.api import QueryRequest, query_field, stages_out
from common.serving.app import get_service
from common.serving.schemas import ERROR_RESPONSES, MAX_ID, STRICT_INTEGER, ModelOut, RequestModel, StageOut, k_field

MAX_K = 50
MAX_PRICE = 1e7


class SearchFilters(RequestModel):
    category: str | None = Field(None, min_length=1, max_length=100, description="Only this category")
    min_price: float | None = Field(None, ge=0, le=MAX_PRICE, allow_inf_nan=False, description="Lowest price")
    max_price: float | None = Field(None, ge=0, le=MAX_PRICE, allow_inf_nan=False, description="Highest price")
    available_only: bool = Field(False, description="Only products in stock")


class SearchRequest(QueryRequest):
    """A search: the text a shopper typed."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"query": "red runing shoes", "k": 10}]})

    query: str = query_field("the shopper")
    k: int = k_field(MAX_K, "products")
    filters: SearchFilters | None = Field(None, description="Category, price range, availability")
    user_id: int | None = Field(
        None, ge=0, le=MAX_ID, strict=True, description=f"The shopper, if known ({STRICT_INTEGER}); not personalised"
    )


class ProductOut(BaseModel):
    product_id: str
    title: str
    brand: str
    category: str | None
    price: float | None
    available: bool = Field(description="In stock")
    score: float = Field(description="The stage-2 ranker's score (LambdaMART: a sigmoid of its ranking score)")
    sources: list[str] = Field(description="What found the product: bm25, semantic")


class QueryOut(BaseModel):
    original: str
    corrected: str = Field(description="After spell correction")
    was_corrected: bool
    showing_results_for: str | None = Field(description='"showing results for ..." when the query was corrected')
    expanded: list[list[str]] = Field(description="Each word with the synonyms searched beside it")
    relaxed: str | None = Field(
        description="The words kept when the whole query matched nothing in the index (when even the last"
        " relaxation, one word, matched nothing: that word)"
    )


class SearchResponse(BaseModel):
    user_id: int | None
    query: QueryOut
    products: list[ProductOut] = Field(description="At most k products, best first; empty when nothing matched")
    models: dict[str, ModelOut]
    stages: dict[str, StageOut]


def router() -> APIRouter:
    routes = APIRouter()

    @routes.post("/query", response_model=SearchResponse, summary="Search the catalogue", responses=ERROR_RESPONSES)
    async def query(body: SearchRequest, request: Request) -> SearchResponse:
        """Understanding -> BM25 + semantic -> fusion -> filters -> stage 1 -> stage 2 -> the page."""
        from systems.search.serving import Filters, SearchService

        service: SearchService = get_service(request, "search")
        filters = Filters(**body.filters.model_dump()) if body.filters is not None else Filters()
        if service.unknown_category(filters.category):
            raise HTTPException(422, f"unknown category {filters.category!r}: one of {sorted(service.categories)}")
        result, stage_ms = service.search(body.query, body.k, filters)
        understood = result.query
        return SearchResponse(
            user_id=body.user_id,
            query=QueryOut(
                original=body.query,
                corrected=understood.text,
                was_corrected=understood.was_corrected,
                showing_results_for=understood.text if understood.was_corrected else None,
                expanded=[list(group) for group in understood.expanded],
                relaxed=" ".join(understood.relaxed) if understood.relaxed is not None else None,
            ),
            products=service.describe(result),
            models={"ranker": ModelOut(name=service.champion.name, version=service.champion.version)},
            stages=stages_out(result.counts, stage_ms),
        )

    return routes
