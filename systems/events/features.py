"""The event chapter's features (chapter 5), as Feast views and as the ranker's inputs.

Feast views (batch, snapshots at each day's start; a snapshot sees only what happened before it):
  user_profile    static: age, gender, locale, home city / country / coordinates, friend ids
  user_activity   cumulative: events shown, registered, not interested; the price, start hour and
                  description topics of the events registered (sums)
  event_metadata  static: host, start, release, length, price, place, description topics, invitees
  event_activity  cumulative: shown, registered, not interested; who registered
  host_activity   cumulative: the host's events that have started and their attendance (final "yes"
                  lists, known once an event is over)

Descriptions are 101 word counts; NMF, fit on every event's counts (no label involved, like a
tokenizer), turns them into TOPICS topic weights, so "description similarity" is the cosine between
an event's topics and the sum of the topics of the events the user registered for.

`pair_features` is the one implementation of the user-event features (distance, price gap, topic
similarity, time, social), used for the training rows and for a served request alike.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.decomposition import NMF

from common.data.dataset import Dataset
from common.features.lists import distinct_ids_by_key
from common.features.views import View
from common.features.windows import cumulative_snapshots
from common.retrieval.geo import haversine_km
from systems.events.kaggle import WORD_COLUMNS

TOPICS = [f"topic_{k}" for k in range(16)]
USER_SUMS = ["user_price_sum", "user_hour_sin_sum", "user_hour_cos_sum", *(f"user_{t}" for t in TOPICS)]
DAY_S = 86_400.0
LIST_LENGTH = 1000  # registrations kept per user / event: who is going, what a user registered for

VIEWS = [
    View("user_profile", "user_id"),
    View("user_activity", "user_id"),
    View("event_metadata", "item_id"),
    View("event_activity", "item_id"),
    View("host_activity", "host_id"),
]
USER_VIEWS = ("user_profile", "user_activity")
EVENT_VIEWS = ("event_metadata", "event_activity")
SERVICE = {"events_ranker": {view.name: None for view in VIEWS}}

CATEGORICAL = ["gender", "event_country"]
NUMERIC = [
    "age",
    "n_friends",
    "user_shown",
    "user_registered",
    "user_register_rate",
    "price",
    "is_free",
    "length_hours",
    "event_shown",
    "event_registered",
    "event_register_rate",
    "host_events",
    "host_mean_attendance",
    "distance_km",
    "same_city",
    "same_country",
    "price_gap",
    "topic_similarity",
    "hours_to_start",
    "start_hour",
    "start_weekday",
    "hour_gap",
    "friends_going",
    "friends_going_share",
    "invited",
    "hosted_by_friend",
    "request_hour",
]


def seconds(timestamps) -> np.ndarray:
    return ((pd.Series(timestamps) - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)


def event_topics(items: pd.DataFrame, seed: int) -> np.ndarray:
    """(n_events, TOPICS) unit-length NMF topic weights of the descriptions' word counts."""
    counts = items[WORD_COLUMNS].to_numpy(np.float32)
    nmf = NMF(n_components=len(TOPICS), init="nndsvda", max_iter=300, random_state=seed)
    weights = nmf.fit_transform(np.log1p(counts))
    return weights / np.maximum(np.linalg.norm(weights, axis=1, keepdims=True), 1e-9)


def feature_tables(data: Dataset, config: dict) -> dict[str, pd.DataFrame | pa.Table]:
    static_time = data.start - pd.Timedelta(days=1)
    items, every = data.items, config["features"]["snapshot_every_days"]
    topics = pd.DataFrame(event_topics(items, config["seed"]), columns=TOPICS)
    metadata = pd.concat(
        [items[["item_id", "host_id", "event_city", "event_country", "event_lat", "event_lng"]], topics], axis=1
    ).assign(
        start_s=seconds(items["start_timestamp"]),
        release_s=seconds(items["release_timestamp"]),
        price=items["price"].fillna(-1.0).to_numpy(),  # -1: unknown (the real files have no price)
        length_hours=items["length_hours"].fillna(-1.0).to_numpy(),
        invited_user_ids=_lists_by(
            data.tables["attendees"].query("response == 'invited'"), "event", "user", items["item_id"]
        ),
        event_timestamp=static_time,
    )
    friends = _lists_by(data.tables["friends"], "user", "friend", data.users["user_id"])
    profile = data.users.assign(friend_ids=friends, n_friends=[len(f) for f in friends], event_timestamp=static_time)
    return {
        "user_profile": profile,
        "event_metadata": metadata,
        "user_activity": user_activity(data, metadata, every),
        "event_activity": event_activity(data, every),
        "host_activity": host_activity(data, every),
    }


