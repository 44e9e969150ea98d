"""The news feed world on the online simulator (systems/newsfeed/online.py): reactions drawn from the world's
truth, policies through the served funnel, the day's posts and logs that become the next day's features,
A/B tests.

A tiny news feed training of its own: the simulated days are written into its Feast store and its MLflow
experiment, which the session's shared training must not see."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, ndtr

from common.app.config import load_config
from common.app.registry import get_system
from common.online.simulator import simulate
from common.tracking.runs import load_champion
from systems.newsfeed.online import TRUTH_COLUMNS, NewsfeedOnline, online_system
from systems.newsfeed.world import MEDIA_DEVICE, REACTIONS, SKIP_SECONDS, START, NewsfeedWorld
from tests.conftest import data_dir_at
from tests.online_checks import assert_oracle_beats_random_and_champion_between, run_abtest_command

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DAY_S = 86_400


@pytest.fixture(scope="module")
def config():
    return load_config("newsfeed", "tiny")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, config, one_torch_thread):
    with data_dir_at(tmp_path_factory.mktemp("newsfeed-online")):
        get_system("newsfeed").train(config)
        yield config


@pytest.fixture(scope="module")
def three_policies(trained):
    """One simulated day of random scores, the champion and the oracle, users split in thirds; twice the tiny
    world's feed opens (about 720), so that the champion's place between the two is not left to chance."""
    online = online_system(trained | {"online": trained["online"] | {"requests_per_day": 720}})
    arms = ("random", "champion", "oracle")
    return online, simulate(online.world, lambda day: online.policies(arms), 1, "test-three", seed=0)


def test_the_policies_are_the_champion_each_ranker_the_baselines_random_and_the_oracle(three_policies):
    online, _ = three_policies
    rankers = ("multitask", "lightgbm_heads")
    assert online.names == ("champion", *rankers, "chronological", "popularity", "random", "oracle")
    assert online.baseline == "chronological"


def test_the_oracles_choices_beat_random_ones_and_the_champion_is_between(three_policies):
    assert_oracle_beats_random_and_champion_between(three_policies[1], "engagement_per_request", "click_rate")


def test_reactions_are_drawn_from_the_worlds_truth(three_policies):
    """Each impression's probabilities as the world's model gives them, recomputed here from its truth (taste
    for the topic, tie strength to the author at the time, quality, virality, freshness by the request's time,
    media x device, passivity, hide tendency and annoyance; examination by slot); the reactions follow them."""
    online, result = three_policies
    world, events = online.world.world, result.events
    t = world.truth
    user, post = events["user_id"].to_numpy(), events["post_id"].to_numpy()
    at_s = (events["event_timestamp"] - START).dt.total_seconds().to_numpy()
    author = t["post_author"][post]
    key = user * world.n_users + author
    at = np.minimum(np.searchsorted(t["edge_key"], key), len(t["edge_key"]) - 1)
    tie = np.where((t["edge_key"][at] == key) & (t["edge_created_s"][at] <= at_s), t["edge_strength"][at], 0.0)
    device = (events["device"] == "desktop").to_numpy().astype(int)
    age_hours = np.maximum(at_s - t["post_created_s"][post], 0) / 3600
    s = (
        world.topic_weight * t["taste"][user, t["post_topic"][post]]
        + world.tie_weight * tie
        + t["post_quality"][post]
        + t["post_virality"][post]
        + world.freshness_weight * np.exp2(-age_hours / world.freshness_half_life_hours)
        + MEDIA_DEVICE[t["post_media"][post], device]
    )
    examined = (1.0 + events["slot"].to_numpy()) ** -world.position_bias
    passive = world.passive_offset * t["passive"][user]
    for name, base, weight in zip(REACTIONS[:4], world.reaction_base, world.reaction_weight, strict=True):
        assert np.allclose(events[f"p_{name}"], examined * expit(base + weight * s + passive)), name
    annoyed = world._pair_uniform(user, author, 2) < world.annoyance_share
    p_hide = expit(world.hide_base - world.hide_weight * s + t["hide_tendency"][user] + world.annoyance * annoyed)
    assert np.allclose(events["p_hide"], examined * p_hide)
    video = t["post_media"][post] == 2
    log_dwell = np.log(world.dwell_median_s) + world.dwell_weight * s + world.video_dwell_bonus * video
    skip_glance = ndtr((np.log(SKIP_SECONDS) - np.log(world.glance_s)) / world.glance_sigma)
    p_skip = examined * ndtr((np.log(SKIP_SECONDS) - log_dwell) / world.dwell_sigma) + (1 - examined) * skip_glance
    assert np.allclose(events["p_skip"], p_skip)
    dwell = examined * np.exp(log_dwell + world.dwell_sigma**2 / 2) + (1 - examined) * world.glance_s * np.exp(
        world.glance_sigma**2 / 2
    )
    assert np.allclose(events["expected_dwell_s"], dwell)

    def within_3_sd(outcomes: pd.Series, p: np.ndarray) -> bool:  # a sum of Bernoullis against its mean
        return abs(outcomes.sum() - p.sum()) < 3 * np.sqrt((p * (1 - p)).sum())

    for name in (*REACTIONS, "skip"):
        assert within_3_sd(events[name], events[f"p_{name}"].to_numpy()), name
    assert (events["skip"] == (events["dwell_s"] < SKIP_SECONDS)).all()
    # Position bias: the logged P(click) falls with the slot; each request fills the slots from the top.
    assert events.groupby("slot")["p_click"].mean().is_monotonic_decreasing
    assert (events.groupby("session_id")["slot"].agg(lambda s: list(s) == list(range(len(s))))).all()
    # What each policy served beside the posts: the oracle's score is the truth at the top of the feed now.
    oracle = events[events["arm"] == "oracle"]
    sample = oracle.head(200)
    requests = zip(sample["user_id"], sample["post_id"], sample["event_timestamp"], sample["device"], strict=True)
    truth = [online.world.truth(u, np.array([p]), ts.timestamp(), d)[0] for u, p, ts, d in requests]
    # (a hidden author's post is demoted by re-ranking: its served score is a fraction of the truth)
    assert np.isclose(sample["served_score"], truth).mean() > 0.9
    # The device is the one the world puts the user on at that hour, as in the logs.
    assert np.array_equal(device, world.device_codes(user, at_s))


def test_the_days_posts_and_logs_reach_the_features_the_funnel_reads(three_policies, config):
    """The simulated impressions join the impressions table in its schema and the Dataset's events; the new
    posts the catalogue; the online store then holds each user's new impressions as seen posts, and the next
    day's funnel shows nobody a post they were shown on the simulated day."""
    online, result = three_policies
    world = online.world
    impressions = world.tables.impressions
    logged = result.events.drop(columns=["arm", "day", "served_score", *TRUTH_COLUMNS])
    assert list(logged.columns) == list(impressions.columns)
    assert impressions["impression_id"].is_unique and impressions["impression_id"].is_monotonic_increasing
    assert (impressions.dtypes == world.world.generate().impressions.dtypes).all()  # the logs' own types
    assert world.dataset.n_days == world.days_offset + 1
    expected = logged.rename(columns={"post_id": "item_id"}).reset_index(drop=True)
    pd.testing.assert_frame_equal(world.dataset.events.tail(len(expected)).reset_index(drop=True), expected)
    # Users went on posting: the simulated day's posts and the next day's, after the logs' posts, and shown.
    logs = NewsfeedWorld(**config["world"]).generate().posts
    posts = world.tables.posts
    new = posts[len(logs) :]
    created = new["created_timestamp"]
    assert len(new) > 0 and posts["post_id"].is_unique and (new["post_id"] > logs["post_id"].max()).all()
    assert created.between(START + pd.Timedelta(days=world.days_offset), world.now + pd.Timedelta(days=1)).all()
    assert result.events["post_id"].isin(new["post_id"]).mean() > 0.05  # 15% at tiny scale
    pd.testing.assert_frame_equal(posts[: len(logs)], logs)

    from common.features.store import FeatureRepo

    repo = FeatureRepo("newsfeed")
    shown = result.events.groupby("user_id")["post_id"].apply(set).head(30)
    store = repo.online(repo.refs(("user_activity",)), [{"user_id": int(u)} for u in shown.index])
    totals = world.dataset.events.groupby("user_id").size()
    for row, (user_id, seen) in enumerate(shown.items()):
        assert seen <= set(store["seen_post_ids"][row])
        assert store["user_impressions"][row] == totals[user_id]
    metadata = repo.online(repo.refs(("post_metadata",)), [{"item_id": int(i)} for i in new["post_id"]])
    assert all(v is not None for v in metadata["text_vector"])

    champion = online.policies(("champion",))["champion"]  # built afresh: reads the refreshed store
    served = online.serve_model(load_champion("newsfeed"))  # the same ranker, put behind the funnel by hand
    for user_id, seen in shown.items():
        request = {"user_id": user_id, "event_timestamp": world.now + pd.Timedelta(hours=12), "device": "mobile"}
        feed = champion(request)["items"]
        assert len(feed) > 0 and not seen & set(feed.tolist())
        assert np.array_equal(served(request)["items"], feed)


def test_abtest_command_plans_runs_and_logs_the_test(trained):
    run_abtest_command("newsfeed", "chronological", ("engagement_per_request", "time_spent_per_request"))


def test_simulated_days_follow_the_logs(trained):
    config = trained
    online = NewsfeedOnline(config, refresh_features=False)  # the training's post encoder, no Feast
    requests = online.arrivals(0, np.random.default_rng(0))
    first = START + pd.Timedelta(days=online.days_offset)
    assert online.days_offset == config["world"]["n_days"]
    assert abs(len(requests) - online.expected_sessions(online.days_offset)) < 4 * np.sqrt(len(requests))
    assert requests["event_timestamp"].between(first, first + pd.Timedelta(days=1)).all()
    assert requests["event_timestamp"].is_monotonic_increasing
    assert requests["session_id"].min() > online.tables.impressions["session_id"].max()
