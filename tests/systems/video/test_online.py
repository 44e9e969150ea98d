"""The video world on the online simulator (systems/video/online.py, common/online/recommender.py): reactions
drawn from the world's truth, policies through the served funnel, logs that become the next day's features,
A/B tests.

A tiny video training of its own: the simulated days are written into its Feast store and its MLflow
experiment, which the session's shared training must not see."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from common.app.config import load_config
from common.app.registry import get_system
from common.online.simulator import simulate
from common.tracking.runs import load_champion
from systems.video.online import TRUTH_COLUMNS, VideoOnline, online_system
from systems.video.recdata import interaction_events
from systems.video.world import START
from tests.conftest import data_dir_at
from tests.online_checks import assert_oracle_beats_random_and_champion_between, run_abtest_command

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DAY_S = 86_400


@pytest.fixture(scope="module")
def config():
    return load_config("video", "tiny")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, config, one_torch_thread):
    with data_dir_at(tmp_path_factory.mktemp("video-online")):
        get_system("video").train(config)
        yield config


@pytest.fixture(scope="module")
def three_policies(trained):
    """One simulated day of random scores, the champion and the oracle, users split in thirds."""
    online = online_system(trained)
    arms = ("random", "champion", "oracle")
    return online, simulate(online.world, lambda day: online.policies(arms), 1, "test-three", seed=0)


def test_the_policies_are_the_champion_each_ranker_the_baseline_random_and_the_oracle(three_policies):
    online, _ = three_policies
    assert online.names == ("champion", "lightgbm", "multitask", "popularity", "random", "oracle")
    assert online.baseline == "popularity"


def test_the_oracles_choices_beat_random_ones_and_the_champion_is_between(three_policies):
    assert_oracle_beats_random_and_champion_between(three_policies[1], "positives_per_request", "ctr")


def test_reactions_are_drawn_from_the_worlds_truth(three_policies):
    """Each impression's P(click) and relevance as the world's model gives them, recomputed here from its
    truth (interest, examination by slot, clickbait, novelty by the request's time; P(watched half), P(like));
    clicks and positives follow them; what was clicked is what the users have watched."""
    online, result = three_policies
    world, events = online.world.world, result.events
    t = world.truth
    user, video = events["user_id"].to_numpy(), events["video_id"].to_numpy()
    s = (t["user_vector"][user] * t["video_vector"][video]).sum(axis=1)
    age_days = ((events["event_timestamp"] - START).dt.total_seconds().to_numpy() - t["upload_s"][video]) / DAY_S
    examination = np.asarray(world.examination)[events["position"].to_numpy() - 1]
    logit = (
        world.click_base
        + world.click_weight * s
        + t["video_clickbait"][video]
        + world.freshness_weight * 0.5 ** (np.maximum(age_days, 0) / world.freshness_half_life_days)
    )
    p_click = examination / (1 + np.exp(-logit))
    p_half = 1 / (1 + np.exp(-(s + t["watch_offset"][video]) / world.watch_noise))
    p_like = 1 / (1 + np.exp(-(s + world.like_base + t["like_habit"][user])))
    relevance = 1 - (1 - p_half) * (1 - p_like)
    assert np.allclose(events["p_click"], p_click)
    assert np.allclose(events["relevance"], relevance)
    assert np.allclose(events["p_positive"], p_click * relevance)

    def within_3_sd(outcomes: pd.Series, p: np.ndarray) -> bool:  # a sum of Bernoullis against its mean
        return abs(outcomes.sum() - p.sum()) < 3 * np.sqrt((p * (1 - p)).sum())

    clicked = events["clicked"].to_numpy() == 1
    positive = (events["liked"] == 1) | (events["watch_fraction"] >= 0.5)
    assert within_3_sd(events["clicked"], p_click)
    assert within_3_sd(positive[clicked], relevance[clicked])
    assert within_3_sd(events.loc[clicked, "watch_fraction"] >= 0.5, p_half[clicked])
    assert (events.loc[~clicked, ["watch_fraction", "liked", "shared"]] == 0).all().all()
    # What each policy served beside the items: the oracle's score is the truth at the top slot, now.
    oracle = events[events["arm"] == "oracle"]
    top = oracle["position"].to_numpy() == 1
    assert np.allclose(oracle["served_score"].to_numpy()[top], oracle["p_positive"].to_numpy()[top])
    # Position bias: the slots' examination, as the logged P(click) of each slot shows it.
    assert events.groupby("position")["p_click"].mean().is_monotonic_decreasing
    # The users' state: every click is a video the user has now watched.
    watched = online.world.watched
    assert all(pair in watched for pair in zip(user[clicked].tolist(), video[clicked].tolist(), strict=True))


def test_the_days_logs_are_the_training_logs_and_reach_the_features_the_funnel_reads(three_policies):
    """The simulated impressions join the interactions table in its schema and the Dataset's events; the
    online store then holds each user's events and watched videos, and the next day's funnel shows nobody a
    video they watched on the simulated day."""
    online, result = three_policies
    world = online.world
    interactions = world.tables.interactions
    logged = result.events.drop(columns=["arm", "day", *TRUTH_COLUMNS], errors="ignore")
    assert list(logged.columns)[: len(interactions.columns)] == list(interactions.columns)
    assert interactions["interaction_id"].isin(result.events["interaction_id"]).sum() == len(result.events)
    assert (interactions.dtypes == world.world.generate().interactions.dtypes).all()  # the logs' own types
    assert world.dataset.n_days == world.days_offset + 1
    expected = interaction_events(result.events[list(interactions.columns)].reset_index(drop=True))
    pd.testing.assert_frame_equal(world.dataset.events.tail(len(expected)).reset_index(drop=True), expected)

    from common.features.store import FeatureRepo

    repo = FeatureRepo("video")
    clicked = result.events[result.events["clicked"] == 1]
    watched = clicked.groupby("user_id")["video_id"].apply(set).head(30)
    refs = repo.refs(("user_activity",))
    users = [{"user_id": int(u)} for u in watched.index]
    store = repo.online(refs, users)
    totals = world.dataset.events.groupby("user_id").size()
    for row, (user_id, videos) in enumerate(watched.items()):
        assert videos <= set(store["seen_item_ids"][row])
        assert store["user_events_total"][row] == totals[user_id]

    champion = online.policies(("champion",))["champion"]  # built afresh: reads the refreshed store
    served = online.serve_model(load_champion("video"))  # the same ranker, put behind the funnel by hand
    next_day = START + pd.Timedelta(days=world.days_offset + 1, hours=12)
    for user_id, videos in watched.items():
        request = {"user_id": user_id, "event_timestamp": next_day}
        shown = champion(request)
        assert len(shown["items"]) == world.slots and not videos & set(shown["items"].tolist())
        assert np.array_equal(served(request)["items"], shown["items"])


def test_abtest_command_plans_runs_and_logs_the_test(trained):
    run_abtest_command("video", "popularity", ("positives_per_request", "watch_minutes_per_request"))


def test_simulated_days_follow_the_logs(config):
    online = VideoOnline(config, refresh_features=False)
    requests = online.arrivals(0, np.random.default_rng(0))
    first = START + pd.Timedelta(days=online.days_offset)
    assert len(requests) == config["world"]["requests_per_day"]
    assert requests["event_timestamp"].between(first, first + pd.Timedelta(days=1)).all()
    assert requests["event_timestamp"].is_monotonic_increasing
    assert requests["request_id"].min() > online.tables.interactions["request_id"].max()


def test_continual_training_gates_promotes_and_keeps_a_frozen_model(trained):
    """A simulated day against the frozen champion ranker: the day's numbers, its monitoring and MLflow's
    plots; then the promotion path itself: the ranker retrained (the multi-task champion fine-tuned) on the
    window, gated against the champion on the newest day, registered and served by alias."""
    import mlflow
    from mlflow import MlflowClient

    from common.online.continual import run_continual

    online = online_system(trained)
    assert online.world.world.drift_per_day == trained["online"]["drift_per_day"] > 0  # tastes drift online
    learner = online.learner()
    result = run_continual("video", online, learner, days=1, seed=0, experiment="test-continual")
    assert list(result.daily["day"]) == [0]
    assert result.daily[["frozen", "continual", "gate_candidate", "gate_champion"]].notna().all().all()
    # Day one is monitoring's reference: no drift from itself; the served P(positive)'s calibration is measured.
    report = result.reports[0]
    assert report.prediction_psi == pytest.approx(0.0, abs=1e-9)
    assert set(report.features["column"]) == set(learner.monitored)
    assert 0 < report.calibration["mean_predicted"] < 1 and 0 < report.calibration["observed_rate"] < 1
    runs = mlflow.search_runs(experiment_names=["video"], filter_string="tags.kind = 'continual'")
    assert len(runs) == 1
    artifacts = {a.path for a in MlflowClient().list_artifacts(runs["run_id"].iloc[0])}
    assert {"continual_vs_frozen.png", "drift.png", "calibration.png", "continual.md"} <= artifacts

    before = load_champion("video")
    retrieval = load_champion("video", "retrieval").version
    candidate = learner.retrain(before)
    assert candidate.metric == "test_logloss_positive"
    assert candidate.passes == (candidate.value < candidate.champion_value)
    if learner.family == "multitask":  # fine-tuned from the champion's weights: the champion's input encoding
        assert candidate.model.classifier.encoder_.cardinalities == before.classifier.encoder_.cardinalities
    version = learner.promote(candidate, day=1)
    after = load_champion("video")
    assert after.version == version != before.version
    assert load_champion("video", "retrieval").version == retrieval  # only the ranker retrains
    dataset = online.world.dataset
    sample = learner.examples(dataset, dataset.events.tail(50), dataset.day_start(dataset.n_days - 1))[0]
    assert np.allclose(
        after.classifier.predict_proba(sample)[:, 1], candidate.model.classifier.predict_proba(sample)[:, 1]
    )
    run = MlflowClient().get_run(after.run_id)
    assert run.data.tags["continual"] == "true" and run.info.run_name == learner.family
    served = online.serve_model(after)  # the promoted ranker behind the served funnel
    request = {"user_id": int(dataset.events["user_id"].iloc[-1]), "event_timestamp": dataset.day_start(dataset.n_days)}
    assert len(served(request)["items"]) == online.world.slots


def test_offline_and_online_orders_of_the_rankers_are_compared(trained):
    """The rankers the latest training measured by validation nDCG (not its retrieval run) serve a share each."""
    from common.online.report import offline_vs_online_report
    from common.tracking.runs import trained_model_metrics

    report = offline_vs_online_report("video", online_system(trained), days=1, seed=0)
    metric = "validation_ndcg_at_10"
    offline = {name: m[metric] for name, m in trained_model_metrics("video").items() if metric in m}
    assert set(report.result.arms) == set(offline) and len(offline) >= 2
    assert f"| {max(offline, key=offline.get)} (offline best) |" in report.text