def _lists_by(pairs: pd.DataFrame, owner: str, value: str, owners: pd.Series) -> list[np.ndarray]:
    """For each of `owners`, the distinct `value`s its rows list (an empty list where none)."""
    lists, empty = distinct_ids_by_key(pairs[owner], pairs[value]), np.zeros(0, dtype=np.int64)
    return [lists.get(o, empty) for o in owners.tolist()]


def user_activity(data: Dataset, metadata: pd.DataFrame, every: int) -> pa.Table:
    """Per user and snapshot: impressions, registrations, "not interested"s, and sums over the events
    registered (their price, start hour on the unit circle, topics), for the user-event similarities."""
    shown = data.events.merge(metadata[["item_id", "price", "start_s", *TOPICS]], on="item_id", how="left")
    registered = shown["registered"].to_numpy(float)
    hour = (shown["start_s"].to_numpy(float) % DAY_S) / 3600.0
    sums = shown.assign(
        user_price_sum=registered * np.maximum(shown["price"].to_numpy(float), 0.0),
        user_hour_sin_sum=registered * np.sin(2 * np.pi * hour / 24),
        user_hour_cos_sum=registered * np.cos(2 * np.pi * hour / 24),
        **{f"user_{t}": registered * shown[t].to_numpy(float) for t in TOPICS},
    )
    columns = {"user_shown": None, "user_registered": "registered", "user_not_interested": "not_interested"}
    registered_items = {"registered_item_ids": ("item_id", LIST_LENGTH, "registered")}
    return cumulative_snapshots(
        sums, "user_id", data.start, every, {**columns, **{s: s for s in USER_SUMS}}, registered_items
    )


def event_activity(data: Dataset, every: int) -> pa.Table:
    """Per event and snapshot: impressions, registrations, "not interested"s, and who registered."""
    columns = {"event_shown": None, "event_registered": "registered", "event_not_interested": "not_interested"}
    registrants = {"registered_user_ids": ("user_id", LIST_LENGTH, "registered")}
    return cumulative_snapshots(data.events, "item_id", data.start, every, columns, registrants)


def host_activity(data: Dataset, every: int) -> pa.Table:
    """Per host and snapshot: how many of the host's events have started, with how many "yes" attendees
    in all (the attendee lists have no times: an event's list is read only once it has started)."""
    attendance = data.tables["attendees"].query("response == 'yes'").groupby("event").size()
    items = data.items
    started = pd.DataFrame(
        {
            "host_id": items["host_id"].to_numpy(np.int64),
            "event_timestamp": items["start_timestamp"].to_numpy(),
            "attendance": attendance.reindex(items["item_id"]).fillna(0).to_numpy(np.int64),
        }
    )
    # The batch runs at the end of the logs: it knows the events that have started by then, no later ones.
    end = data.day_start(data.n_days)
    started = started[(started["event_timestamp"] >= data.start) & (started["event_timestamp"] < end)]
    return cumulative_snapshots(
        started, "host_id", data.start, every, {"host_events": None, "host_attendance": "attendance"}
    )


