"""The event system end to end at tiny scale: the shared ranking pipeline on the world, the features
the same offline, online and at training, the served funnel over HTTP, and the Kaggle files."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from typer.testing import CliRunner

from common.app.cli import app
from common.app.config import load_config
from common.app.paths import REPO_ROOT, system_dir
from common.data.periods import Periods
from common.features.store import FeatureRepo
from common.retrieval.geo import haversine_km
from common.serving.app import create_app
from common.tracking.runs import champion_trained_on, load_champion
from systems.events import load_dataset
from systems.events.features import CATEGORICAL, NUMERIC
from systems.events.ranker import event_frame, examples, snapshot_of, state_at
from systems.events.serving import EventsService
from tests.common.serving.fuzz import fuzz_every_operation
from tests.common.serving.openapi_walk import assert_refused, check_every_endpoint
from tests.conftest import data_dir_at

SYSTEM = "events"
FIXTURES = REPO_ROOT / "tests" / "systems" / "events" / "fixtures" / "kaggle"


@pytest.fixture(scope="module")
def dataset(config):
    return load_dataset(config)


@pytest.fixture(scope="module")
def periods(dataset, config):
    return Periods.from_config(dataset.start, dataset.n_days, config["periods"], 1)


@pytest.fixture(scope="module")
def service(trained, config):
    return EventsService.load(config)


def lists(trained, segment: str = "all") -> pd.DataFrame:
    table = trained["lists"]
    return table[table["segment"] == segment].set_index("list")


def test_champion_has_the_best_validation_map_and_is_served(trained):
    metrics = trained["metrics"]
    assert set(metrics) == {"logistic_regression", "lightgbm", "lambdarank"}
    assert trained["champion"] == max(metrics, key=lambda name: metrics[name]["validation_map_at_10"])
    champion = load_champion(SYSTEM)
    assert champion.version == trained["champion_version"]
    assert MlflowClient().get_run(champion.run_id).info.run_name == trained["champion"]


def test_the_funnel_beats_nearby_and_popular_and_the_oracle_bounds_every_list(trained):
    for segment in ("all", "events created after the training cutoff"):
        table = lists(trained, segment)
        served = table.loc[f"funnel: {trained['champion']}"]
        baseline, oracle = table.loc["nearby and popular"], table.loc["oracle"]
        assert served["map@10"] > baseline["map@10"] and served["ndcg@10"] > baseline["ndcg@10"], segment
        assert (table["ndcg@10"] <= oracle["ndcg@10"] + 1e-9).all(), segment
    assert lists(trained).loc["oracle", "ndcg@10"] == pytest.approx(1.0)
    labels = trained["labels"].set_index("model")
    assert labels.loc["oracle", "auc"] > labels.loc[trained["champion"], "auc"] > 0.7


def test_training_rows_read_the_same_features_as_the_funnel(trained, dataset, config):
    """An impression's features as the training set built them (gathered by user / event snapshot)
    equal what the funnel's scorer computes for that user and event at that snapshot and time. Only
    `invited` may differ: a logged row says it, the funnel reads the event's invitee list."""
    repo = FeatureRepo(SYSTEM)
    built = examples(dataset, repo, config, dataset.start)
    rows = np.random.default_rng(0).choice(len(built.X), size=30, replace=False)
    events = dataset.events.iloc[rows]
    days = snapshot_of(dataset, events["event_timestamp"], 1)
    states = {day: state_at(dataset, repo, config, day) for day in days.unique()}
    for row, event, day in zip(rows, events.itertuples(), days, strict=True):
        state = states[day]
        request = replace(
            state.requests(np.array([event.user_id]))[0], now_s=float(event.event_timestamp.timestamp() // 1)
        )
        scorer = state.funnel(load_champion(SYSTEM).classifier).scorer
        served = scorer.features(request, state.state.catalog.rows(np.array([event.item_id])))
        columns = [c for c in CATEGORICAL + NUMERIC if c != "invited"]
        pd.testing.assert_frame_equal(
            built.X.iloc[[row]][columns].reset_index(drop=True), served[columns], check_dtype=False
        )


def test_the_online_catalogue_is_the_offline_one_at_the_serving_clock(service):
    """Feast parity: what serving loaded from the online store equals the offline store's point-in-time
    read at the serving clock, column by column."""
    catalog = service.state.catalog
    offline = event_frame(service.repo, catalog.item_ids, service.state.now).set_index("item_id")
    for column in ("event_registered", "event_shown", "host_events", "price", "start_s", "topic_3"):
        np.testing.assert_allclose(catalog.columns[column].astype(float), offline[column].to_numpy(float))
    registered = [sorted(v.tolist()) for v in catalog.columns["registered_user_ids"]]
    assert registered == [sorted(np.asarray(v).tolist()) for v in offline["registered_user_ids"]]


@pytest.fixture(scope="module")
def client(trained):
    with TestClient(create_app([SYSTEM], "tiny")) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def active_users(trained) -> list[int]:
    events = pd.read_parquet(system_dir(SYSTEM) / "raw" / "events.parquet")
    return events["user_id"].value_counts().index[:5].tolist()


def recommend(client, payload: dict) -> dict:
    response = client.post("/events/recommend", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


def test_served_events_are_open_and_explained(client, service, active_users, config, periods):
    now = service.state.now
    horizon = pd.Timedelta(days=config["serving"]["candidates"]["horizon_days"])
    cutoff, served_new = periods.start("validation"), 0
    items = pd.read_parquet(system_dir(SYSTEM) / "raw" / "items.parquet").set_index("item_id")
    for user_id in active_users:
        body = recommend(client, {"user_id": user_id, "k": 10})
        assert body["known_user"] is True and 1 <= len(body["events"]) <= 10
        assert body["models"]["ranker"]["version"] == load_champion(SYSTEM).version
        scores = [event["score"] for event in body["events"]]
        hosts = items.loc[[event["event_id"] for event in body["events"]], "host_id"]
        assert hosts.value_counts().max() <= 2  # the host cap
        for event in body["events"]:
            start = pd.Timestamp(event["start_time"])
            assert now < start <= now + horizon
            assert items.loc[event["event_id"], "release_timestamp"] < now
            assert set(event["why"]) & {"nearby", "friends", "popular"}
            served_new += items.loc[event["event_id"], "release_timestamp"] >= cutoff
        assert len(scores) == len(set(body["events"][i]["event_id"] for i in range(len(scores))))
        stages = body["stages"]
        assert list(stages) == ["user_features", "candidate_generation", "ranking", "re_ranking"]
    assert served_new > 0  # events created after the model was trained are served


def test_a_new_user_with_a_location_gets_nearby_events(client, config):
    items = pd.read_parquet(system_dir(SYSTEM) / "raw" / "items.parquet").dropna(subset=["event_lat"])
    place = items.iloc[0]
    location = {"lat": float(place["event_lat"]), "lng": float(place["event_lng"])}
    body = recommend(client, {"user_id": 2**52, "k": 10, "location": location})
    assert body["known_user"] is False and body["events"]
    radius = config["serving"]["candidates"]["radius_km"]
    for event in body["events"]:
        if event["why"][0] == "nearby":
            assert event["distance_km"] <= radius + 1e-6
            row = items.set_index("item_id").loc[event["event_id"]]
            expected = haversine_km(location["lat"], location["lng"], row["event_lat"], row["event_lng"])
            assert event["distance_km"] == pytest.approx(float(expected), abs=0.06)
    elsewhere = recommend(client, {"user_id": 2**52, "k": 10})  # no location: the popular source alone
    assert elsewhere["events"] and all(event["why"][0] == "popular" for event in elsewhere["events"])


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"user_id": 1, "k": 0}, "k"),
        ({"user_id": 1, "k": True}, "k"),
        ({"user_id": 1, "location": {"lat": 91.0, "lng": 0.0}}, "lat"),
        ({"user_id": 1, "location": {"lat": 10.0}}, "lng"),
        ({"user_id": 1, "radius": 5}, "radius"),
    ],
)
def test_bad_requests_are_422_with_the_reason(client, payload, field):
    assert_refused(client.post("/events/recommend", json=payload), field, str(payload))


