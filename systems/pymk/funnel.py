"""The PYMK funnel at a time t (chapter section 7), one object offline and served:

  candidates   friends of friends with their mutual-friend counts (common.retrieval.graph), the people
               the user interacted with lately, and people from the user's school and employer (a new
               user has only these)
  ranking      the pair features (systems.pymk.features) -> the model's P(friendship forms)
  re-ranking   the request excludes the user, friends, pending requests, declined and blocked pairs

The user's and the candidates' features come from `sides(rows)`: offline a frame of every user as of t
(Feast, point in time), served the online store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from common.funnel.catalog import ItemTable
from common.funnel.funnel import Funnel
from common.graph import proximity
from common.graph.snapshots import seconds
from common.models.node_embeddings import NodeEmbeddings
from common.retrieval.graph import FriendsOfFriendsSource, RelationSource, SharedGroupSource
from common.retrieval.sources import RetrievalRequest
from systems.pymk.features import GNN_FEATURE, pair_features
from systems.pymk.state import GraphState

Sides = Callable[[np.ndarray], dict]  # node rows -> each user feature as an array aligned with the rows
NEW_USER = -1  # the request's context for a user not in the graph (yet): no friends, no history


@dataclass(frozen=True)
class PairScorer:
    """P(friendship) of each candidate from the pair features, the GNN's score among them when the model
    reads it."""

    state: GraphState
    sides: Sides
    model: object
    links: NodeEmbeddings | None = None  # the GNN's node embeddings at t, when the model reads its score

    def features(self, request: RetrievalRequest, rows: np.ndarray):
        if request.context == NEW_USER:
            user, candidates = request.attributes["features"], self.sides(rows)  # the profile the request gave
        else:
            both = self.sides(np.concatenate([[request.context], rows]))  # one read: the user and the candidates
            user = {name: values[0] for name, values in both.items()}
            candidates = {name: values[1:] for name, values in both.items()}
        user = {name: np.repeat(value, len(rows)) for name, value in user.items()}
        u = None if request.context == NEW_USER else np.full(len(rows), request.context)
        frame = pair_features(self.state, user, candidates, u, rows)
        if self.links is not None:
            frame[GNN_FEATURE] = 0.0 if u is None else self.links.score(u, rows)
        return frame

    def __call__(self, request: RetrievalRequest, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros(0)
        return self.model.predict_proba(self.features(request, rows))[:, 1]


@dataclass(frozen=True)
class GraphScorer:
    """A neighbourhood score of (user, candidate) on the graph at t: the baselines (common neighbours,
    Adamic-Adar)."""

    state: GraphState
    score: Callable

    def __call__(self, request: RetrievalRequest, rows: np.ndarray) -> np.ndarray:
        if request.context == NEW_USER:
            return np.zeros(len(rows))
        return self.score(self.state.adjacency, np.full(len(rows), request.context), rows)


@dataclass(frozen=True)
class EmbeddingScorer:
    """The GNN alone: P(edge) from the two node embeddings (the chapter's model without the ranker)."""

    links: NodeEmbeddings

    def __call__(self, request: RetrievalRequest, rows: np.ndarray) -> np.ndarray:
        if request.context == NEW_USER:
            return np.zeros(len(rows))
        return self.links.score(np.full(len(rows), request.context), rows)


@dataclass(frozen=True)
class VectorScorer:
    """One precomputed score vector per requesting user (personalised PageRank from the user)."""

    vectors: dict[int, np.ndarray]  # user row -> (n,) scores

    def __call__(self, request: RetrievalRequest, rows: np.ndarray) -> np.ndarray:
        vector = self.vectors.get(request.context)
        return np.zeros(len(rows)) if vector is None else vector[rows]


@dataclass
class PymkFunnel:
    """The candidate sources and catalogue at t; `funnel(scorer)` ranks with any scorer."""

    state: GraphState
    config: dict  # the serving section

    def __post_init__(self) -> None:
        c, state = self.config["candidates"], self.state
        self.catalog = ItemTable(state.user_ids, {})
        profile = state.data.users
        self.sources = [
            FriendsOfFriendsSource(state.user_ids, state.adjacency),
            RelationSource(state.user_ids, state.interactions, "interacted"),
        ]
        for column, name in (("school_id", "same_school"), ("employer_id", "same_employer")):
            if column in profile and (profile[column] >= 0).any():
                self.sources.append(
                    SharedGroupSource.build(
                        state.user_ids,
                        profile[column].to_numpy(),
                        state.degree,
                        column,
                        c["groups_below_friends"],
                        name,
                    )
                )

    def request(self, user_id: int, attributes: dict | None = None) -> RetrievalRequest:
        """A known user's request at t; an unknown one (a new account) carries its attributes instead."""
        row = int(self.state.rows([user_id])[0])
        known = row >= 0
        profile = self.state.data.users
        if known:
            groups = {c: int(profile[c].iat[row]) for c in ("school_id", "employer_id") if c in profile}
            attributes = {**groups, "friend_count": int(self.state.degree[row])}
            exclude = self.state.exclude_ids(row)
        else:
            attributes, exclude = {"friend_count": 0, **(attributes or {})}, np.asarray([user_id], np.int64)
        attributes = {k: v for k, v in attributes.items() if not isinstance(v, int) or v >= 0}
        return RetrievalRequest(
            int(user_id),
            attributes=attributes,
            exclude=exclude,
            now_s=seconds([self.state.at])[0],
            context=row if known else NEW_USER,
        )

    def funnel(self, scorer) -> Funnel:
        return Funnel(self.catalog, self.sources, scorer, self.config)

    def baselines(self) -> dict[str, Funnel]:
        return {
            "common neighbours": self.funnel(GraphScorer(self.state, proximity.common_neighbours)),
            "Adamic-Adar": self.funnel(GraphScorer(self.state, proximity.adamic_adar)),
        }
