import importlib.resources
import re

import numpy as np
import pandas as pd
import pytest

from systems.search.queries import KNOWN, Intent, compose
from systems.search.vocabulary import CATEGORIES, ENGLISH, brands, words
from systems.search.world import COMPLEMENT, EXACT, IRRELEVANT, SUBSTITUTE, ProductWorld

TINY = {"n_products": 3000, "n_intents": 400, "n_shoppers": 500, "days": 6, "impressions": 20_000}
ATTRIBUTES = ("brand", "color", "material", "size")
PRODUCT_COLUMNS = ("product_brand", "product_color", "material", "size")  # the products' columns of ATTRIBUTES
SPECS = {name: spec for category in CATEGORIES.values() for name, spec in category.types.items()}


@pytest.fixture(scope="module")
def world():
    return ProductWorld(**TINY)


@pytest.fixture(scope="module")
def tables(world):
    return world.generate()


@pytest.fixture(scope="module")
def shown(world, tables):
    """Impressions with their search's query and intent, the product's title and the true grade."""
    frame = tables["impressions"].merge(tables["searches"], on="search_id")
    frame = frame.merge(tables["products"][["product_id", "product_title", "product_type"]], on="product_id")
    frame["grade"] = world.grades(frame["intent_id"].to_numpy(), frame["product_id"].to_numpy())
    return frame


def test_same_seed_same_tables(tables):
    again = ProductWorld(**TINY).generate()
    for name, table in tables.items():
        pd.testing.assert_frame_equal(table, again[name])
    other = ProductWorld(**{**TINY, "seed": 1}).generate()
    assert not tables["products"]["product_title"].equals(other["products"]["product_title"])
    assert not tables["impressions"]["clicked"].equals(other["impressions"]["clicked"])


def test_tables_have_the_interface_columns_dtypes_and_sizes(tables):
    text, integer, timestamp = "object", "int64", "datetime64[ns]"
    expected = {
        "products": {
            "product_id": integer,
            **dict.fromkeys(
                ["product_title", "product_description", "product_bullet_point", "product_brand", "product_color"],
                text,
            ),
            **dict.fromkeys(["product_locale", "category", "product_type", "size", "material"], text),
            "price": "float64",
            "review_count": integer,
            "rating": "float64",
            "available": "bool",
        },
        "intents": {
            "intent_id": integer,
            **dict.fromkeys(["category", "product_type", "color", "brand", "material", "size"], text),
            "popularity": "float64",
        },
        "searches": {
            "search_id": integer,
            "timestamp": timestamp,
            "user_id": integer,
            "intent_id": integer,
            "query": text,
            "clean_query": text,
        },
        "impressions": {
            "search_id": integer,
            "product_id": integer,
            "position": integer,
            "clicked": "bool",
            "dwell_seconds": "float64",
            "added_to_cart": "bool",
            "purchased": "bool",
        },
        "shoppers": {"user_id": integer, "country": text, "signup_timestamp": timestamp},
    }
    assert set(tables) == set(expected)
    for name, columns in expected.items():
        assert tables[name].dtypes.astype(str).to_dict() == columns, name
    products, searches, impressions = tables["products"], tables["searches"], tables["impressions"]
    assert products["product_id"].tolist() == list(range(TINY["n_products"]))
    assert tables["intents"]["intent_id"].tolist() == list(range(TINY["n_intents"]))
    assert len(tables["shoppers"]) == TINY["n_shoppers"]
    assert abs(len(impressions) - TINY["impressions"]) < 10
    assert searches["search_id"].tolist() == list(range(len(searches)))
    assert searches["timestamp"].is_monotonic_increasing
    assert searches["timestamp"].dt.normalize().nunique() == TINY["days"]
    assert (products["product_locale"] == "us").all()
    assert (products["rating"].isna() == (products["review_count"] == 0)).all()
    assert 0.9 < products["available"].mean() < 0.99
    assert products["product_title"].nunique() < len(products) / 2  # products share titles


def test_pages_are_distinct_products_in_position_order(tables):
    impressions = tables["impressions"]
    assert not impressions.duplicated(["search_id", "product_id"]).any()
    positions = impressions.groupby("search_id")["position"].apply(list)
    assert all(p == list(range(1, 11)) for p in positions)


