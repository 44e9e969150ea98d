"""Response parts every endpoint shares: the model versions that answered and the per-stage timings."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ModelOut(BaseModel):
    name: str
    version: str


class StageOut(BaseModel):
    milliseconds: float
    counts: dict[str, int] = Field(default_factory=dict, description="Candidates in and out of the stage")


def stages_out(stage_ms: dict[str, float], counts: dict[str, dict[str, int]]) -> dict[str, StageOut]:
    return {name: StageOut(milliseconds=ms, counts=counts.get(name, {})) for name, ms in stage_ms.items()}
