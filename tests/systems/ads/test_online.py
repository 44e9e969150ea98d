"""The ads world on the online simulator (systems/ads/online.py, common/online/): reactions drawn from the
world's truth, policies through the served funnel, logs that become the next day's features, A/B tests.

A tiny ads training of its own: the simulated days are written into its Feast store and its MLflow
experiment, which the session's shared training must not see."""

from __future__ import annotations

from dataclasses import replace

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from common.app.cli import app
from common.app.registry import get_system
from common.features.store import FeatureRepo
from common.online.abtest import assign, compare_ratio
from common.online.simulator import simulate
from systems.ads.online import online_system
from systems.ads.world import START, _prior_exposures
from tests.conftest import data_dir_at
from tests.online_checks import run_abtest_command


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_ads_config):
    with data_dir_at(tmp_path_factory.mktemp("ads-online")):
        get_system("ads").train(tiny_ads_config)
        yield tiny_ads_config


@pytest.fixture(scope="module")
def three_policies(trained):
    """One simulated day of the champion, random scores and the oracle, users split in thirds."""
    online = online_system(trained)
    arms = ("random", "champion", "oracle")
    return online, simulate(online.world, lambda day: online.policies(arms), 1, "test-three", seed=0)


def test_the_oracles_choices_beat_random_ones_and_the_champion_is_between(three_policies):
    _, result = three_policies
    for metric in ("revenue_per_request", "ctr"):
        oracle_vs_random = result.compare("random", "oracle", metric)
        assert oracle_vs_random.significant and oracle_vs_random.difference > 0, metric
    values = {arm: result.value(arm, "revenue_per_request") for arm in result.arms}
    assert values["random"] < values["champion"] < values["oracle"]