def test_reactions_form_a_funnel(tables):
    impressions = tables["impressions"].merge(tables["products"][["product_id", "available"]], on="product_id")
    assert (impressions.loc[~impressions["clicked"], "dwell_seconds"] == 0).all()
    assert (impressions.loc[impressions["clicked"], "dwell_seconds"] > 0).all()
    added = impressions[impressions["added_to_cart"]]
    assert len(added) > 0 and (added["dwell_seconds"] > 30).all() and added["available"].all()
    assert not (impressions["purchased"] & ~impressions["added_to_cart"]).any()


def test_intents_are_distinct_and_each_has_an_exact_product(world, tables):
    intents = tables["intents"]
    assert not intents.duplicated(["product_type", *ATTRIBUTES]).any()
    assert set((intents[list(ATTRIBUTES)] != "").sum(axis=1)) == {0, 1, 2, 3}
    assert all(world.intent_grades(i).max() == EXACT for i in range(len(intents)))
    popularity = np.sort(intents["popularity"].to_numpy())[::-1]
    assert popularity.sum() == pytest.approx(1.0)
    assert popularity[0] > 20 * popularity[len(popularity) // 2]  # Zipf: head intents repeat


def _expected_grade(intent: pd.Series, product: pd.Series) -> int:
    """The ESCI grade, straight from the definition on the tables' text columns."""
    wanted, offered = intent["product_type"], product["product_type"]
    if wanted == offered:
        fits = all(intent[a] in ("", product[column]) for a, column in zip(ATTRIBUTES, PRODUCT_COLUMNS, strict=True))
        return EXACT if fits else SUBSTITUTE
    if offered in SPECS[wanted].substitutes or wanted in SPECS[offered].substitutes:
        return SUBSTITUTE
    if offered in SPECS[wanted].complements or wanted in SPECS[offered].complements:
        return COMPLEMENT
    return IRRELEVANT


def test_grades_follow_the_esci_definition(world, tables):
    intents, products = tables["intents"], tables["products"]
    rng = np.random.default_rng(0)
    pairs = np.concatenate(
        [
            tables["impressions"].merge(tables["searches"])[["intent_id", "product_id"]].to_numpy()[:3000],
            np.column_stack([rng.integers(0, len(intents), 1000), rng.integers(0, len(products), 1000)]),
        ]
    )
    expected = [_expected_grade(intents.iloc[i], products.iloc[p]) for i, p in pairs]
    assert world.grades(pairs[:, 0], pairs[:, 1]).tolist() == expected
    assert set(expected) == {EXACT, SUBSTITUTE, COMPLEMENT, IRRELEVANT}


def test_grades_on_hand_picked_cases(world, tables):
    """A branded intent against: its exact product, the same type of another brand, a complement type
    and a type of another category that is neither."""
    intents, products = tables["intents"], tables["products"]
    branded = intents[(intents["brand"] != "") & intents["product_type"].map(lambda t: bool(SPECS[t].complements))]
    intent = branded.iloc[0]
    same_type = products[products["product_type"] == intent["product_type"]]
    fits = np.logical_and.reduce(
        [
            (intent[a] == "") | (same_type[column] == intent[a])
            for a, column in zip(ATTRIBUTES, PRODUCT_COLUMNS, strict=True)
        ]
    )
    complements = SPECS[intent["product_type"]].complements
    cases = {
        EXACT: same_type[fits],
        SUBSTITUTE: same_type[same_type["product_brand"] != intent["brand"]],
        COMPLEMENT: products[products["product_type"].isin(complements)],
        IRRELEVANT: products[
            (products["category"] != intent["category"]) & ~products["product_type"].isin(complements)
        ],
    }
    for grade, rows in cases.items():
        assert len(rows) > 0
        assert (world.grades(np.full(len(rows), intent["intent_id"]), rows["product_id"].to_numpy()) == grade).all()


def test_intent_grades_are_the_elementwise_grades(world):
    n = TINY["n_products"]
    for i in (0, 7, 123, TINY["n_intents"] - 1):
        grades = world.intent_grades(i)
        assert grades.dtype == np.int8 and grades.shape == (n,)
        np.testing.assert_array_equal(grades, world.grades(np.full(n, i), np.arange(n)))
        assert grades[5] == world.grades([i], [5])[0]


def test_clicks_fall_with_position_and_grade(shown):
    exact = shown[shown["grade"] == EXACT].groupby("position")["clicked"].mean()
    assert exact[1] > exact[5] > exact[10]
    by_grade = shown.groupby("grade")["clicked"].mean()
    assert by_grade[EXACT] > 2 * by_grade[SUBSTITUTE] > 0
    assert by_grade[SUBSTITUTE] > by_grade[COMPLEMENT] > by_grade[IRRELEVANT]
    dwell = shown[shown["clicked"]].groupby("grade")["dwell_seconds"].apply(lambda d: (d > 30).mean())
    assert dwell[EXACT] > 2 * dwell[SUBSTITUTE]


def _numbers_aside(text: str) -> list[str]:
    return [word for word in words(text) if not word.isdigit()]


def test_the_world_writes_only_declared_english_words_and_brands(tables):
    allowed = ENGLISH | brands()
    products = tables["products"]
    for column in ("product_title", "product_description", "product_bullet_point"):
        used = {word for text in products[column].unique() for word in _numbers_aside(text)}
        assert used <= allowed, (column, used - allowed)
    used = {word for text in tables["searches"]["clean_query"].unique() for word in _numbers_aside(text)}
    assert used <= allowed, used - allowed


def test_the_word_list_is_english_and_the_brands_are_invented():
    dictionary = importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"
    english = {line.split()[0] for line in dictionary.read_text().splitlines()}
    assert ENGLISH - english == {"tv"}  # the one abbreviation
    assert not brands() & english


def test_misspelled_queries_have_one_typo_at_the_configured_rate(tables):
    searches = tables["searches"]
    unknown = searches["query"].map(lambda q: any(w not in KNOWN for w in _numbers_aside(q)))
    assert (unknown == (searches["query"] != searches["clean_query"])).all()
    rate = ProductWorld.misspelling_rate
    assert 0.75 * rate < unknown.mean() < 1.15 * rate  # short queries ("mug") have no word to misspell
    for query, clean in searches.loc[unknown, ["query", "clean_query"]].drop_duplicates().itertuples(index=False):
        changed = [(a, b) for a, b in zip(query.split(), clean.split(), strict=True) if a != b]
        assert len(changed) == 1 and len(changed[0][1]) >= 5 and abs(len(changed[0][0]) - len(changed[0][1])) <= 1


def _noun_form(text: str, forms: tuple[str, ...]) -> str | None:
    """The longest of the forms that occurs in the text as whole words."""
    found = [f for f in forms if re.search(rf"\b{re.escape(f)}\b", text)]
    return max(found, key=len) if found else None


def test_queries_and_titles_name_the_same_type_by_different_synonyms(shown):
    exact = shown[shown["grade"] == EXACT].drop_duplicates(["clean_query", "product_title"])
    nouns = exact["product_type"].map(lambda t: SPECS[t].nouns)
    in_query = [_noun_form(q, f) for q, f in zip(exact["clean_query"], nouns, strict=True)]
    in_title = [_noun_form(t, f) for t, f in zip(exact["product_title"], nouns, strict=True)]
    named = [(q, t) for q, t in zip(in_query, in_title, strict=True) if q is not None]
    assert all(t is not None for _, t in named)  # every title names its type
    mismatched = np.mean([q != t for q, t in named])
    assert 0.2 < mismatched < 0.8
    canonical = np.mean([q == SPECS[p].nouns[0] for q, p in zip(in_query, exact["product_type"], strict=True) if q])
    assert 0.4 < canonical < 0.8


def test_an_intent_has_a_handful_of_query_variants_the_natural_one_first(tables):
    searches, intents = tables["searches"], tables["intents"]
    head = searches["intent_id"].value_counts().index[0]
    variants = searches.loc[searches["intent_id"] == head, "query"].value_counts()
    row = intents.iloc[head]
    natural, _ = compose(
        Intent(row["category"], row["product_type"], row["brand"], row["color"], row["material"], row["size"]), 0, 0
    )
    assert variants.index[0] == natural
    assert len(variants) <= 20
    assert searches.groupby("intent_id")["query"].nunique().mean() < 6
