"""Tests for common.models.gnn: on a planted-community graph whose future edges form within communities,
the GraphSAGE link predictor ranks held-out future edges above non-edges, better than an untrained model,
a features-only model and the common-neighbour count; it embeds new users without retraining, uses hard
negatives, keeps the best validation epoch, and behaves like a deployable estimator (determinism, shapes,
pickling, input checks)."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from common.evaluation.metrics import auc
from common.graph.proximity import adjacency, common_neighbours
from common.models.gnn import GraphSAGELinkPredictor, LinkGraph, _NonEdgeSampler

N, COMMUNITIES, D = 300, 6, 8
# One thread: with two, torch's OpenMP workers spin against any other job on a 2-core machine.
FAST = {"hidden": 16, "epochs": 30, "threads": 1}


def sbm_edges(rng: np.random.Generator, community: np.ndarray, p_in: float, p_out: float, known=None) -> np.ndarray:
    """(2, m) edges i < j of a stochastic block model, without the `known` pairs (given as i < j)."""
    i, j = np.triu_indices(len(community), 1)
    edges = np.vstack([i, j])[:, rng.random(len(i)) < np.where(community[i] == community[j], p_in, p_out)]
    if known is None:
        return edges
    n = len(community)
    return edges[:, ~np.isin(edges[0] * n + edges[1], known[0] * n + known[1])]


def non_edges(rng: np.random.Generator, n: int, k: int, known: np.ndarray) -> np.ndarray:
    """(2, k) uniform pairs i < j not among `known`."""
    i, j = np.sort(rng.integers(0, n, (2, 4 * k)), axis=0)
    keep = (i != j) & ~np.isin(i * n + j, known[0] * n + known[1])
    return np.vstack([i, j])[:, keep][:, :k]


@pytest.fixture(scope="module")
def world():
    """Snapshots t and t+1 of a 6-community graph (edges 20x likelier within a community) and the edges
    that form after each, from the same model. Features carry the community weakly (0.5 x a community
    centroid + unit noise): alone they barely predict who connects, so the graph has to do the work."""
    rng = np.random.default_rng(0)
    community = rng.integers(0, COMMUNITIES, N)
    centroids = rng.normal(size=(COMMUNITIES, D))
    features = 0.5 * centroids[community] + rng.normal(size=(N, D))
    at_t = sbm_edges(rng, community, 0.08, 0.004)
    formed_t = sbm_edges(rng, community, 0.03, 0.0015, known=at_t)  # ~230 new friendships after t
    at_t1 = np.hstack([at_t, formed_t])
    formed_t1 = sbm_edges(rng, community, 0.03, 0.0015, known=at_t1)  # held out: after t+1
    negatives = non_edges(rng, N, formed_t1.shape[1], np.hstack([at_t1, formed_t1]))
    return {
        "community": community,
        "centroids": centroids,
        "train": LinkGraph(features, at_t),
        "positives": formed_t,
        "test": LinkGraph(features, at_t1),
        "pairs": np.hstack([formed_t1, negatives]),
        "labels": np.r_[np.ones(formed_t1.shape[1]), np.zeros(negatives.shape[1])],
    }


@pytest.fixture(scope="module")
def fitted(world):
    return GraphSAGELinkPredictor(**FAST).fit(world["train"], world["positives"])


def test_ranks_future_edges_above_non_edges(world, fitted):
    test, pairs, labels = world["test"], world["pairs"], world["labels"]
    trained = auc(labels, fitted.predict_pairs(test, *pairs))
    untrained = GraphSAGELinkPredictor(**{**FAST, "epochs": 0}).fit(world["train"], world["positives"])
    no_edges = np.zeros((2, 0), dtype=np.int64)
    features_only = GraphSAGELinkPredictor(**FAST).fit(LinkGraph(test.features, no_edges), world["positives"])
    mutual_friends = auc(labels, common_neighbours(adjacency(N, *test.edges), *pairs))
    # Measured: 0.75 trained, 0.53 untrained, 0.59 features only, 0.63 common neighbours.
    assert trained > 0.65
    assert trained > auc(labels, untrained.predict_pairs(test, *pairs)) + 0.08
    assert trained > auc(labels, features_only.predict_pairs(LinkGraph(test.features, no_edges), *pairs)) + 0.08
    assert trained > mutual_friends + 0.04


def test_a_categorical_attribute_gets_an_embedding_that_carries_homophily(world, fitted):
    """The community as a category column (with some unknown): its learned embedding lets the model
    rank within-community pairs far better than the weak float features alone; a value unseen in fit
    reads as unknown."""
    test, pairs, labels = world["test"], world["pairs"], world["labels"]
    community = world["community"].copy()
    community[::10] = -1
    with_groups = GraphSAGELinkPredictor(**FAST).fit(
        LinkGraph(world["train"].features, world["train"].edges, community[:, None]), world["positives"]
    )
    graph = LinkGraph(test.features, test.edges, community[:, None])
    assert (
        auc(labels, with_groups.predict_pairs(graph, *pairs)) > auc(labels, fitted.predict_pairs(test, *pairs)) + 0.05
    )
    unseen = LinkGraph(test.features, test.edges, np.full((N, 1), COMMUNITIES + 5))
    unknown = LinkGraph(test.features, test.edges, np.full((N, 1), -1))
    np.testing.assert_allclose(with_groups.embed(unseen), with_groups.embed(unknown))
    with pytest.raises(ValueError, match="category columns"):
        with_groups.embed(test)


def test_embeds_a_larger_graph_with_the_same_weights(world, fitted):
    """Inductive: 100 new users with their own edges get embeddings without retraining, and their
    future edges are ranked above chance; users the new ones do not touch keep their embeddings."""
    rng, community, test = np.random.default_rng(2), world["community"], world["test"]
    new = rng.integers(0, COMMUNITIES, 100)
    grown = np.r_[community, new]
    features = np.vstack([test.features, 0.5 * world["centroids"][new] + rng.normal(size=(100, D))])
    joining = sbm_edges(rng, grown, 0.08, 0.004)
    edges = np.hstack([test.edges, joining[:, joining[1] >= N]])  # the new users' friendships
    formed = sbm_edges(rng, grown, 0.03, 0.0015, known=edges)
    formed = formed[:, formed[1] >= N]
    random_pairs = np.vstack([rng.integers(0, N + 100, formed.shape[1]), rng.integers(N, N + 100, formed.shape[1])])
    embeddings = fitted.embed(LinkGraph(features, edges))
    assert embeddings.shape == (N + 100, FAST["hidden"]) and np.isfinite(embeddings).all()
    labels = np.r_[np.ones(formed.shape[1]), np.zeros(formed.shape[1])]
    # Measured: 0.72 (0.59 untrained).
    assert auc(labels, fitted.score(embeddings, *np.hstack([formed, random_pairs]))) > 0.62
    # New users without edges change no one else's neighbourhood, hence no one else's embedding.
    isolated = fitted.embed(LinkGraph(features, test.edges))
    np.testing.assert_array_equal(isolated[:N], fitted.embed(test))


def test_hard_negatives_lower_their_scores(world, fitted):
    """Pairs shown and not connected (here: same-community pairs the model would otherwise favour)."""
    rng, community = np.random.default_rng(1), world["community"]
    i, j = rng.integers(0, N, (2, 3000))
    hard = np.vstack([i, j])[:, (community[i] == community[j]) & (i != j)][:, :300]
    with_hard = GraphSAGELinkPredictor(**FAST).fit(world["train"], world["positives"], negatives=hard)
    # Measured: 0.67 without them, 0.44 with.
    assert (
        with_hard.predict_pairs(world["train"], *hard).mean() < fitted.predict_pairs(world["train"], *hard).mean() - 0.1
    )


def test_early_stopping_keeps_the_best_validation_epoch(world):
    validation = (world["test"], world["pairs"], world["labels"])
    # Measured: validation AUC climbs to 0.77 at epoch 43, then slips; the run stops at epoch 46.
    params = {**FAST, "epochs": 200, "learning_rate": 0.02, "patience": 3}
    model = GraphSAGELinkPredictor(**params).fit(world["train"], world["positives"], validation=validation)
    history = model.history_
    assert 10 < model.best_epoch_ < len(history) < 200, "learnt for a while, then stopped early"
    assert model.best_epoch_ == int(np.argmax(history)) + 1
    assert len(history) == model.best_epoch_ + 3  # ran `patience` epochs past the best, no more
    assert len(model.train_loss_) == len(history)
    # The weights kept are the best epoch's, not the last one's.
    kept = auc(world["labels"], model.predict_pairs(world["test"], *world["pairs"]))
    assert kept == pytest.approx(history[model.best_epoch_ - 1])
    assert kept > history[-1]


def test_fit_is_deterministic_under_a_seed(world):
    params = {**FAST, "epochs": 5, "dropout": 0.2}  # dropout draws from torch's generator too

    def embeddings(seed: int) -> np.ndarray:
        model = GraphSAGELinkPredictor(**params, seed=seed).fit(world["train"], world["positives"])
        return model.embed(world["test"])

    np.testing.assert_array_equal(embeddings(0), embeddings(0))
    assert not np.array_equal(embeddings(0), embeddings(1))


def test_shapes_and_probabilities(world, fitted):
    embeddings = fitted.embed(world["test"])
    assert embeddings.shape == (N, FAST["hidden"]) and embeddings.dtype == np.float32
    p = fitted.score(embeddings, *world["pairs"])
    assert p.shape == (world["pairs"].shape[1],) and ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(fitted.score(embeddings, *world["pairs"][::-1]), p, rtol=1e-6)  # symmetric
    np.testing.assert_array_equal(fitted.predict_pairs(world["test"], *world["pairs"]), p)
    assert fitted.score(embeddings, [], []).shape == (0,)
    assert fitted.best_epoch_ == FAST["epochs"] and fitted.history_ == [] and len(fitted.train_loss_) == 30


def test_behaves_like_an_estimator(world, fitted):
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.embed(world["test"]), fitted.embed(world["test"]))
    assert clone(fitted).get_params() == fitted.get_params()
    with pytest.raises(RuntimeError):
        GraphSAGELinkPredictor().embed(world["test"])
    with pytest.raises(ValueError):
        fitted.embed(LinkGraph(world["test"].features[:, :3], world["test"].edges))  # other feature columns
    with pytest.raises(ValueError):
        GraphSAGELinkPredictor(**FAST).fit(world["train"], np.array([[0], [N]]))  # no such node
    with pytest.raises(ValueError):
        GraphSAGELinkPredictor(**FAST).fit(world["train"], np.zeros((2, 0)))  # nothing to learn from
    with pytest.raises(ValueError):
        LinkGraph(world["test"].features, np.array([[0, 1, 2]]))


def test_random_negatives_are_non_edges():
    # A dense 6-node graph: 9 of its 15 pairs are known, so most draws are rejected.
    known = np.array([[0, 0, 0, 1, 1, 2, 3, 4, 5], [1, 2, 3, 2, 4, 5, 4, 5, 3]])
    drawn = _NonEdgeSampler(6, known).draw(np.random.default_rng(0), 500)
    assert drawn.shape == (2, 500)
    pairs = {tuple(sorted(pair)) for pair in drawn.T}
    assert pairs == {(0, 4), (0, 5), (1, 3), (1, 5), (2, 3), (2, 4)}  # every non-edge, nothing else
    with pytest.raises(ValueError):
        _NonEdgeSampler(3, np.array([[0, 0, 1], [1, 2, 2]])).draw(np.random.default_rng(0), 1)
