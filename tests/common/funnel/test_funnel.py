"""Unit tests of the shared funnel (common.funnel.funnel) and its ranking inputs
(common.funnel.ranking_features) on a hand-made catalogue of 30 items, ids 100..129 (row = id - 100):

    genre           "a", "b", "c" by row % 3
    item_language   "en" on even rows, "de" on odd rows
    minimum_age     18 for 103 and 104, else 0
    regions         ["de"] for 105 and 106, else [] (everywhere)
    release         row + 1 days before NOW; 107 is released exactly at NOW, 108 a day after it
    title           unique, except 109 "Same Title" and 110 "SAME title" (near-duplicates)

The two-tower model is real (fitted for one epoch on random toy interactions); the ranker is a
stand-in whose P(positive) is the item's `item_engaged_total` / SCALE, so every expected order is
known: by default the score falls with the id (100 best).
"""

import numpy as np
import pandas as pd
import pytest

from common.data.dataset import Schema
from common.features.activity import ITEM_ACTIVITY
from common.funnel.funnel import Funnel
from common.funnel.ranking_features import (
    DAY_S,
    DERIVED,
    USER_TOTALS,
    ItemCatalog,
    RecommenderScorer,
    UserStates,
    model_columns,
    model_inputs,
    recommender_request,
    served_columns,
    step_columns,
)
from common.retrieval.ann import ANNIndex
from common.retrieval.sources import RankedList, SegmentedRankedList
from common.retrieval.tower_training import HISTORY_GROUPS, RECENT_ENGAGEMENTS, TwoTowerSource, item_spec, user_spec
from common.retrieval.two_tower import TwoTowerModel

NOW = pd.Timestamp("2024-06-01", tz="UTC")
NOW_S = float(NOW.timestamp())
IDS = np.arange(100, 130, dtype=np.int64)
GENRES = ["a", "b", "c"]
SCALE = 4000.0
SCHEMA = Schema(
    item_name="thing",
    group_column="genre",
    user_categorical=("country", "language"),
    user_numeric=("age",),
    item_categorical=("genre", "item_language"),
    item_numeric=("log_price",),
    segments=("country",),
    language=("language", "item_language"),
    user_age_column="age",
)


def funnel_config(max_per_group: int = 100) -> dict:
    return {
        "k_per_source": 100,
        "score": {"combine": "probability"},
        "candidate_filters": [{"step": "released"}],
        "re_ranking": [
            {"step": "min_age", "user": "age", "item": "minimum_age"},
            {"step": "regions", "user": "country", "item": "regions"},
            {"step": "freshness", "weight": 0.0, "half_life_days": 3},
            {"step": "dedupe", "item": "title"},
            {"step": "group_cap", "item": "genre", "max_per_group": max_per_group},
        ],
    }


CONFIG = funnel_config()
ADULT_DE = {"user_id": 1, "country": "de", "language": "de", "age": 30}


class EngagementRanker:
    """Stands in for a trained ranker: P(positive) = item_engaged_total / SCALE."""

    def predict_proba(self, X) -> np.ndarray:
        """X: the model_inputs columns (a DataFrame, or a dict of arrays on the serving path)."""
        p = np.asarray(X["item_engaged_total"], dtype=float) / SCALE
        return np.column_stack([1 - p, p])


def make_metadata() -> pd.DataFrame:
    rows = IDS - 100
    release = NOW_S - (rows + 1) * DAY_S
    release[IDS == 107] = NOW_S
    release[IDS == 108] = NOW_S + DAY_S
    titles = [f"Game {i}" for i in IDS]
    titles[9], titles[10] = "Same Title", "SAME title"
    return pd.DataFrame(
        {
            "item_id": IDS,
            "title": titles,
            "genre": [GENRES[r % 3] for r in rows],
            "item_language": np.where(rows % 2 == 0, "en", "de"),
            "log_price": rows * 0.1,
            "minimum_age": np.where(np.isin(IDS, [103, 104]), 18, 0),
            "regions": [["de"] if i in (105, 106) else [] for i in IDS],
            "release_s": release.astype(np.int64),
        }
    )


