"""The events world on the online simulator (systems/events/online.py): reactions drawn from the world's
truth, policies through the served funnel, logs that become the next day's features, A/B tests.

A tiny events training of its own: the simulated days are written into its Feast store and its MLflow
experiment, which the session's shared training must not see. Its offline evaluation asks fewer requests a
day than the config's (this module reads none of it), which halves the training's time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from typer.testing import CliRunner

from common.app.cli import app
from common.app.config import load_config
from common.app.registry import get_system
from common.online.simulator import simulate
from common.retrieval.geo import haversine_km
from common.tracking.runs import champion_trained_on, load_champion
from systems.events.dataset import impression_events
from systems.events.online import TRUTH_COLUMNS, EventsOnline, online_system, train_rows
from systems.events.world import START
from tests.conftest import data_dir_at
from tests.online_checks import assert_oracle_beats_random_and_champion_between, run_abtest_command

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def config():
    return load_config("events", "tiny")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, config, one_torch_thread):
    with data_dir_at(tmp_path_factory.mktemp("events-online")):
        get_system("events").train(config | {"evaluation": config["evaluation"] | {"users_per_day": 10}})
        yield config


@pytest.fixture(scope="module")
def three_policies(trained):
    """One simulated day of random scores, the champion and the oracle, users split in thirds; four times the
    tiny world's sessions (100 a day), so that the champion's place between the two is not left to chance."""
    online = online_system(trained | {"online": trained["online"] | {"requests_per_day": 400}})
    arms = ("random", "champion", "oracle")
    return online, simulate(online.world, lambda day: online.policies(arms), 1, "test-three", seed=0)


def test_the_policies_are_the_champion_each_ranker_the_baseline_random_and_the_oracle(three_policies):
    online, _ = three_policies
    assert online.names == (
        "champion",
        "logistic_regression",
        "lightgbm",
        "lambdarank",
        "nearby_popular",
        "random",
        "oracle",
    )
    assert online.baseline == "nearby_popular"
    assert champion_trained_on("events") == {"scale": "tiny"}  # learnt from the tiny world: what it simulates
    # A simulation at another scale than the champion's training is refused, with what to run.
    refused = CliRunner().invoke(app, ["online", "--system", "events", "--scale", "default", "--days", "1"])
    assert refused.exit_code == 1 and "trained at scale tiny, the simulation asks for default" in refused.output


def test_the_oracles_choices_beat_random_ones_and_the_champion_is_between(three_policies):
    assert_oracle_beats_random_and_champion_between(three_policies[1], "registrations_per_request", "registration_rate")


def first_times(pairs: pd.DataFrame) -> pd.Series:
    """The earliest time of each (user, event) pair, in ms since START."""
    ms = (pd.to_datetime(pairs["timestamp"], utc=True) - START) // pd.Timedelta(milliseconds=1)
    return ms.groupby([pairs["user"].to_numpy(), pairs["event"].to_numpy()]).min()


def test_reactions_are_drawn_from_the_worlds_truth(three_policies):
    """Each event's P(register | shown now) as the world's model gives it, recomputed here from its truth
    (topic fit, distance to the home, price against the budget, time of day, time to start, friends
    registered before the request, invitation; 0 once registered or not open); registrations follow it."""
    online, result = three_policies
    world, events = online.world.world, result.events.reset_index(drop=True)
    t = world.truth
    u = pd.Series(np.arange(world.n_users), index=t["user_id"])[events["user"]].to_numpy()
    e = pd.Series(np.arange(world.n_events), index=t["event_id"])[events["event"]].to_numpy()
    ms = ((pd.to_datetime(events["timestamp"], utc=True) - START) // pd.Timedelta(milliseconds=1)).to_numpy()

    fit = (t["topic_pref"][u] * t["topics"][e]).sum(axis=1)
    km = haversine_km(t["home_lat"][u], t["home_lng"][u], t["lat"][e], t["lng"][e])
    price = t["price"][e]
    over = np.log(np.where(price > 0, price, 1.0)) - t["log_budget"][u]
    price_fit = np.where(price > 0, -world.price_weight * np.logaddexp(0.0, over), world.free_bonus)
    likes_evening = t["evening"][u] - 0.5
    time_of_day = 2 * world.time_of_day_weight * np.where(t["evening_event"][e], likes_evening, -likes_evening)
    days = np.maximum(t["start_ms"][e] - ms, 0) / DAY_MS
    lead = -(np.exp(-days) + 0.5 * np.log(np.maximum(days, 10.0) / 10.0))
    # Registrations (the logs' every channel, then the simulated day's) and invitations before each request.
    simulated = events.loc[events["interested"] == 1, ["user", "event", "timestamp"]]
    registered_at = first_times(pd.concat([world.registrations(), simulated], ignore_index=True))
    invited_at = first_times(world.invitations())
    friends = pd.DataFrame({"row": np.arange(len(events)), "user": events["user"], "event": events["event"]}).merge(
        online.world.tables.friends, on="user"
    )
    friend_at = registered_at.reindex(pd.MultiIndex.from_arrays([friends["friend"], friends["event"]]))
    going = np.bincount(friends["row"][friend_at.to_numpy() < ms[friends["row"]]], minlength=len(events))
    pairs = pd.MultiIndex.from_arrays([events["user"], events["event"]])
    invited = invited_at.reindex(pairs).to_numpy() < ms
    already = registered_at.reindex(pairs).to_numpy() < ms
    logit = (
        world.bias
        + t["user_bias"][u]
        + world.topic_weight * fit
        - world.distance_weight * np.log1p(km / t["tolerance_km"][u])
        + price_fit
        + time_of_day
        + t["event_logit"][e]
        + world.lead_weight * lead
        + world.friends_weight * np.log1p(going)
        + world.invited_weight * invited
    )
    is_open = (t["created_ms"][e] <= ms) & (ms < t["start_ms"][e])
    p = np.where(is_open & ~already, expit(logit), 0.0)
    assert np.allclose(events["p_register"], p)
    assert (events["invited"] == invited).all()
    assert going.sum() > 0 and invited.any()  # the social terms are exercised

    def within_3_sd(outcomes: pd.Series, p: np.ndarray) -> bool:  # a sum of Bernoullis against its mean
        return abs(outcomes.sum() - p.sum()) < 3 * np.sqrt((p * (1 - p)).sum())

    assert within_3_sd(events["interested"], p)
    assert not (events["interested"] & events["not_interested"]).any()
    assert (events.loc[p == 0, ["interested", "maybe", "not_interested"]] == 0).all().all()
    # What each policy served beside the events: the oracle's score is the truth at the request's time.
    oracle = events[events["arm"] == "oracle"]
    assert np.allclose(oracle["served_score"], oracle["p_register"])
    # The world's state: each registration counts from its request on (a friend's later request sees it).
    assert world.registered_before(u, e, ms + 1)[events["interested"].to_numpy() == 1].all()


def test_the_days_logs_are_the_training_logs_and_reach_the_features_the_funnel_reads(three_policies):
    """The simulated rows join train.csv in its schema and the Dataset's events; the online store then holds
    each user's registrations and each event's registrants, and the next day's funnel shows nobody an event
    they registered for on the simulated day."""
    online, result = three_policies
    world = online.world
    train = world.tables.train
    assert list(train.columns) == list(world.world.generate().train.columns)
    assert (train.dtypes == world.world.generate().train.dtypes).all()  # the logs' own types
    expected = train_rows(result.events)
    pd.testing.assert_frame_equal(train.tail(len(expected)).reset_index(drop=True), expected)
    assert world.dataset.n_days == world.days_offset + 1
    logged = impression_events(expected)
    pd.testing.assert_frame_equal(world.dataset.events.tail(len(logged)).reset_index(drop=True), logged)
    assert set(TRUTH_COLUMNS) <= set(result.events.columns)

    from common.features.store import FeatureRepo

    repo = FeatureRepo("events")
    registered = result.events[result.events["interested"] == 1]
    by_user = registered.groupby("user")["event"].apply(set).head(30)
    assert len(by_user)
    store = repo.online(repo.refs(("user_activity",)), [{"user_id": int(u)} for u in by_user.index])
    totals = world.dataset.events.groupby("user_id").size()
    for row, (user_id, event_ids) in enumerate(by_user.items()):
        assert event_ids <= set(store["registered_item_ids"][row])
        assert store["user_shown"][row] == totals[user_id]
    going = registered.groupby("event")["user"].apply(set).head(30)
    store = repo.online(repo.refs(("event_activity",)), [{"item_id": int(e)} for e in going.index])
    for row, users in enumerate(going):
        assert users <= set(store["registered_user_ids"][row])

    champion = online.policies(("champion",))["champion"]  # built afresh: reads the refreshed store
    served = online.serve_model(load_champion("events"))  # the same ranker, put behind the funnel by hand
    next_day = START + pd.Timedelta(days=world.first_day + 1, hours=12)
    for user_id, event_ids in by_user.items():
        request = {"user_id": user_id, "event_timestamp": next_day}
        shown = champion(request)
        assert 0 < len(shown["items"]) <= world.slots and not event_ids & set(shown["items"].tolist())
        assert np.array_equal(served(request)["items"], shown["items"])


def test_abtest_command_plans_runs_and_logs_the_test(trained):
    run_abtest_command("events", "nearby_popular", ("registrations_per_request", "revenue_per_request"))


def test_simulated_days_follow_the_logs(config):
    online = EventsOnline(config, refresh_features=False)
    requests = online.arrivals(0, np.random.default_rng(0))
    first = START + pd.Timedelta(days=online.days_offset)
    assert online.dataset.start == START and online.days_offset == config["world"]["n_days"] == online.first_day
    assert len(requests) == config["world"]["sessions_per_day"]
    assert requests["event_timestamp"].between(first, first + pd.Timedelta(days=1)).all()
    assert requests["event_timestamp"].is_monotonic_increasing
    # Who opens the app: users by their activity.
    sessions = requests["user_id"].value_counts()
    activity = pd.Series(online.world.truth["activity"], index=online.world.truth["user_id"])
    assert activity[sessions.index].mean() > 1.5 * activity.mean()
    # Events are still open after the logs: the catalogue the simulated days recommend from.
    t = online.world.truth
    first_ms = online.first_day * DAY_MS
    assert ((t["created_ms"] < first_ms) & (t["start_ms"] > first_ms + DAY_MS)).sum() > 100
