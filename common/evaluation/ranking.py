"""Offline evaluation of a recommendation funnel, stage by stage, on users as of the start of the
test period:

  candidates   recall@k of each source and of their merge against each user's relevant items
  final list   precision@k, MAP@k, nDCG@k, genre diversity and catalogue coverage of the served
               funnel (per ranker), of the merge order without a ranker, of popularity alone,
               and of the oracle's own ranking

Relevant items: on a synthetic world, the oracle's top `relevant_per_user` items at the test start
(among those the user has not engaged with), with nDCG gains the true relevance; on real data, the
user's positives during the test period, with binary gains.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")  # no screen here; figures go to MLflow as files
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from common.data.dataset import Dataset
from common.evaluation.metrics import (
    average_precision,
    catalog_coverage,
    intra_list_diversity,
    ndcg_at_k,
    precision_at_k,
)
from common.evaluation.retrieval import MERGED, recall_by_source
from common.funnel.funnel import Funnel
from common.retrieval.sources import RetrievalRequest, merge_candidates


def relevant_items(
    data: Dataset, user_ids: np.ndarray, as_of: pd.Timestamp, until: pd.Timestamp, n: int
) -> tuple[dict[int, np.ndarray], dict[int, dict[int, float]]]:
    """(relevant item ids per user, nDCG gains per user) at `as_of`; on real data, the positives of
    [as_of, until) (never later ones: the validation evaluation must not see the test days)."""
    before = data.events[(data.events["event_timestamp"] < as_of) & (data.events["engaged"] == 1)]
    if data.oracle is None:
        times = data.events["event_timestamp"]
        after = data.events[(times >= as_of) & (times < until) & (data.events["positive"] == 1)]
        by_user = {int(u): np.unique(group.to_numpy()) for u, group in after.groupby("user_id")["item_id"]}
        relevant = {int(u): by_user.get(int(u), np.zeros(0, np.int64)) for u in user_ids}
        return relevant, {u: dict.fromkeys(ids.tolist(), 1.0) for u, ids in relevant.items()}
    exclude = before[before["user_id"].isin(user_ids)][["user_id", "item_id"]]
    top = data.oracle.top_relevant(user_ids, n, as_of, exclude)
    relevant = {int(u): np.asarray(top.get(int(u), []), dtype=np.int64) for u in user_ids}
    return relevant, {}


def oracle_gains(data: Dataset, lists: Mapping[int, np.ndarray], as_of: pd.Timestamp) -> dict[int, dict[int, float]]:
    """True relevance of every listed item, per user (the oracle's list included, so the ideal DCG is known)."""
    users = np.concatenate([np.full(len(ids), u) for u, ids in lists.items()]).astype(np.int64)
    items = np.concatenate(list(lists.values())).astype(np.int64)
    relevance = data.oracle.relevance(users, items, as_of)
    gains: dict[int, dict[int, float]] = {}
    for user, item, value in zip(users.tolist(), items.tolist(), relevance.tolist(), strict=True):
        gains.setdefault(user, {})[item] = value
    return gains


def candidate_recall(
    funnel: Funnel, requests: list[RetrievalRequest], relevant: Mapping[int, np.ndarray], ks: tuple[int, ...]
) -> pd.DataFrame:
    """Recall@k of each source and of the merge (the merge's first k), the request's excluded items
    (seen) left out."""
    merged = {
        request.user_id: merge_candidates(request, funnel.sources, max(ks), exclude=request.exclude)
        for request in requests
    }
    return recall_by_source(merged, relevant, ks)


def list_metrics(
    name: str,
    lists: Mapping[int, np.ndarray],
    relevant: Mapping[int, np.ndarray],
    gains: Mapping[int, Mapping[int, float]],
    group_of: Mapping[int, str],
    catalog_size: int,
    k: int,
) -> dict:
    users = [u for u in lists if len(relevant.get(u, ())) > 0]
    ranked = [lists[u].tolist() for u in users]
    return {
        "list": name,
        f"precision@{k}": float(
            np.mean([precision_at_k(r, set(relevant[u].tolist()), k) for r, u in zip(ranked, users, strict=True)])
        ),
        f"map@{k}": float(
            np.mean([average_precision(r, set(relevant[u].tolist()), k) for r, u in zip(ranked, users, strict=True)])
        ),
        f"ndcg@{k}": float(np.mean([ndcg_at_k(r, gains.get(u, {}), k) for r, u in zip(ranked, users, strict=True)])),
        "diversity": float(np.mean([intra_list_diversity(r[:k], group_of) for r in ranked])),
        "coverage": catalog_coverage([r[:k] for r in ranked], catalog_size),
        "users": len(users),
    }


def recall_curve_figure(curve: pd.DataFrame):
    """Recall@k against k (log scale), one line per source and one for their merge."""
    ks = [int(column.split("@")[1]) for column in curve.columns if column.startswith("recall@")]
    figure, axis = plt.subplots(figsize=(6, 4))
    for row in curve.to_dict("records"):
        style = {"linewidth": 2.5, "color": "black"} if row["source"] == MERGED else {}
        axis.plot(ks, [row[f"recall@{k}"] for k in ks], marker="o", markersize=3, label=row["source"], **style)
    axis.set(xscale="log", xlabel="k", ylabel="recall@k", title="Candidate sources: recall@k, test users")
    axis.legend(loc="upper left", fontsize="small")
    plt.close(figure)
    return figure
