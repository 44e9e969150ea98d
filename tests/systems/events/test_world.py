import numpy as np
import pandas as pd
import pytest

from common.app.config import load_config
from common.evaluation.metrics import auc
from systems.events.kaggle import EVENTS_EXTRA, EVENTS_SCHEMA, RESPONSES, TRAIN_SCHEMA, USERS_SCHEMA, WORD_COLUMNS
from systems.events.world import CITIES, COUNTRIES, START, EventsWorld

TABLES = ["users", "events", "friends", "attendees", "train"]


@pytest.fixture(scope="module")
def world():
    return EventsWorld(**load_config("events", "tiny")["world"])


@pytest.fixture(scope="module")
def tables(world):
    return world.generate()


@pytest.fixture(scope="module")
def created(world, tables):
    """Each event's creation time (hidden: the files do not carry it)."""
    return pd.Series(START + pd.to_timedelta(world.truth["created_ms"], unit="ms"), index=world.truth["event_id"])


def test_same_seed_same_data(tables):
    again = EventsWorld(**load_config("events", "tiny")["world"]).generate()
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(tables, name), getattr(again, name), obj=name)
    other = EventsWorld(**{**load_config("events", "tiny")["world"], "seed": 12, "n_days": 2})
    assert not np.array_equal(other.truth["user_id"], again.users["user_id"].to_numpy())


def test_tables_have_the_kaggle_columns(tables):
    assert list(tables.users.columns) == list(USERS_SCHEMA)
    assert list(tables.events.columns) == list(EVENTS_SCHEMA) + list(EVENTS_EXTRA)
    assert list(tables.friends.columns) == ["user", "friend"]
    assert list(tables.attendees.columns) == ["event", "user", "response"]
    assert list(tables.train.columns) == list(TRAIN_SCHEMA)
    assert str(tables.train["timestamp"].dtype) == str(tables.events["start_time"].dtype) == "datetime64[ns, UTC]"
    assert str(tables.users["joinedAt"].dtype) == "datetime64[ns, UTC]"


def test_ids_are_random_and_distinct(tables):
    for ids in [tables.users["user_id"], tables.events["event_id"]]:
        assert ids.is_unique and ids.min() > 10**8 and not ids.is_monotonic_increasing
    assert tables.train["user"].isin(tables.users["user_id"]).all()
    assert tables.train["event"].isin(tables.events["event_id"]).all()
    assert tables.events["user_id"].isin(tables.users["user_id"]).all()


def test_users_and_events_have_the_real_quirks(tables):
    users, events = tables.users, tables.events
    assert 0.02 < users["birthyear"].isna().mean() < 0.1
    assert users["birthyear"].dropna().between(1950, 2005).all()
    assert 0.005 < (users["gender"] == "").mean() < 0.07
    assert 0.05 < (users["location"] == "").mean() < 0.16 and users["timezone"].isna().any()
    assert (users["joinedAt"].dropna() < START).all()
    assert users["location"].isin(COUNTRIES).any()  # a few show only the country
    no_place = events["city"] == ""
    assert 0.02 < no_place.mean() < 0.09 and events.loc[no_place, "lat"].isna().all()
    assert (events["lat"].isna() & ~no_place).any()  # a city without coordinates
    assert 0.3 < (events["price"] == 0).mean() < 0.55 and events["length_hours"].between(1, 8).all()
    words = events[WORD_COLUMNS].sum(axis=1)
    assert words.between(30, 200).all()
    assert events["c_1"].sum() > events["c_100"].sum()  # c_1 is the most common stem


def test_user_locations_name_the_event_cities(tables):
    """A location string geocodes through the mean coordinates of the events in its city."""
    located = tables.events[tables.events["lat"].notna()]
    centres = located.groupby("city")[["lat", "lng"]].mean()
    cities = tables.users["location"].str.split("  ").str[0]
    shows_city = tables.users["location"].str.contains("  ")
    assert cities[shows_city].isin(centres.index).mean() > 0.98
    medan = next(c for c in CITIES if c.name == "Medan")
    if "Medan" in centres.index:
        assert abs(centres.loc["Medan", "lat"] - medan.lat) < 0.05


def test_friends_are_symmetric(world, tables):
    friends = tables.friends
    pairs = set(zip(friends["user"], friends["friend"], strict=True))
    assert pairs == {(b, a) for a, b in pairs}
    assert not (friends["user"] == friends["friend"]).any() and not friends.duplicated().any()
    degree = friends.groupby("user").size().reindex(tables.users["user_id"], fill_value=0)
    assert (degree == 0).mean() > 0.02 and degree.mean() > 8
    city = pd.Series(tables.users["location"].to_numpy(), index=tables.users["user_id"])
    known = (city.loc[friends["user"]].to_numpy() != "") & (city.loc[friends["friend"]].to_numpy() != "")
    together = city.loc[friends["user"]].to_numpy()[known] == city.loc[friends["friend"]].to_numpy()[known]
    assert together.mean() > 0.35  # homophily: a random pair shares a city ~5% of the time


def test_impressions_are_of_open_events_only(tables, created):
    train, events = tables.train, tables.events.set_index("event_id")
    start = train["event"].map(events["start_time"])
    assert (train["timestamp"] + pd.Timedelta(hours=1) < start).all()
    assert (train["event"].map(created) < train["timestamp"]).all()
    assert train["timestamp"].between(START, START + pd.Timedelta(days=20), inclusive="left").all()
    assert train["timestamp"].is_monotonic_increasing
    assert not train.duplicated(["user", "event"]).any()  # never shown twice
    assert train.groupby(["user", "timestamp"]).size().max() <= 8


