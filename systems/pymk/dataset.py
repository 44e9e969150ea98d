"""The social network's tables (the world's or a public edge list's) as the pipeline reads them.

  users         user_id, profile (age, gender, city, lat, lng, school_id, employer_id, industry, skills,
                activity) and created_timestamp; a public edge list may have none of the profile
  edges         src, dst, timestamp: one row per friendship, when it formed
  requests      sender, recipient, sent_timestamp, status (accepted / declined / pending), answered_timestamp
  interactions  user_id, other_id, timestamp, kind (message / like)
  blocks        user_id, blocked_id, timestamp
A public edge list carries only edges (and, optionally, the profile): the other tables are then empty
and every feature built from them reads 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from common.data.atomic import replaced_atomically
from common.graph.snapshots import EdgeLog, NodeIndex

PROFILE_CATEGORICAL = ("gender", "city", "school_id", "employer_id", "industry")
PROFILE_NUMERIC = ("age", "lat", "lng", "activity")
EMPTY = {
    "requests": {
        "sender": "int64",
        "recipient": "int64",
        "sent_timestamp": "datetime64[ns, UTC]",
        "status": "object",
        "answered_timestamp": "datetime64[ns, UTC]",
    },
    "interactions": {"user_id": "int64", "other_id": "int64", "timestamp": "datetime64[ns, UTC]", "kind": "object"},
    "blocks": {"user_id": "int64", "blocked_id": "int64", "timestamp": "datetime64[ns, UTC]"},
}


RAW_TABLES = ("users", "edges", "requests", "interactions", "blocks")


def empty_table(name: str) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in EMPTY[name].items()})


@dataclass(frozen=True)
class SocialData:
    users: pd.DataFrame  # sorted by user_id: row i is node i
    edges: EdgeLog
    requests: pd.DataFrame
    interactions: pd.DataFrame
    blocks: pd.DataFrame
    start: pd.Timestamp  # midnight of the first day the logs cover (edges before it: the initial graph)
    end: pd.Timestamp  # midnight after the last edge
    # The world's truth, None on public data: (user ids, other ids, day) -> P(friendship forms that day).
    oracle: Callable[[np.ndarray, np.ndarray, pd.Timestamp], np.ndarray] | None = None

    @cached_property
    def nodes(self) -> NodeIndex:
        return NodeIndex(self.users["user_id"])

    def without_logs(self) -> SocialData:
        """The same users without the edge, request and interaction logs (hundreds of MB at 100k users),
        once the graph's matrices are built from them."""
        none = np.zeros(0, np.int64)
        return replace(
            self,
            edges=EdgeLog(self.edges.n, none, none, np.zeros(0)),
            requests=empty_table("requests"),
            interactions=empty_table("interactions"),
        )

    @classmethod
    def from_tables(cls, tables, oracle=None) -> SocialData:
        """From a PymkTables (systems.pymk.world) or the public reader's tables of the same shape."""
        users = tables.users.sort_values("user_id").reset_index(drop=True)
        edges = EdgeLog.from_frame(tables.edges, NodeIndex(users["user_id"]))
        last = pd.Timestamp(edges.formed_s.max(), unit="s", tz="UTC")
        return cls(
            users,
            edges,
            tables.requests,
            tables.interactions,
            tables.blocks,
            tables.start,
            last.floor("D") + pd.Timedelta(days=1),
            oracle,
        )


@dataclass(frozen=True)
class Tables:
    """The tables in the shape systems.pymk.world.PymkTables has (the public reader returns one too)."""

    users: pd.DataFrame
    edges: pd.DataFrame
    requests: pd.DataFrame
    interactions: pd.DataFrame
    blocks: pd.DataFrame
    start: pd.Timestamp


def write_raw(data: SocialData, raw: Path) -> None:
    """The tables as parquet (what serving reads back; the oracle stays behind)."""
    raw.mkdir(parents=True, exist_ok=True)
    ids = data.users["user_id"].to_numpy()
    edges = pd.DataFrame(
        {
            "src": ids[data.edges.src],
            "dst": ids[data.edges.dst],
            "timestamp": pd.to_datetime(data.edges.formed_s, unit="s", utc=True),
        }
    )
    tables = {
        "users": data.users,
        "edges": edges,
        "requests": data.requests,
        "interactions": data.interactions,
        "blocks": data.blocks,
        "start": pd.DataFrame({"start": [data.start]}),
    }
    for name, table in tables.items():
        with replaced_atomically(raw / f"{name}.parquet") as temporary:
            table.to_parquet(temporary, index=False)


# What the served graph is built from (GraphState, the candidate sources): the rest of the tables stays on
# disk, which keeps a server process's memory down.
SERVING_COLUMNS = {
    "users": ["user_id", "school_id", "employer_id"],
    "edges": ["src", "dst", "timestamp"],
    "requests": ["sender", "recipient", "sent_timestamp", "status", "answered_timestamp"],
    "interactions": ["user_id", "other_id", "timestamp"],
    "blocks": ["user_id", "blocked_id", "timestamp"],
}


def read_raw(raw: Path) -> SocialData:
    """The tables the last training wrote, the columns serving reads (SERVING_COLUMNS)."""
    tables = {}
    for name, columns in SERVING_COLUMNS.items():
        path = raw / f"{name}.parquet"
        present = set(pq.read_schema(path).names)  # a public edge list's users may lack school and employer
        tables[name] = pd.read_parquet(path, columns=[c for c in columns if c in present])
    start = pd.Timestamp(pd.read_parquet(raw / "start.parquet")["start"].iloc[0])
    return SocialData.from_tables(Tables(**tables, start=start))
