"""The event funnel at one time, the same object offline (features as of a day, from the offline
store) and served (the online store's latest):

  candidates   nearby: upcoming events within a radius of the user (a ball tree, common.retrieval.geo)
               friends: upcoming events the user's friends registered for (common.retrieval.graph)
               popular: the upcoming events with the most registrations so far
               -> released before the request and starting within the horizon (candidate filters)
  ranking      the pair features of (user, event, now) -> the ranker's P(register)
  re-ranking   the config's steps (at most two events of one host)

Baseline: "nearby and popular", the nearby events ranked by registrations so far.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.funnel.catalog import ItemTable
from common.funnel.funnel import ColumnScorer, Funnel
from common.models.scorer import score
from common.retrieval.geo import NearbySource
from common.retrieval.graph import FriendsItemsSource
from common.retrieval.sources import RankedList, RetrievalRequest
from systems.events.features import USER_SUMS, pair_features

DAY_S = 86_400.0
EVENT_COUNTS = ["event_shown", "event_registered", "event_not_interested", "host_events", "host_attendance"]
USER_COUNTS = ["user_shown", "user_registered", "user_not_interested", *USER_SUMS]
LISTS = ["friend_ids", "invited_user_ids", "registered_user_ids", "registered_item_ids"]
PROFILE_TEXT = ["gender", "locale", "user_city", "user_country"]
PROFILE_NUMBERS = ["age", "user_lat", "user_lng", "n_friends"]


def fill_missing(frame: pd.DataFrame) -> pd.DataFrame:
    """A user or event with no activity yet: zero counts, empty lists; a user the store does not know
    (a new user): an empty profile, "" for its text, NaN for its numbers."""
    frame = frame.copy()
    for column in frame.columns:
        if column in EVENT_COUNTS or column in USER_COUNTS:
            frame[column] = frame[column].astype(float).fillna(0.0)
        elif column in PROFILE_TEXT:
            frame[column] = frame[column].fillna("").astype(object)
        elif column in PROFILE_NUMBERS:
            frame[column] = frame[column].astype(float)
        elif column in LISTS:
            frame[column] = [_id_list(v) for v in frame[column]]
    return frame


def fill_missing_row(row: dict) -> dict:
    """fill_missing for one user read from the online store (a dict), without pandas: a served
    request's budget is a few milliseconds."""
    filled = {}
    for column, value in row.items():
        missing = value is None or (isinstance(value, float) and value != value)
        if column in EVENT_COUNTS or column in USER_COUNTS:
            value = 0.0 if missing else float(value)
        elif column in LISTS:
            value = _id_list(value)
        elif column in PROFILE_TEXT:
            value = "" if missing else value
        elif column in PROFILE_NUMBERS:
            value = np.nan if missing else float(value)
        filled[column] = value
    return filled


def _id_list(value) -> np.ndarray:
    """A stored list of ids; anything else (None, NaN: no row yet) is an empty one."""
    return np.asarray(value, dtype=np.int64) if isinstance(value, list | np.ndarray) else np.zeros(0, np.int64)


def catalog_from_frame(events: pd.DataFrame) -> ItemTable:
    """The event catalogue (metadata, activity, host activity per event) by row, sorted by id."""
    events = fill_missing(events).sort_values("item_id").reset_index(drop=True)
    return ItemTable.from_frame(events, "item_id")


def user_columns(users: pd.DataFrame) -> list[dict]:
    """One dict of feature values per user row."""
    users = fill_missing(users)
    return users.to_dict("records")


@dataclass
class EventsScorer:
    """P(register) of a request's user for each candidate, from the pair features."""

    model: object
    catalog: ItemTable
    combination: dict

    def __call__(self, request: RetrievalRequest, item_rows: np.ndarray) -> np.ndarray:
        return score(self.model, self.features(request, item_rows), self.combination)

    def features(self, request: RetrievalRequest, item_rows: np.ndarray) -> pd.DataFrame:
        """The ranker's inputs of the request's user and these catalogue rows, at the request's time."""
        n = len(item_rows)
        user = {name: _repeat(value, n) for name, value in request.context.items()}
        event = {name: values[item_rows] for name, values in self.catalog.columns.items()}
        return pd.DataFrame(pair_features(user, event, request.now_s))