def test_oracle_equals_the_probabilities_drawn(world, tables):
    train = tables.train
    p = world.register_probability(train["user"].to_numpy(), train["event"].to_numpy(), train["timestamp"])
    np.testing.assert_array_equal(p, world.impression_probability_)
    row = train.iloc[len(train) // 2]
    one = world.register_probability([row["user"]], [row["event"]], row["timestamp"])
    assert one[0] == world.impression_probability_[len(train) // 2]


def test_register_probability_is_zero_unless_open(world, tables, created):
    events = tables.events.iloc[::7]
    users = np.resize(tables.users["user_id"].to_numpy(), len(events))
    ids = events["event_id"].to_numpy()
    assert (world.register_probability(users, ids, events["start_time"]) == 0).all()
    assert (world.register_probability(users, ids, events["start_time"] + pd.Timedelta(days=3)) == 0).all()
    before = created.loc[ids] - pd.Timedelta(milliseconds=1)
    assert (world.register_probability(users, ids, before) == 0).all()
    open_ = world.register_probability(users, ids, events["start_time"] - pd.Timedelta(hours=2))
    assert (open_ > 0).all()
    with pytest.raises(KeyError, match="event_id"):
        world.register_probability(users[:1], [1], START)


def test_interest_rate_and_oracle_auc(world, tables):
    interested = tables.train["interested"].to_numpy()
    assert 0.08 < interested.mean() < 0.3
    assert 0.01 < tables.train["not_interested"].mean() < 0.06
    assert not (tables.train["interested"] & tables.train["not_interested"]).any()
    assert auc(interested, world.impression_probability_) > 0.8


def test_registration_falls_with_distance(tables):
    """Seen through the files only: the user's city geocoded by the events' mean coordinates."""
    events = tables.events.set_index("event_id")
    centres = tables.events.groupby("city")[["lat", "lng"]].mean()
    users = tables.users.set_index("user_id")
    train = tables.train
    city = train["user"].map(users["location"]).str.split("  ").str[0]
    home = centres.reindex(city.to_numpy())
    lat1, lng1 = np.radians(home["lat"].to_numpy()), np.radians(home["lng"].to_numpy())
    lat2 = np.radians(train["event"].map(events["lat"]).to_numpy())
    lng2 = np.radians(train["event"].map(events["lng"]).to_numpy())
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lng2 - lng1) / 2) ** 2
    km = pd.Series(2 * 6371 * np.arcsin(np.sqrt(a)))
    rate = train["interested"].groupby(pd.cut(km, [0, 15, 100, 1000, 20000])).mean()
    assert rate.is_monotonic_decreasing and rate.iloc[0] > 4 * rate.iloc[-1]


def test_registration_rises_with_friends_going(world, tables):
    train = tables.train.reset_index(names="row")
    registered = world.registrations()
    friend_rows = train.merge(tables.friends, on="user")
    going = friend_rows.merge(
        registered.rename(columns={"user": "friend", "timestamp": "registered"}), on=["friend", "event"]
    )
    going = going[going["registered"] < going["timestamp"]]
    count = going.groupby("row").size().reindex(train["row"], fill_value=0).to_numpy()
    rate = train["interested"].groupby(np.minimum(count, 2)).mean()
    assert rate.is_monotonic_increasing and rate.loc[2] > 2 * rate.loc[0]


def rows(ids: np.ndarray, wanted: pd.Series) -> np.ndarray:
    """Row of each wanted id in the world's truth arrays."""
    return pd.Series(np.arange(len(ids)), index=ids).loc[wanted].to_numpy()


def test_topic_fit_predicts_interest(world, tables):
    t, train = world.truth, tables.train
    u, e = rows(t["user_id"], train["user"]), rows(t["event_id"], train["event"])
    fit = (t["topic_pref"][u] * t["topics"][e]).sum(axis=1)
    assert auc(train["interested"].to_numpy(), fit) > 0.55


def test_attendees_hold_the_registrations(world, tables):
    attendees, train = tables.attendees, tables.train
    assert attendees["response"].isin(RESPONSES).all()
    responded = attendees[attendees["response"] != "invited"]
    assert not responded.duplicated(["event", "user"]).any()  # one response per pair
    yes = responded[responded["response"] == "yes"]
    registered = world.registrations()
    assert len(yes) == len(registered) and set(zip(yes["event"], yes["user"], strict=True)) == set(
        zip(registered["event"], registered["user"], strict=True)
    )
    interested = train[train["interested"] == 1]
    assert len(yes) > 1.5 * len(interested)  # organic registrations besides the logged ones
    assert interested.merge(yes, on=["user", "event"]).shape[0] == len(interested)
    hosts = tables.events.rename(columns={"event_id": "event", "user_id": "user"})[["event", "user"]]
    assert hosts.merge(yes, on=["event", "user"]).shape[0] == len(hosts)
    events = tables.events.set_index("event_id")
    assert (registered["timestamp"] < registered["event"].map(events["start_time"])).all()
    # The invited flag: an invitation reached the user before the row.
    invitations = world.invitations().groupby(["user", "event"])["timestamp"].min()
    flagged = train[train["invited"] == 1]
    assert len(flagged) > 0
    sent = invitations.reindex(pd.MultiIndex.from_frame(flagged[["user", "event"]])).to_numpy()
    assert (sent < flagged["timestamp"].to_numpy()).all()
    listed = attendees[attendees["response"] == "invited"]
    assert flagged.merge(listed, on=["user", "event"]).shape[0] == len(flagged)  # in event_attendees too


def test_the_oracle_needs_generate():
    fresh = EventsWorld(n_users=50, n_days=1, events_per_day=5, sessions_per_day=5)
    with pytest.raises(RuntimeError, match="generate"):
        fresh.register_probability([1], [1], START)
