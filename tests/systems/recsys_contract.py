"""Tests every recommendation system must pass (video, game), imported by each system's test module,
which names SYSTEM, SOURCES (its candidate sources) and N_ITEMS (its tiny catalogue size). The
fixtures of tests/systems/conftest.py train the system once per module."""

import numpy as np
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from common.evaluation.metrics import dcg_at_k
from common.retrieval.ann import FLAT_MAX_ITEMS, ANNIndex, IndexSpec, choose_spec
from common.retrieval.bundle import RetrievalBundle
from common.serving.app import create_app
from common.tracking.runs import load_champion, registered_name
from tests.common.serving.fuzz import fuzz_every_operation

STAGES = ["user_features", "user_embedding", "candidate_generation", "ranking", "re_ranking"]


@pytest.fixture(scope="module")
def spec(request):
    """The system's test module: SYSTEM, SOURCES, N_ITEMS."""
    return request.module


def recommend(client, system: str, payload: dict) -> dict:
    response = client.post(f"/{system}/recommend", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


def test_champion_and_both_registered_models(trained, spec):
    system = spec.SYSTEM
    ranker, retrieval = load_champion(system), load_champion(system, kind="retrieval")
    assert ranker.name == registered_name(system) == f"{system}-ranker"
    assert retrieval.name == registered_name(system, "retrieval") == f"{system}-retrieval"
    assert ranker.version == trained["champion_version"] and retrieval.version == trained["retrieval_version"]
    metrics = trained["ranker_metrics"]
    assert set(metrics) == {"lightgbm", "multitask"}
    # The champion is the ranker whose served funnel has the best validation nDCG@10.
    assert trained["champion"] == max(metrics, key=lambda name: metrics[name]["validation_ndcg_at_10"])
    assert MlflowClient().get_run(ranker.run_id).info.run_name == trained["champion"]
    assert hasattr(ranker.classifier, "predict_proba")
    assert isinstance(retrieval.classifier, RetrievalBundle)
    assert retrieval.classifier.schema.item_name == system


def test_recall_curve_rises_with_k_and_is_plotted_on_the_retrieval_run(trained, spec, config):
    """recall@k can only grow with k, for every source and the merge; the curve holds the table's
    configured ks, the table only those, and the retrieval run carries the plot."""
    evaluation = trained["evaluation"]
    curve = evaluation.recall_curve.set_index("source")
    ks = [int(column.split("@")[1]) for column in curve.columns if column.startswith("recall@")]
    assert len(ks) >= 4 and ks == sorted(ks)
    values = curve[[f"recall@{k}" for k in ks]].to_numpy()
    assert (np.diff(values, axis=1) >= -1e-12).all() and (values[:, -1] > values[:, 0]).any()
    configured = [f"recall@{k}" for k in config["evaluation"]["recall_ks"]]
    assert set(configured) < set(curve.columns)
    assert [c for c in evaluation.recall.columns if c.startswith("recall@")] == configured
    run_id = load_champion(spec.SYSTEM, kind="retrieval").run_id
    assert "recall_at_k.png" in {artifact.path for artifact in MlflowClient().list_artifacts(run_id)}


def exact_recall(index: ANNIndex, ids: np.ndarray, items: np.ndarray, queries: np.ndarray, k: int) -> float:
    """Mean |index top k ∩ exact top k| / k, the exact top k from numpy inner products."""
    exact = ids[np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :k]]
    found = index.search(queries, k)[1]
    return float(np.mean([np.intersect1d(f, e).size for f, e in zip(found, exact, strict=True)]) / k)


def test_ann_recall_against_exact_search(trained, spec):
    """The tiny catalogue is below FLAT_MAX_ITEMS, so the served index is exact and its recall is 1 by
    construction; an HNSW index is forced here on the same item vectors, tuned on half the evaluation
    users, and measured on the other half against numpy's exact inner-product search."""
    evaluation = trained["evaluation"]
    ids, items, users = evaluation.item_ids, evaluation.item_vectors, evaluation.user_vectors
    assert len(ids) == len(items) == evaluation.ann["n_items"] == spec.N_ITEMS < FLAT_MAX_ITEMS
    assert evaluation.ann["ann_kind"] == "flat" and len(users) == evaluation.n_users
    tune, held_out = users[::2], users[1::2]
    k = 100

    assert exact_recall(ANNIndex.build(ids, items, queries=tune), ids, items, held_out, k) == 1.0  # the served kind
    hnsw = ANNIndex.build(ids, items, spec=choose_spec(len(ids), "hnsw"), queries=tune)
    assert hnsw.spec.kind == "hnsw"
    assert exact_recall(hnsw, ids, items, held_out, k) >= 0.9
    # The bound is one an approximate index can miss: the same graph searched narrowly (efSearch 32,
    # no widening) falls below it on these vectors.
    narrow = IndexSpec("hnsw", {**choose_spec(len(ids), "hnsw").params, "efSearch": 32})
    assert exact_recall(ANNIndex.build(ids, items, spec=narrow, target_recall=0.0), ids, items, held_out, k) < 0.9


def _true_relevance(data, user: int, item_ids: np.ndarray, as_of, seen: set) -> tuple[np.ndarray, np.ndarray]:
    """(relevance of every catalogue item, the same with the user's already engaged items at 0)."""
    relevance = np.asarray(data.oracle.relevance(np.full(len(item_ids), user), item_ids, as_of), dtype=float)
    return relevance, np.where(np.isin(item_ids, list(seen)), 0.0, relevance)


