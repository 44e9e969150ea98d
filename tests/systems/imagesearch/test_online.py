"""The image-search world on the online simulator (systems/imagesearch/online.py): clicks drawn from the world's
click model, policies through the served path, the day's logs joining the click-pair training's and its uploads
the served index, A/B tests.

A tiny training of its own, in a tmp data dir (the simulated days rewrite its catalogue files and its index,
which the session's shared training must not see), with two encoders only: PCA (the baseline) and the CNN on
click pairs. SimCLR is the tiny config's longest fit, and this module reads none of its numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from common.app.config import load_config
from common.app.registry import get_system
from common.online.simulator import simulate
from systems.imagesearch.online import IMPRESSION_COLUMNS, TRUTH_COLUMNS, ImageSearchOnline, online_system
from systems.imagesearch.pipeline import click_training_set, raw_dir
from systems.imagesearch.serving import ImageSearchService
from systems.imagesearch.world import ImageSearchWorld
from tests.conftest import data_dir_at
from tests.online_checks import assert_oracle_beats_random_and_champion_between, run_abtest_command

pytestmark = pytest.mark.usefixtures("one_torch_thread")
METRICS = ("clicks_per_search", "ctr", "success_rate", "mean_grade")


@pytest.fixture(scope="module")
def config():
    return load_config("imagesearch", "tiny")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, config, one_torch_thread):
    models = {name: config["models"][name] for name in ("pca", "clicks")}
    with data_dir_at(tmp_path_factory.mktemp("imagesearch-online")):
        get_system("imagesearch").train(config | {"models": models})
        yield config


@pytest.fixture(scope="module")
def three_policies(trained):
    """One simulated day of random, the champion and the oracle, searches split in thirds; four times the tiny
    world's searches (150 a day), so that the champion's place between the two is not left to chance."""
    online = online_system(trained | {"online": trained["online"] | {"requests_per_day": 600}})
    catalogue = len(online.world.tables["images"])  # before the day's uploads join it
    arms = ("random", "champion", "oracle")
    return online, simulate(online.world, lambda day: online.policies(arms), 1, "test-three", seed=0), catalogue


def test_the_policies_are_the_champion_each_encoder_random_and_the_oracle(three_policies):
    online, _, _ = three_policies
    assert online.names == ("champion", "pca", "clicks", "random", "oracle")
    assert online.baseline == "pca"
    assert online.offline_metric == ("validation_map", "max")


def test_the_oracles_choices_beat_random_ones_and_the_champion_is_between(three_policies):
    assert_oracle_beats_random_and_champion_between(three_policies[1], "clicks_per_search", "ctr")


def test_clicks_are_drawn_from_the_worlds_click_model(three_policies):
    """Each image shown gets the documented grade (3 the query photo's object, 2 its shape and colour, 1 its
    shape), recomputed here from the world's objects, and P(click) = 0.85 ** position x attractiveness[grade];
    the clicks follow it in the first positions and the last, for good images and poor ones."""
    online, result, catalogue = three_policies
    world, events = online.world.world, result.events
    query_object = online.world.tables["searches"].set_index("query_id")["object_id"][events["search_id"]]
    q, i = query_object.to_numpy(), online.world.tables["images"]["object_id"].to_numpy()[events["image_id"]]
    shape, colour = world.objects.shape, world.objects.colour
    grade = np.select([q == i, (shape[q] == shape[i]) & (colour[q] == colour[i]), shape[q] == shape[i]], [3, 2, 1], 0)
    assert np.array_equal(events["grade"], grade)
    assert set(np.unique(grade)) == {0, 1, 2, 3}
    p = 0.85 ** events["position"].to_numpy() * np.array([0.02, 0.08, 0.25, 0.7])[grade]
    assert np.allclose(events["p_click"], p)

    def within_3_sd(rows: np.ndarray) -> bool:  # a sum of Bernoullis against its mean
        outcomes, chances = events["clicked"].to_numpy()[rows], p[rows]
        return abs(outcomes.sum() - chances.sum()) < 3 * np.sqrt((chances * (1 - chances)).sum())

    top, good = events["position"].to_numpy() < 5, grade >= 2
    for rows in (top & good, ~top & good, top & ~good, ~top & ~good):
        assert rows.sum() > 100 and within_3_sd(rows)
    # What each arm showed: the world's ten slots, public images of the catalogue as the day began.
    shown = events.groupby("search_id").agg(n=("image_id", "size"), distinct=("image_id", "nunique"))
    assert (shown["n"] == world.impressions).all() and (shown["distinct"] == shown["n"]).all()
    assert (events["image_id"] < catalogue).all()
    assert not online.world.tables["images"]["private"].to_numpy()[events["image_id"]].any()
    oracle = events[events["arm"] == "oracle"]
    assert np.array_equal(oracle["served_score"], oracle["grade"])
    assert set(TRUTH_COLUMNS) <= set(events.columns)


def test_the_days_logs_join_the_click_training_and_its_uploads_the_served_index(three_policies, trained):
    """The simulated searches and impressions join the logs in their schema and become click pairs of a next
    training; the day's uploads join the catalogue files and the champion's index, and the next day's served
    path shows them."""
    online, result, catalogue = three_policies
    world, tables = online.world, online.world.tables
    logs = ImageSearchWorld(**trained["world"], image_size=trained["image_size"]).generate()
    for name in ("impressions", "searches", "images"):
        assert (tables[name].dtypes == logs[name].dtypes).all(), name  # the logs' columns, in their types
    logged = result.events[list(IMPRESSION_COLUMNS)].astype(logs["impressions"].dtypes.to_dict())
    pd.testing.assert_frame_equal(tables["impressions"].tail(len(logged)).reset_index(drop=True), logged)
    searches = tables["searches"].tail(len(result.requests)).reset_index(drop=True)
    assert np.array_equal(searches["query_id"], result.requests["search_id"])
    assert np.array_equal(searches["object_id"], result.requests["object_id"])
    assert len(tables["search_pixels"]) == len(tables["searches"])

    # The next training's click pairs: each simulated click, the day's query photo beside the clicked image.
    corpus = world.corpus()
    pairs = pd.DataFrame(dict(zip(("search_id", "image_id"), corpus.click_pairs, strict=True)))
    simulated = pairs["search_id"].isin(result.requests["search_id"]).to_numpy()
    clicks = result.events.loc[result.events["clicked"], ["search_id", "image_id"]].reset_index(drop=True)
    assert len(clicks)
    pd.testing.assert_frame_equal(pairs[simulated].reset_index(drop=True), clicks)
    images, (rows_a, rows_b) = click_training_set(corpus)
    assert np.array_equal(images[rows_a[simulated]], tables["search_pixels"][clicks["search_id"]])
    assert np.array_equal(images[rows_b[simulated]], tables["pixels"][clicks["image_id"]])

    # The uploads: in the catalogue files and the champion's index, found by their own embedding.
    uploads = tables["images"].iloc[catalogue:]
    assert len(uploads) == world.uploads_per_day and (uploads["day"] == world.days_offset).all()
    pd.testing.assert_frame_equal(pd.read_parquet(raw_dir() / "images.parquet"), tables["images"])
    assert np.array_equal(np.load(raw_dir() / "pixels.npy"), tables["pixels"])
    service = ImageSearchService.load(trained)
    assert service.similar.index.ntotal == len(tables["images"]) == len(service.private)
    public = uploads.loc[~uploads["private"], "image_id"].to_numpy()
    found = service.similar.index.search(service.encoder.encode(tables["pixels"][public]), 5)[1]
    assert np.mean([image in row for image, row in zip(public, found, strict=True)]) > 0.8
    by_id, _ = service.search_by_id(int(public[0]), 10)
    assert len(by_id.ids) == 10 and public[0] not in by_id.ids

    # The next day: the champion's and the oracle's lists hold the uploads of the day before.
    world.requests_per_day = 100
    arms = ("champion", "oracle")
    next_day = simulate(world, lambda day: online.policies(arms), 1, "test-next", seed=0, first_day=1)
    new = next_day.events["image_id"].isin(uploads["image_id"])
    assert new.groupby(next_day.events["arm"]).any().all()


def test_abtest_command_plans_runs_and_logs_the_test(trained):
    run_abtest_command("imagesearch", "pca", METRICS)


def test_offline_and_online_orders_of_the_trained_encoders_are_compared(trained):
    from common.online.report import offline_vs_online_report

    report = offline_vs_online_report("imagesearch", online_system(trained), days=1, seed=0)
    assert set(report.result.arms) == {"pca", "clicks"}
    assert "(offline best)" in report.text and -1.0 <= report.metrics["kendall_tau"] <= 1.0


def test_simulated_days_follow_the_logs(config):
    online = ImageSearchOnline(config, refresh_serving=False)
    logs = online.tables
    requests = online.arrivals(0, np.random.default_rng(0))
    assert online.days_offset == config["world"]["n_days"]
    n = config["world"]["n_searches"] // config["world"]["n_days"]
    assert list(requests["search_id"]) == list(range(len(logs["searches"]), len(logs["searches"]) + n))
    assert requests["object_id"].between(0, config["world"]["n_objects"] - 1).all()
    photos = np.stack([online.query_photo(s) for s in requests["search_id"]])
    assert photos.shape == (n, 32, 32, 3) and len(np.unique(photos.reshape(n, -1), axis=0)) == n
    # The day's uploads: new photos of catalogue objects, after the catalogue's ids, the catalogue's rate a day.
    uploads = online._today["images"]
    assert abs(len(uploads) - len(logs["images"]) / config["world"]["n_days"]) < 0.1 * len(uploads)
    assert uploads["image_id"].iloc[0] == len(logs["images"]) and (uploads["duplicate_of"] == -1).all()
    assert (uploads["day"] == online.days_offset).all() and 0 < uploads["private"].mean() < 0.2
