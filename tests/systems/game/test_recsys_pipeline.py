"""The game recommender end to end at tiny scale with the real components (world, Feast, two-tower,
faiss, LightGBM and multi-task rankers, MLflow), trained once for this module, then served through
FastAPI's TestClient; and the public Steam file format (data/fixtures/steam) trained and served end
to end in a data dir of its own."""

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from common.app.config import load_config
from common.app.paths import REPO_ROOT, system_dir
from common.features.store import feature_repo_dir, open_store
from common.retrieval.sources import RetrievalRequest
from common.serving.app import create_app
from common.tracking.runs import load_champion
from tests.systems.conftest import sources_table, step_option
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

SYSTEM = "game"
N_ITEMS = 400  # the tiny catalogue
STEAM_FIXTURES = REPO_ROOT / "data" / "fixtures" / "steam"
SOURCES = {"two_tower", "popularity", "trending"}
LISTS = {"popularity", "merge order (no ranker)", "funnel: lightgbm", "funnel: multitask"}
LIST_METRICS = ["precision@10", "map@10", "ndcg@10", "diversity", "coverage"]
NEW_USER = 10**7  # far beyond the tiny world's users


@pytest.fixture(scope="module")
def two_genres(items) -> list[str]:
    """The two most common genres of the catalogue."""
    return items["genre"].value_counts().index[:2].tolist()


def online_user(user_id: int) -> dict:
    store = open_store(SYSTEM, feature_repo_dir(system_dir(SYSTEM)))
    refs = ["user_activity:seen_item_ids", "user_activity:user_events_total"]
    values = store.get_online_features(features=refs, entity_rows=[{"user_id": user_id}]).to_dict()
    return {name: column[0] for name, column in values.items()}


def recommend(client, payload: dict) -> dict:
    response = client.post(f"/{SYSTEM}/recommend", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


def check_list_metrics(lists: pd.DataFrame) -> None:
    assert LISTS <= set(lists.index)
    assert ((lists[LIST_METRICS] >= 0) & (lists[LIST_METRICS] <= 1)).all().all()
    for name in ("funnel: lightgbm", "funnel: multitask"):
        assert lists.at[name, "coverage"] > 0 and lists.at[name, "users"] > 0


# ---- training ------------------------------------------------------------------------------------


def test_results_table_has_the_recall_ann_and_list_tables(trained):
    table = trained["table"]
    assert "| source | recall@100 | recall@500 |" in table
    assert "ANN over 400 items" in table and "recall@100 against exact search" in table
    assert "| list | precision@10 | map@10 | ndcg@10 | diversity | coverage |" in table
    assert "Final lists (k=10)" in table and "| model | validation_ndcg_at_10 |" in table  # the READMEs' tables
    assert "| funnel: multitask |" in table and "| oracle |" in table
    assert (system_dir(SYSTEM) / "results.md").read_text() == table
    recall = trained["evaluation"].recall.set_index("source")[["recall@100", "recall@500"]]
    assert set(recall.index) == SOURCES | {"merged"}
    assert ((recall >= 0) & (recall <= 1)).all().all()
    assert (recall["recall@500"] >= recall["recall@100"]).all()
    assert recall.at["merged", "recall@500"] > 0


def test_funnel_rows_have_metrics_in_range(trained):
    lists = trained["evaluation"].lists.set_index("list")
    assert set(lists.index) == LISTS | {"oracle"}
    check_list_metrics(lists)


# ---- serving -------------------------------------------------------------------------------------
def test_known_player_gets_k_unowned_released_games(
    client, trained, items, latest_activity, heavy_users, bundle, config
):
    k_per_source = config["serving"]["k_per_source"]
    for user_id in heavy_users:
        user = online_user(user_id)
        owned = set(user["seen_item_ids"])
        assert owned and owned == set(latest_activity.at[user_id, "seen_item_ids"].tolist())
        body = recommend(client, {"user_id": user_id, "k": 10})
        assert body["user_id"] == user_id and body["known_user"] is True
        ids = [item["item_id"] for item in body["items"]]
        assert len(ids) == len(set(ids)) == 10
        assert not set(ids) & owned, user_id
        assert body["as_of"] == bundle.now.isoformat()
        listed = items.loc[ids]
        assert (listed["release_s"] < bundle.now.timestamp()).all()
        assert listed["genre"].value_counts().max() <= step_option(config, "group_cap", "max_per_group")
        assert [item["genre"] for item in body["items"]] == listed["genre"].tolist()
        assert [item["title"] for item in body["items"]] == listed["title"].tolist()
        request = RetrievalRequest(user_id, None, {})
        for source in bundle.sources:
            found = set(source.retrieve(request, k_per_source).tolist()) - owned
            for item in body["items"]:
                assert (source.name in item["sources"]) == (item["item_id"] in found), (source.name, item)
        for item in body["items"]:
            assert item["sources"] and set(item["sources"]) <= SOURCES
            assert item["score"] > 0


def new_player_list(client, genres: list[str]) -> list[int]:
    body = recommend(client, {"user_id": NEW_USER, "k": 10, "favourite_genres": genres})
    assert body["known_user"] is False
    ids = [item["item_id"] for item in body["items"]]
    assert len(ids) == len(set(ids)) == 10 and all(item["sources"] for item in body["items"])
    return ids


def test_new_player_takes_the_cold_start_path(client, two_genres):
    assert online_user(NEW_USER)["user_events_total"] is None  # the store does not know them
    new_player_list(client, [])
    new_player_list(client, [two_genres[0]])
    new_player_list(client, two_genres)


def test_new_players_who_picked_different_genres_get_different_lists(client, two_genres):
    assert new_player_list(client, [two_genres[0]]) != new_player_list(client, [two_genres[1]])


def test_a_known_players_history_wins_over_picked_genres(client, heavy_users, two_genres):
    user_id = heavy_users[1]
    plain = recommend(client, {"user_id": user_id, "k": 10})
    picked = recommend(client, {"user_id": user_id, "k": 10, "favourite_genres": [two_genres[0]]})
    assert [i["item_id"] for i in picked["items"]] == [i["item_id"] for i in plain["items"]]


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"user_id": 1, "k": 0}, "k"),
        ({"user_id": 1, "k": 101}, "k"),
        ({"user_id": -1}, "user_id"),
        ({"user_id": "abc"}, "user_id"),
        ({"k": 3}, "user_id"),
        ({"user_id": NEW_USER, "profile": {"age": 30}}, "age"),  # a game user has no profile fields
        ({"user_id": NEW_USER, "profile": {"age": "old"}}, "age"),
        ({"user_id": NEW_USER, "favourite_genres": ["Polka Simulator"]}, "Polka Simulator"),
        ({"user_id": NEW_USER, "favourite_genres": "RPG"}, "favourite_genres"),
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


