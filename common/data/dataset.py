"""What every pipeline reads: a system's data as entity tables and time-stamped events with
named labels, whatever the chapter (ads impressions, video impressions, Steam reviews...).

A system turns its own tables into a Dataset (systems/<name>/dataset.py or recdata.py):
  users   one row per user: the user key and profile columns
  items   one row per item: the item key and metadata (an ad, a video, a game; later a post, a person)
  events  one row per logged (user, item) event, in time order: both keys, event_timestamp, context
          columns, and one column per label the system names in `labels` (click, hide, like, dwell...)
  tables  other entity tables the features join (ads: campaigns, advertisers)
  oracle  the world's truth when the data is synthetic, None on real data: a relevance Oracle for the
          recommenders; for event classification a frame keyed by `event_key` with the true
          probability of each label, in a column named after it

The recommenders read three labels with fixed roles (RECOMMENDER_LABELS):
  engaged   1 if the user engaged (clicked a video; played a game)
  positive  1 if the chapter's label holds (liked or watched >= half; recommended and played > 2 h)
  value     how much, given engaged (watch fraction; log1p of hours played)
Impression logs (video) hold engaged = 0 rows; engagement-only logs (Steam reviews) do not, and the
ranker's negatives are then sampled (common.funnel.examples).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from common.app.paths import system_dir
from common.data.atomic import replaced_atomically

RECOMMENDER_LABELS = ("engaged", "positive", "value")


@dataclass(frozen=True)
class Schema:
    """Which of a system's columns play which role in the shared funnel."""

    item_name: str  # what the API calls an item: "video", "game"
    group_column: str  # the item's genre: diversity caps, the user's genre history
    user_categorical: tuple[str, ...] = ()  # profile: gender, country, language...
    user_numeric: tuple[str, ...] = ()  # profile: age...
    item_categorical: tuple[str, ...] = ()  # genre, language, age rating...
    item_numeric: tuple[str, ...] = ()  # duration, price...
    item_multi_hot: tuple[str, ...] = ()  # list-valued item columns: tags
    segments: tuple[str, ...] = ()  # user attributes with their own popularity list: country, language
    language: tuple[str, str] | None = None  # (user column, item column) compared for "language match"
    release_column: str = "release_timestamp"  # when the item entered the catalogue
    user_age_column: str | None = None  # the profile's age (the API bounds it)
    title_column: str = "title"


class Oracle(Protocol):
    """The world's truth about relevance, for evaluation only."""

    def relevance(self, user_ids: np.ndarray, item_ids: np.ndarray, as_of: pd.Timestamp) -> np.ndarray:
        """True relevance of each (user, item) pair at `as_of`."""

    def top_relevant(
        self, user_ids: np.ndarray, k: int, as_of: pd.Timestamp, exclude: pd.DataFrame
    ) -> Mapping[int, np.ndarray]:
        """Each user's k most relevant item ids at `as_of`, best first, without the (user_id, item_id)
        pairs of `exclude` (what they already engaged with)."""


@dataclass(frozen=True)
class Dataset:
    users: pd.DataFrame
    items: pd.DataFrame
    events: pd.DataFrame
    start: pd.Timestamp  # midnight of the first day of the logs
    schema: Schema | None = None  # the recommenders' column roles
    oracle: Oracle | pd.DataFrame | None = None
    labels: tuple[str, ...] = RECOMMENDER_LABELS
    user_key: str = "user_id"
    item_key: str = "item_id"
    event_key: str | None = None  # a unique id per event, where the oracle is per event
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keys = [self.user_key, self.item_key, "event_timestamp", *([self.event_key] if self.event_key else [])]
        missing = [c for c in (*keys, *self.labels) if c not in self.events.columns]
        if missing:
            raise ValueError(f"events lack the columns {missing}")
        for table, key in ((self.users, self.user_key), (self.items, self.item_key)):
            if key not in table.columns or not table[key].is_unique:
                raise ValueError(f"{key} must be a unique column of its table")
        for key, table in ((self.user_key, self.users), (self.item_key, self.items)):
            unknown = ~self.events[key].isin(table[key])
            if unknown.any():
                raise ValueError(f"{int(unknown.sum())} events name a {key} missing from its table")
        if set(RECOMMENDER_LABELS) <= set(self.labels):
            if (self.events["positive"].astype(bool) & ~self.events["engaged"].astype(bool)).any():
                raise ValueError("a positive event must be an engaged one")

    @property
    def has_negatives(self) -> bool:
        """True when the logs hold non-engaged impressions (a recommender's ranker then learns from them)."""
        return bool((self.events["engaged"] == 0).any())

    @property
    def n_days(self) -> int:
        """Days from `start` through the last event's day."""
        return int((self.events["event_timestamp"].max() - self.start) // pd.Timedelta(days=1)) + 1

    def day_start(self, day: int) -> pd.Timestamp:
        return self.start + pd.Timedelta(days=day)


def write_raw_tables(system: str, dataset: Dataset) -> None:
    """The dataset as parquet under data/<system>/raw (the oracle too, kept apart), to read or debug."""
    raw = system_dir(system) / "raw"
    raw.mkdir(exist_ok=True)
    tables = {"users": dataset.users, "items": dataset.items, "events": dataset.events, **dataset.tables}
    if isinstance(dataset.oracle, pd.DataFrame):
        tables["oracle"] = dataset.oracle
    for name, table in tables.items():
        with replaced_atomically(raw / f"{name}.parquet") as temporary:
            table.to_parquet(temporary, index=False)