def pair_features(user: dict, event: dict, now_s, invited=None) -> dict[str, np.ndarray]:
    """The ranker's inputs of (user, event) pairs at `now_s`: `user` and `event` map each feature-view
    column to one value per pair (a served request repeats its one user). `invited`: 1 per pair where
    known (a logged impression says); otherwise read off the event's invitees."""
    n = len(event["item_id"])
    now_s = np.broadcast_to(np.asarray(now_s, dtype=float), n)
    out: dict[str, np.ndarray] = {}
    for column in ("gender", "age", "n_friends", "user_shown", "user_registered"):
        out[column] = np.asarray(user[column])
    for column in ("event_country", "length_hours", "event_shown", "event_registered", "host_events"):
        out[column] = np.asarray(event[column])
    registered = np.asarray(user["user_registered"], dtype=float)
    out["user_register_rate"] = _rate(registered, np.asarray(user["user_shown"], dtype=float))
    out["event_register_rate"] = _rate(
        np.asarray(event["event_registered"], float), np.asarray(event["event_shown"], float)
    )
    out["host_mean_attendance"] = np.asarray(event["host_attendance"], float) / np.maximum(
        np.asarray(event["host_events"], float), 1.0
    )
    price = np.asarray(event["price"], dtype=float)
    out["price"], out["is_free"] = price, (price == 0).astype(float)
    mean_price = np.asarray(user["user_price_sum"], float) / np.maximum(registered, 1.0)
    out["price_gap"] = np.where((registered > 0) & (price >= 0), np.abs(price - mean_price), np.nan)

    out["distance_km"] = haversine_km(user["user_lat"], user["user_lng"], event["event_lat"], event["event_lng"])
    user_city, event_city = np.asarray(user["user_city"], dtype=object), np.asarray(event["event_city"], dtype=object)
    out["same_city"] = ((user_city == event_city) & (user_city != "")).astype(float)
    user_country, event_country = (
        np.asarray(user["user_country"], dtype=object),
        np.asarray(event["event_country"], dtype=object),
    )
    out["same_country"] = ((user_country == event_country) & (user_country != "")).astype(float)

    user_topics = np.column_stack([np.asarray(user[f"user_{t}"], float) for t in TOPICS])
    event_topics_ = np.column_stack([np.asarray(event[t], float) for t in TOPICS])
    norms = np.linalg.norm(user_topics, axis=1)
    out["topic_similarity"] = np.einsum("nd,nd->n", user_topics, event_topics_) / np.maximum(norms, 1e-9)

    start_s = np.asarray(event["start_s"], dtype=float)
    out["hours_to_start"] = (start_s - now_s) / 3600.0
    start_hour = (start_s % DAY_S) / 3600.0
    out["start_hour"] = start_hour
    out["start_weekday"] = ((start_s // DAY_S) + 3) % 7  # 1970-01-01 was a Thursday: Monday is 0
    angle = np.arctan2(np.asarray(user["user_hour_sin_sum"], float), np.asarray(user["user_hour_cos_sum"], float))
    usual_hour = (angle * 24 / (2 * np.pi)) % 24
    gap = np.abs(start_hour - usual_hour)
    out["hour_gap"] = np.where(registered > 0, np.minimum(gap, 24 - gap), np.nan)
    out["request_hour"] = (now_s % DAY_S) / 3600.0

    friends_going, hosted_by_friend, on_invite_list = social_features(
        user["user_id"], user["friend_ids"], event["host_id"], event["registered_user_ids"], event["invited_user_ids"]
    )
    out["friends_going"] = friends_going
    out["friends_going_share"] = friends_going / np.maximum(np.asarray(user["n_friends"], float), 1.0)
    out["hosted_by_friend"] = hosted_by_friend
    out["invited"] = on_invite_list if invited is None else np.asarray(invited, dtype=float)
    return out


def social_features(user_ids, friends, hosts, going, invitees) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pair: friends registered (|friends ∩ going|), hosted by a friend, on the invitee list.
    A served request has one user for every candidate: its friends are one set, and the candidates'
    lists are searched at once; a training set has a user per row, and is searched row by row."""
    n = len(hosts)
    user_ids, hosts = np.asarray(user_ids), np.asarray(hosts)
    if n and (user_ids == user_ids[0]).all():
        circle = np.asarray(friends[0], dtype=np.int64)
        lengths = np.array([len(g) for g in going])
        flat = np.concatenate([np.asarray(g, dtype=np.int64) for g in going]) if lengths.sum() else np.zeros(0, int)
        owner = np.repeat(np.arange(n), lengths)
        friends_going = np.bincount(owner[np.isin(flat, circle)], minlength=n).astype(float)
        invited = np.array([user_ids[0] in np.asarray(i) if len(i) else False for i in invitees], dtype=float)
        return friends_going, np.isin(hosts, circle).astype(float), invited
    friends_going, hosted_by_friend, invited = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        circle = friends[i]
        if len(circle):
            friends_going[i] = np.intersect1d(circle, going[i], assume_unique=True).size if len(going[i]) else 0
            hosted_by_friend[i] = hosts[i] in circle
        invited[i] = user_ids[i] in invitees[i] if len(invitees[i]) else 0
    return friends_going, hosted_by_friend, invited


def _rate(successes: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """Laplace-smoothed successes / trials: 0.5 with no trials, the same for a training row and a served
    one (a prior read off the rows given would differ between the two)."""
    return (successes + 1.0) / (trials + 2.0)
