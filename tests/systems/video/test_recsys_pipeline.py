"""The video recommender end to end at tiny scale with the real components (world, Feast, two-tower,
faiss, LightGBM and multi-task rankers, MLflow), trained once for this module, then served through
FastAPI's TestClient."""

import copy
import re

import numpy as np
import pytest

from common.app.paths import system_dir
from common.features.store import feature_repo_dir, open_store
from common.pipelines.recommender import evaluate, report
from common.retrieval.sources import RetrievalRequest
from tests.systems.conftest import step_option
from tests.systems.recsys_contract import (  # noqa: F401 (pytest collects the imported tests here)
    spec,
    test_ann_recall_against_exact_search,
    test_champion_and_both_registered_models,
    test_healthz,
    test_no_trained_model_is_503_naming_the_command,
    test_oracle_list_is_the_worlds_top_k_and_every_ndcg_matches_it,
    test_response_names_the_registered_versions_and_stage_counts,
    test_schemathesis_finds_no_server_error_and_no_response_off_its_schema,
    test_served_funnel_beats_popularity_and_the_merge_order,
)

SYSTEM = "video"
N_ITEMS = 3000  # the tiny catalogue
SOURCES = {"two_tower", "popularity", "popularity_country", "popularity_language", "trending"}
LISTS = {"popularity", "merge order (no ranker)", "funnel: lightgbm", "funnel: multitask", "oracle"}
LIST_METRICS = ["precision@10", "map@10", "ndcg@10", "diversity", "coverage"]
NEW_USER = 10**7  # far beyond the tiny world's users
TEEN = {"age": 14, "country": "jp", "language": "ja", "gender": "male"}
ADULT = {"age": 35, "country": "us", "language": "en", "gender": "female"}


def online_user(user_id: int) -> dict:
    store = open_store(SYSTEM, feature_repo_dir(system_dir(SYSTEM)))
    refs = [f"user_profile:{c}" for c in ("age", "gender", "country", "language")]
    refs += ["user_activity:seen_item_ids", "user_activity:user_events_total"]
    values = store.get_online_features(features=refs, entity_rows=[{"user_id": user_id}]).to_dict()
    return {name: column[0] for name, column in values.items()}


