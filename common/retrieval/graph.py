"""Candidates from the social graph, the request naming the user's connections:

  FriendsItemsSource   items the user's friends engaged with (events they registered for, posts they
                       shared), those most friends engaged with first
  AuthoredBySource     recent items by the accounts the user follows (the news feed's "unseen posts of
                       the people you follow"), newest first
  FriendsOfFriendsSource  people you may know: the friends of the user's friends, those with the most
                       mutual friends first (the item is a user)
  SharedGroupSource    people in the user's group (school, employer), the best connected first; also
                       the candidates of a user with few friends, whom friends of friends cannot reach
  RelationSource       the users a sparse relation links to the user (interactions of the last days),
                       the strongest link first

All are sparse-matrix or sorted-array lookups, never a loop over the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from common.retrieval.sources import RetrievalRequest

DAY_S = 86_400.0


def _rows_of(sorted_ids: np.ndarray, ids) -> np.ndarray:
    """Rows of `ids` in `sorted_ids`, unknown ids dropped."""
    ids = np.asarray(ids if ids is not None else [], dtype=np.int64)
    if len(sorted_ids) == 0 or len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    rows = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return rows[sorted_ids[rows] == ids]


@dataclass(frozen=True)
class FriendsItemsSource:
    """`engaged[u, i]` = 1 when user row u engaged with item i; the request attribute `attribute` lists
    the user's friends."""

    user_ids: np.ndarray  # (n_users,) sorted: the rows of `engaged`
    item_ids: np.ndarray  # (n_items,) the columns of `engaged`
    engaged: sp.csr_matrix  # (n_users, n_items)
    attribute: str = "friend_ids"
    name: str = "friends"

    @classmethod
    def build(cls, user_ids, item_ids, engagements: tuple[np.ndarray, np.ndarray], **options) -> FriendsItemsSource:
        """engagements: (user ids, item ids), one pair per engagement; pairs naming an unknown id are
        dropped, and a user engaging twice with an item counts once."""
        users, items = np.unique(np.asarray(user_ids, dtype=np.int64)), np.asarray(item_ids, dtype=np.int64)
        user_rows = pd.Index(users).get_indexer(np.asarray(engagements[0], dtype=np.int64))
        item_rows = pd.Index(items).get_indexer(np.asarray(engagements[1], dtype=np.int64))
        known = (user_rows >= 0) & (item_rows >= 0)
        ones = np.ones(int(known.sum()), dtype=np.float32)
        matrix = sp.csr_matrix((ones, (user_rows[known], item_rows[known])), shape=(len(users), len(items)))
        matrix.data[:] = 1.0  # duplicates were summed on construction
        return cls(users, items, matrix, **options)

    def retrieve(self, request: RetrievalRequest, k: int) -> np.ndarray:
        friends = _rows_of(self.user_ids, request.attributes.get(self.attribute))
        if len(friends) == 0:
            return np.zeros(0, dtype=np.int64)
        counts = np.asarray(self.engaged[friends].sum(axis=0)).ravel()  # (n_items,) friends per item
        engaged = np.flatnonzero(counts)
        best = engaged[np.argsort(-counts[engaged], kind="stable")[:k]]
        return self.item_ids[best]


@dataclass(frozen=True)
class AuthoredBySource:
    """Items by the accounts listed in the request attribute `attribute`, created in the `window_days`
    before the request (and not after it), newest first."""

    authors: np.ndarray  # (n,) author of each item, items sorted by (author, created_s)
    created_s: np.ndarray  # (n,)
    item_ids: np.ndarray  # (n,)
    window_days: float
    attribute: str = "followee_ids"
    name: str = "followed"

    @classmethod
    def build(cls, item_ids, authors, created_s, window_days: float, **options) -> AuthoredBySource:
        authors, created_s = np.asarray(authors, dtype=np.int64), np.asarray(created_s, dtype=float)
        order = np.lexsort((created_s, authors))
        item_ids = np.asarray(item_ids, dtype=np.int64)[order]
        return cls(authors[order], created_s[order], item_ids, window_days, **options)

    def retrieve(self, request: RetrievalRequest, k: int) -> np.ndarray:
        listed = request.attributes.get(self.attribute)
        followed = np.unique(np.asarray(listed if listed is not None else [], dtype=np.int64))
        if len(followed) == 0:
            return np.zeros(0, dtype=np.int64)
        lo, hi = np.searchsorted(self.authors, followed), np.searchsorted(self.authors, followed, side="right")
        rows = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True) if b > a] or [np.zeros(0, int)])
        created = self.created_s[rows]
        recent = (created < request.now_s) & (created >= request.now_s - self.window_days * DAY_S)
        rows = rows[recent]
        return self.item_ids[rows[np.argsort(-self.created_s[rows], kind="stable")[:k]]]


