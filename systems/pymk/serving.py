"""The served PYMK funnel (chapter section 7).

  precomputed   lists for the active users, computed by the batch job at the end of training and stored
                in the online store (Feast view `pymk_lists`); a request reads its list and drops whoever
                has become a friend, a pending request, declined or blocked since
  on demand     everyone else, through the funnel the offline evaluation ran: friends of friends, people
                interacted with, school and employer -> the pair features (every user's row read from
                the online store once, at start) -> the champion's P(friendship) -> exclusions
  a new user    (an id the graph does not know) with a profile: people from their school and employer

The graph is the raw tables' as of the registered model's `now` (the end of the logs it learnt from), in
memory; the online simulator's daily jobs move the clock on (`now`: the midnight after the latest day).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.app.paths import system_dir
from common.features.store import FeatureRepo
from common.features.views import View
from common.funnel.funnel import Ranked
from common.graph.proximity import common_neighbours
from common.graph.snapshots import seconds
from common.models.node_embeddings import NodeEmbeddings
from common.serving.service import Served, open_serving, release_freed_memory
from common.serving.timing import StageTimer
from common.tracking.runs import Champion
from systems.pymk.dataset import SocialData, read_raw
from systems.pymk.features import PROFILE_NUMERIC, SIDES, USER_VIEWS, side_columns
from systems.pymk.funnel import NEW_USER, EmbeddingScorer, PairScorer, PymkFunnel
from systems.pymk.state import GraphState

LISTS_VIEW = View("pymk_lists", "user_id")


@dataclass
class ServedPymk:
    """What the registry holds: the ranker (None: the GNN alone ranks), the serving clock and the GNN's
    node embeddings of the graph at that time (numpy: serving loads no torch)."""

    model: object | None
    now: pd.Timestamp
    links: NodeEmbeddings

    def scorer(self, state: GraphState, sides):
        if self.model is None:
            return EmbeddingScorer(self.links)
        return PairScorer(state, sides, self.model, self.links)


class OnlineUsers:
    """Every user's features, read from the online store once when the server starts, by node row (the
    served `sides`): a request gathers its few hundred candidates from memory, where as many online
    lookups cost ~80 ms. The batch job writes the features daily; a restart reads the new ones."""

    def __init__(self, repo: FeatureRepo, user_ids: np.ndarray, now_s: float):
        frame = repo.online_frame(USER_VIEWS[0], "user_id", user_ids)
        for view in USER_VIEWS[1:]:
            frame = frame.merge(repo.online_frame(view, "user_id", user_ids), on="user_id")
        frame = frame.set_index("user_id").reindex(user_ids).reset_index()  # node order
        self.now_s = now_s
        self.columns = side_columns(frame.fillna({c: 0 for c in SIDES if c in frame}), now_s)

    def __call__(self, rows: np.ndarray) -> dict:
        return {name: values[rows] for name, values in self.columns.items()}


def new_user_features(profile: dict, now_s: float) -> dict:
    """A new account's side columns from the request's profile: no network yet; unknown fields -1 / NaN."""
    sides = {name: 0.0 for name in SIDES}
    sides.update({c: -1 for c in ("gender", "city", "school_id", "employer_id", "industry")})
    sides.update({c: np.nan for c in PROFILE_NUMERIC})
    sides.update({k: v for k, v in profile.items() if v is not None})
    sides["created_s"], sides["account_days"] = now_s, 0.0
    return sides


class PymkService:
    def __init__(
        self, config: dict, champion: Champion, repo: FeatureRepo, data: SocialData, now: pd.Timestamp | None = None
    ):
        self.champion, self.repo = champion, repo
        served: ServedPymk = champion.classifier
        now = served.now if now is None else now
        self.state = GraphState.build(data, now, config["features"])
        self.state.data = data.without_logs()  # the matrices hold what serving reads of them
        self.people = PymkFunnel(self.state, config["serving"])
        self.sides = OnlineUsers(repo, self.state.user_ids, seconds([now])[0])
        self.funnel = self.people.funnel(served.scorer(self.state, self.sides))
        self.list_refs = repo.refs((LISTS_VIEW.name,))
        release_freed_memory()  # the raw logs read to build the graph: ~300 MB a process

    @classmethod
    def load(cls, config: dict) -> PymkService:
        repo, champions = open_serving("pymk")
        return cls(config, champions["ranker"], repo, read_raw(system_dir("pymk") / "raw"))

    def recommend(self, user_id: int, k: int, profile: dict | None = None) -> Served:
        timer = StageTimer()
        profile = profile or {}  # a known user's profile is the store's; a new one's, what the request says
        attributes = {
            **{c: profile[c] for c in ("school_id", "employer_id") if c in profile},
            "features": new_user_features(profile, self.sides.now_s),
        }
        request = self.people.request(user_id, attributes)
        if request.context != NEW_USER:
            with timer.stage("precomputed"):
                ranked = self._precomputed(request, k)
            if ranked is not None:
                return Served(True, ranked, timer.milliseconds, {"request": request, "path": "precomputed"})
        ranked = self.funnel.recommend(request, k, timer)
        return Served(
            request.context != NEW_USER, ranked, timer.milliseconds, {"request": request, "path": "on demand"}
        )

    def _precomputed(self, request, k: int) -> Ranked | None:
        values = self.repo.online(self.list_refs, [{"user_id": request.user_id}]) if self.list_refs else {}
        people = (values.get("people") or [None])[0]
        if people is None:
            return None
        people, scores = np.asarray(people, np.int64), np.asarray(values["scores"][0], float)
        keep = ~np.isin(people, request.exclude)  # whoever became a friend, pending or blocked since
        rows = self.state.rows(people[keep][:k])
        counts = {"precomputed": {"in": len(people), "excluded": int((~keep).sum()), "out": len(rows)}}
        top = scores[keep][:k]
        return Ranked(rows, top, top, [("precomputed",)] * len(rows), counts)

    def explain(self, served: Served) -> list[dict]:
        """Each person: score, mutual friends and why (friends in common, school, employer, city)."""
        request, rows = served.user["request"], served.ranked.rows
        if request.context == NEW_USER:
            mutual, user = np.zeros(len(rows)), request.attributes["features"]
        else:
            mutual = common_neighbours(self.state.adjacency, np.full(len(rows), request.context), rows)
            user = {c: values[0] for c, values in self.sides(np.asarray([request.context])).items()}
        others = self.sides(rows) if len(rows) else {}
        out = []
        for i, row in enumerate(rows):
            reasons = [f"{int(mutual[i])} friends in common"] if mutual[i] > 0 else []
            for column, reason in (
                ("school_id", "same school"),
                ("employer_id", "same employer"),
                ("city", "same city"),
            ):
                mine = user.get(column, -1)
                if mine is not None and mine >= 0 and others[column][i] == mine:
                    reasons.append(reason)
            out.append(
                {
                    "user_id": int(self.state.user_ids[row]),
                    "score": float(served.ranked.scores[i]),
                    "mutual_friends": int(mutual[i]),
                    "reasons": reasons,
                    "sources": list(served.ranked.sources[i]),
                }
            )
        return out