def recommend(client, payload: dict) -> dict:
    response = client.post(f"/{SYSTEM}/recommend", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


# ---- training ------------------------------------------------------------------------------------


def test_results_table_has_the_recall_ann_and_list_tables(trained):
    table = trained["table"]
    assert "| source | recall@100 | recall@500 |" in table
    assert "ANN over 3000 items" in table and "recall@100 against exact search" in table
    assert "| list | precision@10 | map@10 | ndcg@10 | diversity | coverage |" in table
    assert "Final lists (k=10)" in table and "| model | validation_ndcg_at_10 |" in table  # the READMEs' tables
    assert "| funnel: lightgbm |" in table and "| oracle |" in table
    assert (system_dir(SYSTEM) / "results.md").read_text() == table
    recall = trained["evaluation"].recall.set_index("source")[["recall@100", "recall@500"]]
    assert set(recall.index) == SOURCES | {"merged"}
    assert ((recall >= 0) & (recall <= 1)).all().all()
    assert (recall["recall@500"] >= recall["recall@100"]).all()
    assert recall.at["merged", "recall@500"] > 0


def test_funnel_rows_have_metrics_in_range(trained):
    evaluation = trained["evaluation"]
    lists = evaluation.lists.set_index("list")
    assert set(lists.index) == LISTS
    assert ((lists[LIST_METRICS] >= 0) & (lists[LIST_METRICS] <= 1)).all().all()
    assert (lists["users"] > 0).all() and (lists["users"] <= evaluation.n_users).all()
    for name in ("funnel: lightgbm", "funnel: multitask"):
        assert lists.at[name, "precision@10"] > 0 and lists.at[name, "ndcg@10"] > 0


def test_evaluation_at_k_5_names_every_list_metric_and_the_champion_by_it(trained, config):
    """evaluation.k = 5 (recall_ks 50, 200) on the trained funnel, evaluated again without training:
    the lists stop at 5, and every metric, the champion's choice and the results text say @5."""
    five = copy.deepcopy(config)
    five["evaluation"].update(k=5, users=200, recall_ks=[50, 200])
    fitted = trained["fitted"]
    evaluation, metrics = evaluate(five, fitted)

    assert evaluation.k == 5 and evaluation.n_users == 200
    for name in ("funnel: lightgbm", "funnel: multitask", "merge order (no ranker)", "oracle"):
        assert all(len(ids) == 5 for ids in evaluation.ranked[name].values()), name
    columns = ["precision@5", "map@5", "ndcg@5", "diversity", "coverage"]
    assert list(evaluation.lists.columns) == ["list", *columns, "users"]
    lists = evaluation.lists.set_index("list")
    assert ((lists[columns] >= 0) & (lists[columns] <= 1)).all().all()
    for name in fitted.rankers:
        assert {key for key in metrics[name] if key.startswith("validation_ndcg")} == {"validation_ndcg_at_5"}
        assert 0 < metrics[name]["validation_ndcg_at_5"] <= 1

    result = report(evaluation, metrics, "the oracle's top items", five["champion"])
    assert result.champion == max(metrics, key=lambda name: metrics[name]["validation_ndcg_at_5"])
    assert set(result.funnel_metrics[result.champion]) == {
        "funnel_precision_at_5",
        "funnel_map_at_5",
        "funnel_ndcg_at_5",
        "funnel_diversity",
        "funnel_coverage",
    }
    assert (
        result.funnel_metrics[result.champion]["funnel_ndcg_at_5"] == lists.at[f"funnel: {result.champion}", "ndcg@5"]
    )
    table = result.table
    assert "| source | recall@50 | recall@200 |" in table
    assert "Final lists (k=5)" in table and "nDCG@5 on the validation days" in table
    assert "| list | precision@5 | map@5 | ndcg@5 | diversity | coverage |" in table
    assert "| model | validation_ndcg_at_5 |" in table and f"| {result.champion} (champion) |" in table
    assert not re.search(r"@10\b|_at_10\b|k=10\b|@500\b", table)


# ---- serving -------------------------------------------------------------------------------------


def test_known_user_gets_k_unseen_allowed_items(client, trained, items, latest_activity, heavy_users, bundle, config):
    k_per_source = config["serving"]["k_per_source"]
    for user_id in heavy_users:
        user = online_user(user_id)
        seen = set(user["seen_item_ids"])
        assert seen and seen == set(latest_activity.at[user_id, "seen_item_ids"].tolist())
        body = recommend(client, {"user_id": user_id, "k": 10})
        assert body["user_id"] == user_id and body["known_user"] is True
        ids = [item["item_id"] for item in body["items"]]
        assert len(ids) == len(set(ids)) == 10
        assert not set(ids) & seen, user_id
        assert body["as_of"] == bundle.now.isoformat()
        listed = items.loc[ids]
        assert (listed["release_s"] < bundle.now.timestamp()).all()
        assert (listed["minimum_age"] <= user["age"]).all()
        assert all(len(regions) == 0 or user["country"] in regions for regions in listed["available_regions"])
        assert listed["genre"].value_counts().max() <= step_option(config, "group_cap", "max_per_group")
        assert [item["genre"] for item in body["items"]] == listed["genre"].tolist()
        assert [item["title"] for item in body["items"]] == listed["title"].tolist()
        # Every non-personalised source that names an item returned it, and every one that returned it is named.
        request = RetrievalRequest(user_id, None, {"country": user["country"], "language": user["language"]})
        for source in bundle.sources:
            found = set(source.retrieve(request, k_per_source).tolist()) - seen
            for item in body["items"]:
                assert (source.name in item["sources"]) == (item["item_id"] in found), (source.name, item)
        for item in body["items"]:
            assert item["sources"] and set(item["sources"]) <= SOURCES
            assert 0 < item["score"] < 1


def test_known_users_profile_comes_from_the_store_not_the_request(client, heavy_users):
    user_id = heavy_users[1]
    plain = recommend(client, {"user_id": user_id, "k": 10})
    claimed = recommend(client, {"user_id": user_id, "k": 10, "profile": TEEN})
    assert [i["item_id"] for i in claimed["items"]] == [i["item_id"] for i in plain["items"]]


def test_new_user_with_a_profile_gets_a_personalised_list(client, items):
    assert online_user(NEW_USER)["user_events_total"] is None  # the store does not know them
    lists = {}
    for name, profile in (("teen", TEEN), ("adult", ADULT)):
        body = recommend(client, {"user_id": NEW_USER, "k": 10, "profile": profile})
        assert body["known_user"] is False
        ids = [item["item_id"] for item in body["items"]]
        assert len(ids) == len(set(ids)) == 10 and all(item["sources"] for item in body["items"])
        lists[name] = ids
        listed = items.loc[ids]
        assert (listed["minimum_age"] <= profile["age"]).all()
        assert all(len(r) == 0 or profile["country"] in r for r in listed["available_regions"])
    assert lists["teen"] != lists["adult"]


def test_new_user_without_a_profile_sees_only_unrestricted_videos(client, items):
    body = recommend(client, {"user_id": NEW_USER + 1, "k": 20})
    assert body["known_user"] is False and len(body["items"]) == 20
    listed = items.loc[[item["item_id"] for item in body["items"]]]
    assert (listed["minimum_age"] == 0).all()
    assert all(len(regions) == 0 for regions in listed["available_regions"])


def test_k_larger_than_the_capped_pool(client, items, heavy_users, config):
    body = recommend(client, {"user_id": heavy_users[2], "k": 100})
    ids = [item["item_id"] for item in body["items"]]
    n_genres = items["genre"].nunique()
    assert len(ids) == len(set(ids)) == body["stages"]["re_ranking"]["counts"]["out"]
    assert 10 < len(ids) <= min(100, step_option(config, "group_cap", "max_per_group") * n_genres)


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"user_id": 1, "k": 0}, "k"),
        ({"user_id": 1, "k": 101}, "k"),
        ({"user_id": -1}, "user_id"),
        ({"user_id": "abc"}, "user_id"),
        ({"k": 3}, "user_id"),
        ({"user_id": NEW_USER, "profile": {"height": 180}}, "height"),
        ({"user_id": NEW_USER, "profile": {"age": "old"}}, "age"),
        ({"user_id": NEW_USER, "profile": {"age": [30]}}, "age"),
        ({"user_id": NEW_USER, "favourite_genres": ["polka"]}, "polka"),
    ],
)
def test_bad_input_is_422_with_the_reason(client, payload, field):
    response = client.post(f"/{SYSTEM}/recommend", json=payload)
    assert response.status_code == 422
    detail = response.json()["detail"]
    if isinstance(detail, str):
        assert field in detail
    else:
        assert any(field in map(str, error["loc"]) for error in detail)


def test_online_seen_items_match_the_training_features(latest_activity):
    """Parity: the online store serves each user's last activity row (sampled users)."""
    rng = np.random.default_rng(0)
    for user_id in rng.choice(latest_activity.index.to_numpy(), 20, replace=False).tolist():
        online = online_user(user_id)
        row = latest_activity.loc[user_id]
        assert list(online["seen_item_ids"]) == row["seen_item_ids"].tolist()
        assert online["user_events_total"] == row["user_events_total"]
