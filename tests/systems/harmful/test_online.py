"""The harmful world on the online simulator (systems/harmful/online.py): decisions through the served
moderation, reach and reports drawn from the world's truth, the day's posts and reports joining the logs and the
author features, A/B tests.

A training of its own, cheaper than the pipeline test's, whose champion acts: the tiny world's models reach
the removal precision in almost no category (6,000 posts are too few to learn the categories from reports), so
they would moderate about as no model does. Here one model (early fusion, ten epochs) on a world of 20,000
posts whose users report harm more readily and benign posts less often (cleaner natural labels): about 40 s
on an idle core. Its simulated days are written into its own Feast store and MLflow experiment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from common.app.config import load_config
from common.app.registry import get_system
from common.features.store import FeatureRepo
from common.images.files import decode_image
from common.online.simulator import Policy, simulate
from common.tracking.runs import load_champion
from systems.harmful.features import natural_labels
from systems.harmful.online import BASELINE, METRICS, TRUTH_COLUMNS, HarmfulOnline, online_system, posts_rows
from systems.harmful.serving import ModerationService
from systems.harmful.world import CATEGORIES, TOPICS
from tests.conftest import data_dir_at
from tests.online_checks import run_abtest_command

pytestmark = pytest.mark.usefixtures("one_torch_thread")
# The test's world: more posts than tiny's, reported more readily and falsely less often, slightly more harm.
WORLD = {
    "n_authors": 2_500,
    "n_posts": 20_000,
    "n_hand_labelled": 1_500,
    "prevalence": [0.06, 0.04, 0.05, 0.12],
    "report_rate": [2.0, 3.0, 1.5, 3.0],
    "decoy_rate": 0.02,
    "false_report_rate": 0.002,
}


@pytest.fixture(scope="module")
def config():
    tiny = load_config("harmful", "tiny")
    return tiny | {
        "world": tiny["world"] | WORLD,
        "models": {"early_fusion": {"kind": "early"}},
        "network": tiny["network"] | {"epochs": 10},
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory, config, one_torch_thread):
    with data_dir_at(tmp_path_factory.mktemp("harmful-online")):
        get_system("harmful").train(config)
        yield config


@pytest.fixture(scope="module")
def three_policies(trained):
    """One simulated day of the champion's scores given to random posts, the champion and the oracle, authors
    split in thirds; 2,400 posts (the world's 2,000 a day would do, barely: prevalence rests on a few posts with
    a large reach)."""
    online = online_system(trained | {"online": trained["online"] | {"requests_per_day": 2_400}})
    arms = ("random", "champion", "oracle")
    return online, simulate(online.world, lambda day: online.policies(arms), 1, "test-three", seed=0)


def test_the_policies_are_the_champion_each_model_reports_only_random_and_the_oracle(three_policies):
    online, _ = three_policies
    assert online.names == ("champion", "early_fusion", "reports_only", "random", "oracle")
    assert online.baseline == BASELINE == "reports_only"
    assert online.offline_metric == ("validation_mean_pr_auc", "max")


def test_the_oracles_choices_beat_random_ones_and_the_champion_is_between(three_policies):
    """tests/online_checks.py's check where lower is better: prevalence (the primary) falls significantly from
    random to the oracle and from random to the champion, which stays above the oracle; the oracle's proactive
    rate (higher is better) beats random's too."""
    _, result = three_policies
    assert next(iter(result.world.metrics)) == "prevalence" and METRICS["prevalence"].lower_is_better
    assert not METRICS["proactive_rate"].lower_is_better
    for metric, better in (("prevalence", -1), ("proactive_rate", 1)):
        oracle_vs_random = result.compare("random", "oracle", metric)
        assert oracle_vs_random.significant and better * oracle_vs_random.difference > 0, metric
    champion_vs_random = result.compare("random", "champion", "prevalence")
    assert champion_vs_random.significant and champion_vs_random.difference < 0
    values = {arm: result.value(arm, "prevalence") for arm in result.arms}
    assert values["random"] > values["champion"] > values["oracle"] == 0.0
    # Random acts as often as the champion, on the wrong posts: its removals are reversed on appeal, not the oracle's.
    removed = result.events.groupby("arm")["removed_at_posting"].mean()
    assert abs(removed["random"] - removed["champion"]) < 0.03
    assert result.value("random", "reversed_appeals") > result.value("oracle", "reversed_appeals") == 0.0


def within_3_sd(observed, expected: np.ndarray, variance: np.ndarray) -> bool:
    """A sum of independent draws against its mean."""
    return abs(np.sum(observed) - expected.sum()) < 3 * np.sqrt(variance.sum())


