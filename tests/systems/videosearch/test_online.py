"""Video search on the online simulator (systems/videosearch/online.py): searches drawn from the world's query
generator, pages from the served funnel, reactions drawn from the world's truth, the search log, A/B tests.

A tiny video-search training of its own: the simulated days write a search log and MLflow runs, which the
session's shared training must not see. Its offline evaluation judges fewer queries and tries fewer text
weights than the config's (this module reads none of it), which shortens the training by a third."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from scipy import stats

from common.app.config import load_config
from common.app.registry import get_system
from common.online.simulator import simulate
from common.search.query import tokenise
from common.serving.app import create_app
from systems.video.world import COUNTRIES
from systems.videosearch.online import SEARCH_LOG, TRUTH_COLUMNS, log_rows, online_system, search_log_path
from systems.videosearch.world import CONCEPTS
from tests.conftest import data_dir_at
from tests.online_checks import assert_oracle_beats_random_and_champion_between, run_abtest_command

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def config():
    return load_config("videosearch", "tiny")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, config, one_torch_thread):
    with data_dir_at(tmp_path_factory.mktemp("videosearch-online")):
        shrunk = {
            "evaluation": config["evaluation"] | {"queries": 60},
            "fusion": config["fusion"] | {"text_weights": [0.7]},
        }
        get_system("videosearch").train(config | shrunk)
        yield config


@pytest.fixture(scope="module")
def three_policies(trained):
    """One simulated day of random pages, the champion's and the oracle's, searchers split in thirds (the tiny
    config's 3,000 searches: about 1,000 an arm, so that the champion's place between the two is not chance)."""
    online = online_system(trained)
    arms = ("random", "champion", "oracle")
    return online, simulate(online.world, lambda day: online.policies(arms), 1, "test-three", seed=0)


def test_the_policies_are_the_champion_each_blend_the_text_baseline_random_and_the_oracle(three_policies):
    online, _ = three_policies
    assert online.names == ("champion", "word", "weighted_sum", "rrf", "text", "random", "oracle")
    assert online.baseline == "text"
    assert online.offline_metric == ("validation_mrr", "max")


def test_the_oracles_choices_beat_random_ones_and_the_champion_is_between(three_policies):
    assert_oracle_beats_random_and_champion_between(three_policies[1], "watch_minutes_per_search", "ctr")


def test_searches_come_from_the_worlds_searchers_and_its_query_generator(three_policies):
    """Who searches carries the searcher's own age and country (what the rules read); the heavy searchers
    search most; every query is written for the video its searcher had in mind (it holds all its words)."""
    online, result = three_policies
    world, requests = online.world.world, result.requests
    t = world.truth
    users = requests["user_id"].to_numpy()
    assert (requests["age"].to_numpy() == t["searcher_age"][users]).all()
    assert (requests["country"].to_numpy() == np.asarray(COUNTRIES)[t["searcher_country"][users]]).all()
    # Searchers by activity: the searcher of the average search is three times as active as the average one.
    assert t["searcher_activity"][users].mean() > 2 * t["searcher_activity"].mean()
    assert requests["event_timestamp"].is_monotonic_increasing
    intended = result.events.groupby("request_id")["intended_video_id"].first()
    content = video_words(online.world.world)
    queries = requests.set_index("request_id")["query"]
    assert all(set(tokenise(queries[r])) <= content[v] for r, v in intended.items())


def video_words(world) -> list[set[str]]:
    """The words each video holds, recomputed from the catalogue's text and the concepts its frames show."""
    videos = world.generate()["videos"]
    texts = videos["title"] + " " + videos["description"] + " " + videos["tags"].str.join(" ")
    shown = world.truth["video_concepts"]
    return [set(tokenise(text)) | {CONCEPTS[c] for c in shown[v] if c >= 0} for v, text in enumerate(texts)]


