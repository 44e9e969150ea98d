"""The ads world's tables as the shared Dataset: impressions are the events, labelled clicked and
hidden; ads are the items; campaigns and advertisers are entities the features count by."""

from __future__ import annotations

from common.data.dataset import Dataset
from systems.ads.world import START, AdsTables, AdsWorld

LABELS = ("clicked", "hidden")


def to_dataset(tables: AdsTables) -> Dataset:
    return Dataset(
        tables.users,
        tables.ads,
        tables.impressions,
        START,
        oracle=tables.oracle.rename(columns={"p_click": "clicked"}),  # the true P(click) of each impression
        labels=LABELS,
        item_key="ad_id",
        event_key="impression_id",
        tables={"campaigns": tables.campaigns, "advertisers": tables.advertisers},
    )


def load(config: dict) -> Dataset:
    return to_dataset(AdsWorld(**config["world"]).generate())