def test_reactions_are_drawn_from_the_worlds_truth(three_policies, trained):
    """Each post's reach and reports, recomputed here from the world's parameters and the post's truth: the
    reach unmoderated, a fifth of it demoted, none removed; P(reported) from the report rates of its true
    categories (a benign post's from the false-report rate, more with a harmful-looking word, on sport and
    shopping), scaled by the square root of its reach over the logs' median; a harmful reported post taken down
    at its first report, keeping the share of its reach seen by then; appeals reversed exactly on benign
    removals."""
    online, result = three_policies
    world = online.world.world
    events = result.events.reset_index(drop=True)
    truth = events[[f"true_{c}" for c in CATEGORIES]].to_numpy(bool)
    harmful = truth.any(axis=1)
    assert (events["harmful"] == harmful).all() and set(TRUTH_COLUMNS) <= set(events.columns)
    action = events["action"].to_numpy()
    assert (action == events["served_action"]).all()  # the served decision is the one carried out
    at_posting, taken_down = events["removed_at_posting"].to_numpy(bool), events["taken_down_on_report"].to_numpy(bool)
    assert (at_posting == (action == "remove")).all() and not (at_posting & taken_down).any()

    # Reach: as the decision leaves it.
    potential, shown = events["potential_impressions"].to_numpy(), events["shown_impressions"].to_numpy()
    assert (shown[action == "allow"] == potential[action == "allow"]).all()
    assert (shown[at_posting] == 0).all() and (
        events.loc[at_posting, ["impressions", "likes", "reports_total"]] == 0
    ).all().all()
    demoted = action == "demote"
    assert demoted.sum() > 30 and within_3_sd(shown[demoted], 0.2 * potential[demoted], 0.16 * potential[demoted])
    stayed = ~at_posting & ~taken_down
    assert (events["impressions"].to_numpy()[stayed] == shown[stayed]).all()

    # Reports: P(at least one) from the world's report model.
    median = world.generate()["posts"]["impressions"].median()
    looks_bad = events["decoy"].to_numpy(bool) | events["mild"].to_numpy(bool)
    disliked = events["topic"].isin([TOPICS.index("sport"), TOPICS.index("shopping")]).to_numpy()
    false_rate = world.false_report_rate * np.where(looks_bad, 4.0, 1.0) * np.where(disliked, 3.0, 1.0)
    rate = np.where(harmful, (truth * np.asarray(world.report_rate)).sum(axis=1), false_rate)
    expected = rate * np.sqrt(shown / median)
    p_reported = (1 - np.exp(-expected))[~at_posting]
    reported = events["reports_total"].to_numpy()[~at_posting] > 0
    assert within_3_sd(reported, p_reported, p_reported * (1 - p_reported))
    benign_kept = ~at_posting & ~harmful  # every report counted: Poisson
    assert within_3_sd(events["reports_total"][benign_kept], expected[benign_kept], expected[benign_kept])

    # Taken down at the first report, by reviewers who know the truth (annotator_error 0): only harmful posts,
    # with the share of their reach that the lognormal report delay says was seen by then.
    assert taken_down.sum() > 50 and harmful[taken_down].all() and (events["reports_total"][taken_down] == 1).all()
    removed_at = pd.to_datetime(events["removed_at"], utc=True)
    created = pd.to_datetime(events["created_at"], utc=True)
    delay = ((removed_at - created) / pd.Timedelta(days=1)).to_numpy()[taken_down]
    seen = stats.lognorm(s=world.report_delay_sigma, scale=world.report_delay_days).cdf(delay)
    kept = events["impressions"].to_numpy()[taken_down]
    assert (delay > 0).all() and (kept <= shown[taken_down]).all()
    assert within_3_sd(kept, seen * shown[taken_down], seen * (1 - seen) * shown[taken_down])
    # Appeals: every removal, reversed when the post was not harmful.
    removed = at_posting | taken_down
    assert (events["reversed"].to_numpy(bool) == (removed & ~harmful)).all()

    # What each policy served: the oracle the truth, so it removes exactly the harmful posts; the champion its
    # probabilities, decided by its thresholds.
    oracle = (events["arm"] == "oracle").to_numpy()
    assert np.array_equal(events.loc[oracle, [f"served_{c}" for c in CATEGORIES]].to_numpy(), truth[oracle])
    assert ((action == "remove") == harmful)[oracle].all()
    champion = (events["arm"] == "champion").to_numpy()
    thresholds = load_champion("harmful").classifier.thresholds
    p = events.loc[champion, [f"served_{c}" for c in CATEGORIES]].to_numpy()
    assert np.array_equal(action[champion] == "remove", (p >= thresholds.remove).any(axis=1))


