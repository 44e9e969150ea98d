"""Schemathesis against an app's own OpenAPI schema: for every operation, requests generated from the schema
(valid ones, and ones the schema refuses), each response checked by schemathesis: never a server error, its
status code documented, its body conforming to the documented schema. Bounded and derandomised, so a run is
the same run in CI. The systems' end-to-end tests call it on their trained app; the hand-written walk of
tests/common/serving/openapi_walk.py checks the refusals' wording besides.

What a schema cannot say:
  * JSON Schema counts 3.0 as an integer, and the endpoints refuse it (common/serving/schemas.py: strict, as
    the fields' descriptions say), so bodies holding an integral float are not generated; the walk checks they
    are refused.
  * A body the schema accepts may still be refused, with a 422 and the reason, by a check no schema states: an
    id the served catalogue does not hold (a detail in words), bytes that are not an image, one of two fields
    but not both (a validator's value_error); and a path may name a resource that does not exist (404).
    Schemathesis's own acceptance check would call those failures; `only_unstatable_refusals` replaces it and
    still fails on any type, bound or field error."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

MAX_EXAMPLES = 25  # per operation and mode: a few seconds a system


def fuzz_every_operation(app, max_examples: int = MAX_EXAMPLES) -> list[str]:
    """Fuzz every operation of the (started) ASGI app; the operations fuzzed. Raises on the first failing
    check, with the request that failed it."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.hook("filter_body")(lambda context, body: not _holds_integral_float(body))
    fuzzed = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in GenerationMode:  # requests the schema accepts, and requests it refuses

            @given(case=operation.as_strategy(mode))
            @settings(
                max_examples=max_examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case):
                case.call_and_validate(
                    excluded_checks=[positive_data_acceptance], additional_checks=[only_unstatable_refusals]
                )

            try:
                check()
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise
                # An operation without a body or parameters (GET /healthz): no request breaks its schema.
        fuzzed.append(f"{operation.method.upper()} {operation.path}")
    return fuzzed


def only_unstatable_refusals(ctx, response, case) -> None:
    """A body the schema accepts is answered, or refused only by what the schema cannot state (above)."""
    if not case.meta.generation.mode.is_positive or response.status_code < 400 or response.status_code == 404:
        return  # answered, or the resource a path names does not exist (a thumbnail's image id)
    detail = response.json().get("detail") if response.status_code == 422 else None
    unstatable = isinstance(detail, str) or (
        isinstance(detail, list) and detail and all(error.get("type") == "value_error" for error in detail)
    )
    assert unstatable, f"a body the schema accepts was refused: {response.status_code} {response.text}"


def _holds_integral_float(value: Any) -> bool:
    """Whether a JSON value holds a float with no fractional part (3.0) anywhere."""
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, dict):
        return any(_holds_integral_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_integral_float(v) for v in value)
    return False
