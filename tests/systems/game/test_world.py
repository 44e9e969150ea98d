import numpy as np
import pandas as pd
import pytest

from common.app.config import load_config
from common.app.paths import REPO_ROOT
from common.evaluation.metrics import auc
from systems.game.recdata import load
from systems.game.steam import conform, load_steam, write_steam
from systems.game.world import MAX_HOURS, START, TAGS, GameWorld, positive_label

FIXTURES = REPO_ROOT / "data" / "fixtures" / "steam"


@pytest.fixture(scope="module")
def tiny_world():
    return GameWorld(**load_config("game", "tiny")["world"])


@pytest.fixture(scope="module")
def tables(tiny_world):
    return tiny_world.generate()


def test_same_seed_same_data(tiny_world, tables):
    again = GameWorld(**load_config("game", "tiny")["world"]).generate()
    for name in ["games", "users", "recommendations", "metadata"]:
        pd.testing.assert_frame_equal(getattr(tables, name), getattr(again, name))
    other = GameWorld(**{**load_config("game", "tiny")["world"], "seed": 12}).generate()
    assert not tables.games["title"].equals(other.games["title"])


def test_tables_are_in_the_public_format_and_round_trip(tables, tmp_path):
    pd.testing.assert_frame_equal(conform(tables).games, tables.games)
    back = load_steam(write_steam(tables, tmp_path))
    for name in ["games", "users", "recommendations", "metadata"]:
        pd.testing.assert_frame_equal(getattr(back, name), getattr(tables, name))


def test_tables_are_consistent(tiny_world, tables):
    games, users, recs, meta = tables.games, tables.users, tables.recommendations, tables.metadata
    assert games["app_id"].is_unique and (games["app_id"] % 10 == 0).all() and games["title"].is_unique
    assert recs["review_id"].is_unique and not recs.duplicated(["user_id", "app_id"]).any()
    assert users["reviews"].equals(
        recs.groupby("user_id").size().reindex(users["user_id"], fill_value=0).reset_index(drop=True)
    )
    assert (users["reviews"] >= 1).all() and (users["products"] >= users["reviews"]).all()
    released = recs["app_id"].map(games.set_index("app_id")["date_release"])
    assert (recs["date"] >= released).all() and recs["date"].between(START, tiny_world.end, inclusive="left").all()
    assert (games["date_release"] < tiny_world.end).all()
    assert meta["app_id"].equals(games["app_id"])
    assert all(2 <= len(tags) == len(set(tags)) and set(tags) <= set(TAGS) for tags in meta["tags"])
    assert (
        games.loc[games["price_original"] == 0, "app_id"].isin(
            meta.loc[meta["tags"].map(lambda tags: "Free to Play" in tags), "app_id"]
        )
    ).all()