def test_the_days_posts_and_reports_join_the_logs_and_reach_the_author_features(three_policies, trained):
    """The day's posts join the posts table in its schema, the reports that came by the day's end the reports
    table (the later ones wait for their day): the natural labels a next training reads. Each author's confirmed
    violations and reports reach the online store, and the served moderation reads them."""
    online, result = three_policies
    world = online.world
    logs = world.world.generate()
    posts, reports = world.tables["posts"], world.tables["reports"]
    assert list(posts.columns) == list(logs["posts"].columns) and (posts.dtypes == logs["posts"].dtypes).all()
    day = posts.tail(len(result.events)).reset_index(drop=True)
    pd.testing.assert_frame_equal(day, posts_rows(result.events, logs["posts"], world.start))
    assert (day["day"] == world.days_offset).all()

    day_end = world.start + pd.Timedelta(days=world.days_offset + 1)
    new = reports.iloc[len(logs["reports"]) :]
    assert set(new["post_id"]) <= set(day["post_id"]) and (new["reported_at"] < day_end).all()
    assert new["reported_at"].is_monotonic_increasing and len(new) > 100
    came = new["post_id"].value_counts().reindex(day["post_id"], fill_value=0).to_numpy()
    assert np.array_equal(day["n_reports"], came)
    events = result.events.reset_index(drop=True)
    assert np.array_equal(came, events["n_reports"]) and (events["reports_total"] >= came).all()
    assert len(world.pending_reports) == (events["reports_total"] - came).sum() > 0  # the late ones, still to come
    # The natural labels: a post taken down on its report carries that report's category; one removed at posting
    # was never seen, so never reported: it counts as benign (the feedback a next training must correct for).
    labels = natural_labels(day, reports, CATEGORIES).any(axis=1)
    assert labels[events["taken_down_on_report"].to_numpy(bool) & (came > 0)].all()
    assert not labels[events["removed_at_posting"].to_numpy(bool)].any()

    removed = events["removed_at_posting"] | events["taken_down_on_report"]
    violations = events[removed & ~events["reversed"]].groupby("author_id").size()
    reported = new.merge(day[["post_id", "author_id"]], on="post_id").groupby("author_id").size()
    authors = logs["authors"].set_index("author_id")
    repo = FeatureRepo("harmful")
    ids = [int(a) for a in violations.index[:30]]
    store = repo.online(repo.refs(("author_profile",)), [{"author_id": a} for a in ids])
    for row, author_id in enumerate(ids):
        assert store["violation_count"][row] == authors.loc[author_id, "violation_count"] + violations[author_id]
        assert store["report_count"][row] == authors.loc[author_id, "report_count"] + reported.get(author_id, 0)
    service = ModerationService(trained, load_champion("harmful"), repo)
    profile, known = service.author(ids[0])
    assert known and profile["violation_count"] == authors.loc[ids[0], "violation_count"] + violations[ids[0]]


def test_abtest_command_plans_runs_and_logs_the_test(trained):
    """`make abtest` on the tiny world (the command's config), the champion against reports only."""
    run_abtest_command("harmful", BASELINE, tuple(METRICS))


def allow_everything(world: HarmfulOnline) -> Policy:
    """No moderation at all, straight to the world (its mechanics alone, without a model)."""

    def policy(request: dict) -> np.ndarray:
        world.enforce(int(request["post_id"]), "allow")
        return np.array([request["post_id"]])

    return policy


def test_simulated_days_follow_the_logs_and_late_reports_join_on_their_day():
    config = load_config("harmful", "tiny")
    online = HarmfulOnline(config, refresh_features=False)
    logs = online.tables["posts"]
    requests = online.arrivals(0, np.random.default_rng(0))
    first = online.start + pd.Timedelta(days=online.days_offset)
    assert online.days_offset == config["world"]["n_days"] and len(requests) == config["world"]["n_posts"] // 10
    assert requests["created_at"].between(first, first + pd.Timedelta(days=1)).all()
    assert requests["created_at"].is_monotonic_increasing
    assert requests["post_id"].min() == logs["post_id"].max() + 1 and requests["post_id"].is_unique
    # A request is what POST /harmful/moderate takes: the image as PNG bytes, the world's pixels.
    day = online.posts_today
    with_image = day["has_image"].to_numpy()
    assert requests["image"].isna().to_numpy().tolist() == (~with_image).tolist()
    pixels = online.world.images(day[with_image].head(5))
    decoded = [decode_image(png, config["image_size"]) for png in requests.loc[with_image, "image"].head(5)]
    assert np.array_equal(np.stack(decoded), pixels)
    # The same authors as in the logs, harm as often.
    assert set(requests["author_id"]) <= set(online.tables["authors"]["author_id"])
    harm = [table[[f"true_{c}" for c in CATEGORIES]].to_numpy().any(axis=1).mean() for table in (day, logs)]
    assert abs(harm[0] - harm[1]) < 0.05

    # Two days of no moderation at all: a report drawn on day one that comes on day two joins then.
    fresh = HarmfulOnline(config, refresh_features=False)
    result = simulate(fresh, {"none": allow_everything(fresh)}, 2, "test-days", seed=0)
    reports = fresh.tables["reports"].iloc[len(online.tables["reports"]) :]
    second_day = fresh.start + pd.Timedelta(days=fresh.days_offset + 1)
    first_day_posts = result.events.loc[result.events["day"] == 0, "post_id"]
    late = reports[reports["post_id"].isin(first_day_posts) & (reports["reported_at"] >= second_day)]
    assert len(late) > 0 and (reports["reported_at"] < second_day + pd.Timedelta(days=1)).all()
    # Only user reports took posts down, after review: nothing proactive, nothing reversed.
    assert result.value("none", "proactive_rate") == 0.0 == result.value("none", "reversed_appeals")
