import numpy as np
import pandas as pd
import pytest

from common.app.config import load_config
from common.evaluation.metrics import auc
from systems.newsfeed.vocabulary import MAX_WORDS, MIN_WORDS, TOPICS, WORDS, words
from systems.newsfeed.world import REACTIONS, SKIP_SECONDS, START, NewsfeedWorld

ORACLE_COLUMNS = [f"p_{name}" for name in (*REACTIONS, "skip")]


@pytest.fixture(scope="module")
def tiny_config():
    return load_config("newsfeed", "tiny")


@pytest.fixture(scope="module")
def world(tiny_config):
    return NewsfeedWorld(**tiny_config["world"])


@pytest.fixture(scope="module")
def tables(world):
    return world.generate()


@pytest.fixture(scope="module")
def joined(world, tables):
    """Impressions with their post's author, time, topic and media, the oracle, whether the user
    is connected to the author at the time (any connection; a friendship), passivity and affinity."""
    posts = tables.posts.rename(columns={"created_timestamp": "post_timestamp"})
    frame = tables.impressions.merge(posts[["post_id", "author_id", "post_timestamp", "topic", "media_type"]])
    frame = frame.merge(tables.oracle, on="impression_id").sort_values("impression_id").reset_index(drop=True)
    connections = tables.connections.set_index(["follower_id", "followee_id"])
    frame = frame.join(
        connections.rename(columns={"created_timestamp": "connected_since"}), on=["user_id", "author_id"]
    )
    frame["connected"] = frame["connected_since"] < frame["event_timestamp"]
    frame["by_friend"] = frame["connected"] & (frame["connection_type"] == "friend")
    frame["passive"] = np.isin(frame["user_id"], world.passive_users())
    frame["affinity"] = world.topic_affinity(frame["user_id"], frame["post_id"])
    return frame


def test_same_seed_same_data(tiny_config, tables):
    again = NewsfeedWorld(**tiny_config["world"]).generate()
    for name in ("users", "connections", "posts", "impressions", "oracle"):
        pd.testing.assert_frame_equal(getattr(tables, name), getattr(again, name))
    other = NewsfeedWorld(**{**tiny_config["world"], "seed": 12}).generate()
    assert not tables.posts["text"].equals(other.posts["text"])
    assert not tables.impressions["click"].equals(other.impressions["click"])


def test_tables_have_the_interface_columns_and_dtypes(tables):
    timestamp, text = "datetime64[ns, UTC]", "object"
    expected = {
        "users": {"user_id": "int64", "age": "int64", "gender": text, "country": text, "signup_timestamp": timestamp},
        "connections": {
            "follower_id": "int64",
            "followee_id": "int64",
            "connection_type": text,
            "created_timestamp": timestamp,
        },
        "posts": {
            "post_id": "int64",
            "author_id": "int64",
            "created_timestamp": timestamp,
            "topic": text,
            "text": text,
            "hashtags": text,
            "media_type": text,
        },
        "impressions": {
            "impression_id": "int64",
            "user_id": "int64",
            "post_id": "int64",
            "event_timestamp": timestamp,
            "session_id": "int64",
            "slot": "int8",
            "device": text,
            **dict.fromkeys(REACTIONS, "int8"),
            "dwell_s": "float64",
            "skip": "int8",
        },
        "oracle": {"impression_id": "int64", **dict.fromkeys(ORACLE_COLUMNS, "float64"), "expected_dwell_s": "float64"},
    }
    for name, columns in expected.items():
        frame = getattr(tables, name)
        assert {column: str(dtype) for column, dtype in frame.dtypes.items()} == columns, name
    assert tables.users["user_id"].tolist() == list(range(len(tables.users)))
    assert tables.posts["post_id"].tolist() == list(range(len(tables.posts)))
    assert set(tables.connections["connection_type"]) == {"friend", "follow"}
    assert set(tables.posts["media_type"]) == {"text", "image", "video"}
    assert set(tables.impressions["device"]) == {"mobile", "desktop"}
    assert set(tables.posts["topic"]) == set(TOPICS)
    assert (tables.impressions["impression_id"] == tables.oracle["impression_id"]).all()


