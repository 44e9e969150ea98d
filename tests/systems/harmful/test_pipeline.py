"""Harmful content detection end to end at tiny scale: the world's posts -> Feast (authors), the image encoder
pretrained on labelled photos, the text's word vectors, the models on natural labels -> thresholds on the
hand-labelled validation posts -> the test metrics and the combination-only posts -> the registry -> POST
/harmful/moderate. The online metrics, on the simulator: test_online.py."""

import base64

import numpy as np
import pytest

from common.images.files import encode_png
from common.tracking.runs import load_champion
from systems.harmful import load_world
from systems.harmful.evaluation import NEVER
from systems.harmful.pipeline import ORACLE
from systems.harmful.world import CATEGORIES
from tests.common.serving.fuzz import fuzz_every_operation

SYSTEM = "harmful"


@pytest.fixture(scope="module")
def world(config):
    return load_world(config)


@pytest.fixture(scope="module")
def posts(world):
    return world.generate()["posts"]


def moderate(client, body: dict) -> dict:
    response = client.post("/harmful/moderate", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def image_base64(world, posts, row) -> str:
    return base64.b64encode(encode_png(world.images(posts.iloc[[row]])[0])).decode()


def test_every_model_is_evaluated_and_the_oracle_leads(trained, config):
    results = trained["results"]
    assert set(config["models"]) | {ORACLE} == set(results)
    oracle = results[ORACLE]["metrics"]["test_mean_pr_auc"]
    for name in config["models"]:
        assert results[name]["metrics"]["test_mean_pr_auc"] < oracle, name
    metrics = trained["metrics"]
    assert trained["champion"] == max(metrics, key=lambda n: metrics[n]["validation_mean_pr_auc"])
    assert load_champion(SYSTEM).version == trained["champion_version"]


def test_models_rank_harm_above_chance(trained):
    """Each full-data model's mean ROC-AUC over the categories is above 0.5 on the test posts."""
    for name in ("logistic_baseline", "early_fusion", "late_fusion", "per_category"):
        roc = [v["roc_auc"] for v in trained["results"][name]["test"].values()]
        assert np.nanmean(roc) > 0.55, (name, roc)


def test_every_model_demotes_before_it_removes_and_the_oracle_can_remove(trained):
    """Demotion thresholds never above removal ones; the oracle's scores reach the removal target's validation
    precision in most categories (the thresholds' own precision: tests/systems/harmful/test_evaluation.py)."""
    for name, thresholds in trained["thresholds"].items():
        assert (thresholds.demote <= thresholds.remove).all(), name
    oracle = trained["thresholds"][ORACLE]
    assert np.isfinite(oracle.remove).sum() >= 2 and (oracle.remove < NEVER).any()


def test_the_removal_rules_are_compared_on_held_out_posts_for_the_champion_and_the_oracle(trained):
    """Each rule's reliability, per category, as shares of the draws; the oracle's point estimate finds a
    threshold in most draws for some category."""
    reliability = trained["removal_reliability"]
    assert set(reliability) == {trained["champion"], ORACLE}
    for rules in reliability.values():
        assert len(rules) == 3 and all(set(per_category) == set(CATEGORIES) for per_category in rules.values())
        for per_category in rules.values():
            for values in per_category.values():
                assert 0 <= values["with a threshold"] <= 1 and 0 <= values["mean recall"] <= 1
    point = reliability[ORACLE]["point estimate at 0.95"]
    assert max(values["with a threshold"] for values in point.values()) > 0.5
    assert "(served)" in " ".join(reliability[ORACLE])
    assert "Whether a removal threshold keeps the promise" in trained["table"]


def test_a_post_is_moderated_with_a_probability_per_category(client, trained, world, posts):
    row = int(np.flatnonzero(posts["has_image"].to_numpy())[0])
    post = posts.iloc[row]
    body = moderate(
        client,
        {
            "text": post["text"],
            "language": post["language"],
            "author_id": int(post["author_id"]),
            "image": image_base64(world, posts, row),
        },
    )
    assert set(body["probabilities"]) == set(CATEGORIES)
    assert all(0.0 <= p <= 1.0 for p in body["probabilities"].values())
    assert body["action"] in ("allow", "demote", "remove")
    assert (body["reason"] is None) == (body["action"] == "allow")
    assert body["reason"] is None or body["reason"] in CATEGORIES
    assert body["known_author"] is True
    assert body["models"]["classifier"]["version"] == trained["champion_version"]
    assert {"author_features", "image", "classifier", "decision"} <= set(body["stages"])


def test_an_unknown_author_is_a_new_account_and_a_text_only_post_is_fine(client):
    body = moderate(client, {"text": "the pasta with garlic for our dinner", "language": "en", "author_id": 10**9})
    assert body["known_author"] is False
    only_image_missing = moderate(client, {"text": "hola amigos", "language": "es", "author_id": 1})
    assert set(only_image_missing["probabilities"]) == set(CATEGORIES)


def test_served_probabilities_follow_the_truth(client, posts):
    """Over the world's posts, the served model scores the truly harmful ones above the benign ones."""
    sample = posts[~posts["has_image"]].head(400)
    harmful = sample[[f"true_{c}" for c in CATEGORIES]].sum(axis=1).to_numpy() > 0
    scores = []
    for post in sample.itertuples():
        body = moderate(client, {"text": post.text, "language": post.language, "author_id": int(post.author_id)})
        scores.append(max(body["probabilities"].values()))
    scores = np.asarray(scores)
    assert harmful.any() and scores[harmful].mean() > scores[~harmful].mean()


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"text": "", "language": "en", "author_id": 1}, "body", "neither text nor an image"),
        ({"text": "   ", "language": "en", "author_id": 1}, "body", "neither text nor an image"),
        ({"text": "hello", "language": "de", "author_id": 1}, "language", ""),
        ({"text": "hello", "author_id": 1}, "language", ""),
        ({"text": "hello", "language": "en", "author_id": True}, "author_id", ""),
        ({"text": "hello", "language": "en", "author_id": -1}, "author_id", ""),
        ({"text": "x" * 2001, "language": "en", "author_id": 1}, "text", ""),
        ({"text": "hello", "language": "en", "author_id": 1, "image": "not base64!"}, "image", "pattern"),
        ({"text": "hello", "language": "en", "author_id": 1, "image": "abcde"}, "image", "pattern"),
        ({"language": "en", "author_id": 1}, "text", ""),
        ({"text": "hello", "language": "en", "author_id": 1, "image": "aGVsbG8="}, "image", "not an image"),
        ({"text": "hello", "language": "en", "author_id": 1, "likes": 3}, "likes", ""),
    ],
)
def test_bad_posts_are_422_with_the_reason(client, body, field, reason):
    response = client.post("/harmful/moderate", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any((field in error["loc"] or field == "body") and reason in error["msg"] for error in detail), detail


def test_a_corrupt_image_is_422(client, world, posts):
    row = int(np.flatnonzero(posts["has_image"].to_numpy())[0])
    png = encode_png(world.images(posts.iloc[[row]])[0])
    cut = base64.b64encode(png[: len(png) // 2]).decode()
    response = client.post("/harmful/moderate", json={"text": "hi", "language": "en", "author_id": 1, "image": cut})
    assert response.status_code == 422 and "corrupt" in response.text


def test_schemathesis_finds_no_server_error_and_no_response_off_its_schema(client):
    """Requests generated from the schema, accepted and refused (tests/common/serving/fuzz.py)."""
    assert "POST /harmful/moderate" in fuzz_every_operation(client.app)