def recent_engagements() -> np.ndarray:
    """What the item tower reads as each item's recent popularity."""
    return np.arange(len(IDS), 0, -1, dtype=float)


def activity(engaged_total: np.ndarray | None = None) -> dict[str, np.ndarray]:
    columns = {c: np.zeros(len(IDS)) for c in ITEM_ACTIVITY}
    columns["item_engaged_total"] = (1000.0 - 10 * (IDS - 100)) if engaged_total is None else engaged_total
    return columns


@pytest.fixture(scope="module")
def tower() -> TwoTowerModel:
    rng = np.random.default_rng(0)
    n_users = 40
    users = pd.DataFrame(
        {
            "user_id": np.arange(n_users),
            "country": rng.choice(["us", "de", "fr"], n_users),
            "language": rng.choice(["en", "de"], n_users),
            "age": rng.integers(13, 70, n_users).astype(float),
            HISTORY_GROUPS: [list(rng.choice(GENRES, rng.integers(0, 3))) for _ in range(n_users)],
        }
    )
    interactions = pd.DataFrame({"user_id": rng.integers(0, n_users, 300), "item_id": rng.choice(IDS, 300)})
    model = TwoTowerModel(
        user_spec(SCHEMA), item_spec(SCHEMA), embedding_dim=8, hidden_units=[16], epochs=1, batch_size=64
    )
    items = make_metadata().assign(**{RECENT_ENGAGEMENTS: np.log1p(recent_engagements())})
    return model.fit(users, items, interactions)


@pytest.fixture(scope="module")
def catalog(tower) -> ItemCatalog:
    return ItemCatalog.build(make_metadata(), SCHEMA, tower, recent_engagements(), step_columns(CONFIG))


@pytest.fixture(scope="module")
def sources(catalog) -> list:
    return [
        TwoTowerSource(ANNIndex.build(catalog.item_ids, catalog.vectors, seed=0)),
        RankedList("popularity", IDS.copy()),  # every item: the whole catalogue is a candidate
        SegmentedRankedList("popularity_country", "country", {"de": np.array([105, 106, 120])}, np.array([100, 101])),
        RankedList("trending", np.array([129, 128, 127, 108, 107])),
    ]


def make_funnel(catalog, sources, engaged_total=None, max_per_group: int = 100) -> Funnel:
    config = funnel_config(max_per_group)
    scorer = RecommenderScorer(EngagementRanker(), catalog, activity(engaged_total), config["score"])
    return Funnel(catalog, sources, scorer, config)


@pytest.fixture(scope="module")
def funnel(catalog, sources) -> Funnel:
    return make_funnel(catalog, sources)


def user_row(user_id=1, country=None, language=None, age=None, seen=(), history=(), last_engaged_s=-1) -> dict:
    return {
        "user_id": user_id,
        "country": country,
        "language": language,
        "age": age,
        "user_events_total": 5,
        "user_engaged_total": 3,
        "user_positive_total": 2,
        "last_engaged_s": last_engaged_s,
        "history_item_ids": list(history),
        "seen_item_ids": list(seen),
    }


def states_of(tower, catalog, *rows: dict, history_groups=None) -> UserStates:
    return UserStates.build(pd.DataFrame(list(rows)), tower, catalog, history_groups=history_groups)


def request_of(tower, catalog, now_s=NOW_S, **user):
    return recommender_request(states_of(tower, catalog, user_row(**user)), 0, SCHEMA, now_s)


def recommend(funnel, tower, catalog, k=10, now_s=NOW_S, **user):
    return funnel.recommend(request_of(tower, catalog, now_s, **user), k)


def ids_of(catalog, recommendation) -> list[int]:
    return catalog.item_ids[recommendation.rows].tolist()


# ---- the whole funnel on known answers ----------------------------------------------------------
def test_known_answer_for_an_adult_in_de(funnel, tower, catalog):
    result = recommend(funnel, tower, catalog, k=5, seen=[100], **ADULT_DE)
    assert ids_of(catalog, result) == [101, 102, 103, 104, 105]
    np.testing.assert_allclose(result.scores, (1000 - 10 * np.arange(1, 6)) / SCALE)


