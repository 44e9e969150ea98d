import numpy as np
import pandas as pd
import pytest

from common.evaluation.metrics import auc
from systems.ads.world import START, AdsWorld, _prior_exposures


@pytest.fixture(scope="module")
def tiny_tables(tiny_ads_config):
    return AdsWorld(**tiny_ads_config["world"]).generate()


def test_same_seed_same_data(tiny_ads_config):
    first = AdsWorld(**tiny_ads_config["world"]).generate()
    second = AdsWorld(**tiny_ads_config["world"]).generate()
    pd.testing.assert_frame_equal(first.impressions, second.impressions)
    pd.testing.assert_frame_equal(first.oracle, second.oracle)
    other = AdsWorld(**{**tiny_ads_config["world"], "seed": 8}).generate()
    assert not first.impressions["clicked"].equals(other.impressions["clicked"])


def test_ctr_and_oracle_auc_are_realistic(tiny_tables):
    ctr = tiny_tables.impressions["clicked"].mean()
    assert 0.01 <= ctr <= 0.05
    oracle_auc = auc(tiny_tables.impressions["clicked"].to_numpy(), tiny_tables.oracle["p_click"].to_numpy())
    assert 0.75 <= oracle_auc <= 0.85


def test_oracle_is_the_probability_clicks_were_drawn_from(tiny_tables):
    """Calibration of the truth: observed CTR per oracle decile matches the mean oracle."""
    frame = tiny_tables.impressions[["clicked"]].assign(p=tiny_tables.oracle["p_click"].to_numpy())
    frame["decile"] = pd.qcut(frame["p"], 10, labels=False)
    by_decile = frame.groupby("decile").agg(observed=("clicked", "mean"), expected=("p", "mean"))
    assert np.allclose(by_decile["observed"], by_decile["expected"], atol=0.015)


def test_position_bias_and_fatigue_lower_clicks(tiny_tables):
    by_position = tiny_tables.impressions.groupby("position")["clicked"].mean()
    assert by_position.is_monotonic_decreasing
    world = AdsWorld(n_users=50, n_ads=10)
    ones = np.ones(3, dtype=int)
    p = world.click_probability(0 * ones, 0 * ones, 0 * ones, 12 * ones, ones, np.array([0, 3, 10]))
    assert p[0] > p[1] > p[2]


def test_hidden_ads_are_never_shown_again(tiny_tables):
    imp = tiny_tables.impressions
    assert imp["hidden"].sum() > 0
    first_hide = imp[imp["hidden"] == 1].groupby(["user_id", "ad_id"])["impression_id"].min().rename("hide")
    later = imp.join(first_hide, on=["user_id", "ad_id"], how="inner")
    assert (later["impression_id"] <= later["hide"]).all()


def test_impressions_respect_targeting(tiny_ads_config, tiny_tables):
    world = AdsWorld(**tiny_ads_config["world"])
    imp = tiny_tables.impressions
    assert world.eligible(imp["user_id"].to_numpy())[np.arange(len(imp)), imp["ad_id"].to_numpy()].all()


def test_prior_exposures_known_answer():
    # User 0 sees ad 5 on days 0, 1, 3 and 9 (window 7 days): 0, 1, 2, then 1 (only day 3 is in [2, 9)).
    days = [0, 1, 3, 9]
    frame = pd.DataFrame(
        {
            "impression_id": range(5),
            "user_id": [0, 0, 0, 0, 1],
            "ad_id": [5, 5, 5, 5, 5],
            "event_timestamp": [START + pd.Timedelta(days=d) for d in days] + [START],
        }
    )
    assert _prior_exposures(frame).tolist() == [0, 1, 2, 1, 0]


def test_tastes_drift_only_after_the_logs_by_the_known_amount():
    stable, drifting = (
        AdsWorld(n_users=200, requests_per_day=50),
        AdsWorld(n_users=200, requests_per_day=50, drift_per_day=0.2),
    )
    pd.testing.assert_frame_equal(stable.generate().impressions, drifting.generate().impressions)
    users, ads = np.arange(200), np.arange(200) % drifting.n_ads
    last_logged = drifting.n_days - 1
    assert np.allclose(drifting._affinity(users, ads, last_logged), stable._affinity(users, ads, last_logged))
    t = drifting.truth
    shift = t["category_drift"][t["ad_category"][ads]]
    by_hand = np.einsum("nd,nd->n", t["user_latent"][users], t["ad_latent"][ads] + 3 * 0.2 * shift) / np.sqrt(8)
    assert np.allclose(drifting._affinity(users, ads, drifting.n_days + 3), by_hand)