def test_connections_are_a_valid_homophilous_graph(world, tables):
    connections, users = tables.connections, tables.users
    assert (connections["follower_id"] != connections["followee_id"]).all()
    assert not connections.duplicated(["follower_id", "followee_id"]).any()
    friends = connections[connections["connection_type"] == "friend"]
    reverse = friends.rename(columns={"follower_id": "followee_id", "followee_id": "follower_id"})
    both_ways = friends.merge(reverse, on=["follower_id", "followee_id", "created_timestamp"])
    assert len(both_ways) == len(friends)  # each friendship: two rows, made at the same time
    follows = connections[connections["connection_type"] == "follow"]
    assert follows["followee_id"].nunique() <= max(2, round(0.003 * world.n_users))  # the celebrities
    assert follows.groupby("followee_id").size().max() > 0.1 * world.n_users  # one followed by many
    assert 25 < len(friends) / world.n_users < 35
    signup = users.set_index("user_id")["signup_timestamp"]
    assert (connections["created_timestamp"] > signup[connections["follower_id"]].to_numpy()).all()
    assert (connections["created_timestamp"] > signup[connections["followee_id"]].to_numpy()).all()
    assert (connections["created_timestamp"] < START + pd.Timedelta(days=world.n_days)).all()
    assert 0.02 < (connections["created_timestamp"] >= START).mean() < 0.3  # some made during the logs
    # Homophily: friends share a country and an age far more than random pairs do.
    country, age = users["country"].to_numpy(), users["age"].to_numpy()
    a, b = friends["follower_id"].to_numpy(), friends["followee_id"].to_numpy()
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, world.n_users, (2, len(a)))
    assert (country[a] == country[b]).mean() > (country[x] == country[y]).mean() + 0.3
    assert np.median(np.abs(age[a] - age[b])) < 0.6 * np.median(np.abs(age[x] - age[y]))
    # Triadic closure: friends of friends are friends far more often than the graph's density.
    adjacency = np.zeros((world.n_users, world.n_users))
    adjacency[a, b] = 1
    triangles = np.trace(adjacency @ adjacency @ adjacency)
    degree = adjacency.sum(axis=1)
    clustering = triangles / (degree * (degree - 1)).sum()
    assert clustering > 3 * degree.mean() / world.n_users


def test_impressions_respect_time_and_never_repeat(world, tables, joined):
    imp = tables.impressions
    assert imp["event_timestamp"].is_monotonic_increasing
    assert (joined["post_timestamp"] < joined["event_timestamp"]).all()
    signup = tables.users.set_index("user_id")["signup_timestamp"]
    assert (signup[imp["user_id"]].to_numpy() < imp["event_timestamp"]).all()
    assert not imp.duplicated(["user_id", "post_id"]).any()
    assert (joined["author_id"] != joined["user_id"]).all()
    # Sessions: one user, one time, slots 0, 1, ... without gaps.
    sessions = imp.groupby("session_id").agg(
        users=("user_id", "nunique"), times=("event_timestamp", "nunique"), n=("slot", "size"), last=("slot", "max")
    )
    assert (sessions["users"] == 1).all() and (sessions["times"] == 1).all()
    assert (sessions["last"] == sessions["n"] - 1).all() and (sessions["n"] <= world.slots).all()
    assert sessions["n"].mean() > 0.75 * world.slots
    # The logging policy: mostly the graph's posts, a few from outside, newest on top.
    assert 0.1 < 1 - joined["connected"].mean() < 0.5
    age_hours = (joined["event_timestamp"] - joined["post_timestamp"]).dt.total_seconds() / 3600
    by_slot = age_hours.groupby(joined["slot"]).mean()
    assert by_slot.iloc[0] < by_slot.iloc[-1]
    assert age_hours.max() <= world.feed_window_days * 24


def test_the_oracle_reproduces_the_logged_probabilities(world, tables, joined):
    users, posts, slots = joined["user_id"].to_numpy(), joined["post_id"].to_numpy(), joined["slot"].to_numpy()
    for at in (joined["event_timestamp"], joined["event_timestamp"].astype("int64").to_numpy() / 1e9):
        p = world.reaction_probabilities(users, posts, at, slots)
        assert sorted(p) == sorted([*REACTIONS, "skip", "dwell"])
        for name in (*REACTIONS, "skip"):
            np.testing.assert_allclose(p[name], joined[f"p_{name}"], rtol=1e-12)
        np.testing.assert_allclose(p["dwell"], joined["expected_dwell_s"], rtol=1e-12)
    # A post not yet created gets nothing; one timestamp serves every pair.
    late = tables.posts["created_timestamp"].idxmax()
    p = world.reaction_probabilities(np.array([0, 1]), np.array([late, 0]), START, slot=0)
    assert all(value[0] == 0 for value in p.values())
    assert p["dwell"][1] > 0 and p["skip"][1] > 0


def test_named_factors_move_the_oracle(world, tables):
    posts, connections = tables.posts, tables.connections
    video = posts.index[posts["media_type"] == "video"][:50].to_numpy()
    # Users with no connection to the author: their tie cannot change over the two days below.
    author = posts["author_id"].to_numpy()[video]
    outsider = np.setdiff1d(
        np.arange(world.n_users), connections[connections["followee_id"].isin(author)]["follower_id"]
    )
    users = outsider[: len(video)]
    at = posts["created_timestamp"].iloc[video] + pd.Timedelta(hours=1)
    top = world.reaction_probabilities(users, video, at, slot=0)
    ninth = world.reaction_probabilities(users, video, at, slot=9)
    np.testing.assert_allclose(ninth["click"], top["click"] * 10**-world.position_bias)
    # Fixed devices: the default one may change between the two times.
    mobile = world.reaction_probabilities(users, video, at, device="mobile")
    stale = world.reaction_probabilities(users, video, at + pd.Timedelta(days=2), device="mobile")
    assert (stale["click"] < mobile["click"]).all()
    desktop = world.reaction_probabilities(users, video, at, device="desktop")
    assert (mobile["like"] > desktop["like"]).all() and (mobile["dwell"] > desktop["dwell"]).all()


