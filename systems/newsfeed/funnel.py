"""The news feed funnel at one time, the same object offline (features as of a day, from the offline
store) and served (the online store, with post counts read fresh per request):

  candidates   followed: the posts of the accounts the user follows from the last few days (the
               chapter's rule-based retrieval), newest first; popular: the recent posts with the most
               engagement so far, from anyone -> created before the request, never a post already seen
  ranking      the pair features of (user, post, now, device) -> the model's heads -> a weighted sum
               (config serving.score: share > comment > like > click, hide and skip negative)
  re-ranking   the config's steps: hidden authors demoted, near-duplicate texts dropped, at most N
               posts per author in the top k

Baselines: the chronological feed (newest first, what a feed without ML shows), popularity (the most
engaged posts first), and the multi-task model scored without its dwell and skip heads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from common.funnel.catalog import ItemTable
from common.funnel.funnel import ColumnScorer, Funnel
from common.models.scorer import combine, heads
from common.retrieval.graph import AuthoredBySource
from common.retrieval.sources import RankedList, RetrievalRequest
from systems.newsfeed.features import POST_COUNTS, UserStates, model_columns, pair_features, vector_matrix

DAY_S = 86_400.0
ENGAGEMENTS = ["post_likes", "post_comments", "post_shares"]


@dataclass
class PostCatalog(ItemTable):
    """The posts by row, with their text vectors (what the near-duplicate step compares)."""

    vectors: np.ndarray = field(default=None)

    @classmethod
    def build(cls, posts: pd.DataFrame, config: dict) -> PostCatalog:
        posts = posts.sort_values("item_id").reset_index(drop=True)
        for column in POST_COUNTS:
            posts[column] = posts[column].astype(float).fillna(0.0)
        vectors = vector_matrix(posts["text_vector"]).astype(np.float32)
        columns = {c: posts[c].to_numpy() for c in posts.columns}
        columns["text_vector"], columns["hashtag_vector"] = vectors, vector_matrix(posts["hashtag_vector"])
        return cls(posts["item_id"].to_numpy(np.int64), columns, vectors)


@dataclass
class FeedContext:
    """What a feed request's scorer reads beyond the request (the user's state, the device), and what
    it leaves for the response: each candidate's heads, as the ranking computed them."""

    states: UserStates
    row: int
    device: str
    scored: dict[str, np.ndarray] = field(default_factory=dict)  # item_id, and each head, per candidate


@dataclass
class FeedScorer:
    """The weighted engagement of each candidate for the request's user. `fresh_counts` (serving)
    replaces the catalogue's post counts with the online store's current ones."""

    model: object
    catalog: PostCatalog
    config: dict
    combination: dict
    fresh_counts: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None

    def __call__(self, request: RetrievalRequest, item_rows: np.ndarray) -> np.ndarray:
        context: FeedContext = request.context
        posts = {name: values[item_rows] for name, values in self.catalog.columns.items()}
        if self.fresh_counts is not None:
            ids = self.catalog.item_ids[item_rows]
            posts.update(self.fresh_counts(ids))
        rows = np.full(len(item_rows), context.row)
        features = pair_features(context.states, rows, posts, request.now_s, context.device, self.config)
        categorical, numeric = model_columns(self.config)
        # Columns, not a DataFrame: every model reads them, and a request builds no frame.
        named = heads(self.model, {c: features[c] for c in categorical + numeric})
        context.scored = {"item_id": self.catalog.item_ids[item_rows], **named}
        return combine(named, self.combination)


@dataclass
class FeedState:
    """The funnel's catalogue and sources at `now`."""

    catalog: PostCatalog
    now: pd.Timestamp
    config: dict
    sources: list

    @classmethod
    def build(cls, posts: pd.DataFrame, now: pd.Timestamp, config: dict) -> FeedState:
        catalog = PostCatalog.build(posts, config)
        c, now_s = config["serving"]["candidates"], float(now.timestamp())
        created = catalog.columns["created_s"].astype(float)
        followed = AuthoredBySource.build(
            catalog.item_ids, catalog.columns["author_id"], created, c["followed_window_days"]
        )
        recent = np.flatnonzero((created < now_s) & (created >= now_s - c["popular_window_days"] * DAY_S))
        engagement = sum(catalog.columns[column][recent] for column in ENGAGEMENTS)
        popular = RankedList(
            "popular", catalog.item_ids[recent[np.argsort(-engagement, kind="stable")]][: c["popular"]]
        )
        return cls(catalog, now, config, [followed, popular])

    def request(
        self, states: UserStates, row: int, device: str = "mobile", now_s: float | None = None
    ) -> RetrievalRequest:
        user = {name: values[row] for name, values in states.columns.items()}
        attributes = {"followee_ids": user["followee_ids"], "hidden_author_ids": user["hidden_author_ids"]}
        now_s = float(self.now.timestamp()) if now_s is None else now_s
        seen = np.asarray(user["seen_post_ids"], dtype=np.int64)
        return RetrievalRequest(int(user["user_id"]), None, attributes, seen, now_s, FeedContext(states, row, device))

    def funnel(self, model, combination: dict | None = None, fresh_counts=None) -> Funnel:
        serving = self.config["serving"]
        scorer = FeedScorer(model, self.catalog, self.config, combination or serving["score"], fresh_counts)
        return Funnel(self.catalog, self.sources, scorer, serving)

    def chronological(self) -> Funnel:
        """Newest first: what a feed without a ranker shows, through the same re-ranking."""
        return Funnel(
            self.catalog,
            self.sources,
            ColumnScorer(self.catalog.columns["created_s"].astype(float)),
            self.config["serving"],
        )

    def popularity(self) -> Funnel:
        engagement = sum(self.catalog.columns[column].astype(float) for column in ENGAGEMENTS)
        return Funnel(self.catalog, self.sources, ColumnScorer(engagement), self.config["serving"])

    def eligible(self, request: RetrievalRequest) -> np.ndarray:
        """The candidate pool the funnel ranks for this request (followed and popular posts, released,
        unseen): what the oracle's own ranking orders."""
        slate, _, _ = self.funnel(None).candidates(request)
        return self.catalog.item_ids[slate.rows]
