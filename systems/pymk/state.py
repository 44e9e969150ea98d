"""The social graph as it stood at one time t: what every candidate, feature and label at t reads.

state = GraphState.build(data, t, config["features"])
state.adjacency            friendships formed before t (0/1), `discounted`: each weighted by its age
state.interactions         interactions between each pair in the window before t (counts)
state.excluded             pairs never to recommend: a request pending between them, declined, a block
state.exclude_ids(row)     the ids a user's list must not hold (self, friends, excluded)
state.labels()             the friendships formed in [t, t + 1 day) between pairs eligible at t
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from common.graph.proximity import Neighbourhood
from common.graph.snapshots import rows_in, seconds
from systems.pymk.dataset import SocialData

DAY = pd.Timedelta(days=1)


def _symmetric(n: int, a: np.ndarray, b: np.ndarray, weight=None) -> sp.csr_matrix:
    weight = np.ones(len(a), np.float32) if weight is None else np.asarray(weight, np.float32)
    matrix = sp.csr_matrix((np.concatenate([weight, weight]), (np.concatenate([a, b]), np.concatenate([b, a]))), (n, n))
    matrix.sum_duplicates()
    return matrix


@dataclass
class GraphState:
    at: pd.Timestamp
    user_ids: np.ndarray  # (n,) sorted: node rows
    adjacency: sp.csr_matrix
    discounted: sp.csr_matrix
    interactions: sp.csr_matrix
    excluded: sp.csr_matrix
    degree: np.ndarray
    data: SocialData
    step: pd.Timedelta = DAY  # the labels' window: a day in the world, a year for yearly collaborations

    def __post_init__(self) -> None:
        self.neighbourhood = Neighbourhood(self.adjacency)  # its per-node weights, once per snapshot

    @classmethod
    def build(cls, data: SocialData, at: pd.Timestamp, config: dict, step: pd.Timedelta = DAY) -> GraphState:
        at_s, nodes, n = seconds([at])[0], data.nodes, len(data.users)
        adjacency = data.edges.adjacency(at_s)
        discounted = data.edges.adjacency(at_s, half_life_days=config["mutual_half_life_days"])
        window = pd.Timedelta(days=config["interaction_days"])
        recent = data.interactions[
            (data.interactions["timestamp"] >= at - window) & (data.interactions["timestamp"] < at)
        ]
        interactions = _symmetric(n, nodes.rows(recent["user_id"]), nodes.rows(recent["other_id"]))
        excluded = _excluded(data, at)
        return cls(at, nodes.ids, adjacency, discounted, interactions, excluded, data.edges.degree(at_s), data, step)

    def rows(self, ids) -> np.ndarray:
        """Node rows of user ids; -1 for an id the graph does not know (a new account)."""
        return rows_in(self.user_ids, ids)

    def exclude_ids(self, row: int) -> np.ndarray:
        """Ids a list for user `row` must not hold: the user, friends, pending, declined, blocked."""
        rows = np.concatenate([[row], self.adjacency[row].indices, self.excluded[row].indices])
        return self.user_ids[rows]

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        """Node rows (both directions) of the friendships formed in [at, at + step) between pairs that
        were eligible at `at`: one formed from a request already pending at `at` was not recommendable."""
        start, stop = seconds([self.at, self.at + self.step])
        low, high = self.data.edges.formed_between(start, stop)
        eligible = np.asarray(self.excluded[low, high]).ravel() == 0
        low, high = low[eligible], high[eligible]
        return np.concatenate([low, high]), np.concatenate([high, low])


def _excluded(data: SocialData, at: pd.Timestamp) -> sp.csr_matrix:
    """Pairs with a request sent before `at` not accepted by then (pending, or declined), or a block."""
    nodes, n = data.nodes, len(data.users)
    r = data.requests
    sent = r["sent_timestamp"] < at
    answered = r["answered_timestamp"] < at
    open_or_declined = sent & ~((r["status"] == "accepted") & answered)
    requests = r[open_or_declined.to_numpy()]
    blocks = data.blocks[data.blocks["timestamp"] < at]
    a = np.concatenate([nodes.rows(requests["sender"]), nodes.rows(blocks["user_id"])])
    b = np.concatenate([nodes.rows(requests["recipient"]), nodes.rows(blocks["blocked_id"])])
    matrix = _symmetric(n, a, b)
    matrix.data[:] = 1.0
    return matrix
