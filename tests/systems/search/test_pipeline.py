"""Product search end to end at tiny scale: the world -> the inverted index, the two-tower and faiss ->
Feast -> two ranking stages -> the registry -> POST /search/query; and the Shopping Queries (ESCI) files."""

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from common.app.config import load_config
from common.app.paths import REPO_ROOT
from common.serving.app import create_app
from common.tracking.runs import load_champion
from systems.search import load_data
from systems.search.evaluation import FUSION, ORACLE, reranked, stage_1, stage_2
from systems.search.features import COUNTS, engagement_as_of
from systems.search.serving import SearchService
from tests.common.serving.fuzz import fuzz_every_operation
from tests.common.serving.openapi_walk import assert_refused, check_every_endpoint
from tests.conftest import data_dir_at

SYSTEM = "search"
FIXTURES = REPO_ROOT / "tests" / "systems" / "search" / "fixtures" / "esci"


@pytest.fixture(scope="module")
def service(trained, config):
    return SearchService.load(config)


def lists(trained) -> pd.DataFrame:
    return trained["evaluation"]["test"].lists.set_index("list")


def search(client, payload: dict) -> dict:
    response = client.post("/search/query", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


def test_champion_has_the_best_validation_ndcg_and_is_served(trained):
    metrics = trained["metrics"]
    assert set(metrics) == {"lambdamart", "lightgbm"}
    assert trained["champion"] == max(metrics, key=lambda name: metrics[name]["validation_ndcg_at_10"])
    champion = load_champion(SYSTEM)
    assert champion.version == trained["champion_version"]
    assert MlflowClient().get_run(champion.run_id).info.run_name == trained["champion"]


def test_stage_two_reorders_the_blend_better_and_the_oracle_bounds_every_list(trained):
    """At tiny scale the two-tower has seen ~1.4k clicks and BM25 alone is as good as the served page (at
    the default scale stage 2 is above both: the README's table); what stage 2 learnt shows against the
    blended list it reorders and the semantic list."""
    table = lists(trained)
    served = table.loc[stage_2(trained["champion"]), "ndcg@10"]
    assert served > table.loc[FUSION, "ndcg@10"] + 0.05
    assert served > table.loc["semantic", "ndcg@10"]
    for name in ("bm25", "semantic", FUSION, stage_1("small GBDT"), stage_2(trained["champion"])):
        assert table.loc[ORACLE, "ndcg@10"] >= table.loc[name, "ndcg@10"]
    assert table["queries"].min() > 50
    assert table.loc["bm25", "minus bm25 (95% CI)"] == "+0.000 [+0.000, +0.000]"
    mean = float(table.loc[FUSION, "minus bm25 (95% CI)"].split()[0])
    assert mean == pytest.approx(table.loc[FUSION, "ndcg@10"] - table.loc["bm25", "ndcg@10"], abs=1e-3)


def test_the_fusion_finds_more_exact_products_than_either_source(trained):
    recall = trained["evaluation"]["test"].recall.set_index("source").iloc[:, 0]
    assert recall[FUSION] >= max(recall["bm25"], recall["semantic"])
    assert recall["semantic"] > 0.2 and recall["bm25"] > 0.2


def test_spell_correction_restores_most_misspelt_queries(trained):
    spelling = trained["evaluation"]["test"].spelling
    assert spelling["misspelt_queries"] >= 5
    assert spelling["share_fixed"] > 0.5
    assert spelling["fusion_recall_corrected"] >= spelling["fusion_recall_uncorrected"]


def test_the_engagement_served_online_equals_the_logs_counts(service, config):
    """Feast parity: every product's and pair's counts read from the online store at serving equal the
    counts of everything logged (the computation the offline evaluation uses for a past day)."""
    data = load_data(config)
    online = service.engagement
    after = data.logs["timestamp"].max() + pd.Timedelta(seconds=1)
    offline = engagement_as_of(data.logs, online.keys, len(data.products), after)
    assert online.product_counts[:, COUNTS.index("impressions")].sum() == len(data.logs)  # each impression once
    np.testing.assert_array_equal(online.product_counts, offline.product_counts)
    served, computed = np.argsort(online.pair_rows.to_numpy()), np.argsort(offline.pair_rows.to_numpy())
    np.testing.assert_array_equal(online.pair_rows.to_numpy()[served], offline.pair_rows.to_numpy()[computed])
    np.testing.assert_array_equal(online.pair_counts[served], offline.pair_counts[computed])


def test_a_search_answers_products_with_their_sources_and_stages(client, trained):
    body = search(client, {"query": "red shoes", "k": 7})
    assert 0 < len(body["products"]) <= 7
    scores = [p["score"] for p in body["products"]]
    assert scores == sorted(scores, reverse=True)
    assert all(set(p["sources"]) <= {"bm25", "semantic"} and p["sources"] for p in body["products"])
    assert body["models"]["ranker"]["version"] == trained["champion_version"]
    stages = body["stages"]
    assert list(stages) == ["understanding", "bm25", "semantic", "fusion", "stage_1", "stage_2"]
    assert stages["stage_1"]["counts"]["in"] == stages["fusion"]["counts"]["out"]
    assert stages["stage_2"]["counts"]["in"] == stages["stage_1"]["counts"]["out"] <= 200


def test_a_misspelt_query_says_what_it_showed_results_for(client, service):
    word = max(service.funnel.understanding.document_frequency.items(), key=lambda item: (len(item[0]) >= 6, item[1]))[
        0
    ]
    typo = word[:2] + word[3:]  # one letter dropped
    body = search(client, {"query": typo, "k": 5})
    assert body["query"]["was_corrected"] and body["query"]["showing_results_for"] == body["query"]["corrected"]
    assert body["query"]["corrected"] != typo
    assert search(client, {"query": word, "k": 5})["query"]["showing_results_for"] is None


def test_filters_keep_only_what_the_request_allows(client, service):
    products = service.products.to_pandas()
    category = products["category"].value_counts().index[0]
    prices = products["price"]
    low, high = float(prices.quantile(0.2)), float(prices.quantile(0.8))
    filters = {"category": category, "min_price": low, "max_price": high, "available_only": True}
    body = search(client, {"query": "black", "k": 20, "filters": filters})
    assert body["products"], "a common word in the largest category finds something"
    rows = products.set_index(products["product_id"].astype(str))
    for product in body["products"]:
        row = rows.loc[product["product_id"]]
        assert row["category"] == category and low <= row["price"] <= high and row["available"]
    assert body["stages"]["filter"]["counts"]["out"] <= body["stages"]["filter"]["counts"]["in"]


def test_a_query_matching_nothing_is_an_empty_page_with_the_relaxation_tried(client):
    body = search(client, {"query": "qzxv wqyj", "k": 10})
    assert body["products"] == []
    assert body["query"]["relaxed"] is not None  # the relaxation tried, down to one word
    assert body["stages"]["bm25"]["counts"]["out"] == body["stages"]["semantic"]["counts"]["out"] == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"query": ""}, "query"),
        ({"query": "   ?!  "}, "query"),
        ({"query": "x" * 201}, "query"),
        ({"query": 42}, "query"),
        ({"query": "shoes", "k": 0}, "k"),
        ({"query": "shoes", "k": True}, "k"),
        ({"query": "shoes", "filters": {"max_price": -1.0}}, "max_price"),
        ({"query": "shoes", "filters": {"colour": "red"}}, "colour"),
        ({"query": "shoes", "user_id": "7"}, "user_id"),
    ],
)
def test_bad_requests_are_422_with_the_reason(client, payload, field):
    assert_refused(client.post("/search/query", json=payload), field, str(payload))


