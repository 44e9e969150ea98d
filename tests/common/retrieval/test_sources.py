import numpy as np
import pandas as pd

from common.retrieval.sources import (
    RankedList,
    RetrievalRequest,
    merge_candidates,
    popularity_source,
    trending_source,
)

NOW = pd.Timestamp("2026-03-01", tz="UTC")


def _events(rows):
    return pd.DataFrame(rows, columns=["item_id", "country", "days_ago"]).assign(
        event_timestamp=lambda f: NOW - pd.to_timedelta(f["days_ago"], unit="D")
    )


def test_popularity_global_and_per_segment_with_fallback():
    events = _events([(1, "de", 1), (1, "de", 2), (2, "fr", 1), (2, "fr", 1), (2, "fr", 3), (3, "de", 1)])
    overall = popularity_source(events)
    assert overall.retrieve(RetrievalRequest(0), 10).tolist() == [2, 1, 3]
    by_country = popularity_source(events, segment_column="country", name="popular_in_country")
    assert by_country.retrieve(RetrievalRequest(0, attributes={"country": "de"}), 10).tolist() == [1, 3]
    assert by_country.retrieve(RetrievalRequest(0, attributes={"country": "jp"}), 2).tolist() == [2, 1]


def test_trending_prefers_rising_items_over_steady_hits():
    # Item 1: a steady hit (10 a day for a week, 10 yesterday). Item 2: nothing, then 8 yesterday.
    rows = [(1, "de", d + 0.5) for d in range(1, 8) for _ in range(10)] + [(1, "de", 0.5)] * 10
    rows += [(2, "de", 0.5)] * 8 + [(3, "de", 0.5)]  # item 3: a single event does not trend much
    ranked = trending_source(_events(rows), NOW).retrieve(RetrievalRequest(0), 3).tolist()
    assert ranked[0] == 2 and ranked.index(1) < ranked.index(3)


def test_trending_ignores_the_future():
    events = _events([(1, "de", 0.5), (2, "de", -0.5), (2, "de", -0.5)])
    assert trending_source(events, NOW).retrieve(RetrievalRequest(0), 5).tolist() == [1]


def test_merge_deduplicates_interleaves_and_attributes_sources():
    a = RankedList("a", np.array([10, 11, 12]))
    b = RankedList("b", np.array([11, 20, 10, 21]))
    merged = merge_candidates(RetrievalRequest(0), [a, b], k_per_source=4, exclude=np.array([12]))
    assert merged.item_ids.tolist() == [10, 11, 20, 21]
    assert merged.sources_of(merged.item_ids) == [("a", "b"), ("a", "b"), ("b",), ("b",)]
    assert merged.per_source["a"].tolist() == [10, 11]


def test_merge_of_empty_sources_is_empty():
    merged = merge_candidates(RetrievalRequest(0), [RankedList("a", np.array([], dtype=np.int64))], k_per_source=5)
    assert len(merged.item_ids) == 0 and merged.sources_of(merged.item_ids) == []
