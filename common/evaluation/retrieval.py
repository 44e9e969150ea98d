"""Retrieval evaluation: recall@k of each candidate source and of their merge against the relevant
items (so recall can be attributed per source), and the recall of an exact inner-product search
(a two-tower model, or any score of the form <a_u, b_i>) over a whole catalogue.

    table = recall_by_source(merged_per_user, relevant_per_user, ks=(100, 500))
    exact_search_recall(two_tower, users, items, test_pairs, k=100, exclude=training_pairs)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from common.evaluation.metrics import recall_at_k
from common.retrieval.sources import MergedCandidates
from common.retrieval.two_tower import TwoTowerModel, rows_of

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


RECALL_USER_CHUNK = 1024  # users scored at once: bounds the (chunk, n_items) score matrix


def exact_search_recall(
    model: TwoTowerModel,
    users: pd.DataFrame,
    items: pd.DataFrame,
    test_pairs: pd.DataFrame,
    k: int,
    history: pd.DataFrame | None = None,
    exclude: pd.DataFrame | None = None,
) -> float:
    """Recall@k of exact top-k inner-product search over all `items`, averaged over the users of `test_pairs`.

    test_pairs / exclude: (user id, item id) pairs named like the model's id columns; `exclude` pairs
    (e.g. training positives) are removed from each user's ranking before the top k is taken.
    """
    user_ids, item_ids = users[model.user_spec.id_column], items[model.item_spec.id_column]

    def rows(pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return (
            rows_of(pairs[model.user_spec.id_column], user_ids, "users"),
            rows_of(pairs[model.item_spec.id_column], item_ids, "items"),
        )

    return inner_product_recall(
        model.user_embeddings(users, history),
        model.item_embeddings(items),
        rows(test_pairs),
        k,
        exclude=None if exclude is None else rows(exclude),
    )


def inner_product_recall(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    test: tuple[np.ndarray, np.ndarray],
    k: int,
    exclude: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """Recall@k with items ranked by user_vectors @ item_vectors.T, averaged over the users in `test`.

    test / exclude: (user rows, item rows) index arrays into the vector matrices. Any scorer of the
    form score(u, i) = <a_u, b_i> fits, e.g. popularity: a_u = [1], b_i = [count_i].
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n_items = len(item_vectors)
    test_keys = np.unique(np.asarray(test[0], np.int64) * n_items + np.asarray(test[1], np.int64))  # distinct pairs
    test_users, test_items = np.divmod(test_keys, n_items)
    if len(test_keys) == 0:
        raise ValueError("recall is undefined with no test pairs")
    exclude_keys = (
        None if exclude is None else np.asarray(exclude[0], np.int64) * n_items + np.asarray(exclude[1], np.int64)
    )
    users, user_pos = np.unique(test_users, return_inverse=True)  # user_pos: each test pair's user position
    hit = np.zeros(len(test_keys), dtype=bool)
    for start in range(0, len(users), RECALL_USER_CHUNK):
        chunk = users[start : start + RECALL_USER_CHUNK]
        scores = user_vectors[chunk] @ item_vectors.T  # (chunk, n_items)
        if exclude_keys is not None:
            excluded = exclude_keys[np.isin(exclude_keys // n_items, chunk)]
            chunk_pos = np.searchsorted(chunk, excluded // n_items)
            scores[chunk_pos, excluded % n_items] = -np.inf
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n_items else np.argsort(-scores, axis=1)
        in_top = np.zeros(scores.shape, dtype=bool)  # (chunk, n_items)
        chunk_rows = np.arange(len(chunk))[:, None]
        in_top[chunk_rows, top] = np.isfinite(scores[chunk_rows, top])  # excluded items never count as retrieved
        in_chunk = (user_pos >= start) & (user_pos < start + len(chunk))
        hit[in_chunk] = in_top[user_pos[in_chunk] - start, test_items[in_chunk]]
    per_user = np.bincount(user_pos, weights=hit) / np.bincount(user_pos)
    return float(per_user.mean())
