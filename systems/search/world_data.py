"""The product-search world's tables as SearchData: the logs split by time, the oracle as the judge.

searches x impressions -> logs (query, product, timestamp, grade 0-4 from the engagement)
days, counted back from the end: ... train | validation | test (config `periods`)
examples  the logged pages of the train and validation days, one group per search
judged    a sample of the validation and test days' searches, each graded over the whole catalogue by
          the world's oracle (the shopper's intent -> ESCI grade of every product)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from systems.search.dataset import Judged, SearchData, complete_products, engagement_grade

DAY = pd.Timedelta(days=1)


def search_data(world, tables: dict[str, pd.DataFrame], config: dict) -> SearchData:
    searches = tables["searches"].sort_values("search_id").reset_index(drop=True)
    searches["timestamp"] = pd.to_datetime(searches["timestamp"], utc=True)
    impressions = tables["impressions"].merge(searches, on="search_id", how="left")
    timestamps = pd.to_datetime(impressions["timestamp"], utc=True)
    logs = pd.DataFrame(
        {
            "query": impressions["query"].to_numpy(object),
            "product": impressions["product_id"].to_numpy(np.int64),  # the world's ids are its rows
            "timestamp": timestamps,
            "grade": engagement_grade(impressions, config["labels"]["dwell_seconds"]),
            "group": impressions["search_id"].to_numpy(np.int64),
            "position": impressions["position"].to_numpy(np.int64),
        }
    )
    periods = config["periods"]
    end = timestamps.max().normalize() + DAY
    test_start = end - periods["test_days"] * DAY
    validation_start = test_start - periods["validation_days"] * DAY
    split = np.where(timestamps < validation_start, "train", np.where(timestamps < test_start, "validation", "test"))
    examples = logs.assign(split=split)
    examples = examples[examples["split"] != "test"].reset_index(drop=True)
    search_time = searches["timestamp"]
    rng = np.random.default_rng(config["seed"])
    n = config["evaluation"]["queries"]
    judged = {
        "validation": _judged(world, searches[(search_time >= validation_start) & (search_time < test_start)], n, rng),
        "test": _judged(world, searches[search_time >= test_start], n, rng),
    }
    products = complete_products(tables["products"].sort_values("product_id"))
    return SearchData(products, examples, logs, judged, engaged_grade=1, source="world")


def _judged(world, searches: pd.DataFrame, n: int, rng) -> Judged:
    picked = searches.iloc[np.sort(rng.choice(len(searches), size=min(n, len(searches)), replace=False))]
    columns = ["search_id", "query", "intent_id", "timestamp"] + (["clean_query"] if "clean_query" in picked else [])
    queries = picked[columns].rename(columns={"search_id": "query_key"}).reset_index(drop=True)
    intents = queries["intent_id"].to_numpy(np.int64)

    def graded(row: int) -> tuple[np.ndarray, np.ndarray]:
        grades = world.intent_grades(int(intents[row]))
        rows = np.flatnonzero(grades > 0)
        return rows, grades[rows]

    return Judged(queries, graded, complete=True)