def test_seen_items_are_never_returned(funnel, tower, catalog):
    seen = [100, 101, 102, 105, 129]
    fresh = ids_of(catalog, recommend(funnel, tower, catalog, k=10, **ADULT_DE))
    assert set(seen[:4]) <= set(fresh)  # the best items, when not seen
    result = recommend(funnel, tower, catalog, k=10, seen=seen, **ADULT_DE)
    assert not set(ids_of(catalog, result)) & set(seen)
    ids = ids_of(catalog, result)
    # 109 and 110 share a title: the better-scored copy (109) stays, whichever the merge met first.
    assert ids[:3] == [103, 104, 106] and ids[3] == 109 and ids[4:] == [111, 112, 113, 114, 115, 116]
    everything = recommend(funnel, tower, catalog, k=100, seen=seen, **ADULT_DE)
    assert not set(ids_of(catalog, everything)) & set(seen)
    counts = everything.counts["candidate_generation"]
    assert counts["popularity"] == len(IDS) - len(seen)  # sources already drop what was seen
    assert counts["trending"] == 4  # 129 was seen


def test_unreleased_items_are_never_returned(funnel, tower, catalog):
    """107 is released exactly at the request time, 108 a day later: neither is in the catalogue yet."""
    result = recommend(funnel, tower, catalog, k=100, **ADULT_DE)
    assert not {107, 108} & set(ids_of(catalog, result))
    counts = result.counts["candidate_generation"]
    assert counts["merged"] == len(IDS) and counts["out"] == len(IDS) - 2
    later = recommend(funnel, tower, catalog, k=100, now_s=NOW_S + 2 * DAY_S, **ADULT_DE)
    assert {107, 108} <= set(ids_of(catalog, later))
    assert later.counts["candidate_generation"]["out"] == len(IDS)


@pytest.mark.parametrize("age", [15, None, float("nan")])
def test_age_restricted_items_need_a_known_old_enough_user(funnel, tower, catalog, age):
    adult = ids_of(catalog, recommend(funnel, tower, catalog, k=10, **ADULT_DE))
    assert {103, 104} <= set(adult)
    minor = ids_of(catalog, recommend(funnel, tower, catalog, k=100, **{**ADULT_DE, "age": age}))
    assert not {103, 104} & set(minor)
    assert {100, 101, 102, 105} <= set(minor)


@pytest.mark.parametrize("country", ["us", None])
def test_region_restricted_items_only_where_available(funnel, tower, catalog, country):
    elsewhere = ids_of(catalog, recommend(funnel, tower, catalog, k=100, **{**ADULT_DE, "country": country}))
    assert not {105, 106} & set(elsewhere)
    assert {100, 101, 102, 103, 104} <= set(elsewhere)  # unrestricted items are available everywhere
    assert {105, 106} <= set(ids_of(catalog, recommend(funnel, tower, catalog, k=10, **ADULT_DE)))


def test_at_most_max_per_group_items_of_a_genre(catalog, sources, tower):
    # Genre "a" (rows 0, 3, 6...) holds the best scores: uncapped, the top 6 would all be "a".
    genre_a = (IDS - 100) % 3 == 0
    engaged = np.where(genre_a, 2000.0, 1000.0) - (IDS - 100)
    uncapped = make_funnel(catalog, sources, engaged)
    top = recommend(uncapped, tower, catalog, k=6, **ADULT_DE)
    assert ids_of(catalog, top)[:3] == [100, 103, 106]
    assert [catalog.groups[g] for g in catalog.group_codes[top.rows]] == ["a"] * 6
    capped = make_funnel(catalog, sources, engaged, max_per_group=2)
    result = recommend(capped, tower, catalog, k=6, **ADULT_DE)
    assert ids_of(catalog, result) == [100, 103, 101, 102, 104, 105]
    everything = recommend(capped, tower, catalog, k=100, **ADULT_DE)
    genres = catalog.group_codes[everything.rows]
    assert len(everything.rows) == 2 * len(GENRES)  # the cap runs the pool dry before k
    assert np.bincount(genres).tolist() == [2, 2, 2]