def test_reactions_are_drawn_from_the_worlds_truth(three_policies):
    """Relevance recomputed from the videos' words (a result fits when it holds every word of the query), P(click)
    from the world's parameters (position^-decay x sigmoid(base + relevance + the video world's clickbait));
    clicks, completions and the shares watched follow them."""
    online, result = three_policies
    world, events = online.world.world, result.events
    content = video_words(world)
    fits = np.array([set(tokenise(q)) <= content[v] for q, v in zip(events["query"], events["video_id"], strict=True)])
    assert (events["relevance"].to_numpy() == fits).all()
    assert 0.05 < fits.mean() < 0.95  # both kinds of result were shown
    clickbait = world.catalogue_.truth["video_clickbait"][events["video_id"]]
    logit = world.click_base + world.click_relevance * fits + world.clickbait_weight * clickbait
    p = events["position"].to_numpy(float) ** -world.examination_decay / (1 + np.exp(-logit))
    assert np.allclose(events["p_click"], p)

    def within_3_sd(outcomes, p) -> bool:  # a sum of Bernoullis against its mean
        return abs(np.sum(outcomes) - np.sum(p)) < 3 * np.sqrt(np.sum(p * (1 - p)))

    clicked = events["clicked"].to_numpy() == 1
    assert within_3_sd(clicked, p)
    assert (events.loc[~clicked, ["watch_fraction", "completed", "watch_seconds"]] == 0).all().all()
    for relevance in (0, 1):
        rows = events[clicked & (fits == relevance)]
        complete = world.complete_rate[relevance]
        assert within_3_sd(rows["completed"], np.full(len(rows), complete))
        partial = rows.loc[rows["completed"] == 0, "watch_fraction"]
        a, b = world.partial_watch[relevance]
        assert stats.kstest(partial, stats.beta(a, b).cdf).pvalue > 0.001
    duration = world.catalogue_.truth["video_duration_s"][events["video_id"]]
    assert np.allclose(events["watch_seconds"], events["watch_fraction"] * duration)
    # What each policy served beside its results: the oracle puts every fitting video first.
    oracle = events[events["arm"] == "oracle"]
    assert ((oracle["served_score"] >= 1) == (oracle["relevance"] == 1)).all()
    first_misfit = oracle[oracle["relevance"] == 0].groupby("request_id")["position"].min()
    last_fit = oracle[oracle["relevance"] == 1].groupby("request_id")["position"].max()
    both = first_misfit.index.intersection(last_fit.index)
    assert len(both) and (last_fit[both] < first_misfit[both]).all()


def test_the_days_rows_join_the_search_log_and_the_pages_are_the_served_ones(three_policies):
    """The simulated day's results are rows of the search log in its schema, the truth apart; the policies'
    pages are the endpoint's for the same query, age and country (the same funnel and rules)."""
    online, result = three_policies
    logged = pd.read_parquet(search_log_path())
    assert list(logged.columns) == list(SEARCH_LOG)
    assert logged.dtypes.astype(str).to_dict() == SEARCH_LOG
    expected = log_rows(result.events)
    pd.testing.assert_frame_equal(logged, expected)
    pd.testing.assert_frame_equal(online.world.logs, expected)
    assert len(logged) == len(result.events) and set(TRUTH_COLUMNS) <= set(result.events.columns)
    assert not set(TRUTH_COLUMNS) & set(logged.columns)

    champion = online.policies(("champion",))["champion"]
    requests = result.requests[result.requests["arm"] == "champion"].head(20)
    with TestClient(create_app(["videosearch"], "tiny")) as client:
        for request in requests.to_dict("records"):
            body = {"query": request["query"], "k": online.world.k, "age": int(request["age"])}
            body["country"] = request["country"]
            response = client.post("/videosearch/query", json=body)
            assert response.status_code == 200, response.text
            served = [video["video_id"] for video in response.json()["videos"]]
            assert champion(request)["items"].tolist() == served
            shown = result.events.loc[result.events["request_id"] == request["request_id"], "video_id"]
            assert shown.tolist() == served


def test_abtest_command_plans_runs_and_logs_the_test(trained):
    run_abtest_command("videosearch", "text", ("watch_minutes_per_search", "ctr", "completion_rate"))
