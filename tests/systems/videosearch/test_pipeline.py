"""Video search end to end at tiny scale: the world -> the text index, the contrastive encoders and faiss ->
the blends evaluated against the oracle -> the registry -> POST /videosearch/query."""

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from common.app.paths import system_dir
from common.tracking.runs import load_champion
from systems.video.world import MINIMUM_AGE
from systems.videosearch import load_world
from systems.videosearch.evaluation import ORACLE
from systems.videosearch.pipeline import with_rules
from systems.videosearch.world import CONCEPTS
from tests.common.serving.fuzz import fuzz_every_operation
from tests.common.serving.openapi_walk import assert_refused, check_every_endpoint

SYSTEM = "videosearch"
TEXT, VISUAL = "text alone (BM25)", "visual alone (encoders + faiss)"


@pytest.fixture(scope="module")
def videos(trained) -> pd.DataFrame:
    return pd.read_parquet(system_dir(SYSTEM) / "raw" / "videos.parquet")


def search(client, payload: dict) -> dict:
    response = client.post("/videosearch/query", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


def test_champion_has_the_best_validation_mrr_and_is_served(trained):
    metrics = trained["metrics"]
    assert set(metrics) == {"word", "weighted_sum", "rrf"}
    assert trained["champion"] == max(metrics, key=lambda name: metrics[name]["validation_mrr"])
    champion = load_champion(SYSTEM)
    assert champion.version == trained["champion_version"]
    assert MlflowClient().get_run(champion.run_id).info.run_name == trained["champion"]


def test_each_source_wins_its_own_kind_of_query_and_the_blends_find_what_either_finds(trained):
    """Text search answers text queries, the visual index the queries naming what only the frames show;
    the blends find the annotated video in their top 100 more often than either source."""
    table = trained["evaluation"]["test"]
    assert table.loc[TEXT, "mrr_text"] > table.loc[VISUAL, "mrr_text"]
    assert table.loc[VISUAL, "mrr_visual"] > 2 * table.loc[TEXT, "mrr_visual"]
    for blend in ("word", "weighted_sum", "rrf"):
        assert table.loc[blend, "hit@100"] > max(table.loc[TEXT, "hit@100"], table.loc[VISUAL, "hit@100"])
    for name in (TEXT, VISUAL, "word", "weighted_sum", "rrf", with_rules(trained["champion"])):
        assert table.loc[ORACLE, "mrr"] > table.loc[name, "mrr"]
        assert table.loc[ORACLE, "recall@100"] >= table.loc[name, "recall@100"]
    assert table["queries"].min() >= 200


def test_a_search_answers_videos_with_their_sources_and_stages(client, trained):
    body = search(client, {"query": "cooking kitchen", "k": 7, "age": 30, "country": "us"})
    assert 0 < len(body["videos"]) <= 7
    scores = [video["score"] for video in body["videos"]]
    assert scores == sorted(scores, reverse=True)
    assert all(video["sources"] and set(video["sources"]) <= {"text", "visual"} for video in body["videos"])
    assert body["models"]["blend"]["version"] == trained["champion_version"]
    assert list(body["stages"])[:4] == ["understanding", "text", "visual", "fusion"]
    assert {"min_age", "regions", "group_cap"} <= set(body["stages"])


def test_a_word_only_the_frames_show_finds_videos_whose_text_never_says_it(client, config, videos):
    """Most videos showing a kitchen never mention it: the visual source finds them, and they show one."""
    world = load_world(config)
    kitchen = CONCEPTS.index("kitchen")
    shows = (world.truth["video_concepts"] == kitchen).any(axis=1)
    text = (videos["title"] + " " + videos["description"] + " " + videos["tags"].str.join(" ")).str.lower()
    body = search(client, {"query": "kitchen", "k": 30, "age": 30, "country": "us"})
    unsaid = [video["video_id"] for video in body["videos"] if "kitchen" not in text.iloc[video["video_id"]]]
    assert len(unsaid) >= 5
    assert shows[unsaid].mean() > max(0.6, 4 * shows.mean())


def test_re_ranking_rules_follow_the_viewer(client, videos):
    body = search(client, {"query": "music live", "k": 50})  # no age, no country
    shown = videos.set_index("video_id").loc[[video["video_id"] for video in body["videos"]]]
    assert body["videos"] and (shown["age_rating"] == "all").all()
    assert shown["available_regions"].map(len).eq(0).all()  # available everywhere
    assert shown["channel_id"].value_counts().max() <= 2
    adult = search(client, {"query": "music live", "k": 50, "age": 40, "country": "jp"})
    ages = videos.set_index("video_id").loc[[video["video_id"] for video in adult["videos"]], "age_rating"]
    assert len(adult["videos"]) >= len(body["videos"])
    assert (MINIMUM_AGE[pd.Categorical(ages, ["all", "13+", "18+"]).codes] <= 40).all()


def test_a_misspelt_query_says_what_it_showed_results_for(client):
    body = search(client, {"query": "kitchn", "k": 5})
    assert body["query"]["corrected"] == "kitchen" and body["query"]["showing_results_for"] == "kitchen"
    assert search(client, {"query": "kitchen", "k": 5})["query"]["showing_results_for"] is None


def test_a_query_of_unknown_words_is_an_empty_page(client):
    body = search(client, {"query": "qzxv wqyj", "k": 10})
    assert body["videos"] == []
    assert body["stages"]["text"]["counts"]["out"] == body["stages"]["visual"]["counts"]["out"] == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"query": ""}, "query"),
        ({"query": "  ?! "}, "query"),
        ({"query": "x" * 201}, "query"),
        ({"query": 42}, "query"),
        ({"query": "dog", "k": 0}, "k"),
        ({"query": "dog", "k": True}, "k"),
        ({"query": "dog", "age": "30"}, "age"),
        ({"query": "dog", "age": 121}, "age"),
        ({"query": "dog", "country": "zz"}, "country"),
        ({"query": "dog", "language": "en"}, "language"),
    ],
)
def test_bad_requests_are_422_with_the_reason(client, payload, field):
    assert_refused(client.post("/videosearch/query", json=payload), field, str(payload))


def test_the_schema_walk_accepts_what_it_documents(client):
    assert check_every_endpoint(client, accepted_status=200) > 8


def test_the_served_vectors_are_the_encoders(trained, client):
    """Serving reads the vectors the training wrote; the query side comes from the registry."""
    served = load_champion(SYSTEM).classifier
    vectors = np.load(next((system_dir(SYSTEM) / "index").glob(f"{served.visual_index}.vectors.npy")))
    assert vectors.shape[1] == served.encoder.dim
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_schemathesis_finds_no_server_error_and_no_response_off_its_schema(client):
    """Requests generated from the schema, accepted and refused (tests/common/serving/fuzz.py)."""
    assert "POST /videosearch/query" in fuzz_every_operation(client.app)
