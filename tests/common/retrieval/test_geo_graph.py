"""Tests for the location and social-graph candidate sources."""

import numpy as np
import pytest
import scipy.sparse as sp

from common.retrieval.geo import NearbySource, haversine_km
from common.retrieval.graph import (
    AuthoredBySource,
    FriendsItemsSource,
    FriendsOfFriendsSource,
    RelationSource,
    SharedGroupSource,
)
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


def _path_graph(ids, pairs) -> sp.csr_matrix:
    n = len(ids)
    a, b = np.array(pairs).T
    return sp.csr_matrix((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])), shape=(n, n))


def test_friends_of_friends_by_mutual_friends_never_self_or_friends():
    # ids 100..105 are rows 0..5. 0's friends: 1, 2. 1 knows 3 and 4; 2 knows 3 and 1; 5 is nobody's.
    ids = np.arange(100, 106)
    adjacency = _path_graph(ids, [(0, 1), (0, 2), (1, 3), (1, 4), (2, 3), (1, 2)])
    source = FriendsOfFriendsSource(ids, adjacency)
    rows, mutual = source.mutual_counts(100)
    assert dict(zip(rows.tolist(), mutual.tolist(), strict=True)) == {3: 2.0, 4: 1.0}
    assert source.retrieve(RetrievalRequest(100), 10).tolist() == [103, 104]
    assert source.retrieve(RetrievalRequest(100), 1).tolist() == [103]
    assert source.retrieve(RetrievalRequest(105), 10).tolist() == []  # no friends, no friends of friends
    assert source.retrieve(RetrievalRequest(999), 10).tolist() == []  # not in the graph


def test_shared_group_source_serves_users_with_few_friends_best_connected_first():
    source = SharedGroupSource.build(
        user_ids=[1, 2, 3, 4, 5],
        groups=[7, 7, 7, 8, 7],
        rank=[5, 1, 9, 3, 0],
        attribute="school_id",
        max_friends=3,
        name="same_school",
    )
    lonely = RetrievalRequest(2, attributes={"school_id": 7, "friend_count": 0})
    assert source.retrieve(lonely, 10).tolist() == [3, 1, 5]  # never the user; by rank
    assert source.retrieve(lonely, 2).tolist() == [3, 1]
    popular = RetrievalRequest(2, attributes={"school_id": 7, "friend_count": 3})
    assert source.retrieve(popular, 10).tolist() == []
    assert source.retrieve(RetrievalRequest(9, attributes={"friend_count": 0}), 10).tolist() == []
    assert source.retrieve(RetrievalRequest(9, attributes={"school_id": 99}), 10).tolist() == []


def test_relation_source_returns_the_strongest_links_first():
    ids = np.array([10, 20, 30, 40])
    talks = sp.csr_matrix(np.array([[0, 1, 3, 0], [1, 0, 0, 0], [3, 0, 0, 2], [0, 0, 2, 0]], dtype=float))
    source = RelationSource(ids, talks, "interacted")
    assert source.retrieve(RetrievalRequest(10), 5).tolist() == [30, 20]
    assert source.retrieve(RetrievalRequest(10), 1).tolist() == [30]
    assert source.retrieve(RetrievalRequest(99), 5).tolist() == []