def test_oracle_list_is_the_worlds_top_k_and_every_ndcg_matches_it(trained):
    """Recomputed here from the world's pairwise relevance over the whole catalogue (not from the
    oracle's own top_relevant): each user's oracle list holds the k most relevant items they have not
    engaged with, best first, so its nDCG@k is 1 and the best of all lists; and every list's nDCG@k in
    the table is its true DCG over the true ideal DCG."""
    evaluation, data = trained["evaluation"], trained["fitted"].data
    k, as_of, ranked = evaluation.k, evaluation.as_of, evaluation.ranked
    ndcg = evaluation.lists.set_index("list")[f"ndcg@{k}"]
    assert ndcg["oracle"] == pytest.approx(1.0)
    assert (ndcg.drop("oracle") < ndcg["oracle"]).all(), ndcg.to_dict()

    events = data.events
    engaged = events[(events["event_timestamp"] < as_of) & (events["engaged"] == 1)]
    seen_by_user = engaged.groupby("user_id")["item_id"].agg(set).to_dict()
    item_ids = data.items["item_id"].to_numpy(np.int64)
    position = {item: i for i, item in enumerate(item_ids.tolist())}
    recomputed = {name: [] for name in ranked}
    for user in sorted(ranked["oracle"]):
        relevance, unseen = _true_relevance(data, user, item_ids, as_of, seen_by_user.get(user, set()))
        best = np.sort(unseen[unseen > 0])[::-1][:k]
        if best.size == 0:
            continue  # nothing relevant: the table skips the user too
        oracle = ranked["oracle"][user]
        oracle_relevance = unseen[[position[item] for item in oracle.tolist()]]
        assert len(oracle) == best.size, user
        np.testing.assert_allclose(oracle_relevance, best, rtol=1e-5, err_msg=f"user {user}")
        ideal = dcg_at_k(best, k)
        for name, lists in ranked.items():
            gains = relevance[[position[item] for item in lists[user].tolist()]]
            recomputed[name].append(dcg_at_k(gains, k) / ideal)
    assert len(recomputed["oracle"]) > 0.9 * evaluation.n_users
    for name, values in recomputed.items():
        assert np.mean(values) == pytest.approx(ndcg[name], abs=1e-6), name


def test_served_funnel_beats_popularity_and_the_merge_order(trained):
    """The champion's served funnel against the two lists without a learned ranker, on the test days'
    nDCG@k of the pipeline's own evaluation."""
    evaluation = trained["evaluation"]
    ndcg = evaluation.lists.set_index("list")[f"ndcg@{evaluation.k}"]
    served = ndcg[f"funnel: {trained['champion']}"]
    assert served > ndcg["popularity"], ndcg.to_dict()
    assert served > ndcg["merge order (no ranker)"], ndcg.to_dict()


def test_healthz(client, spec):
    assert client.get("/healthz").json()["systems"][spec.SYSTEM] == "ready"


def test_response_names_the_registered_versions_and_stage_counts(client, trained, heavy_users, config, spec):
    system = spec.SYSTEM
    body = recommend(client, system, {"user_id": heavy_users[0], "k": 10})
    assert body["models"] == {
        "retrieval": {"name": f"{system}-retrieval", "version": load_champion(system, kind="retrieval").version},
        "ranker": {"name": f"{system}-ranker", "version": load_champion(system).version},
    }
    assert body["models"]["ranker"]["version"] == trained["champion_version"]
    stages = body["stages"]
    assert list(stages) == STAGES and all(stage["milliseconds"] >= 0 for stage in stages.values())
    generation = stages["candidate_generation"]["counts"]
    per_source = {name: generation[name] for name in spec.SOURCES}
    assert all(0 < n <= config["serving"]["k_per_source"] for n in per_source.values())
    assert max(per_source.values()) <= generation["merged"] <= sum(per_source.values())
    assert 0 < generation["out"] == generation["released"] <= generation["merged"]
    assert stages["ranking"]["counts"] == {"in": generation["out"], "out": generation["out"]}
    # Every filter and select step of the config counts what it kept, in config order, each no more
    # than the step before it; score steps (freshness) keep every candidate and are not counted.
    re_ranking = stages["re_ranking"]["counts"]
    counted = [s["step"] for s in config["serving"]["re_ranking"] if s["step"] != "freshness"]
    assert list(re_ranking) == ["in", *counted, "out"]
    kept = list(re_ranking.values())
    assert re_ranking["in"] == generation["out"] and kept[:-1] == sorted(kept[:-1], reverse=True)
    assert re_ranking["out"] == len(body["items"]) == 10


def test_no_trained_model_is_503_naming_the_command(tmp_path, monkeypatch, spec):
    system = spec.SYSTEM
    monkeypatch.setenv("MLSD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with TestClient(create_app([system], "tiny")) as empty:
        assert empty.get("/healthz").json()["systems"][system].startswith("unavailable")
        response = empty.post(f"/{system}/recommend", json={"user_id": 1, "k": 3})
    assert response.status_code == 503
    assert f"make train SYSTEM={system}" in response.json()["detail"]


def test_schemathesis_finds_no_server_error_and_no_response_off_its_schema(client, spec):
    """Requests generated from the schema, accepted and refused (tests/common/serving/fuzz.py)."""
    assert f"POST /{spec.SYSTEM}/recommend" in fuzz_every_operation(client.app)