@dataclass(frozen=True)
class FriendsOfFriendsSource:
    """Rows of `adjacency` are users (`user_ids`, sorted); one sparse row product per request: the
    chapter's FoF service, 1B users -> ~1K friends -> ~1M friends of friends, here in milliseconds."""

    user_ids: np.ndarray  # (n,) sorted
    adjacency: sp.csr_matrix  # (n, n) symmetric 0/1: the friendships as of the source's time
    name: str = "friends_of_friends"

    def mutual_counts(self, user_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the user's friends of friends (not the user, not a friend) and their mutual friends."""
        row = _rows_of(self.user_ids, [user_id])
        if len(row) == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        friends = self.adjacency[row[0]]
        reach = (friends @ self.adjacency).tocsr()  # (1, n): mutual friends of every user reached
        rows, mutual = reach.indices, reach.data
        keep = (rows != row[0]) & ~np.isin(rows, friends.indices)
        return rows[keep], mutual[keep]

    def retrieve(self, request: RetrievalRequest, k: int) -> np.ndarray:
        rows, mutual = self.mutual_counts(request.user_id)
        best = rows[np.lexsort((rows, -mutual))[:k]]
        return self.user_ids[best]


@dataclass(frozen=True)
class SharedGroupSource:
    """Users sharing the request's `attribute` value (a school, an employer), by `rank` (degree: the
    best connected first); with `max_friends`, asked only when the user has fewer friends than that
    (request attribute `friend_count`; a new user has none)."""

    attribute: str
    groups: np.ndarray  # (n,) each user's group, users sorted by (group, -rank)
    user_ids: np.ndarray  # (n,)
    max_friends: int | None
    name: str

    @classmethod
    def build(cls, user_ids, groups, rank, attribute: str, max_friends: int | None, name: str) -> SharedGroupSource:
        groups, rank = np.asarray(groups), np.asarray(rank, dtype=float)
        order = np.lexsort((-rank, groups))
        return cls(attribute, groups[order], np.asarray(user_ids, dtype=np.int64)[order], max_friends, name)

    def retrieve(self, request: RetrievalRequest, k: int) -> np.ndarray:
        group = request.attributes.get(self.attribute)
        few = self.max_friends is None or request.attributes.get("friend_count", 0) < self.max_friends
        if group is None or not few:
            return np.zeros(0, dtype=np.int64)
        lo, hi = np.searchsorted(self.groups, group), np.searchsorted(self.groups, group, side="right")
        members = self.user_ids[lo:hi]
        return members[members != request.user_id][:k]


@dataclass(frozen=True)
class RelationSource:
    """`relation[u, w]` > 0 links user row u to w (interactions between them in the last days: people
    who talk before they connect); the strongest links first."""

    user_ids: np.ndarray  # (n,) sorted: the rows and columns of `relation`
    relation: sp.csr_matrix
    name: str

    def retrieve(self, request: RetrievalRequest, k: int) -> np.ndarray:
        row = _rows_of(self.user_ids, [request.user_id])
        if len(row) == 0:
            return np.zeros(0, dtype=np.int64)
        linked = self.relation[row[0]]
        others, strength = linked.indices, linked.data
        keep = others != row[0]
        others, strength = others[keep], strength[keep]
        return self.user_ids[others[np.lexsort((others, -strength))[:k]]]
