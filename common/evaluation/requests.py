"""Offline evaluation of a served funnel request by request: each (day, user) asks for a list as of
the day's start, and every list compared (the funnel with each model, the system's baselines, the
oracle's own ranking) is scored against the same relevance.

    lists = RequestLists(); lists.add(key, user, {"funnel: lightgbm": ids, ...}, relevant, gains, merged)
    table = lists.metrics(k)                                   # one row per list
    table = lists.metrics(k, items=new_events)                 # only the items of a segment
    table = lists.metrics(k, users=passive_users)              # only the requests of a user segment

Relevance: `relevant` is the set a binary metric counts (precision, recall, MAP); `gains` the graded
value nDCG discounts (the oracle's expected engagement of every eligible item, or 1 per relevant item
on real data). A request without a relevant item is left out of every binary metric, as recall and
average precision are undefined for it, and without a positive gain out of nDCG.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from common.evaluation.metrics import average_precision, ndcg_at_k, precision_at_k, recall_at_k
from common.evaluation.retrieval import recall_by_source
from common.retrieval.sources import MergedCandidates

ORACLE = "oracle"


@dataclass
class RequestLists:
    lists: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)  # list name -> request -> ids
    relevant: dict[int, np.ndarray] = field(default_factory=dict)  # request -> relevant ids
    gains: dict[int, dict[int, float]] = field(default_factory=dict)  # request -> item id -> gain
    merged: dict[int, MergedCandidates] = field(default_factory=dict)  # request -> the funnel's candidates
    users: dict[int, int] = field(default_factory=dict)  # request -> user id

    def add(self, key: int, user: int, lists: dict[str, np.ndarray], relevant, gains, merged=None) -> None:
        for name, ids in lists.items():
            self.lists.setdefault(name, {})[key] = np.asarray(ids, dtype=np.int64)
        self.relevant[key] = np.asarray(relevant, dtype=np.int64)
        self.gains[key] = gains
        self.users[key] = int(user)
        if merged is not None:
            self.merged[key] = merged

    def metrics(self, k: int, items: Collection[int] | None = None, users: Collection[int] | None = None):
        """One row per list: precision@k, recall@k, MAP@k, nDCG@k and the requests counted, restricted to
        the requests of `users` and to the items of `items` (lists and relevance alike) when given."""
        keys = [key for key, user in self.users.items() if users is None or user in users]
        keep = None if items is None else np.asarray(sorted(items), dtype=np.int64)
        rows = []
        for name, lists in self.lists.items():
            binary, graded = [], []
            for key in keys:
                ranked, relevant, gains = lists.get(key, np.zeros(0, np.int64)), self.relevant[key], self.gains[key]
                if keep is not None:
                    ranked, relevant = ranked[np.isin(ranked, keep)], relevant[np.isin(relevant, keep)]
                    gains = {i: g for i, g in gains.items() if i in items}
                ranked, relevant_set = ranked.tolist(), set(relevant.tolist())
                if relevant_set:
                    binary.append(
                        (
                            precision_at_k(ranked, relevant_set, k),
                            recall_at_k(ranked, relevant_set, k),
                            average_precision(ranked, relevant_set, k),
                        )
                    )
                if any(g > 0 for g in gains.values()):
                    graded.append(ndcg_at_k(ranked, gains, k))
            means = np.mean(binary, axis=0) if binary else [np.nan] * 3
            rows.append(
                {
                    "list": name,
                    f"precision@{k}": float(means[0]),
                    f"recall@{k}": float(means[1]),
                    f"map@{k}": float(means[2]),
                    f"ndcg@{k}": float(np.mean(graded)) if graded else np.nan,
                    "requests": len(binary),
                }
            )
        return pd.DataFrame(rows)

    def candidate_recall(self, ks: tuple[int, ...]) -> pd.DataFrame:
        """Recall@k of each candidate source and of their merge, over the requests with a relevant item."""
        return recall_by_source(self.merged, self.relevant, ks)


def oracle_lists(candidates: np.ndarray, gains: np.ndarray, k: int) -> np.ndarray:
    """The oracle's own ranking of the eligible items: the k highest true gains."""
    order = np.argsort(-gains, kind="stable")[:k]
    return candidates[order[gains[order] > 0]] if len(order) else candidates[:0]