def test_near_duplicate_titles_are_removed(funnel, tower, catalog):
    result = ids_of(catalog, recommend(funnel, tower, catalog, k=100, **ADULT_DE))
    assert len({109, 110} & set(result)) == 1
    titles = catalog.columns["title"][catalog.rows(np.array(result))]
    lowered = [t.lower() for t in titles]
    assert len(lowered) == len(set(lowered))


def test_k_larger_than_the_pool(funnel, tower, catalog):
    result = recommend(funnel, tower, catalog, k=1000, seen=[100, 101], **ADULT_DE)
    ids = ids_of(catalog, result)
    # 30 items - 2 seen - 2 unreleased - 1 near-duplicate.
    assert len(ids) == len(set(ids)) == 25
    counts = result.counts
    assert counts["re_ranking"] == {"in": 26, "min_age": 26, "regions": 26, "dedupe": 25, "group_cap": 25, "out": 25}
    assert counts["ranking"] == {"in": 26, "out": 26} and counts["candidate_generation"]["out"] == 26
    assert list(result.scores) == sorted(result.scores, reverse=True)  # no freshness boost: by score
    assert len(result.sources) == len(ids)


def test_every_result_names_exactly_the_sources_that_returned_it(funnel, tower, catalog, sources):
    seen = [100, 120]
    request = request_of(tower, catalog, seen=seen, **ADULT_DE)
    result = funnel.recommend(request, 100)
    lists = {s.name: set(s.retrieve(request, CONFIG["k_per_source"]).tolist()) - set(seen) for s in sources}
    assert lists["popularity_country"] == {105, 106}
    order = [s.name for s in sources]
    for item, names in zip(ids_of(catalog, result), result.sources, strict=True):
        assert names, item
        assert list(names) == [n for n in order if n in names]  # in source order
        assert set(names) == {name for name, found in lists.items() if item in found}, item
    found = dict(zip(ids_of(catalog, result), result.sources, strict=True))
    assert "popularity_country" in found[105] and "trending" in found[129]
    counts = result.counts["candidate_generation"]
    assert {name: counts[name] for name in order} == {name: len(ids) for name, ids in lists.items()}


def test_merge_order_baseline_obeys_the_same_filters(funnel, tower, catalog):
    request = request_of(tower, catalog, seen=[100], user_id=2, country="us", language="en", age=15)
    result = funnel.variant(scorer=None).recommend(request, 100)
    rows = result.rows
    ids = set(catalog.item_ids[rows].tolist())
    assert not result.scores.any() and list(result.keys) == sorted(result.keys, reverse=True)  # merge order
    assert not ids & {100, 103, 104, 105, 106, 107, 108}
    assert len({109, 110} & ids) == 1 and len(ids) == len(rows) == 30 - 8


