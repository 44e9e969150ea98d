"""Stage-by-stage retrieval evaluation: recall@k of each candidate source and of their
merge against the oracle's relevant items, so recall can be attributed per source.

    table = recall_by_source(merged_per_user, relevant_per_user, ks=(100, 500))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from common.evaluation.metrics import recall_at_k
from common.retrieval.sources import MergedCandidates

MERGED = "merged"


def recall_by_source(
    merged: Mapping[int, MergedCandidates], relevant: Mapping[int, np.ndarray], ks: Sequence[int] = (100, 500)
) -> pd.DataFrame:
    """Mean recall@k over users, one row per source plus the merge. Users with no relevant
    item are skipped (recall is undefined for them); a source that returned nothing for a
    user scores 0 for that user."""
    users = [user for user in merged if len(relevant.get(user, ())) > 0]
    if not users:
        raise ValueError("no user has a relevant item: nothing to evaluate")
    sources = list(next(iter(merged.values())).per_source)
    rows = []
    for name in [*sources, MERGED]:
        row = {"source": name, "users": len(users)}
        for k in ks:
            recalls = [recall_at_k(_ranked(merged[user], name), set(relevant[user].tolist()), k) for user in users]
            row[f"recall@{k}"] = float(np.mean(recalls))
        rows.append(row)
    return pd.DataFrame(rows)


def _ranked(candidates: MergedCandidates, name: str) -> list[int]:
    ids = candidates.item_ids if name == MERGED else candidates.per_source.get(name, np.array([], dtype=np.int64))
    return ids.tolist()