def test_reactions_are_drawn_from_the_worlds_true_click_model(three_policies):
    """Each impression's P(click) is the world's, with the user's exposures counted from the whole log, the
    history and the simulated day together, by the world's own vectorised count; clicks follow it."""
    online, result = three_policies
    events = online.world.dataset.events.merge(online.world.dataset.oracle, on="impression_id", suffixes=("", "_p"))
    exposures = _prior_exposures(events.assign(device=0))
    simulated = events["impression_id"].isin(result.events["impression_id"]).to_numpy()
    day = events[simulated]
    device = pd.Categorical(day["device"], ["mobile", "desktop", "tablet"]).codes
    columns = [day[c].to_numpy() for c in ("user_id", "ad_id")]
    day_index = ((day["event_timestamp"] - START) // pd.Timedelta(days=1)).to_numpy()
    truth = online.world.world.click_probability(
        *columns, device, day["hour"].to_numpy(), day["position"].to_numpy(), exposures[simulated], day_index
    )
    assert np.allclose(day["clicked_p"], truth)
    assert online.world.world.drift_per_day > 0  # the simulated day's tastes have drifted from the logs'
    p = result.events["p_click"].to_numpy()
    clicks = result.events["clicked"].sum()
    assert abs(clicks - p.sum()) < 3 * np.sqrt((p * (1 - p)).sum())  # a binomial sum's 3 standard deviations
    # Position bias: the truth's examination probabilities, as the logged slots show them.
    by_slot = result.events.groupby("position")["p_click"].mean()
    assert by_slot.is_monotonic_decreasing


def test_the_days_logs_become_the_next_days_features(three_policies):
    """The simulated impressions join the logs in the training schema, and the fatigue list the funnel reads
    from Feast holds what each user was shown on the simulated day."""
    online, result = three_policies
    assert list(online.world.dataset.events.columns) == [
        c for c in result.events.columns if c not in ("p_click", "arm", "day") and not c.startswith("served_")
    ]
    assert online.world.dataset.n_days == online.world.days_offset + 1
    shown = result.events.groupby("user_id")["ad_id"].apply(list).head(20)
    served = online.policies(("champion",))  # services built afresh read the refreshed store
    assert served
    repo = FeatureRepo("ads")
    refs = repo.refs(("user_activity",))
    for user_id, ads in shown.items():
        recent = repo.online(refs, [{"user_id": int(user_id)}])["recent_ad_ids_7d"][0]
        assert set(ads) <= set(recent)


def test_identical_arms_of_simulated_users_cover_zero_at_the_stated_rate(three_policies):
    """A/A tests on simulated users: the champion's users split afresh by 400 experiments' hashes; the 95%
    interval of revenue per request must hold zero in about 95% of the splits."""
    _, result = three_policies
    totals = result.totals("champion")
    users = totals.index.to_numpy()
    covered = []
    for experiment in range(400):
        treated = assign(users, f"aa-{experiment}")
        arms = [totals[mask] for mask in (~treated, treated)]
        c = compare_ratio(*[(t["revenue"], t["requests"]) for t in arms])
        covered.append(not c.significant)
    assert 0.92 <= np.mean(covered) <= 0.98


def test_abtest_command_plans_runs_and_logs_the_test(trained):
    runner = run_abtest_command("ads", "bid_only", ("revenue_per_request", "ctr", "hide_rate"))
    args = ["abtest", "--system", "ads", "--scale", "tiny", "--days", "1", "--a", "champion", "--b", "lightgbn"]
    unknown = runner.invoke(app, args)
    assert unknown.exit_code == 1 and "no policy 'lightgbn'" in unknown.output and "lightgbm" in unknown.output


def test_a_system_without_an_online_part_says_which_have_one(monkeypatch):
    """Every shipped system has one; a plugin system may not (pymk stands in for one, its online part taken away)."""
    from common.app import cli

    def without_pymks(name: str):
        system = get_system(name)
        return replace(system, online=None) if name == "pymk" else system

    monkeypatch.setattr(cli, "get_system", without_pymks)
    result = CliRunner().invoke(app, ["online", "--system", "pymk"])
    assert result.exit_code == 1 and "pymk has no online simulation yet" in result.output
    assert "ads" in result.output and "pymk," not in result.output


def test_simulated_days_follow_the_logs():
    from common.app.config import load_config
    from systems.ads.online import AdsOnline

    online = AdsOnline(load_config("ads", "tiny"), refresh_features=False)
    requests = online.arrivals(0, np.random.default_rng(0))
    first = START + pd.Timedelta(days=online.days_offset)
    assert requests["event_timestamp"].between(first, first + pd.Timedelta(days=1)).all()
    assert requests["event_timestamp"].is_monotonic_increasing
    assert requests["request_id"].min() > online.dataset.events["request_id"].max()


def test_continual_training_gates_promotes_and_keeps_a_frozen_model(trained):
    """A simulated day against the frozen champion: the day's numbers and MLflow's plots; then the promotion
    path itself: a retrained model, gated against the champion on the newest day, registered and served by
    alias."""
    from mlflow import MlflowClient

    from common.online.continual import run_continual
    from common.tracking.runs import load_champion

    online = online_system(trained)
    learner = online.learner()
    result = run_continual("ads", online, learner, days=1, seed=0, experiment="test-continual")
    assert list(result.daily["day"]) == [0]
    assert result.daily[["frozen", "continual", "gate_candidate", "gate_champion"]].notna().all().all()
    # Day one is monitoring's reference: no drift from itself; its calibration is measured.
    assert result.reports[0].prediction_psi == pytest.approx(0.0, abs=1e-9)
    assert 0 < result.reports[0].calibration["mean_predicted"] < 1
    run = mlflow_run("continual")
    artifacts = {a.path for a in MlflowClient().list_artifacts(run)}
    assert {"continual_vs_frozen.png", "drift.png", "calibration.png", "continual.md"} <= artifacts

    before = load_champion("ads")
    candidate = learner.retrain(before)
    assert candidate.passes == (candidate.value < candidate.champion_value)
    version = learner.promote(candidate, day=2)
    after = load_champion("ads")
    assert after.version == version != before.version
    rows = online.world.dataset.events.tail(50)
    sample = learner.task.training_rows(replace(online.world.dataset, events=rows), FeatureRepo("ads"))
    assert np.allclose(
        after.classifier.predict_proba(sample)[:, 1], candidate.model.classifier.predict_proba(sample)[:, 1]
    )
    assert MlflowClient().get_run(after.run_id).data.tags["continual"] == "true"


def mlflow_run(kind: str) -> str:
    """The one run of this kind (abtest, continual) in the module's ads experiment."""
    runs = mlflow.search_runs(experiment_names=["ads"], filter_string=f"tags.kind = '{kind}'")
    assert len(runs) == 1
    return runs["run_id"].iloc[0]


def test_offline_and_online_orders_of_the_trained_models_are_compared(trained):
    from common.online.report import offline_vs_online_report
    from common.tracking.runs import trained_model_metrics

    report = offline_vs_online_report("ads", online_system(trained), days=1, seed=0)
    offline = trained_model_metrics("ads")
    assert set(report.result.arms) == set(offline)  # every trained model served its share of users
    best = min(offline, key=lambda name: offline[name]["validation_nce"])
    assert f"| {best} (offline best) |" in report.text
    assert -1.0 <= report.metrics["kendall_tau"] <= 1.0
