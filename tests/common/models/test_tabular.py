"""Tests for common.models.tabular's listwise ranker and class weights."""

import pickle

import numpy as np
import pandas as pd

from common.evaluation.metrics import auc, ndcg_at_k
from common.models.tabular import LightGBMCTR, LightGBMRanker, LogisticRegressionCTR

SMALL = {"n_estimators": 60, "min_child_samples": 5, "n_threads": 1}


def grouped_data(n_groups: int, per_group: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Graded relevance 0-3 set by `x` within each group; `offset` shifts x by group, so only the
    order within a group tells relevance. Rows of the groups are interleaved, as logs come."""
    rng = np.random.default_rng(seed)
    groups = np.tile(np.arange(n_groups), per_group)
    offset = rng.normal(0, 3, n_groups)[groups]
    x = rng.normal(size=len(groups))
    relevance = np.zeros(len(groups), dtype=int)
    for g in range(n_groups):
        rows = np.flatnonzero(groups == g)
        relevance[rows[np.argsort(-x[rows])[:3]]] = [3, 2, 1]
    X = pd.DataFrame({"x_shifted": x + offset, "offset": offset, "colour": rng.choice(["red", "blue"], len(groups))})
    return X, relevance, groups


def mean_ndcg(scores: np.ndarray, relevance: np.ndarray, groups: np.ndarray, k: int = 3) -> float:
    values = []
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        ranked = rows[np.argsort(-scores[rows])]
        values.append(ndcg_at_k(ranked.tolist(), {int(r): float(relevance[r]) for r in rows}, k))
    return float(np.mean(values))


def test_lambdarank_learns_the_order_within_interleaved_groups():
    X, relevance, groups = grouped_data(300, 10, seed=1)
    X_test, relevance_test, groups_test = grouped_data(100, 10, seed=2)
    ranker = LightGBMRanker(categorical=["colour"], numeric=["x_shifted", "offset"], **SMALL)
    ranker.fit(X, relevance, groups=groups, eval_set=(X_test, relevance_test, groups_test))
    scores = ranker.predict_proba(X_test)[:, 1]
    assert mean_ndcg(scores, relevance_test, groups_test) > 0.9
    random = np.random.default_rng(0).random(len(scores))
    assert mean_ndcg(random, relevance_test, groups_test) < 0.6
    restored = pickle.loads(pickle.dumps(ranker))
    np.testing.assert_allclose(restored.predict_proba(X_test), ranker.predict_proba(X_test))


def test_balanced_class_weight_raises_the_rare_class_probability_and_keeps_the_ranking_signal():
    rng = np.random.default_rng(3)
    n = 6000
    X = pd.DataFrame({"x": rng.normal(size=n), "kind": rng.choice(["a", "b"], n)})
    y = (rng.random(n) < 1 / (1 + np.exp(-(-4.0 + 1.5 * X["x"])))).astype(int)
    for model in (LogisticRegressionCTR, LightGBMCTR):
        extra = SMALL if model is LightGBMCTR else {}
        plain = model(categorical=["kind"], numeric=["x"], **extra).fit(X, y)
        balanced = model(categorical=["kind"], numeric=["x"], class_weight="balanced", **extra).fit(X, y)
        p_plain, p_balanced = plain.predict_proba(X)[:, 1], balanced.predict_proba(X)[:, 1]
        assert p_plain.mean() < 0.1 < 0.2 < p_balanced.mean()
        assert auc(y, p_balanced) > 0.75


def test_lightgbm_heads_fit_one_model_per_head_on_its_own_rows():
    from common.models.heads import Head
    from common.models.tabular import LightGBMHeads

    rng = np.random.default_rng(5)
    n = 6000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "kind": rng.choice(["x", "y"], n)})
    click = (rng.random(n) < 1 / (1 + np.exp(-(-1 + 2 * X["a"])))).astype(int)
    like = click * (rng.random(n) < 1 / (1 + np.exp(-2 * X["b"])))  # only clicked posts get liked
    targets = pd.DataFrame({"click": click, "like": like, "dwell_s": np.exp(1 + X["b"] + rng.normal(0, 0.2, n))})
    heads = [
        Head("click", "click"),
        Head("like", "like", given="click"),
        Head("dwell", "dwell_s", "regression", transform="log1p"),
    ]
    model = LightGBMHeads(["kind"], ["a", "b"], heads, probability=("click", "like"), **SMALL).fit(X, targets)
    predicted = model.predict_heads(X)
    clicked = click == 1
    assert auc(click, predicted["click"]) > 0.8 and auc(like[clicked], predicted["like"][clicked]) > 0.8
    assert np.corrcoef(np.log(predicted["dwell"]), np.log(targets["dwell_s"]))[0, 1] > 0.9
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], predicted["click"] * predicted["like"])
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(restored.predict_heads(X)["dwell"], predicted["dwell"])