def test_an_unknown_category_is_422_naming_the_known_ones(client):
    response = client.post("/search/query", json={"query": "shoes", "filters": {"category": "spaceships"}})
    assert response.status_code == 422 and "unknown category" in response.json()["detail"]


def test_the_schema_walk_accepts_what_it_documents(client):
    assert check_every_endpoint(client, accepted_status=200, catalogue_fields=("category",)) > 10


def test_esci_files_train_and_serve_end_to_end(tmp_path):
    """The same pipeline on the Shopping Queries files: stage 2 learns from the annotations, nDCG over the
    annotated products, and the reranking task beside the funnel; no logs, so no engagement features."""
    config = load_config(SYSTEM, "tiny")
    config["data"] = str(FIXTURES)
    config["models"]["minilm"] = {"compare": True, "fine_tune": {"epochs": 1, "batch_size": 16, "max_pairs": 64}}
    with data_dir_at(tmp_path):
        from common.app.registry import get_system

        summary = get_system(SYSTEM).train(config)
        table = summary["evaluation"]["test"].lists.set_index("list")
        assert reranked(summary["champion"]) in table.index
        assert {"MiniLM alone", "MiniLM fine-tuned"} <= set(table.index)
        assert table.loc["MiniLM alone", "ndcg@10"] > 0.2  # a pretrained encoder knows these English words
        assert table["queries"].max() > 5
        examples = pd.read_parquet(FIXTURES / "shopping_queries_dataset_examples.parquet")
        with TestClient(create_app([SYSTEM], "tiny")) as client:
            body = search(client, {"query": examples["query"].iloc[0], "k": 5})
            assert body["models"]["ranker"]["version"] == summary["champion_version"]
            assert body["products"] and all(p["product_id"].startswith("P") for p in body["products"])


def test_schemathesis_finds_no_server_error_and_no_response_off_its_schema(client):
    """Requests generated from the schema, accepted and refused (tests/common/serving/fuzz.py)."""
    assert "POST /search/query" in fuzz_every_operation(client.app)
