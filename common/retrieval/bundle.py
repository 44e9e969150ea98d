"""What candidate generation needs at serving time beyond the feature store, registered in MLflow
as `<system>-retrieval`: the two towers and the non-personalised lists (popularity, per segment,
trending) as of the serving clock, the end of the logs."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from common.data.dataset import Schema
from common.retrieval.sources import RankedList, SegmentedRankedList
from common.retrieval.two_tower import TwoTowerModel


@dataclass
class RetrievalBundle:
    tower: TwoTowerModel
    sources: list[RankedList | SegmentedRankedList]
    now: pd.Timestamp  # the serving clock: the world's logs end here, so "now" is not the wall clock
    schema: Schema

    def predict(self, users: pd.DataFrame):
        """pyfunc entry point: user-tower embeddings of `users` (profile columns and history_groups)."""
        return self.tower.user_embeddings(users)
