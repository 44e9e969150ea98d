"""The served event funnel (chapter 7): the same EventsState the offline evaluation runs, built
from the online store.

  user features   Feast online store: profile (home, friends) and activity (what the user registered for)
  catalogue       every event's metadata, activity and host activity, read from the online store once at
                  load; events created after the model was trained are in it (the batch job wrote
                  their rows) and are ranked like any other: the model reads features, not ids
  -> candidates (nearby, friends going, popular) -> P(register) -> re-ranking (host cap)

The serving clock is the time the features were computed (the registered ranker's `now`): the world
is frozen, and the wall clock would find every event over. A request may carry a location (where the
user is now), which replaces the home coordinates; a new user without one gets the popular source.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from common.features.store import FeatureRepo
from common.retrieval.geo import haversine_km
from common.serving.service import Served, open_serving
from common.serving.timing import StageTimer
from common.tracking.runs import Champion
from systems.events.features import EVENT_VIEWS, USER_VIEWS
from systems.events.funnel import EventsState, fill_missing_row


def online_event_frame(repo: FeatureRepo) -> pd.DataFrame:
    """Every event of the catalogue with its host's activity, from the online store."""
    ids = repo.source_keys("event_metadata", "item_id")
    events = repo.online_frame(EVENT_VIEWS[0], "item_id", ids)
    for view in EVENT_VIEWS[1:]:
        events = events.merge(repo.online_frame(view, "item_id", ids), on="item_id")
    hosts = repo.online_frame("host_activity", "host_id", events["host_id"].unique())
    return events.merge(hosts, on="host_id", how="left")


class EventsService:
    def __init__(self, config: dict, champion: Champion, repo: FeatureRepo):
        self.champion = champion
        self.repo = repo
        self.user_refs = repo.refs(USER_VIEWS)
        self.state = EventsState.build(online_event_frame(repo), champion.classifier.now, config)
        self.funnel = self.state.funnel(champion.classifier)

    @classmethod
    def load(cls, config: dict) -> EventsService:
        repo, champions = open_serving("events")
        return cls(config, champions["ranker"], repo)

    def recommend(self, user_id: int, k: int, location: tuple[float, float] | None) -> Served:
        timer = StageTimer()
        with timer.stage("user_features"):
            values = self.repo.online(self.user_refs, [{"user_id": user_id}])
            row = {name: column[0] for name, column in values.items()}
            known = row.get("gender") is not None or row.get("user_shown") is not None
            user = fill_missing_row({**row, "user_id": user_id})
        request = self.state.request(user, location)
        ranked = self.funnel.recommend(request, k, timer)
        return Served(known, ranked, timer.milliseconds, user=request.attributes | {"user": user})

    def events(self, served: Served) -> list[dict]:
        """The response's events: score, distance, start, friends going, and why each was a candidate."""
        ranked, columns = served.ranked, self.state.catalog.columns
        user = served.user["user"]
        rows = ranked.rows
        distance = haversine_km(
            served.user["lat"], served.user["lng"], columns["event_lat"][rows], columns["event_lng"][rows]
        )
        friends = np.asarray(user.get("friend_ids", []), dtype=np.int64)
        out = []
        for position, row in enumerate(rows):
            going = int(np.isin(columns["registered_user_ids"][row], friends).sum()) if len(friends) else 0
            km = float(distance[position])
            out.append(
                {
                    "event_id": int(self.state.catalog.item_ids[row]),
                    "score": float(ranked.scores[position]),
                    "distance_km": None if np.isnan(km) else round(km, 1),
                    "start_time": pd.Timestamp(int(columns["start_s"][row]), unit="s", tz="UTC").isoformat(),
                    "city": str(columns["event_city"][row]),
                    "price": float(columns["price"][row]) if columns["price"][row] >= 0 else None,
                    "friends_going": going,
                    "registered": int(columns["event_registered"][row]),
                    "why": [*ranked.sources[position], "open: released, starts within the horizon"],
                }
            )
        return out