def _repeat(value, n: int) -> np.ndarray:
    if isinstance(value, np.ndarray | list):
        column = np.empty(n, dtype=object)
        column[:] = [value] * n
        return column
    return np.full(n, value, dtype=object if isinstance(value, str) else None)


@dataclass
class EventsState:
    """The funnel's catalogue and sources at `now`; `requests` turns user feature rows into requests."""

    catalog: ItemTable
    now: pd.Timestamp
    config: dict
    sources: list

    @classmethod
    def build(cls, events: pd.DataFrame, now: pd.Timestamp, config: dict) -> EventsState:
        catalog = catalog_from_frame(events)
        c, now_s = config["serving"]["candidates"], float(now.timestamp())
        columns = catalog.columns
        start_s, release_s = columns["start_s"].astype(float), columns["release_s"].astype(float)
        open_ = (release_s < now_s) & (start_s > now_s) & (start_s <= now_s + c["horizon_days"] * DAY_S)
        nearby = NearbySource.build(
            catalog.item_ids, columns["event_lat"], columns["event_lng"], start_s, c["radius_km"], c["horizon_days"]
        )
        registrations = columns["registered_user_ids"]
        owners = np.repeat(catalog.item_ids, [len(r) for r in registrations])
        registrants = np.concatenate([np.asarray(r, np.int64) for r in registrations] or [np.zeros(0, np.int64)])
        friends = FriendsItemsSource.build(np.unique(registrants), catalog.item_ids[open_], (registrants, owners))
        popular_rows = np.flatnonzero(open_)
        popular_rows = popular_rows[np.argsort(-columns["event_registered"][popular_rows], kind="stable")]
        popular = RankedList("popular", catalog.item_ids[popular_rows][: c["popular"]])
        return cls(catalog, now, config, [nearby, friends, popular])

    def request(self, user: dict, location: tuple[float, float] | None = None) -> RetrievalRequest:
        """A user's request at the state's time; `location` (lat, lng) replaces the home's coordinates."""
        if location is not None:
            user = {**user, "user_lat": location[0], "user_lng": location[1]}
        attributes = {"lat": user.get("user_lat"), "lng": user.get("user_lng"), "friend_ids": user.get("friend_ids")}
        exclude = np.asarray(user.get("registered_item_ids", []), dtype=np.int64)
        return RetrievalRequest(int(user["user_id"]), None, attributes, exclude, float(self.now.timestamp()), user)

    def funnel(self, model) -> Funnel:
        scorer = EventsScorer(model, self.catalog, self.config["serving"]["score"]) if model is not None else None
        return Funnel(self.catalog, self.sources, scorer, self.config["serving"])

    def nearby_and_popular(self) -> Funnel:
        """The baseline: nearby upcoming events, the most registered first."""
        scorer = ColumnScorer(self.catalog.columns["event_registered"])
        return Funnel(self.catalog, self.sources[:1], scorer, self.config["serving"])

    def eligible(self, request: RetrievalRequest) -> np.ndarray:
        """Every event open at the request (released, not begun, within the horizon) the user has not
        registered for: what the oracle ranks."""
        c, columns = self.config["serving"]["candidates"], self.catalog.columns
        start_s, release_s = columns["start_s"].astype(float), columns["release_s"].astype(float)
        now_s = request.now_s
        open_ = (release_s < now_s) & (start_s > now_s) & (start_s <= now_s + c["horizon_days"] * DAY_S)
        ids = self.catalog.item_ids[open_]
        return ids[~np.isin(ids, request.exclude)]
