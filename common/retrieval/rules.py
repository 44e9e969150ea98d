"""Rule-based candidate sources: items whose own criteria admit the user, with no model at all
(ads' targeting; later events' location and time windows).

    source = TargetingSource.build(item_ids, {"gender": (["female", "male"], ads["target_genders"])})
    source.retrieve(RetrievalRequest(user_id, attributes={"gender": "female"}), k)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from common.retrieval.sources import RetrievalRequest


@dataclass(frozen=True)
class TargetingSource:
    """For each user attribute, every item lists the values it admits. An item is a candidate when it
    admits each of the user's values; an unknown value (a new user) only matches items that admit
    every value of that attribute."""

    item_ids: np.ndarray  # (n,) in catalogue order
    criteria: Mapping[str, tuple[list[str], np.ndarray]]  # attribute -> (its values, (n, n_values) bool)
    name: str = "targeting"

    @classmethod
    def build(cls, item_ids: np.ndarray, criteria: Mapping[str, tuple[list[str], Sequence]]) -> TargetingSource:
        """criteria: attribute -> (its values, per item the values it admits)."""
        matrices = {
            attribute: (list(values), np.array([_admits(values, set(admitted)) for admitted in per_item]))
            for attribute, (values, per_item) in criteria.items()
        }
        return cls(np.asarray(item_ids, dtype=np.int64), matrices)

    def eligible(self, attributes: Mapping[str, str]) -> np.ndarray:
        """(n,) bool: which items admit the user."""
        keep = np.ones(len(self.item_ids), dtype=bool)
        for attribute, (values, admits) in self.criteria.items():
            value = attributes.get(attribute)
            keep &= admits[:, values.index(value)] if value in values else admits.all(axis=1)
        return keep

    def retrieve(self, request: RetrievalRequest, k: int) -> np.ndarray:
        return self.item_ids[self.eligible(request.attributes)][:k]


def _admits(values: Sequence[str], admitted: set) -> list[bool]:
    return [value in admitted for value in values]
