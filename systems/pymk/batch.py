"""The batch job of chapter 7: "pre-compute PYMK tables for each / active users and store in DB".

The active users (who sent a request or made a friend in the last 7 days, or interacted in the last 14:
the user_network features; the most active first, up to `max_users`) get their list through the
champion's funnel on the graph as of the serving clock; the lists go into the online store as the Feast
view `pymk_lists` (people, scores), which a request reads in one lookup. At a billion users this loop
is the job Ray spreads over a cluster (issue 12); here it runs in process.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm import tqdm

from common.features.store import FeatureRepo
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


def precompute_lists(snapshot, scorer, config: dict) -> pd.DataFrame:
    """One row per active user: the top `k` people and their scores, as of the snapshot."""
    funnel = snapshot.funnel.funnel(scorer)
    rows = active_users(snapshot, config)
    people, scores = [], []
    for row in tqdm(rows, desc="precomputed lists", leave=False):
        request = snapshot.funnel.request(int(snapshot.state.user_ids[row]))
        ranked = funnel.recommend(request, config["k"])
        people.append(snapshot.state.user_ids[ranked.rows].tolist())
        scores.append(ranked.scores.astype(float).tolist())
    return pd.DataFrame(
        {
            "user_id": snapshot.state.user_ids[rows],
            "event_timestamp": snapshot.state.at,
            "people": pd.Series(people, dtype=object),
            "scores": pd.Series(scores, dtype=object),
        }
    )


def store_lists(repo: FeatureRepo, lists: pd.DataFrame, start, end) -> None:
    """The lists as the view `pymk_lists`, loaded into the online store alone (the other views stay)."""
    repo.publish({LISTS_VIEW.name: lists}, [*VIEWS, LISTS_VIEW], SERVICES, start, end, materialize=[LISTS_VIEW.name])
