"""The Feast parity check of the ads features, shared by the embedded test and the scale path's (Redis)."""

import numpy as np
import pandas as pd

from common.app.paths import system_dir
from common.features.store import FeatureRepo
from systems.ads.features import RANKER_SERVICE


def assert_online_equals_offline(tiny_ads_config: dict) -> None:
    """Parity (guards training/serving skew): for sampled keys, the online store holds what
    a point-in-time join returns just after the last snapshot."""
    repo = FeatureRepo("ads")
    ads = pd.read_parquet(system_dir("ads") / "raw" / "items.parquet")
    rng = np.random.default_rng(0)
    keys = pd.DataFrame(
        {
            "user_id": rng.choice(tiny_ads_config["world"]["n_users"], 12, replace=False),
            "ad_id": rng.choice(ads["ad_id"], 12),
        }
    )
    for key in ("campaign_id", "advertiser_id"):
        keys[key] = ads.set_index("ad_id").loc[keys["ad_id"], key].to_numpy()
    last_snapshot = pd.read_parquet(repo.sources_dir / "ad_activity.parquet")["event_timestamp"].max()
    offline = repo.historical(RANKER_SERVICE, keys.assign(event_timestamp=last_snapshot + pd.Timedelta(hours=1)))
    service = repo.store.get_feature_service(RANKER_SERVICE)
    online = repo.store.get_online_features(features=service, entity_rows=keys.to_dict("records")).to_df()
    columns = [feature.name for projection in service.feature_view_projections for feature in projection.features]
    assert len(columns) == 29  # profile 4, user activity 10, ad metadata 4, ad 5, campaign 3, advertiser 3
    for column in columns:
        for a, b in zip(offline[column], online[column], strict=True):
            if isinstance(a, (list, np.ndarray)):
                assert list(a) == list(b), column
            else:
                assert a == b or np.isclose(a, b), column
