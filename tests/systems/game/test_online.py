"""The game world on the online simulator (systems/game/online.py, common/online/recommender.py): reactions
drawn from the world's truth, policies through the served funnel, logs that become the next day's features,
A/B tests.

A tiny game training of its own: the simulated days are written into its Feast store and its MLflow
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
from systems.game.online import TRUTH_COLUMNS, GameOnline, online_system, played_reviews
from systems.game.recdata import review_events
from systems.game.world import START
from tests.conftest import data_dir_at
from tests.online_checks import assert_oracle_beats_random_and_champion_between, run_abtest_command

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DAY_S = 86_400


@pytest.fixture(scope="module")
def config():
    return load_config("game", "tiny")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, config, one_torch_thread):
    with data_dir_at(tmp_path_factory.mktemp("game-online")):
        get_system("game").train(config)
        yield config


@pytest.fixture(scope="module")
def three_policies(trained):
    """One simulated day of random scores, the champion and the oracle, users split in thirds; three times the
    tiny world's visits (265 a day), so that the champion's place between the two is not left to chance."""
    online = online_system(trained | {"online": trained["online"] | {"requests_per_day": 800}})
    arms = ("random", "champion", "oracle")
    return online, simulate(online.world, lambda day: online.policies(arms), 1, "test-three", seed=0)


def test_the_policies_are_the_champion_each_ranker_the_baseline_random_and_the_oracle(three_policies):
    online, _ = three_policies
    assert online.names == ("champion", "lightgbm", "multitask", "popularity", "random", "oracle")
    assert online.baseline == "popularity"


def test_the_oracles_choices_beat_random_ones_and_the_champion_is_between(three_policies):
    assert_oracle_beats_random_and_champion_between(three_policies[1], "positives_per_request", "plays_per_request")


def test_reactions_are_drawn_from_the_worlds_truth(three_policies):
    """Each game's P(play | recommended now) and P(positive | played) as the world's model gives them,
    recomputed here from its truth (affinity, popularity, price, platform, freshness by the request's time;
    recommended and hours past two); plays, positives and recommendations follow them; a game is played once."""
    online, result = three_policies
    world, events, t = online.world.world, result.events, online.world.world.truth
    user, game = events["user_id"].to_numpy(), np.searchsorted(t["app_id"], events["app_id"].to_numpy())
    affinity = world.tag_weight * (t["user_taste"][user] * t["game_tag_vec"][game]).sum(axis=1) + (
        world.hidden_weight / np.sqrt(world.hidden_dim)
    ) * (t["user_personal"][user] * t["game_own"][game]).sum(axis=1)
    on_platform = np.stack([t["win"], t["mac"], t["linux"] | t["steam_deck"]])[t["platform"][user], game]
    stamp = events["request_id"].map(result.requests.set_index("request_id")["event_timestamp"])
    age = (stamp - START).dt.total_seconds().to_numpy() / DAY_S - t["release_day"][game]
    freshness = world.freshness_floor + (1 - world.freshness_floor) * np.exp(-np.maximum(age, 0) / world.freshness_days)
    logit = (
        world.offer_base
        + world.choice_affinity * affinity
        + t["log_popularity"][game]
        - t["price_sensitivity"][user] * np.log1p(t["price"][game])
        + np.log(freshness)
    )
    # Played before this request: in the logs, or earlier the same day (the funnel's seen games lag a day).
    reviews = online.world.tables.recommendations
    logs = reviews[~reviews["review_id"].isin(events["review_id"])]
    logged = set(zip(logs["user_id"].tolist(), logs["app_id"].tolist(), strict=True))
    first_play = events[events["played"]].groupby(["user_id", "app_id"])["request_id"].min()
    before = np.array(
        [
            (u, a) in logged or first_play.get((u, a), np.inf) < r
            for u, a, r in zip(user.tolist(), events["app_id"].tolist(), events["request_id"].tolist(), strict=True)
        ]
    )
    p_play = np.where((age > 0) & on_platform & ~before, expit(logit), 0.0)
    p_recommend = expit(
        world.recommend_base + world.recommend_affinity * affinity + world.recommend_quality * t["quality"][game]
    )
    mean_log_hours = np.log(world.hours_median) + t["length"][game] + world.hours_affinity * affinity
    p_long = ndtr((mean_log_hours - np.log(2 - 0.05)) / world.hours_sigma)
    assert np.allclose(events["p_play"], p_play)
    assert np.allclose(events["p_positive"], p_recommend * p_long)

    def within_3_sd(outcomes: pd.Series, p: np.ndarray) -> bool:  # a sum of Bernoullis against its mean
        return abs(outcomes.sum() - p.sum()) < 3 * np.sqrt((p * (1 - p)).sum())

    played = events["played"].to_numpy(bool)
    positive = events["is_recommended"] & (events["hours"] >= 2)
    assert within_3_sd(events["played"], p_play)
    assert within_3_sd(positive[played], (p_recommend * p_long)[played])
    assert within_3_sd(events.loc[played, "is_recommended"], p_recommend[played])
    assert (events.loc[~played, ["hours", "helpful", "funny"]] == 0).all().all()
    assert not events.loc[~played, "is_recommended"].any() and (events.loc[~played, "review_id"] == -1).all()
    # What each policy served beside the games: the oracle's score is the truth now (the world has no slots).
    oracle = events[events["arm"] == "oracle"]
    assert np.allclose(oracle["served_score"], oracle["p_play"] * oracle["p_positive"])
    # The players' state: every play is a game the player has now played, and none was played twice.
    assert all(app in online.world.played[u] for u, app in zip(user[played], events["app_id"][played], strict=True))
    assert not online.world.tables.recommendations.duplicated(["user_id", "app_id"]).any()


def test_the_days_logs_are_the_training_logs_and_reach_the_features_the_funnel_reads(three_policies):
    """The simulated plays join recommendations.csv in its schema and the Dataset's events; the online store
    then holds each player's reviews and played games, and the next day's funnel shows nobody a game they
    played on the simulated day."""
    online, result = three_policies
    world = online.world
    reviews = world.tables.recommendations
    played = result.events[result.events["played"]]
    assert set(played["review_id"]) == set(reviews["review_id"].tail(len(played)))
    assert reviews["review_id"].is_unique and reviews["review_id"].is_monotonic_increasing
    assert (reviews.dtypes == world.world.generate().recommendations.dtypes).all()  # the logs' own types
    assert (reviews["date"].tail(len(played)) == START + pd.Timedelta(days=world.days_offset)).all()
    assert world.dataset.n_days == world.days_offset + 1
    expected = review_events(played_reviews(result.events))
    pd.testing.assert_frame_equal(world.dataset.events.tail(len(expected)).reset_index(drop=True), expected)
    logged = result.events.drop(columns=["arm", "day", "served_score", *TRUTH_COLUMNS])
    assert set(reviews.columns) <= set(logged.columns)

    from common.features.store import FeatureRepo

    repo = FeatureRepo("game")
    games = played.groupby("user_id")["app_id"].apply(set).head(30)
    store = repo.online(repo.refs(("user_activity",)), [{"user_id": int(u)} for u in games.index])
    totals = world.dataset.events.groupby("user_id").size()
    for row, (user_id, apps) in enumerate(games.items()):
        assert apps <= set(store["seen_item_ids"][row])
        assert store["user_events_total"][row] == totals[user_id]

    champion = online.policies(("champion",))["champion"]  # built afresh: reads the refreshed store
    served = online.serve_model(load_champion("game"))  # the same ranker, put behind the funnel by hand
    next_day = START + pd.Timedelta(days=world.days_offset + 1, hours=12)
    for user_id, apps in games.items():
        request = {"user_id": user_id, "event_timestamp": next_day}
        shown = champion(request)
        assert len(shown["items"]) == world.slots and not apps & set(shown["items"].tolist())
        assert np.array_equal(served(request)["items"], shown["items"])


def test_abtest_command_plans_runs_and_logs_the_test(trained):
    run_abtest_command("game", "popularity", ("positives_per_request", "hours_per_request"))


def test_simulated_days_follow_the_logs(config):
    online = GameOnline(config, refresh_features=False)
    requests = online.arrivals(0, np.random.default_rng(0))
    first = START + pd.Timedelta(days=online.days_offset)
    assert online.dataset.start == START and online.days_offset == config["world"]["n_days"]
    assert len(requests) == online.world.requests_per_day
    assert requests["event_timestamp"].between(first, first + pd.Timedelta(days=1)).all()
    assert requests["event_timestamp"].is_monotonic_increasing
    # Who comes: players by how much they play (the reviews each writes over the logs).
    visits = requests["user_id"].value_counts()
    activity = online.world.truth["n_reviews"]
    assert activity[visits.index].mean() > 1.5 * activity.mean()
