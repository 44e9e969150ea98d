"""Location-based candidates: items near the user that have not yet begun (the event chapter's
"upcoming events within a distance"), found through a ball tree over their coordinates with the
haversine metric (scikit-learn), not by a scan of every item.

    source = NearbySource.build(item_ids, lat, lng, start_s, radius_km=50, horizon_days=30)
    source.retrieve(RetrievalRequest(user_id, attributes={"lat": 52.5, "lng": 13.4}, now_s=now), k)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import BallTree

from common.retrieval.sources import RetrievalRequest

EARTH_RADIUS_KM = 6371.0088
DAY_S = 86_400.0


def haversine_km(lat1, lng1, lat2, lng2) -> np.ndarray:
    """Great-circle distance in km between points given in degrees (broadcasting); NaN where unknown."""
    lat1, lng1, lat2, lng2 = (np.radians(np.asarray(v, dtype=float)) for v in (lat1, lng1, lat2, lng2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@dataclass(frozen=True)
class NearbySource:
    """Items within `radius_km` of the request's (lat, lng) attributes whose start is after the request
    and at most `horizon_days` ahead, nearest first. Items without coordinates are never near; a
    request without coordinates gets nothing (other sources serve it)."""

    item_ids: np.ndarray  # (m,) the items with coordinates
    start_s: np.ndarray  # (m,)
    tree: BallTree
    radius_km: float
    horizon_days: float
    name: str = "nearby"

    @classmethod
    def build(
        cls,
        item_ids: np.ndarray,
        lat: np.ndarray,
        lng: np.ndarray,
        start_s: np.ndarray,
        radius_km: float,
        horizon_days: float,
    ) -> NearbySource:
        lat, lng = np.asarray(lat, dtype=float), np.asarray(lng, dtype=float)
        located = np.isfinite(lat) & np.isfinite(lng)
        tree = BallTree(np.radians(np.column_stack([lat[located], lng[located]])), metric="haversine")
        ids = np.asarray(item_ids, dtype=np.int64)[located]
        return cls(ids, np.asarray(start_s, dtype=float)[located], tree, radius_km, horizon_days)

    def retrieve(self, request: RetrievalRequest, k: int) -> np.ndarray:
        lat, lng = request.attributes.get("lat"), request.attributes.get("lng")
        if lat is None or lng is None or not (np.isfinite(lat) and np.isfinite(lng)) or len(self.item_ids) == 0:
            return np.zeros(0, dtype=np.int64)
        point = np.radians([[float(lat), float(lng)]])
        rows, distances = self.tree.query_radius(point, r=self.radius_km / EARTH_RADIUS_KM, return_distance=True)
        rows, distances = rows[0], distances[0]
        starts = self.start_s[rows]
        upcoming = (starts > request.now_s) & (starts <= request.now_s + self.horizon_days * DAY_S)
        rows, distances = rows[upcoming], distances[upcoming]
        return self.item_ids[rows[np.argsort(distances, kind="stable")[:k]]]
