"""What the search endpoints share: the query a request carries (a search box's text, checked to hold a
word) and the per-stage timings and counts of a response."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from common.serving.schemas import RequestModel, StageOut

MAX_QUERY = 200  # characters: a search box, not a document


def query_field(who: str) -> Any:
    return Field(
        min_length=1,
        max_length=MAX_QUERY,
        description=f"What {who} typed, 1 to {MAX_QUERY} characters with at least one letter or digit",
    )


class QueryRequest(RequestModel):
    """A request with a `query`; a subclass may redeclare the field (its description), the check stays."""

    query: str = query_field("the searcher")

    @field_validator("query")
    @classmethod
    def has_words(cls, query: str) -> str:
        from common.search.query import tokenise

        if not tokenise(query):
            raise ValueError("the query has no letter or digit to search for")
        return query


def stages_out(counts: dict[str, dict[str, int]], stage_ms: dict[str, float]) -> dict[str, StageOut]:
    """Each timed stage's milliseconds with the funnel's counts in and out of it."""
    return {name: StageOut(milliseconds=ms, counts=counts.get(name, {})) for name, ms in stage_ms.items()}
