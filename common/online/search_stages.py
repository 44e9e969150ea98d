"""Policies the searches' simulators put in a search funnel's ranking stage (common/search/funnel.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.search.funnel import Candidates


@dataclass
class RandomStage:
    """A random score for each candidate, every candidate kept: a ranker that knows nothing (the `random`
    policy, which the oracle must beat)."""

    rng: np.random.Generator
    keep: int
    name: str = "random"

    def score(self, candidates: Candidates) -> np.ndarray:
        return self.rng.random(len(candidates.rows))
