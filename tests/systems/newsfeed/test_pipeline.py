"""The news feed end to end at tiny scale: the shared ranking pipeline with a head per reaction, the
features the same at training and serving, the feed over HTTP, and streaming reactions."""

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from common.app.paths import system_dir
from common.features.store import FeatureRepo
from common.serving.app import create_app
from common.tracking.runs import load_champion
from systems.newsfeed.dataset import load
from systems.newsfeed.features import model_columns, pair_features
from systems.newsfeed.ranker import examples, posts_at, snapshot_of, user_states
from systems.newsfeed.serving import NewsfeedService
from tests.common.serving.fuzz import fuzz_every_operation
from tests.common.serving.openapi_walk import assert_refused, check_every_endpoint

SYSTEM = "newsfeed"


@pytest.fixture(scope="module")
def dataset(config):
    return load(config)


def lists(trained, segment: str = "all") -> pd.DataFrame:
    table = trained["lists"]
    return table[table["segment"] == segment].set_index("list")


def test_champion_has_the_best_validation_ndcg_and_every_head_is_measured(trained):
    metrics = trained["metrics"]
    assert set(metrics) == {"multitask", "lightgbm_heads"}
    assert trained["champion"] == max(metrics, key=lambda name: metrics[name]["validation_ndcg_at_10"])
    assert load_champion(SYSTEM).version == trained["champion_version"]
    labels = trained["labels"]
    for model in ("multitask", "lightgbm_heads", "oracle"):
        measured = set(labels.loc[labels["model"] == model, "label"])
        assert measured == {"click", "like", "comment", "share", "hide", "skip", "dwell_s"}, model
    oracle = labels[labels["model"] == "oracle"].set_index("label")
    assert (oracle.loc[["click", "like", "share"], "auc"] > 0.75).all()


def test_the_learned_feed_beats_the_chronological_one_and_the_oracle_bounds_every_list(trained):
    for segment in ("all", "passive users"):
        table = lists(trained, segment)
        served = table.loc[f"funnel: {trained['champion']}", "ndcg@10"]
        assert served > table.loc["chronological", "ndcg@10"], segment
        assert table.loc["oracle", "ndcg@10"] == pytest.approx(1.0)
        assert (table["ndcg@10"] <= 1.0 + 1e-9).all()


