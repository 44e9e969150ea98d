"""Tests for common.retrieval.two_tower on a small planted world: users prefer one topic, items belong to
one topic (their genre) and have Zipf popularity, and observable features (country, searched genres, tags)
carry the topic only in part. The model must beat popularity on held-out positives, the logQ correction
must move recall from tail to head items and raise it overall, as the theory says, and new users and new items must get
embeddings that reflect their features. Recall is checked against hand-computed cases first."""

import pickle
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from common.evaluation.retrieval import exact_search_recall, inner_product_recall
from common.retrieval.two_tower import TowerSpec, TwoTowerModel

N_USERS, N_ITEMS, N_TOPICS = 2_000, 1_000, 8
N_NEW_USERS, N_NEW_ITEMS = 400, 200
N_HISTORY, N_TRAIN, N_TEST = 5, 10, 5  # engagements per user, split at random
K = 50
OFF_TOPIC_TASTE = 0.02  # an item outside the user's topic is this much less likely to be engaged
ZIPF_EXPONENT = 1.0
USER_SPEC = TowerSpec("user_id", categorical=["country"], numeric=["age"], multi_hot=["searched_genres"])
ITEM_SPEC = TowerSpec("item_id", categorical=["genre", "language"], numeric=["price"], multi_hot=["tags"])
# One thread: with two, torch's OpenMP workers spin against any other job on a 2-core machine.
FAST = {"epochs": 8, "batch_size": 512, "n_threads": 1}


@dataclass
class World:
    users: pd.DataFrame
    items: pd.DataFrame
    history: pd.DataFrame
    train: pd.DataFrame
    test: pd.DataFrame
    new_users: pd.DataFrame  # profile only: ids never seen, no history
    new_items: pd.DataFrame  # metadata only: ids never seen
    user_topic: np.ndarray  # (N_USERS + N_NEW_USERS,) indexed by user_id
    item_topic: np.ndarray  # (N_ITEMS + N_NEW_ITEMS,) indexed by item_id


def make_users(rng: np.random.Generator, topic: np.ndarray, first_id: int) -> pd.DataFrame:
    """Country equals the topic 70% of the time; each searched genre is the topic half of the time; age is noise."""
    n = len(topic)
    country = np.where(rng.random(n) < 0.7, topic, rng.integers(0, N_TOPICS, n))
    n_searches = rng.integers(0, 4, n)  # some users never searched: an empty list
    searched = [
        [f"g{t if rng.random() < 0.5 else rng.integers(N_TOPICS)}" for _ in range(s)]
        for t, s in zip(topic, n_searches, strict=True)
    ]
    return pd.DataFrame(
        {
            "user_id": np.arange(first_id, first_id + n),
            "country": np.char.add("c", country.astype(str)),
            "age": rng.normal(35, 10, n),
            "searched_genres": searched,
        }
    )


def make_items(rng: np.random.Generator, topic: np.ndarray, first_id: int) -> pd.DataFrame:
    """Genre is the topic; a tag names the topic 60% of the time; language and price are noise."""
    n = len(topic)
    tags = [
        ([f"t{t}"] if rng.random() < 0.6 else []) + [f"t{x}" for x in rng.integers(0, 20, rng.integers(0, 3))]
        for t in topic
    ]
    return pd.DataFrame(
        {
            "item_id": np.arange(first_id, first_id + n),
            "genre": np.char.add("g", topic.astype(str)),
            "language": rng.choice(["en", "de", "fr"], n),
            "price": rng.gamma(2.0, 10.0, n),
            "tags": tags,
        }
    )


def make_world(seed: int = 0) -> World:
    rng = np.random.default_rng(seed)
    user_topic = rng.integers(0, N_TOPICS, N_USERS + N_NEW_USERS)
    item_topic = rng.integers(0, N_TOPICS, N_ITEMS + N_NEW_ITEMS)
    popularity = (1.0 + rng.permutation(N_ITEMS)) ** -ZIPF_EXPONENT  # Zipf: the item of rank r has weight r^-s
    taste = np.where(
        user_topic[:N_USERS, None] == item_topic[None, :N_ITEMS], 1.0, OFF_TOPIC_TASTE
    )  # (N_USERS, N_ITEMS)
    # Engagements without replacement, P(item) ~ taste x popularity, by the Gumbel top-k trick.
    keys = np.log(taste * popularity) + rng.gumbel(size=taste.shape)
    engaged = np.argsort(-keys, axis=1)[:, : N_HISTORY + N_TRAIN + N_TEST]  # (N_USERS, 20), random order
    engaged = rng.permuted(engaged, axis=1)

    def pairs(columns: slice) -> pd.DataFrame:
        block = engaged[:, columns]
        return pd.DataFrame({"user_id": np.repeat(np.arange(N_USERS), block.shape[1]), "item_id": block.ravel()})

    return World(
        users=make_users(rng, user_topic[:N_USERS], 0),
        items=make_items(rng, item_topic[:N_ITEMS], 0),
        history=pairs(slice(0, N_HISTORY)),
        train=pairs(slice(N_HISTORY, N_HISTORY + N_TRAIN)),
        test=pairs(slice(N_HISTORY + N_TRAIN, None)),
        new_users=make_users(rng, user_topic[N_USERS:], N_USERS),
        new_items=make_items(rng, item_topic[N_ITEMS:], N_ITEMS),
        user_topic=user_topic,
        item_topic=item_topic,
    )


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.fixture(scope="module")
def models(world) -> dict[bool, TwoTowerModel]:
    """The same model with and without the logQ correction, same seed, same data."""
    return {
        logq: TwoTowerModel(USER_SPEC, ITEM_SPEC, logq_correction=logq, **FAST).fit(
            world.users, world.items, world.train, world.history
        )
        for logq in (True, False)
    }


