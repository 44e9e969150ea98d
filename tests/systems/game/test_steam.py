import shutil

import numpy as np
import pandas as pd
import pytest

from common.app.paths import REPO_ROOT
from systems.game.steam import (
    FILES,
    GAMES_SCHEMA,
    METADATA_SCHEMA,
    RECOMMENDATIONS_SCHEMA,
    USERS_SCHEMA,
    load_steam,
    steam_rating,
    write_steam,
)

FIXTURES = REPO_ROOT / "data" / "fixtures" / "steam"


@pytest.fixture(scope="module")
def fixtures():
    return load_steam(FIXTURES)


@pytest.fixture
def fixture_copy(tmp_path):
    return shutil.copytree(FIXTURES, tmp_path / "steam")


def test_fixtures_load_with_the_public_columns_and_normalised_dtypes(fixtures):
    for frame, schema in [
        (fixtures.games, GAMES_SCHEMA),
        (fixtures.users, USERS_SCHEMA),
        (fixtures.recommendations, RECOMMENDATIONS_SCHEMA),
        (fixtures.metadata, METADATA_SCHEMA),
    ]:
        assert list(frame.columns) == list(schema)
    games, recs = fixtures.games, fixtures.recommendations
    assert str(games["date_release"].dtype) == str(recs["date"].dtype) == "datetime64[ns, UTC]"
    assert all(games[c].dtype == bool for c in ["win", "mac", "linux", "steam_deck"])
    assert recs["is_recommended"].dtype == bool and recs["hours"].dtype == np.float64
    assert games["app_id"].dtype == recs["user_id"].dtype == np.int64
    assert all(isinstance(tags, list) and all(isinstance(t, str) for t in tags) for tags in fixtures.metadata["tags"])
    # Values that trip naive parsers survive: a quoted comma, non-ASCII, an empty description.
    assert {"Tiny Towns, Big Dreams", "Crimson Vanguard™", "Café Crescendo"} <= set(games["title"])
    empty = fixtures.metadata.set_index("app_id").loc[2109840]
    assert empty["description"] == "" and empty["tags"] == []
    assert (recs["is_recommended"].mean() > 0.5) and (~recs["is_recommended"]).any()


def test_fixtures_are_consistent(fixtures):
    games, users, recs, meta = fixtures.games, fixtures.users, fixtures.recommendations, fixtures.metadata
    assert len(games) == 30 and len(users) == 40 and len(recs) >= 250
    assert recs["review_id"].is_unique and not recs.duplicated(["user_id", "app_id"]).any()
    assert set(recs["app_id"]) <= set(games["app_id"]) and set(meta["app_id"]) == set(games["app_id"])
    per_user = recs.groupby("user_id").size()
    counted = users.set_index("user_id")["reviews"]
    assert per_user.reindex(counted.index, fill_value=0).equals(counted)
    assert (users["products"] >= users["reviews"]).all()
    released = recs["app_id"].map(games.set_index("app_id")["date_release"])
    assert (recs["date"] >= released).all()
    assert (steam_rating(games["positive_ratio"], games["user_reviews"]) == games["rating"]).all()
    discounted = np.round(games["price_original"] * (1 - games["discount"] / 100), 2)
    assert np.allclose(games["price_final"], discounted, atol=0.011)


def test_missing_file_is_named_with_the_expected_set(fixture_copy):
    (fixture_copy / "users.csv").unlink()
    with pytest.raises(FileNotFoundError, match="users.csv") as error:
        load_steam(fixture_copy)
    assert all(name in str(error.value) for name in FILES)


def test_missing_columns_are_listed(fixture_copy):
    games = pd.read_csv(fixture_copy / "games.csv", dtype=str, keep_default_na=False)
    games.drop(columns=["rating", "steam_deck"]).to_csv(fixture_copy / "games.csv", index=False)
    with pytest.raises(ValueError, match=r"games.csv lacks columns \['rating', 'steam_deck'\]"):
        load_steam(fixture_copy)


def test_metadata_without_tags_is_reported(fixture_copy):
    path = fixture_copy / "games_metadata.json"
    path.write_text('{"app_id": 405870, "description": "A game."}\n')
    with pytest.raises(ValueError, match=r"games_metadata.json lacks columns \['tags'\]"):
        load_steam(fixture_copy)


def test_unparseable_values_name_the_file(fixture_copy):
    path = fixture_copy / "recommendations.csv"
    path.write_text(path.read_text().replace(",true,", ",maybe,", 1))
    with pytest.raises(ValueError, match="recommendations.csv"):
        load_steam(fixture_copy)


def test_extra_columns_are_ignored(fixture_copy):
    users = pd.read_csv(fixture_copy / "users.csv")
    users.assign(country="NL").to_csv(fixture_copy / "users.csv", index=False)
    assert list(load_steam(fixture_copy).users.columns) == list(USERS_SCHEMA)


def test_writer_reproduces_the_public_files_byte_for_byte(fixtures, tmp_path):
    write_steam(fixtures, tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), name


@pytest.mark.parametrize(
    ("ratio", "reviews", "label"),
    [
        (95, 500, "Overwhelmingly Positive"),
        (94, 100_000, "Very Positive"),
        (96, 499, "Very Positive"),
        (80, 50, "Very Positive"),
        (100, 49, "Positive"),
        (80, 10, "Positive"),
        (79, 10_000, "Mostly Positive"),
        (70, 10, "Mostly Positive"),
        (69, 800, "Mixed"),
        (40, 10, "Mixed"),
        (39, 600, "Mostly Negative"),
        (20, 10, "Mostly Negative"),
        (19, 49, "Negative"),
        (0, 50, "Very Negative"),
        (19, 499, "Very Negative"),
        (19, 500, "Overwhelmingly Negative"),
    ],
)
def test_steam_rating_rules(ratio, reviews, label):
    assert steam_rating(np.array([ratio]), np.array([reviews]))[0] == label


def test_steam_rating_needs_ten_reviews():
    with pytest.raises(ValueError, match="10 reviews"):
        steam_rating(np.array([90]), np.array([9]))
