"""The Kaggle event tables (the world's or the real files) as the shared Dataset (common.data.dataset).

  users   user_id, age (at the logs' start), gender, locale, home city, country and coordinates
  items   one row per event: item_id, host_id, start and release time, place, price, length, and its
          description as 101 word counts (c_1..c_100, c_other)
  events  one row per event shown to a user (train.csv): registered (the chapter's label: the
          "interested" button), not_interested, invited
  tables  friends (user, friend) and attendees (event, user, response), which carry no times

The real users.csv has only a location string ("Medan  Indonesia"), no coordinates: a user's home is
geocoded from the events' cities (the median coordinates of the events held in a city of that name).
The files also carry no creation time for an event: it enters the catalogue when it was first shown
(`release_timestamp`), unless the table has a `created_time` column (the world writes one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.data.dataset import Dataset
from systems.events.kaggle import WORD_COLUMNS, KaggleTables

log = logging.getLogger(__name__)
LABELS = ("registered", "not_interested")


@dataclass(frozen=True)
class EventsOracle:
    """The world's truth for the pipeline (common.pipelines.ranking.PairOracle): P(register) of a
    (user, event) pair at a time."""

    world: object  # systems.events.world.EventsWorld, after generate()

    def gain(self, user_ids: np.ndarray, item_ids: np.ndarray, at: pd.Timestamp) -> np.ndarray:
        return self.world.register_probability(np.asarray(user_ids), np.asarray(item_ids), at)

    def label_probabilities(self, events: pd.DataFrame) -> pd.DataFrame:
        """P(registered) of each logged impression, at its own time."""
        p = self.gain(events["user_id"].to_numpy(), events["item_id"].to_numpy(), events["event_timestamp"])
        return pd.DataFrame({"registered": p})


def city_key(names: pd.Series) -> pd.Series:
    return names.fillna("").astype(str).str.strip().str.lower()


def geocode_users(users: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """user_city, user_country, user_lat, user_lng from the location string's first part (the city),
    looked up among the events' cities; NaN / "" where the city is unknown."""
    located = events.dropna(subset=["lat", "lng"]).assign(key=lambda f: city_key(f["city"]))
    located = located[located["key"] != ""]
    cities = located.groupby("key").agg(
        user_lat=("lat", "median"),
        user_lng=("lng", "median"),
        user_country=("country", lambda c: c.mode().iloc[0] if len(c.mode()) else ""),
    )
    home = city_key(users["location"].fillna("").str.split("  ").str[0])
    geocoded = cities.reindex(home.to_numpy())
    return pd.DataFrame(
        {
            "user_city": np.where(geocoded["user_lat"].notna(), home, ""),
            "user_country": geocoded["user_country"].fillna("").to_numpy(),
            "user_lat": geocoded["user_lat"].to_numpy(float),
            "user_lng": geocoded["user_lng"].to_numpy(float),
        }
    )


def impression_events(train: pd.DataFrame) -> pd.DataFrame:
    """train.csv's rows (impressions) as the Dataset's events: the logs', and the online simulator's days."""
    return pd.DataFrame(
        {
            "user_id": train["user"].to_numpy(np.int64),
            "item_id": train["event"].to_numpy(np.int64),
            "event_timestamp": train["timestamp"].to_numpy(),
            "invited": train["invited"].to_numpy(np.int8),
            "registered": train["interested"].to_numpy(np.int8),
            "not_interested": train["not_interested"].to_numpy(np.int8),
        }
    )


def to_dataset(tables: KaggleTables, oracle: EventsOracle | None = None) -> Dataset:
    train = tables.train
    start = train["timestamp"].min().floor("D")
    shown = train.groupby("event")["timestamp"].min()
    events_table = tables.events
    release = shown.reindex(events_table["event_id"]).to_numpy()
    if "created_time" in events_table and events_table["created_time"].notna().any():
        release = events_table["created_time"].fillna(pd.Series(release, index=events_table.index)).to_numpy()
    items = pd.DataFrame(
        {
            "item_id": events_table["event_id"].to_numpy(np.int64),
            "host_id": events_table["user_id"].to_numpy(np.int64),
            "start_timestamp": events_table["start_time"].to_numpy(),
            # Never shown and no creation time: never in the catalogue before it starts.
            "release_timestamp": pd.Series(release).fillna(events_table["start_time"]).to_numpy(),
            "event_city": city_key(events_table["city"]).to_numpy(),
            "event_country": events_table["country"].fillna("").astype(str).str.strip().str.lower().to_numpy(),
            "event_lat": events_table["lat"].to_numpy(float),
            "event_lng": events_table["lng"].to_numpy(float),
            "price": events_table["price"].to_numpy(float),
            "length_hours": events_table["length_hours"].to_numpy(float),
        }
    )
    items = pd.concat([items, events_table[WORD_COLUMNS].astype(np.float32).reset_index(drop=True)], axis=1)

    users_table = tables.users
    users = pd.DataFrame(
        {
            "user_id": users_table["user_id"].to_numpy(np.int64),
            "age": (start.year - users_table["birthyear"]).to_numpy(float),
            "gender": users_table["gender"].fillna("").astype(str).to_numpy(),
            "locale": users_table["locale"].fillna("").astype(str).to_numpy(),
        }
    )
    users = pd.concat([users, geocode_users(users_table, events_table)], axis=1)

    interactions = impression_events(train)
    known = interactions["user_id"].isin(users["user_id"]) & interactions["item_id"].isin(items["item_id"])
    if not known.all():
        log.warning("dropping %d train rows naming a user or event missing from its file", int((~known).sum()))
    interactions = interactions[known].sort_values("event_timestamp", kind="stable", ignore_index=True)
    return Dataset(
        users,
        items,
        interactions,
        start,
        oracle=oracle,
        labels=LABELS,
        tables={"friends": tables.friends, "attendees": tables.attendees},
    )
