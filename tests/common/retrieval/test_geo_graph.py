"""Tests for the location and social-graph candidate sources."""

import numpy as np
import pytest

from common.retrieval.geo import NearbySource, haversine_km
from common.retrieval.graph import AuthoredBySource, FriendsItemsSource
from common.retrieval.sources import RetrievalRequest

DAY = 86_400.0


def test_haversine_known_distances():
    # Paris -> London is about 344 km; a degree of latitude about 111.2 km.
    assert haversine_km(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343.5, abs=1.0)
    assert haversine_km(0.0, 0.0, 1.0, 0.0) == pytest.approx(111.2, abs=0.1)
    assert np.isnan(haversine_km(np.nan, 0.0, 1.0, 0.0))


def test_nearby_source_returns_upcoming_items_within_the_radius_nearest_first():
    #            near, soon | far | near, started | nearer, soon | no coordinates | near, too late
    lat = np.array([52.52, 48.86, 52.52, 52.50, np.nan, 52.53])
    lng = np.array([13.40, 2.35, 13.40, 13.40, np.nan, 13.41])
    start = np.array([2, 2, -1, 3, 2, 45]) * DAY
    source = NearbySource.build(np.arange(10, 16), lat, lng, start, radius_km=30, horizon_days=30)
    request = RetrievalRequest(1, attributes={"lat": 52.50, "lng": 13.40}, now_s=0.0)
    assert source.retrieve(request, 10).tolist() == [13, 10]
    assert source.retrieve(request, 1).tolist() == [13]
    assert len(source.retrieve(RetrievalRequest(1, attributes={"lat": None, "lng": None}), 10)) == 0
    assert len(source.retrieve(RetrievalRequest(1, attributes={"lat": float("nan"), "lng": 1.0}), 10)) == 0


def test_friends_items_ranks_by_how_many_friends_engaged():
    # users 1, 2, 3 are friends of the requester; item 100 by three of them, 200 by one (twice), 300 by a stranger.
    engagements = (np.array([1, 2, 3, 2, 2, 9, 77]), np.array([100, 100, 100, 200, 200, 300, 999]))
    source = FriendsItemsSource.build(np.array([9, 3, 2, 1]), np.array([300, 100, 200]), engagements)
    request = RetrievalRequest(5, attributes={"friend_ids": [1, 2, 3, 42]})
    assert source.retrieve(request, 10).tolist() == [100, 200]
    assert source.retrieve(request, 1).tolist() == [100]
    assert len(source.retrieve(RetrievalRequest(5, attributes={}), 10)) == 0


def test_authored_by_returns_recent_posts_of_followed_accounts_newest_first():
    items = np.array([1, 2, 3, 4, 5, 6])
    authors = np.array([7, 8, 7, 7, 9, 8])
    created = np.array([-1.0, -0.5, -0.2, 0.5, -0.1, -5.0]) * DAY  # item 4 is after the request, 6 too old
    source = AuthoredBySource.build(items, authors, created, window_days=3)
    request = RetrievalRequest(1, attributes={"followee_ids": [7, 8, 8]}, now_s=0.0)
    assert source.retrieve(request, 10).tolist() == [3, 2, 1]
    assert source.retrieve(request, 2).tolist() == [3, 2]
    assert len(source.retrieve(RetrievalRequest(1, attributes={"followee_ids": []}), 10)) == 0
