"""The graph, features and examples at one snapshot time t (chapter section 6: "create a snapshot at time
t, compute node and edge features, create labels using the snapshot at t + 1").

    snapshot = take_snapshot(data, repo, config, t)     # GraphState, the funnel, every user's features
    day = day_examples(snapshot, requesting_users(snapshot, n, rng))   # candidates, pair features, labels
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.features.store import FeatureRepo
from common.graph.snapshots import seconds
from common.models.gnn import LinkGraph
from systems.pymk.dataset import SocialData
from systems.pymk.features import pair_features, side_columns, user_frame
from systems.pymk.funnel import PymkFunnel
from systems.pymk.state import GraphState

FEW_FRIENDS = 5  # the chapter's hard case: users with fewer friends than this, evaluated apart
CATEGORIES = ("school_id", "employer_id", "city", "industry")


@dataclass
class Snapshot:
    """Everything read at one snapshot time t."""

    state: GraphState
    funnel: PymkFunnel
    sides: dict[str, np.ndarray]  # every user's features as of t (Feast), by node row
    graph: LinkGraph  # the GNN's input at t

    def gather(self, rows: np.ndarray) -> dict:
        return {name: values[rows] for name, values in self.sides.items()}


def node_features(sides: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The GNN's node features: log-scaled network counts, activity, account age, age; and the background
    (school, employer, city, industry) as categories, each learned as an embedding by the model."""
    counts = ("friends", "friends_added_7d", "requests_sent_7d", "requests_received_7d", "interactions_14d",
              "account_days", "activity")  # fmt: skip
    numeric = [np.log1p(np.maximum(np.nan_to_num(np.asarray(sides[c], float)), 0)) for c in counts]
    numeric.append(np.nan_to_num(np.asarray(sides["age"], float)) / 50.0)
    categories = np.stack([np.asarray(sides[c], np.int64) for c in CATEGORIES], axis=1)
    return np.stack(numeric, axis=1).astype(np.float32), categories


def take_snapshot(data: SocialData, repo: FeatureRepo, config: dict, at: pd.Timestamp) -> Snapshot:
    state = GraphState.build(data, at, config["features"], pd.Timedelta(days=config["periods"]["step_days"]))
    frame = user_frame(repo, state.user_ids, at)
    sides = side_columns(frame, seconds([at])[0])
    numeric, categories = node_features(sides)
    graph = LinkGraph(numeric, data.edges.edges_at(seconds([at])[0]), categories)
    return Snapshot(state, PymkFunnel(state, config["serving"]), sides, graph)


def requesting_users(snapshot: Snapshot, n: int, n_few: int, rng: np.random.Generator) -> np.ndarray:
    """A seeded sample of the users who connect with someone eligible at t (node rows, sorted): n of
    them, plus up to n_few more among those with fewer than FEW_FRIENDS friends (a segment too rare
    in a plain sample to measure)."""
    u, _ = snapshot.state.labels()
    users = np.unique(u)
    chosen = rng.choice(users, size=min(n, len(users)), replace=False)
    few = np.setdiff1d(users[snapshot.state.degree[users] < FEW_FRIENDS], chosen)
    extra = rng.choice(few, size=min(n_few, len(few)), replace=False)
    return np.sort(np.concatenate([chosen, extra]))


@dataclass
class DayExamples:
    rows: list[int]  # the requesting users' node rows
    requests: list
    candidates: list[np.ndarray]  # node rows per request
    merged: list
    X: pd.DataFrame
    y: np.ndarray
    pairs: tuple[np.ndarray, np.ndarray]  # (user rows, candidate rows), aligned with X


def day_examples(snapshot: Snapshot, users: np.ndarray) -> DayExamples:
    """Each user's candidates as the funnel finds them, their pair features (all the day's pairs in one
    pass: the served scorer computes the same per request), and whether they connected."""
    labels_u, labels_v = snapshot.state.labels()
    formed = set(zip(labels_u.tolist(), labels_v.tolist(), strict=True))
    generate = snapshot.funnel.funnel(None)
    requests, candidates, merged = [], [], []
    for row in users:
        request = snapshot.funnel.request(int(snapshot.state.user_ids[row]))
        slate, found, _ = generate.candidates(request)
        requests.append(request)
        candidates.append(slate.rows)
        merged.append(found)
    u = np.repeat(np.asarray(users, np.int64), [len(c) for c in candidates])
    v = np.concatenate(candidates) if candidates else np.zeros(0, np.int64)
    X = pair_features(snapshot.state, snapshot.gather(u), snapshot.gather(v), u, v)
    y = np.fromiter(((a, b) in formed for a, b in zip(u.tolist(), v.tolist(), strict=True)), bool, len(u))
    return DayExamples(list(users), requests, candidates, merged, X, y.astype(np.int64), (u, v))