def model_recall(model: TwoTowerModel, world: World, test: pd.DataFrame) -> float:
    """Recall@K over the catalogue, training positives and history excluded from the ranking."""
    seen = pd.concat([world.train, world.history])
    return exact_search_recall(model, world.users, world.items, test, K, history=world.history, exclude=seen)


def popularity_recall(world: World, test: pd.DataFrame) -> float:
    """The same recall for a ranking by training popularity: score(u, i) = 1 * count_i."""
    counts = np.bincount(world.train["item_id"], minlength=N_ITEMS).astype(np.float32)
    seen = pd.concat([world.train, world.history])
    return inner_product_recall(
        np.ones((N_USERS, 1), dtype=np.float32),
        counts[:, None],
        (test["user_id"].to_numpy(), test["item_id"].to_numpy()),
        K,
        exclude=(seen["user_id"].to_numpy(), seen["item_id"].to_numpy()),
    )


def head_and_tail(world: World, pairs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pairs whose item is in the top 20% / the bottom 80% of the catalogue by training popularity."""
    counts = np.bincount(world.train["item_id"], minlength=N_ITEMS)
    in_tail = pairs["item_id"].isin(np.argsort(counts, kind="stable")[: int(0.8 * N_ITEMS)])
    return pairs[~in_tail], pairs[in_tail]


# ---------------------------------------------------------------------------
# Recall, known answers
# ---------------------------------------------------------------------------


def test_inner_product_recall_known_answers():
    users = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    items = np.array([[3.0, 0.0], [2.0, 1.0], [0.0, 3.0], [1.0, 2.0]], dtype=np.float32)
    # User 0 ranks items 0, 1, 3, 2; user 1 ranks 2, 3, 1, 0.
    test = (np.array([0, 0, 1]), np.array([1, 2, 3]))
    # k=2: user 0 finds item 1 of {1, 2} -> 1/2; user 1 finds item 3 -> 1; mean 0.75.
    assert inner_product_recall(users, items, test, k=2) == pytest.approx(0.75)
    # Excluding (0, 0) lets user 0 reach items 1 and 3 in its top 2: still 1/2, and 2 in its top 3: 1.
    assert inner_product_recall(users, items, test, k=3, exclude=(np.array([0]), np.array([0]))) == 1.0
    # A duplicated test pair counts once; k beyond the catalogue ranks everything.
    duplicated = (np.array([0, 0, 0, 1]), np.array([1, 1, 2, 3]))
    assert inner_product_recall(users, items, duplicated, k=2) == pytest.approx(0.75)
    assert inner_product_recall(users, items, test, k=10) == 1.0
    # An excluded item never counts as retrieved, even when k covers the whole catalogue.
    assert inner_product_recall(users, items, test, k=10, exclude=(np.array([0]), np.array([2]))) == 0.75


# ---------------------------------------------------------------------------
# Quality
# ---------------------------------------------------------------------------


def test_beats_popularity_on_held_out_positives(models, world):
    model = model_recall(models[True], world, world.test)
    popularity = popularity_recall(world, world.test)
    # Measured: model ~0.66, popularity ~0.37 (ranking by the planted taste x popularity: ~0.70).
    assert model > popularity + 0.15, (model, popularity)


def test_logq_correction_trades_tail_recall_for_head_and_overall_recall(models, world):
    """In-batch negatives are drawn by popularity, so without the correction a score learns about
    log P(item | user) - log q_item: popularity is divided out and tail items are pushed up. With it
    the score estimates log P(item | user), which is what recall on held-out positives rewards."""
    head, tail = head_and_tail(world, world.test)
    recall = {
        (logq, name): model_recall(models[logq], world, pairs)
        for logq in (True, False)
        for name, pairs in (("all", world.test), ("head", head), ("tail", tail))
    }
    # Measured (logQ / no logQ): all ~0.66 / ~0.31, head ~0.84 / ~0.27, tail ~0.36 / ~0.38.
    assert recall[True, "all"] > 1.5 * recall[False, "all"], recall
    assert recall[True, "head"] > 2 * recall[False, "head"], recall
    assert recall[False, "tail"] > recall[True, "tail"], recall


# ---------------------------------------------------------------------------
# Cold start
# ---------------------------------------------------------------------------


def test_new_user_gets_items_of_its_profile_topic(models, world):
    model = models[True]
    vectors = model.user_embeddings(world.new_users)  # no history: profile only
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    top = np.argsort(-(vectors @ model.item_embeddings(world.items).T), axis=1)[:, :K]  # (N_NEW_USERS, K)
    on_topic = world.item_topic[top] == world.user_topic[world.new_users["user_id"].to_numpy()][:, None]
    # Measured: ~0.57 of the top 50 are in the user's topic, against 1 / N_TOPICS = 0.125 for random items.
    assert on_topic.mean() > 3 / N_TOPICS, on_topic.mean()


def test_new_item_is_closer_to_its_genre_than_to_others(models, world):
    model = models[True]
    new = model.item_embeddings(world.new_items)  # (N_NEW_ITEMS, d)
    catalogue = model.item_embeddings(world.items)  # (N_ITEMS, d)
    assert np.isfinite(new).all()
    similarity = new @ catalogue.T  # (N_NEW_ITEMS, N_ITEMS)
    same_genre = world.new_items["genre"].to_numpy()[:, None] == world.items["genre"].to_numpy()[None, :]
    own = (similarity * same_genre).sum(1) / same_genre.sum(1)
    other = (similarity * ~same_genre).sum(1) / (~same_genre).sum(1)
    # Measured: every new item; mean cosine ~0.96 to its genre against ~0.71 to the others.
    assert (own > other).mean() > 0.9, (own > other).mean()


def test_unknown_history_items_and_users_are_ignored(models, world):
    """History rows naming users outside the table or items the model never saw change nothing."""
    model = models[True]
    noise = pd.DataFrame({"user_id": [N_USERS + 10_000, 0], "item_id": [0, N_ITEMS + 10_000]})
    np.testing.assert_array_equal(
        model.user_embeddings(world.users, pd.concat([world.history, noise])),
        model.user_embeddings(world.users, world.history),
    )


# ---------------------------------------------------------------------------
# Estimator behaviour
# ---------------------------------------------------------------------------


def test_outputs_are_unit_float32(models, world):
    model = models[True]
    for vectors in (model.user_embeddings(world.users, world.history), model.item_embeddings(world.items)):
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert model.user_embeddings(world.users.iloc[:0]).shape == (0, model.embedding_dim)


def test_same_seed_gives_identical_embeddings(world):
    def fit() -> TwoTowerModel:
        return TwoTowerModel(USER_SPEC, ITEM_SPEC, epochs=1, batch_size=512).fit(
            world.users, world.items, world.train, world.history
        )

    first, second = fit(), fit()
    np.testing.assert_array_equal(first.item_embeddings(world.items), second.item_embeddings(world.items))
    np.testing.assert_array_equal(
        first.user_embeddings(world.users, world.history), second.user_embeddings(world.users, world.history)
    )


def test_pickle_round_trip(models, world):
    model = models[True]
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.item_embeddings(world.items), model.item_embeddings(world.items))
    np.testing.assert_array_equal(restored.user_embeddings(world.new_users), model.user_embeddings(world.new_users))


def test_interactions_must_name_known_entities(world):
    unknown = pd.DataFrame({"user_id": [0], "item_id": [N_ITEMS + 1]})
    with pytest.raises(ValueError, match="missing from items"):
        TwoTowerModel(USER_SPEC, ITEM_SPEC).fit(world.users, world.items, unknown)


def test_unfitted_model_raises(world):
    with pytest.raises(RuntimeError, match="not fitted"):
        TwoTowerModel(USER_SPEC, ITEM_SPEC).item_embeddings(world.items)


def test_per_interaction_item_values_equal_to_the_table_change_nothing(world):
    """Overrides go through the same standardisation as the table: passing each interaction its item's own
    price must train exactly the model that reads the price from the items table."""
    quick = {"epochs": 1, "batch_size": 512, "n_threads": 1}
    plain = TwoTowerModel(USER_SPEC, ITEM_SPEC, **quick).fit(world.users, world.items, world.train, world.history)
    prices = world.items.set_index("item_id")["price"].reindex(world.train["item_id"]).to_numpy()
    same = TwoTowerModel(USER_SPEC, ITEM_SPEC, **quick).fit(
        world.users, world.items, world.train, world.history, interaction_item_numeric=pd.DataFrame({"price": prices})
    )
    np.testing.assert_array_equal(plain.item_embeddings(world.items), same.item_embeddings(world.items))
    shifted = TwoTowerModel(USER_SPEC, ITEM_SPEC, **quick).fit(
        world.users,
        world.items,
        world.train,
        world.history,
        interaction_item_numeric=pd.DataFrame({"price": prices + 50}),
    )
    assert not np.array_equal(plain.item_embeddings(world.items), shifted.item_embeddings(world.items))


def test_per_interaction_item_values_are_checked(world):
    model = TwoTowerModel(USER_SPEC, ITEM_SPEC, epochs=1, n_threads=1)
    with pytest.raises(ValueError, match="rows for"):
        model.fit(world.users, world.items, world.train, interaction_item_numeric=pd.DataFrame({"price": [1.0]}))
    with pytest.raises(ValueError, match="not numeric columns"):
        values = pd.DataFrame({"genre": np.zeros(len(world.train))})
        model.fit(world.users, world.items, world.train, interaction_item_numeric=values)