def test_behaviour_looks_like_steam(tables):
    recs = tables.recommendations
    assert 0.7 <= recs["is_recommended"].mean() <= 0.9
    # Long-tailed popularity: a tenth of the games draw nearly half the reviews.
    per_game = recs["app_id"].value_counts().reindex(tables.games["app_id"], fill_value=0).sort_values(ascending=False)
    assert per_game.iloc[: len(per_game) // 10].sum() / per_game.sum() >= 0.4
    assert per_game.median() < 0.6 * per_game.mean()
    # Heavy-tailed hours, capped like the public file.
    hours = recs["hours"]
    assert hours.mean() > 2 * hours.median() and hours.quantile(0.99) > 20 * hours.median()
    assert hours.between(0, MAX_HOURS).all()
    # Votes: mostly none, a few reviews with many.
    assert (recs["helpful"] == 0).mean() > 0.5 and recs["helpful"].max() >= 50
    # Heavy users and users with a review or three.
    reviews = tables.users["reviews"]
    assert reviews.max() >= 5 * reviews.median() and (reviews <= 3).mean() > 0.1


def test_new_releases_are_reviewed_soon_after_release(tiny_world, tables):
    recs, games = tables.recommendations, tables.games.set_index("app_id")
    released = recs["app_id"].map(games["date_release"])
    new = released >= START
    assert new.mean() > 0.05
    # Share of each game's remaining time that passed before its review: 0.5 if uniform.
    elapsed = (recs["date"] - released)[new] / (tiny_world.end - released[new])
    assert elapsed.mean() < 0.4


def test_users_play_only_games_on_their_platform(tiny_world, tables):
    t = tiny_world.truth
    platform = t["platform"][tables.recommendations["user_id"].to_numpy()]
    game = tiny_world.game_index(tables.recommendations["app_id"].to_numpy())
    assert (platform == 1).any() and t["mac"][game[platform == 1]].all()
    assert (t["linux"] | t["steam_deck"])[game[platform == 2]].all()


def test_positive_label():
    recs = pd.DataFrame({"is_recommended": [True, True, False, True], "hours": [0.5, 2.0, 300.0, 45.2]})
    assert positive_label(recs).tolist() == [False, True, False, True]


def test_positive_probability_is_what_labels_were_drawn_from(tiny_world, tables):
    recs = tables.recommendations
    label = positive_label(recs).to_numpy()
    p = tiny_world.positive_probability(recs["user_id"], recs["app_id"])
    assert 0.7 <= auc(label, p) <= 0.85
    frame = pd.DataFrame({"label": label, "p": p, "decile": pd.qcut(p, 10, labels=False)})
    by_decile = frame.groupby("decile").agg(observed=("label", "mean"), expected=("p", "mean"))
    assert np.allclose(by_decile["observed"], by_decile["expected"], atol=0.04)


def test_relevance_is_higher_for_positive_pairs(tiny_world, tables):
    recs = tables.recommendations
    label = positive_label(recs).to_numpy()
    relevance = tiny_world.relevance(recs["user_id"], recs["app_id"])
    assert relevance[label].mean() > 1.5 * relevance[~label].mean()
    assert auc(label, relevance) > 0.6


def test_relevance_is_zero_before_release_and_off_platform(tiny_world, tables):
    games = tables.games
    late = games.loc[games["date_release"] > START + pd.Timedelta(days=30)].iloc[0]
    users = np.arange(5)
    assert (tiny_world.relevance(users, np.full(5, late["app_id"]), as_of=late["date_release"]) == 0).all()
    assert (tiny_world.relevance(users, np.full(5, late["app_id"]), as_of=tiny_world.end) >= 0).all()
    mac_user = int(np.flatnonzero(tiny_world.truth["platform"] == 1)[0])
    windows_only = games.loc[~games["mac"], "app_id"].to_numpy()
    assert (tiny_world.relevance(np.full(len(windows_only), mac_user), windows_only) == 0).all()


def test_top_relevant(tiny_world, tables):
    recs, games = tables.recommendations, tables.games
    as_of = START + pd.Timedelta(days=90)
    seen = recs.loc[recs["date"] < as_of, ["user_id", "app_id"]]
    users = np.arange(50)
    top = tiny_world.top_relevant(users, 20, as_of=as_of, exclude=seen)
    assert sorted(top) == users.tolist()
    released_before = set(games.loc[games["date_release"] < as_of, "app_id"])
    seen_pairs = set(seen.itertuples(index=False, name=None))
    for user, app_ids in top.items():
        assert 0 < len(app_ids) <= 20 and len(set(app_ids)) == len(app_ids)
        assert set(app_ids) <= released_before
        assert not any((user, a) in seen_pairs for a in app_ids)
        relevance = tiny_world.relevance(np.full(len(app_ids), user), app_ids, as_of=as_of)
        assert (relevance > 0).all() and (np.diff(relevance) <= 1e-12).all()
    # The best unseen game of a user, by brute force over the catalogue.
    user = 7
    candidates = np.array(sorted(released_before - {a for u, a in seen_pairs if u == user}))
    brute = candidates[np.argmax(tiny_world.relevance(np.full(len(candidates), user), candidates, as_of=as_of))]
    assert top[user][0] == brute


def test_oracle_beats_popularity_on_the_held_out_window(tiny_world, tables):
    """The oracle is a ceiling worth reporting: on the last 30 days it recalls more of the
    positives than the most popular unseen games do."""
    recs = tables.recommendations
    test_start = tiny_world.end - pd.Timedelta(days=30)
    train = recs[recs["date"] < test_start]
    test = recs[(recs["date"] >= test_start) & positive_label(recs)]
    relevant = test.groupby("user_id")["app_id"].apply(set)
    oracle = tiny_world.top_relevant(relevant.index, 10, as_of=test_start, exclude=train[["user_id", "app_id"]])
    popular = train.loc[positive_label(train), "app_id"].value_counts().index
    seen = train.groupby("user_id")["app_id"].apply(set)

    def recall(recommended):
        return np.mean([len(set(recommended(u)) & relevant[u]) / len(relevant[u]) for u in relevant.index])

    oracle_recall = recall(lambda u: oracle[u])
    popularity_recall = recall(lambda u: [a for a in popular if a not in seen.get(u, set())][:10])
    assert oracle_recall > 1.3 * popularity_recall


def test_load_reads_the_real_files_when_the_config_names_them():
    config = load_config("game", "tiny")
    real = load({**config, "data": FIXTURES})
    assert len(real.items) == 30 and real.oracle is None
    synthetic = load(config)
    assert len(synthetic.items) == config["world"]["n_games"] and synthetic.oracle is not None


def test_game_index_rejects_unknown_app_ids(tiny_world):
    with pytest.raises(KeyError):
        tiny_world.game_index([5])