# ---- the public Steam files ---------------------------------------------------------------------
def test_steam_fixture_files_train_end_to_end_and_serve(tmp_path, monkeypatch, trained):
    """The fixture files in the public format: load, train (in a data dir of its own, so the synthetic
    game training above stays), serve."""
    from common.pipelines.recommender import train
    from systems.game.recdata import load

    monkeypatch.setenv("MLSD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    config = load_config(SYSTEM, "tiny")
    data = load({**config, "data": STEAM_FIXTURES})
    assert data.oracle is None and not data.has_negatives and len(data.events) > 100
    summary = train(SYSTEM, config, data)

    assert load_champion(SYSTEM).version == summary["champion_version"] == "1"  # a fresh registry
    assert load_champion(SYSTEM, kind="retrieval").version == summary["retrieval_version"] == "1"
    lists = summary["evaluation"].lists.set_index("list")
    assert "oracle" not in lists.index  # real data: relevance is the users' own test-period positives
    check_list_metrics(lists)
    assert "each user's positives in the test period" in summary["table"]

    events = data.events
    user_id = int(events["user_id"].value_counts().index[0])
    owned = set(events.loc[(events["user_id"] == user_id) & (events["engaged"] == 1), "item_id"].tolist())
    games = set(data.items["item_id"].tolist())
    with TestClient(create_app([SYSTEM], "tiny")) as steam:
        assert steam.get("/healthz").json()["systems"][SYSTEM] == "ready"
        body = recommend(steam, {"user_id": user_id, "k": 5})
        assert body["known_user"] is True and body["models"]["ranker"]["version"] == "1"
        ids = [item["item_id"] for item in body["items"]]
        assert 0 < len(ids) == len(set(ids)) <= 5
        assert set(ids) <= games and not set(ids) & owned
        assert all(item["sources"] for item in body["items"])
        genre = data.items["genre"].value_counts().index[0]
        new = recommend(steam, {"user_id": NEW_USER, "k": 5, "favourite_genres": [genre]})
        assert new["known_user"] is False and new["items"]
    # The synthetic game training is untouched.
    monkeypatch.undo()
    assert load_champion(SYSTEM).version == trained["champion_version"]
    assert len(sources_table(SYSTEM, "item_metadata")) == 400
