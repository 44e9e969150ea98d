"""People you may know on the online simulator (systems/pymk/online.py): reactions drawn from the world's
truth, policies through the served path (stored lists and the funnel on demand), friendships that the next
day's graph, features and lists hold, A/B tests.

A tiny pymk training of its own: the simulated days are written into its raw tables, Feast store and MLflow
experiment, which the session's shared training must not see. It learns from fewer requests a day, a GNN
of fewer epochs and fewer trees than the config's (this module reads none of its offline numbers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from common.app.config import load_config
from common.app.paths import system_dir
from common.app.registry import get_system
from common.features.store import FeatureRepo
from common.online.simulator import simulate
from common.tracking.runs import load_champion
from systems.pymk.dataset import read_raw
from systems.pymk.online import TRUTH_COLUMNS, PymkOnline, online_system
from systems.pymk.world import HISTORY_DAYS, MECHANISMS, START, PymkWorld
from tests.conftest import data_dir_at
from tests.online_checks import assert_oracle_beats_random_and_champion_between, run_abtest_command

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def config():
    return load_config("pymk", "tiny")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, config, one_torch_thread):
    smaller = {
        "examples": {"users_per_day": 80, "few_friends_per_day": 10},
        "evaluation": config["evaluation"] | {"users_per_day": 20, "few_friends_per_day": 5},
        "models": config["models"]
        | {
            "graphsage": config["models"]["graphsage"] | {"epochs": 3},
            "lightgbm": config["models"]["lightgbm"] | {"n_estimators": 30},
        },
    }
    with data_dir_at(tmp_path_factory.mktemp("pymk-online")):
        get_system("pymk").train(config | smaller)
        yield config


@pytest.fixture(scope="module")
def three_policies(trained):
    """One simulated day of random scores, the champion and the oracle, users split in thirds; three times the
    tiny world's list openings (300 a day), so that the champion's place between the two is not left to
    chance."""
    online = online_system(trained | {"online": trained["online"] | {"requests_per_day": 900}})
    arms = ("random", "champion", "oracle")
    return online, simulate(online.world, lambda day: online.policies(arms), 1, "test-three", seed=0)


def test_the_policies_are_the_champion_each_model_the_baseline_random_and_the_oracle(three_policies):
    online, _ = three_policies
    assert online.names == (
        "champion",
        "lightgbm",
        "logistic_regression",
        "graphsage",
        "adamic_adar",
        "random",
        "oracle",
    )
    assert online.baseline == "adamic_adar"
    assert online.offline_metric == ("validation_map_at_10", "max")


def test_the_oracles_choices_beat_random_ones_and_the_champion_is_between(three_policies):
    assert_oracle_beats_random_and_champion_between(three_policies[1], "accepted_per_request", "ctr")


def test_reactions_are_drawn_from_the_worlds_truth(three_policies, config):
    """Each person's P(sent) and P(accepted), recomputed here from the logs and the world's hidden truth as
    of the simulated day's midnight (the friend-of-friend walk by tie strength, school, employer, city,
    people interacted with, popular people, anyone; the position looked at; the acceptance's terms), with
    0 for a pair that is friends or was asked before, in the logs or earlier that day. Requests and
    acceptances follow them, and no pair is asked twice."""
    online, result = three_policies
    world = PymkWorld(**config["world"])  # a world of its own: the logs and truth as the training saw them
    tables = world.generate()
    t, n, midnight = world.truth, world.n_users, START + online.world.days_offset * DAY
    events = result.events.reset_index(drop=True)
    u, v = events["user_id"].to_numpy(), events["person_id"].to_numpy()

    strength = np.zeros((n, n))
    edges = tables.edges[tables.edges["timestamp"] < midnight]
    strength[edges["src"], edges["dst"]] = strength[edges["dst"], edges["src"]] = t["tie_strength"][edges.index]
    friends = strength > 0
    degree = friends.sum(axis=1)
    walk = strength / np.maximum(strength.sum(axis=1), 1e-300)[:, None] / np.maximum(degree, 1)[None, :]
    friend_of_friend = (walk @ friends)[u, v]  # P(a friend by tie strength, then a uniform friend of theirs)
    mutual = (friends[u] & friends[v]).sum(axis=1)
    at = tables.interactions["timestamp"]
    recent = tables.interactions[(at >= midnight - HISTORY_DAYS * DAY) & (at < midnight)]
    talked = np.zeros((n, n), bool)
    talked[recent["user_id"], recent["other_id"]] = talked[recent["other_id"], recent["user_id"]] = True
    talked &= ~friends
    interacted = talked[u, v]
    weights = dict(zip(MECHANISMS, np.asarray(world.request_weights) / sum(world.request_weights), strict=True))
    share = weights["friend_of_friend"] * friend_of_friend
    for mechanism, column in (("school", "school_id"), ("employer", "employer_id"), ("city", "city")):
        group = tables.users[column].to_numpy()
        share += weights[mechanism] * (group[u] == group[v]) / np.bincount(group)[group[u]]
    share += weights["interacted"] * interacted / np.maximum(talked.sum(axis=1)[u], 1)
    share += weights["popular"] * (degree[v] + 1) / (degree + 1).sum() + weights["random"] / n

    asked_in_logs = set(zip(*np.sort(tables.requests[["sender", "recipient"]].to_numpy(), axis=1).T, strict=True))
    pairs = list(zip(np.minimum(u, v), np.maximum(u, v), strict=True))
    sent_before = events[["request_id"]].assign(pair=pairs, sent=events["sent"]).query("sent == 1")
    first_sent = sent_before.groupby("pair")["request_id"].min()
    asked_today = np.array([first_sent.get(p, np.inf) < r for p, r in zip(pairs, events["request_id"], strict=True)])
    created = (tables.users["created_timestamp"] < midnight).to_numpy()
    fresh = (
        (u != v)
        & created[u]
        & created[v]
        & ~friends[u, v]
        & ~np.array([p in asked_in_logs for p in pairs])
        & ~asked_today
    )
    same = {c: (tables.users[c].to_numpy()[u] == tables.users[c].to_numpy()[v]) for c in ("school_id", "employer_id")}
    acceptance = expit(
        world.accept_bias
        + t["openness"][v]
        + world.accept_school * same["school_id"]
        + world.accept_employer * same["employer_id"]
        + world.accept_city * (t["city"][u] == t["city"][v])
        + world.accept_mutual * np.log1p(mutual)
        + world.accept_interacted * interacted
    )
    looked = world.suggestion_position_decay ** (events["position"].to_numpy() - 1)
    p_send = np.where(fresh, looked * -np.expm1(-world.suggestion_draws * share), 0.0)
    assert np.allclose(events["p_send"], p_send)
    assert np.allclose(events["p_accept"], np.where(fresh, acceptance, 0.0))
    assert interacted[fresh].any() and asked_today.any()  # the rarer terms are exercised

    def within_3_sd(outcomes: pd.Series, p: np.ndarray) -> bool:  # a sum of Bernoullis against its mean
        return abs(outcomes.sum() - p.sum()) < 3 * np.sqrt((p * (1 - p)).sum())

    sent = events["sent"].to_numpy() == 1
    assert within_3_sd(events["sent"], p_send)
    assert within_3_sd(events.loc[sent, "accepted"], acceptance[sent])
    assert (events.loc[~sent, ["accepted", "blocked"]] == 0).all().all()
    assert not (events["accepted"] & events["blocked"]).any()
    assert sent_before["pair"].is_unique  # a pair asked once is never asked again
    # The oracle served the world's truth at the top of the list: P(sent | looked at) x P(accepted).
    oracle = (events["arm"] == "oracle").to_numpy()
    assert np.allclose(events["served_score"][oracle], (p_send / looked * np.where(fresh, acceptance, 0))[oracle])
    assert set(TRUTH_COLUMNS) <= set(events.columns)


def test_the_days_requests_join_the_logs_and_reach_the_graph_features_and_lists_serving_reads(three_policies, config):
    """The day's requests join the requests table in the logs' schema with their status at the next
    midnight; the answers that came by then are friendships in the world's state, the raw tables serving
    builds its graph from, the Feast features and the batch job's lists, which the champion serves the
    next day to its active users; no list holds a pair asked on the simulated day."""
    online, result = three_policies
    world = online.world
    logs = PymkWorld(**config["world"]).generate()
    tables = world.tables
    for name in ("edges", "requests", "blocks"):
        assert list(getattr(tables, name).columns) == list(getattr(logs, name).columns)
        assert (getattr(tables, name).dtypes == getattr(logs, name).dtypes).all()  # the logs' own types
    next_midnight = START + (world.days_offset + 1) * DAY
    assert world.now == next_midnight
    sent = result.events[result.events["sent"] == 1]
    requests = tables.requests.iloc[len(logs.requests) :].reset_index(drop=True)
    assert len(requests) == len(sent) > 50
    assert (requests["sender"].to_numpy() == sent["user_id"].to_numpy()).all()
    assert (requests["recipient"].to_numpy() == sent["person_id"].to_numpy()).all()
    came = pd.to_datetime(sent["answered_timestamp"], utc=True).to_numpy() < next_midnight
    status = np.where(came, np.where(sent["accepted"] == 1, "accepted", "declined"), "pending")
    assert (requests["status"].to_numpy() == status).all() and (status == "pending").any()
    assert requests["answered_timestamp"].isna().to_numpy().tolist() == (~came).tolist()

    formed = sent[came & (sent["accepted"] == 1).to_numpy()]
    assert len(formed) > 20 and len(tables.edges) == len(logs.edges) + len(formed)
    state = world.world.state(world.days_offset + 1)
    u, v = formed["user_id"].to_numpy(), formed["person_id"].to_numpy()
    assert state.is_friend(u, v).all()
    assert not state.fresh(sent["user_id"].to_numpy(), sent["person_id"].to_numpy()).any()

    raw = read_raw(system_dir("pymk") / "raw")  # what a server started after the daily jobs builds its graph from
    assert len(raw.edges.src) == len(tables.edges)
    repo = FeatureRepo("pymk")
    users = np.unique(np.concatenate([u, v]))
    store = repo.online(repo.refs(("user_network",)), [{"user_id": int(user)} for user in users])
    assert store["friends"] == state.degree[users].tolist()

    lists = pd.read_parquet(repo.sources_dir / "pymk_lists.parquet")
    assert (lists["event_timestamp"] == next_midnight).all()
    asked = set(zip(sent["user_id"], sent["person_id"], strict=True))
    for user_id, people in zip(lists["user_id"], lists["people"], strict=True):
        assert not any((user_id, p) in asked or (p, user_id) in asked for p in people)
    champion = online.policies(("champion",))["champion"]  # built afresh: reads the refreshed tables and store
    served = online.serve_model(load_champion("pymk"))  # the same model, through the funnel on demand
    for user_id in lists["user_id"].head(15):
        request = {"user_id": int(user_id)}
        shown = champion(request)
        assert (shown["served_path"] == "precomputed").all() and 0 < len(shown["items"]) <= world.slots
        assert np.array_equal(served(request)["items"], shown["items"])  # the batch job's list is today's


def test_abtest_command_plans_runs_and_logs_the_test(trained):
    run_abtest_command("pymk", "adamic_adar", ("accepted_per_request", "ctr", "acceptance_rate"))


def test_simulated_days_follow_the_logs(config):
    online = PymkOnline(config, refresh_features=False)
    requests = online.arrivals(0, np.random.default_rng(0))
    first = START + online.days_offset * DAY
    assert online.days_offset == config["world"]["n_days"] and online.now == first
    assert len(requests) == online.requests_per_day > 100
    assert requests["timestamp"].between(first, first + DAY, inclusive="left").all()
    assert requests["timestamp"].is_monotonic_increasing
    # Who opens the list: users by their latent activity.
    activity = online.world.truth["activity"]
    assert activity[requests["user_id"]].mean() > 1.5 * activity.mean()