def test_training_rows_are_the_pair_features_of_their_snapshot_states(trained, dataset, config):
    """The training set reads each user once per day and each post's counts once per 10 minutes, then
    gathers: a sample of its rows equals the pair features read row by row at those same times."""
    repo = FeatureRepo(SYSTEM)
    built = examples(dataset, repo, config, dataset.start)
    rows = np.random.default_rng(0).choice(len(built.X), size=40, replace=False)
    events = dataset.events.iloc[rows]
    states = user_states(repo, events["user_id"], snapshot_of(dataset, events["event_timestamp"], 1).to_numpy(), config)
    posts = posts_at(repo, events["item_id"], events["event_timestamp"].dt.floor("10min").to_numpy())
    posts = {c: posts[c].to_numpy() for c in posts}
    now_s = (events["event_timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    again = pd.DataFrame(
        pair_features(states, np.arange(len(rows)), posts, now_s.to_numpy(float), events["device"].to_numpy(), config)
    )
    categorical, numeric = model_columns(config)
    pd.testing.assert_frame_equal(
        built.X.iloc[rows].reset_index(drop=True), again[categorical + numeric], check_dtype=False
    )


@pytest.fixture(scope="module")
def client(trained):
    with TestClient(create_app([SYSTEM], "tiny")) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def service(trained, config):
    return NewsfeedService.load(config)


def feed(client, payload: dict) -> dict:
    response = client.post("/newsfeed/feed", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def active_user(trained) -> int:
    events = pd.read_parquet(system_dir(SYSTEM) / "raw" / "events.parquet")
    return int(events["user_id"].value_counts().index[0])


def test_a_feed_is_unseen_capped_per_author_and_explained(client, service, active_user, config):
    body = feed(client, {"user_id": active_user, "k": 20})
    assert body["known_user"] is True and 0 < len(body["posts"]) <= 20
    seen = set(
        service.repo.online(service.repo.refs(("user_activity",)), [{"user_id": active_user}])["seen_post_ids"][0]
    )
    posts = pd.DataFrame(body["posts"])
    assert not set(posts["post_id"]) & seen
    assert posts["author_id"].value_counts().max() <= 2
    assert posts["score"].is_monotonic_decreasing or len(posts) < 2
    heads = posts["heads"].iloc[0]
    assert set(heads) == {"click", "like", "comment", "share", "hide", "skip", "dwell_s"}
    assert all(0 <= heads[h] <= 1 for h in heads if h != "dwell_s") and heads["dwell_s"] >= 0
    weights = config["serving"]["score"]["weights"]
    assert posts["score"].iloc[0] == pytest.approx(sum(weights[h] * heads[h] for h in weights), rel=1e-5)
    rows = service.state.catalog.rows(posts["post_id"].to_numpy())
    vectors = service.state.catalog.vectors[rows]
    similarity = vectors @ vectors.T - 2 * np.eye(len(rows))
    threshold = next(s["threshold"] for s in config["serving"]["re_ranking"] if s["step"] == "near_duplicates")
    assert similarity.max() <= threshold + 1e-6


def test_a_new_user_gets_the_popular_feed(client):
    body = feed(client, {"user_id": 10**9, "k": 10})
    assert body["known_user"] is False and body["posts"]
    assert all(post["sources"] == ["popular"] for post in body["posts"])


def test_a_burst_of_likes_moves_a_post_up_in_the_next_feed(client, active_user):
    before = feed(client, {"user_id": active_user, "k": 100})["posts"]
    assert len(before) >= 10
    position = len(before) // 2
    target = before[position]["post_id"]
    # It goes viral: 300 users see it, a third like it, some comment and share (rates of the world's
    # best posts, within the range the rankers learned from).
    reactions = {"impression": 300, "like": 100, "comment": 30, "share": 20}
    events = [
        {"user_id": u, "post_id": target, "reaction": reaction} for reaction, n in reactions.items() for u in range(n)
    ]
    response = client.post("/newsfeed/events", json={"events": events})
    assert response.status_code == 200, response.text
    counts = response.json()["posts"][0]["counts"]
    assert counts["post_likes"] >= 100 and counts["post_impressions"] >= 300
    after = [post["post_id"] for post in feed(client, {"user_id": active_user, "k": 100})["posts"]]
    assert target in after and after.index(target) < position
    logged = (system_dir(SYSTEM) / "stream" / "reactions.jsonl").read_text().splitlines()
    assert sum(json.loads(line)["post_id"] == target for line in logged) >= sum(reactions.values())


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/newsfeed/feed", {"user_id": 1, "k": 0}, "k"),
        ("/newsfeed/feed", {"user_id": 1, "device": "tv"}, "device"),
        ("/newsfeed/events", {"events": []}, "events"),
        ("/newsfeed/events", {"events": [{"user_id": 1, "post_id": 2, "reaction": "love"}]}, "reaction"),
        ("/newsfeed/events", {"events": [{"user_id": 1, "post_id": True, "reaction": "like"}]}, "post_id"),
    ],
)
def test_bad_requests_are_422_with_the_reason(client, path, payload, field):
    assert_refused(client.post(path, json=payload), field, str(payload))


def test_an_unknown_post_is_a_422_naming_it(client):
    response = client.post("/newsfeed/events", json={"events": [{"user_id": 1, "post_id": 10**12, "reaction": "like"}]})
    assert response.status_code == 422 and str(10**12) in response.json()["detail"]


def test_the_schema_walk_accepts_what_it_documents(client):
    assert check_every_endpoint(client, accepted_status=200) > 20


def test_schemathesis_finds_no_server_error_and_no_response_off_its_schema(client):
    """Requests generated from the schema, accepted and refused (tests/common/serving/fuzz.py)."""
    assert "POST /newsfeed/events" in fuzz_every_operation(client.app)
