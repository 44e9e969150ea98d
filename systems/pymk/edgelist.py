"""A public time-stamped edge list as the PYMK tables: `make train SYSTEM=pymk DATA=/path`.

    /path/edges.csv   src,dst,timestamp   one row per friendship (or interaction edge) and when it formed:
                                          SNAP's temporal networks (CollegeMsg, email-Eu-core-temporal,
                                          sx-*) and OGB's ogbl-collab (year per edge) write this way;
                                          timestamp in unix seconds, or any date pandas parses
    /path/nodes.csv   user_id,...         optional: node attributes, any of age, gender, city, lat, lng,
                                          school_id, employer_id, industry, activity, created_timestamp

Edges are undirected (a pair listed again, or reversed, is one friendship formed at its first time),
self loops are dropped. Nodes without a row in nodes.csv get empty attributes. There are no requests,
interactions or blocks in such data: those tables are empty and the features built from them read 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from systems.pymk.dataset import Tables, empty_table

EDGES = "edges.csv"
NODES = "nodes.csv"


def _timestamps(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values.astype(np.int64), unit="s", utc=True)
    return pd.to_datetime(values, utc=True)


def read(path: str | Path) -> Tables:
    path = Path(path)
    if not (path / EDGES).exists():
        raise FileNotFoundError(f"no {EDGES} in {path}: expected a src,dst,timestamp CSV")
    edges = pd.read_csv(path / EDGES)
    missing = {"src", "dst", "timestamp"} - set(edges.columns)
    if missing:
        raise ValueError(f"{path / EDGES} lacks the columns {sorted(missing)}")
    edges = pd.DataFrame(
        {
            "src": edges["src"].astype(np.int64),
            "dst": edges["dst"].astype(np.int64),
            "timestamp": _timestamps(edges["timestamp"]),
        }
    )
    ids = np.unique(np.concatenate([edges["src"], edges["dst"]]))
    users = pd.DataFrame({"user_id": ids})
    if (path / NODES).exists():
        nodes = pd.read_csv(path / NODES)
        if "created_timestamp" in nodes:
            nodes["created_timestamp"] = _timestamps(nodes["created_timestamp"])
        users = users.merge(nodes, on="user_id", how="left")
    if "created_timestamp" not in users:  # a node exists from its first edge
        ends = [edges[[end, "timestamp"]].set_axis(["user_id", "t"], axis=1) for end in ("src", "dst")]
        users["created_timestamp"] = users["user_id"].map(pd.concat(ends).groupby("user_id")["t"].min())
    start = edges["timestamp"].min().floor("D")
    return Tables(users, edges, empty_table("requests"), empty_table("interactions"), empty_table("blocks"), start)


def write(tables, path: str | Path) -> None:
    """The world's tables in the public format (edges.csv in unix seconds, nodes.csv): fixtures."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    edges = tables.edges.assign(timestamp=tables.edges["timestamp"].astype("int64") // 10**9)
    edges[["src", "dst", "timestamp"]].to_csv(path / EDGES, index=False)
    columns = [
        c for c in ("user_id", "age", "gender", "city", "school_id", "employer_id", "industry") if c in tables.users
    ]
    tables.users[columns].to_csv(path / NODES, index=False)