# ---- ranking inputs ------------------------------------------------------------------------------
def test_model_inputs_columns_and_hand_computed_values(tower, catalog):
    with_history = user_row(
        user_id=1,
        country="us",
        language="en",
        age=30,
        history=[100, 101, 103, 9999],  # 9999 is not in the catalogue: ignored by the shares
        last_engaged_s=int(NOW_S - 2 * DAY_S),
    )
    newcomer = user_row(user_id=2, country="de", language="de", age=20)
    states = states_of(tower, catalog, with_history, newcomer)
    assert states.columns[HISTORY_GROUPS][0] == ["a", "b", "a"] and states.columns[HISTORY_GROUPS][1] == []
    np.testing.assert_allclose(states.group_share, [[2 / 3, 1 / 3, 0], [0, 0, 0]], rtol=1e-6)

    item_rows = np.array([0, 1, 2, 0, 1, 2])  # items 100 (a, en), 101 (b, de), 102 (c, en), for both users
    state_rows = np.array([0, 0, 0, 1, 1, 1])
    pair_activity = {c: np.arange(6, dtype=float) + i for i, c in enumerate(ITEM_ACTIVITY)}
    X = model_inputs(states, state_rows, catalog, item_rows, NOW_S, pair_activity)

    categorical, numeric = model_columns(SCHEMA)
    assert sorted(X.columns) == sorted([*categorical, *numeric]) and len(X.columns) == len(set(X.columns))
    assert set(DERIVED) <= set(X.columns) and set(USER_TOTALS) <= set(X.columns)
    assert len(X) == 6
    assert X["language_match"].tolist() == [1, 0, 1, 0, 1, 0]
    np.testing.assert_allclose(X["item_age_days"], [1, 2, 3, 1, 2, 3])
    np.testing.assert_allclose(X["group_share"], [2 / 3, 1 / 3, 0, 0, 0, 0], rtol=1e-6)
    assert X["history_length"].tolist() == [4, 4, 4, 0, 0, 0]
    np.testing.assert_allclose(X["days_since_engaged"][:3], 2.0)
    assert X["days_since_engaged"][3:].isna().all()  # never engaged
    assert X["country"].tolist() == ["us"] * 3 + ["de"] * 3 and X["age"].tolist() == [30] * 3 + [20] * 3
    assert X["genre"].tolist() == ["a", "b", "c"] * 2 and X["item_language"].tolist() == ["en", "de", "en"] * 2
    assert X["user_events_total"].tolist() == [5] * 6
    for c in ITEM_ACTIVITY:
        np.testing.assert_array_equal(X[c], pair_activity[c])
    user_vectors, item_vectors = states.vectors[state_rows], catalog.vectors[item_rows]
    np.testing.assert_allclose(X["tower_score"], (user_vectors * item_vectors).sum(1), rtol=1e-5)
    history_mean = catalog.vectors[[0, 1, 3]].mean(0)
    np.testing.assert_allclose(X["history_similarity"][:3], item_vectors[:3] @ history_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(X["history_similarity"][3:], 0.0)


def test_model_inputs_takes_one_time_per_pair(tower, catalog):
    states = states_of(tower, catalog, user_row(age=30, language="en", last_engaged_s=int(NOW_S)))
    now = NOW_S + DAY_S * np.array([0.0, 1.0, 10.0])
    pair_activity = {c: np.zeros(3) for c in ITEM_ACTIVITY}
    X = model_inputs(states, np.zeros(3, int), catalog, np.array([0, 0, 0]), now, pair_activity)
    np.testing.assert_allclose(X["item_age_days"], [1, 2, 11])
    np.testing.assert_allclose(X["days_since_engaged"], [0, 1, 10])


def test_favourite_genres_stand_in_for_the_history_of_a_new_user(tower, catalog):
    row = user_row(user_id=10**6, country="us", language="en", age=30)
    plain = states_of(tower, catalog, row)
    picked_a = states_of(tower, catalog, row, history_groups=[["a"]])
    picked_b = states_of(tower, catalog, row, history_groups=[["b", "c"]])
    assert picked_a.columns[HISTORY_GROUPS][0] == ["a"]
    assert not np.allclose(picked_a.vectors, plain.vectors)
    assert not np.allclose(picked_a.vectors, picked_b.vectors)


def test_catalog_rows_and_groups(catalog):
    assert catalog.rows(np.array([129, 100, 5])).tolist() == [29, 0, -1]
    assert catalog.groups == GENRES and catalog.group_codes[:4].tolist() == [0, 1, 2, 0]
    assert catalog.vectors.shape == (len(IDS), 8)
    np.testing.assert_allclose(np.linalg.norm(catalog.vectors, axis=1), 1.0, rtol=1e-5)
    assert catalog.release_s[7] == NOW_S
    expected = {*served_columns(SCHEMA, step_columns(CONFIG)), "release_s"}
    assert set(catalog.columns) == expected and {"minimum_age", "regions"} <= expected
    assert RECENT_ENGAGEMENTS not in catalog.columns


def test_catalog_embeddings_read_recent_engagements(tower, catalog):
    """The item tower reads each item's popularity as of the catalogue's time: other counts, other vectors."""
    busier = ItemCatalog.build(make_metadata(), SCHEMA, tower, recent_engagements() * 10 + 5)
    assert not np.allclose(catalog.vectors, busier.vectors)