def test_the_schema_walk_accepts_what_it_documents(client):
    assert check_every_endpoint(client, accepted_status=200) > 20


def test_the_kaggle_files_train_and_serve_end_to_end(tmp_path):
    """The same pipeline on the real files' format (the fixtures): no oracle, relevance from the logs."""
    config = load_config(SYSTEM, "tiny")
    config.update(data=str(FIXTURES), periods={"warmup_days": 1, "days": {"train": None, "validation": 5, "test": 5}})
    config["models"]["lightgbm"].update(min_child_samples=2)
    config["models"]["lambdarank"].update(min_child_samples=2)
    with data_dir_at(tmp_path):
        from common.app.registry import get_system

        summary = get_system(SYSTEM).train(config)
        assert "oracle" not in set(summary["lists"]["list"])
        assert summary["lists"]["requests"].max() > 0
        with TestClient(create_app([SYSTEM], "tiny")) as client:
            users = pd.read_csv(FIXTURES / "train.csv")["user"].unique()
            body = recommend(client, {"user_id": int(users[0]), "k": 5})
            assert body["models"]["ranker"]["version"] == summary["champion_version"]
        # The registry remembers the data; the simulator, whose users are the world's, refuses such a champion.
        assert champion_trained_on(SYSTEM) == {"scale": "tiny", "data": str(FIXTURES)}
        refused = CliRunner().invoke(app, ["online", "--system", SYSTEM, "--scale", "tiny", "--days", "1"])
        assert refused.exit_code == 1 and f"trained on the data in {FIXTURES}" in refused.output


def test_social_features_are_the_same_for_one_served_user_and_row_by_row():
    from systems.events.features import social_features

    rng = np.random.default_rng(1)
    n = 60
    friends = np.sort(rng.choice(100, 15, replace=False))
    going = [np.sort(rng.choice(100, rng.integers(0, 20), replace=False)) for _ in range(n)]
    invitees = [rng.choice(100, rng.integers(0, 4)) for _ in range(n)]
    hosts = rng.integers(0, 100, n)
    one_user = social_features(np.full(n, 7), [friends] * n, hosts, going, invitees)
    # The row-by-row path, forced by a second user id on a copy of row 0.
    rows = social_features(
        np.r_[8, np.full(n, 7)],
        [friends] * (n + 1),
        np.r_[hosts[0], hosts],
        [going[0], *going],
        [invitees[0], *invitees],
    )
    for served, by_row in zip(one_user, rows, strict=True):
        np.testing.assert_array_equal(served, by_row[1:])
    expected = [len(set(friends) & set(g)) for g in going]
    assert one_user[0].tolist() == expected


def test_schemathesis_finds_no_server_error_and_no_response_off_its_schema(client):
    """Requests generated from the schema, accepted and refused (tests/common/serving/fuzz.py)."""
    assert "POST /events/recommend" in fuzz_every_operation(client.app)
