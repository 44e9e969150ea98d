"""The batch job of chapter 7: "pre-compute PYMK tables for each / active users and store in DB".

The active users (who sent a request or made a friend in the last 7 days, or interacted in the last 14:
the user_network features; the most active first, up to `max_users`) get their list through the
champion's funnel on the graph as of the serving clock; the lists go into the online store as the Feast
view `pymk_lists` (people, scores), which a request reads in one lookup. At a billion users this loop
is the job Ray spreads over a cluster: `make train SYSTEM=pymk WORKERS=n` shares it among Ray Data tasks.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from tqdm import tqdm

from common.features.store import FeatureRepo
from common.models.distributed import map_batches_on_ray
from systems.pymk.features import SERVICES, VIEWS
from systems.pymk.serving import LISTS_VIEW


def active_users(snapshot, config: dict) -> np.ndarray:
    """Node rows of the active users, the most active first."""
    s = snapshot.sides
    recent = np.asarray(s["requests_sent_7d"], float) + np.asarray(s["interactions_14d"], float)
    recent += np.asarray(s["friends_added_7d"], float)
    active = np.flatnonzero(recent > 0)
    order = np.lexsort((active, -recent[active]))
    return active[order][: config["max_users"]]


def precompute_lists(
    snapshot, scorer, config: dict, workers: int | None = None, also: np.ndarray | None = None
) -> pd.DataFrame:
    """One row per active user: the top `k` people and their scores, as of the snapshot. With `workers`, the
    users are shared among that many Ray Data tasks (common/models/distributed.py), each with its own funnel.
    `also`: node rows whose lists are refreshed too (a daily job's users with a list from an earlier day: the
    online store keeps a list until it is overwritten)."""
    rows = active_users(snapshot, config)
    if also is not None:
        rows = np.concatenate([rows, np.setdiff1d(also, rows)])
    compute = ListsOf(snapshot, scorer, config["k"])
    if workers is None:
        lists = compute(pd.DataFrame({"row": rows}))
    else:
        batch = max(1, math.ceil(len(rows) / (4 * workers)))  # a few batches a task: the slow ones even out
        lists = map_batches_on_ray(pd.DataFrame({"row": rows}), compute, batch, concurrency=workers)
    return pd.DataFrame(
        {
            "user_id": snapshot.state.user_ids[rows],
            "event_timestamp": snapshot.state.at,
            "people": pd.Series([list(people) for people in lists["people"]], dtype=object),
            "scores": pd.Series([list(scores) for scores in lists["scores"]], dtype=object),
        }
    )


class ListsOf:
    """Node rows -> the people and scores of each, through the champion's funnel on the snapshot's graph."""

    def __init__(self, snapshot, scorer, k: int):
        self.snapshot, self.scorer, self.k = snapshot, scorer, k

    def __call__(self, rows: pd.DataFrame) -> pd.DataFrame:
        funnel = self.snapshot.funnel.funnel(self.scorer)
        ids = self.snapshot.state.user_ids
        people, scores = [], []
        for row in tqdm(rows["row"].to_numpy(), desc="precomputed lists", leave=False):
            ranked = funnel.recommend(self.snapshot.funnel.request(int(ids[row])), self.k)
            people.append(ids[ranked.rows].tolist())
            scores.append(ranked.scores.astype(float).tolist())
        return pd.DataFrame({"people": pd.Series(people, dtype=object), "scores": pd.Series(scores, dtype=object)})


def store_lists(repo: FeatureRepo, lists: pd.DataFrame, start, end) -> None:
    """The lists as the view `pymk_lists`, loaded into the online store alone (the other views stay)."""
    repo.publish({LISTS_VIEW.name: lists}, [*VIEWS, LISTS_VIEW], SERVICES, start, end, materialize=[LISTS_VIEW.name])