def test_every_reaction_occurs_at_realistic_rates(tables):
    imp = tables.impressions
    rates = imp[list(REACTIONS)].mean()
    assert (imp[list(REACTIONS)].sum() >= 30).all()
    assert rates["click"] > rates["like"] > rates["comment"] > rates["share"] > 0
    assert 0.02 < rates["click"] < 0.12 and rates["hide"] < 0.02
    assert ((imp["dwell_s"] < SKIP_SECONDS) == (imp["skip"] == 1)).all()
    assert (imp["dwell_s"] > 0).all() and 0.3 < imp["skip"].mean() < 0.8


def test_position_bias_shows(joined):
    by_slot = joined.groupby("slot")["click"].mean()
    assert by_slot.iloc[:3].mean() > 1.5 * by_slot.iloc[-3:].mean()


def test_passive_users_react_little_but_dwell_on_what_they_care_about(world, joined):
    assert 0.25 < len(world.passive_users()) / world.n_users < 0.45
    passive, active = joined[joined["passive"]], joined[~joined["passive"]]
    for name in REACTIONS[:4]:
        assert passive[name].mean() < 0.25 * active[name].mean()
    # Dwell and skip still follow their taste, in the oracle and in the logs.
    assert np.corrcoef(passive["affinity"], np.log(passive["expected_dwell_s"]))[0, 1] > 0.3
    cares = passive["affinity"] > passive["affinity"].quantile(0.75)
    assert passive.loc[cares, "dwell_s"].mean() > 1.5 * passive.loc[~cares, "dwell_s"].mean()
    assert passive.loc[cares, "skip"].mean() < passive.loc[~cares, "skip"].mean() - 0.03


def test_tie_strength_shows(joined):
    strangers = joined["connected_since"].isna()
    assert joined.loc[joined["by_friend"], "like"].mean() > 1.5 * joined.loc[strangers, "like"].mean()


def test_hiding_an_author_predicts_hiding_them_again(joined):
    hidden = joined[joined["hide"] == 1].groupby(["user_id", "author_id"])["event_timestamp"].min().rename("hidden")
    later = joined.join(hidden, on=["user_id", "author_id"], how="inner")
    later = later[later["event_timestamp"] > later["hidden"]]
    assert len(later) >= 20
    assert later["p_hide"].mean() > 2 * joined["p_hide"].mean()


def test_the_oracle_separates_every_reaction(joined):
    for name in (*REACTIONS, "skip"):
        assert auc(joined[name].to_numpy(), joined[f"p_{name}"].to_numpy()) > 0.65, name


def test_near_duplicates_are_planted(world, tables):
    posts = tables.posts
    copies = world.near_duplicates()
    assert 0.01 < len(copies) / len(posts) < 0.05
    copy = posts.loc[copies["post_id"]].reset_index(drop=True)
    original = posts.loc[copies["original_post_id"]].reset_index(drop=True)
    assert (copy["created_timestamp"] > original["created_timestamp"]).all()
    assert (copy["author_id"] != original["author_id"]).all()
    assert (copy["topic"] == original["topic"]).all()
    assert (copy["text"] != original["text"]).all()
    for text, source in zip(copy["text"], original["text"], strict=True):
        prefixed = text.endswith(" " + source)
        text, source = text.split(), source.split()
        swapped = len(text) == len(source) and sum(a != b for a, b in zip(text, source, strict=True)) == 1
        assert prefixed or swapped
    # Apart from the planted reshares, no two posts say exactly the same thing.
    originals = posts.drop(index=copies["post_id"])
    assert not originals["text"].duplicated().any()


def test_text_is_english_of_its_topic(tables):
    posts = tables.posts
    sample = posts.sample(300, random_state=0)
    for text, tags in zip(sample["text"], sample["hashtags"], strict=True):
        post_words = words(text)
        assert MIN_WORDS <= len(post_words) <= MAX_WORDS + len("saw this and had to share".split())
        assert all(word.isalpha() and word in WORDS for word in post_words), text
        assert len(tags) <= 3 and all(tag.startswith("#") and tag[1:].isalnum() for tag in tags)
    # Words of a topic's vocabulary mark its posts.
    for topic, word in (("cooking", "recipe"), ("sports", "match"), ("travel", "landed"), ("pets", "vet")):
        has_word = posts["text"].str.contains(rf"\b{word}\b", case=False)
        assert (posts.loc[has_word, "topic"] == topic).mean() > 0.9, word
    share_of_topic_tags = np.mean(
        [
            any(tag[1:] in TOPICS[topic].hashtags for tag in tags)
            for topic, tags in zip(posts["topic"], posts["hashtags"], strict=True)
        ]
    )
    assert share_of_topic_tags > 0.55


def test_default_scale_meets_the_sizes():
    world = load_config("newsfeed", "default")["world"]
    assert world["n_users"] >= 30000 and world["n_days"] >= 21
    # Feed opens x slots, before feeds that run dry: the default world logs ~2.5M impressions.
    assert world["n_users"] * world["n_days"] * NewsfeedWorld.sessions_per_day * NewsfeedWorld.slots >= 2_500_000
