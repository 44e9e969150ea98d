"""Features of people you may know (chapter section 5), in Feast and from the graph.

In Feast (one row per user, read as of a snapshot for training, online at serving):
  user_profile   demographics and background: age, gender, city and coordinates, school, employer,
                 industry, activity, account creation
  user_network   as of each snapshot day: friends, friends added in 7 days, requests sent / received
                 in 7 days, the share of received requests accepted, interactions in 14 days
From the graph at the snapshot (common.graph.proximity, on GraphState's matrices), per (user, candidate):
  mutual friends (plain and time discounted), Adamic-Adar, resource allocation, Jaccard, interactions
  between the two; school / employer / industry / city match, distance, age gap, account ages, both
  users' network features, and the GNN's score when the model reads it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from common.features.views import View
from common.graph import proximity
from common.graph.snapshots import seconds
from common.retrieval.geo import haversine_km
from systems.pymk.dataset import PROFILE_CATEGORICAL, PROFILE_NUMERIC, SocialData
from systems.pymk.state import GraphState

DAY = pd.Timedelta(days=1)
VIEWS = [View("user_profile", "user_id"), View("user_network", "user_id")]
USER_VIEWS = ("user_profile", "user_network")
SERVICES = {"pymk_ranker": {"user_profile": None, "user_network": None}}
GRAPH = ("mutual_friends", "mutual_discounted", "adamic_adar", "resource_allocation", "jaccard", "pair_interactions")
PAIR = (
    *GRAPH,
    "same_school",
    "same_employer",
    "same_industry",
    "same_city",
    "distance_km",
    "age_gap",
)
SIDES = (
    "friends",
    "friends_added_7d",
    "requests_sent_7d",
    "requests_received_7d",
    "accept_rate",
    "interactions_14d",
    "activity",
    "account_days",
)
FEATURES = (*PAIR, *(f"user_{c}" for c in SIDES), *(f"candidate_{c}" for c in SIDES))
GNN_FEATURE = "gnn_score"


def profile_table(data: SocialData) -> pd.DataFrame:
    """Static rows, valid from the account's creation; a missing attribute reads -1 (categorical) or NaN."""
    users = data.users
    table = pd.DataFrame({"user_id": users["user_id"].to_numpy(np.int64)})
    for column in PROFILE_CATEGORICAL:
        values = users[column] if column in users else pd.Series(-1, index=users.index)
        table[column] = pd.factorize(values)[0].astype(np.int64) if values.dtype == object else values.fillna(-1)
    for column in PROFILE_NUMERIC:
        table[column] = users[column].astype(float) if column in users else np.nan
    created = users["created_timestamp"] if "created_timestamp" in users else pd.Series(data.start, index=users.index)
    table["created_s"] = seconds(created)
    table["event_timestamp"] = created.to_numpy()
    return table.astype({c: np.int64 for c in PROFILE_CATEGORICAL})


def network_table(data: SocialData, days: list[pd.Timestamp]) -> pd.DataFrame:
    """Each user's network features as of each of `days` (midnight): counts of what happened before."""
    frames = []
    n, nodes = len(data.users), data.nodes
    r, i = data.requests, data.interactions
    for day in days:
        at_s, week_s = seconds([day, day - 7 * DAY])
        sent = _between(r, "sent_timestamp", day - 7 * DAY, day)
        received_before = r[r["answered_timestamp"] < day]
        accepted = received_before["status"] == "accepted"
        talk = _between(i, "timestamp", day - 14 * DAY, day)
        answered = np.bincount(nodes.rows(received_before["recipient"]), minlength=n)
        yes = np.bincount(nodes.rows(received_before.loc[accepted, "recipient"]), minlength=n)
        frames.append(
            pd.DataFrame(
                {
                    "user_id": nodes.ids,
                    "event_timestamp": day,
                    "friends": data.edges.degree(at_s),
                    "friends_added_7d": data.edges.degree(at_s) - data.edges.degree(week_s),
                    "requests_sent_7d": np.bincount(nodes.rows(sent["sender"]), minlength=n),
                    "requests_received_7d": np.bincount(nodes.rows(sent["recipient"]), minlength=n),
                    "accept_rate": (yes + 1.0) / (answered + 2.0),  # smoothed: a user with no answers reads 0.5
                    "interactions_14d": np.bincount(
                        np.concatenate([nodes.rows(talk["user_id"]), nodes.rows(talk["other_id"])]), minlength=n
                    ),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _between(frame: pd.DataFrame, column: str, start, stop) -> pd.DataFrame:
    return frame[(frame[column] >= start) & (frame[column] < stop)]


def feature_tables(data: SocialData, days: list[pd.Timestamp]) -> dict[str, pd.DataFrame]:
    return {"user_profile": profile_table(data), "user_network": network_table(data, days)}


def user_frame(repo, user_ids: np.ndarray, at: pd.Timestamp) -> pd.DataFrame:
    """Every user feature as of `at` (Feast point-in-time join), one row per id in order."""
    rows = pd.DataFrame({"user_id": np.asarray(user_ids, dtype=np.int64), "event_timestamp": at})
    return repo.as_of(USER_VIEWS, rows)


def side_columns(users: pd.DataFrame, at_s: float) -> dict[str, np.ndarray]:
    """A user frame's columns as arrays, with the account's age in days at `at_s`; an unknown category
    reads -1."""
    columns = {c: users[c].to_numpy() for c in users.columns if c not in ("user_id", "event_timestamp")}
    for column in PROFILE_CATEGORICAL:  # no row yet (an account created later): unknown, -1
        columns[column] = pd.to_numeric(users[column]).fillna(-1).to_numpy(np.int64)
    columns["account_days"] = (at_s - columns["created_s"].astype(float)) / 86_400.0
    return columns


def graph_features(state: GraphState, u: np.ndarray | None, v: np.ndarray) -> dict[str, np.ndarray]:
    """The pairs' neighbourhood on the graph at t; all 0 for a user not in the graph (u None)."""
    if u is None:
        return {name: np.zeros(len(v)) for name in GRAPH}
    structure = state.neighbourhood.scores(u, v)
    return {
        "mutual_friends": structure["common_neighbours"],
        "mutual_discounted": proximity.common_neighbours(state.discounted, u, v),
        "adamic_adar": structure["adamic_adar"],
        "resource_allocation": structure["resource_allocation"],
        "jaccard": structure["jaccard"],
        "pair_interactions": np.asarray(state.interactions[u, v]).ravel(),
    }


def pair_features(state: GraphState, user: dict, candidates: dict, u: np.ndarray | None, v: np.ndarray):
    """One row per (u[i], v[i]) node-row pair: `user` and `candidates` hold each pair's side columns
    (side_columns, aligned with the pairs); u is None for a user not in the graph."""

    def same(column: str) -> np.ndarray:
        a, b = np.asarray(user[column]), np.asarray(candidates[column])
        return ((a == b) & (a >= 0)).astype(np.float32)

    columns = {
        **graph_features(state, u, v),
        "same_school": same("school_id"),
        "same_employer": same("employer_id"),
        "same_industry": same("industry"),
        "same_city": same("city"),
        "distance_km": haversine_km(user["lat"], user["lng"], candidates["lat"], candidates["lng"]),
        "age_gap": np.abs(np.asarray(user["age"], float) - np.asarray(candidates["age"], float)),
    }
    for column in SIDES:
        columns[f"user_{column}"] = np.asarray(user[column], dtype=float)
        columns[f"candidate_{column}"] = np.asarray(candidates[column], dtype=float)
    return pd.DataFrame(columns)
