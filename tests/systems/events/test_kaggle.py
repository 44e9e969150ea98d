import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from systems.events.kaggle import (
    EVENTS_EXTRA,
    EVENTS_SCHEMA,
    FILES,
    TRAIN_SCHEMA,
    USERS_SCHEMA,
    WORD_COLUMNS,
    KaggleTables,
    read,
    write,
)
from systems.events.world import EventsWorld

FIXTURES = Path(__file__).parent / "fixtures" / "kaggle"
TABLES = ["users", "events", "friends", "attendees", "train"]


@pytest.fixture(scope="module")
def fixtures() -> KaggleTables:
    return read(FIXTURES)


@pytest.fixture
def fixture_copy(tmp_path):
    return shutil.copytree(FIXTURES, tmp_path / "kaggle")


def assert_tables_equal(left: KaggleTables, right: KaggleTables) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(left, name), getattr(right, name), obj=name)


def test_fixtures_read_with_the_public_columns_and_normalised_dtypes(fixtures):
    users, events, train = fixtures.users, fixtures.events, fixtures.train
    assert list(users.columns) == list(USERS_SCHEMA)
    assert list(events.columns) == list(EVENTS_SCHEMA) + list(EVENTS_EXTRA)
    assert list(train.columns) == list(TRAIN_SCHEMA)
    assert list(fixtures.friends.columns) == ["user", "friend"]
    assert list(fixtures.attendees.columns) == ["event", "user", "response"]
    assert users["user_id"].dtype == events["event_id"].dtype == events["user_id"].dtype == np.int64
    assert users["birthyear"].dtype == users["timezone"].dtype == np.float64
    assert str(users["joinedAt"].dtype) == str(events["start_time"].dtype) == str(train["timestamp"].dtype)
    assert str(train["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert all(events[c].dtype == np.int32 for c in WORD_COLUMNS)
    assert all(train[c].dtype == np.int8 for c in ["invited", "interested", "not_interested"])
    assert train["user"].dtype == train["event"].dtype == np.int64
    assert (fixtures.friends.dtypes == np.int64).all()
    assert fixtures.attendees["event"].dtype == fixtures.attendees["user"].dtype == np.int64


def test_fixture_quirks_are_parsed(fixtures):
    users = fixtures.users.set_index("user_id")
    assert np.isnan(users.loc[3473687777, "birthyear"]) and users.loc[3197468391, "birthyear"] == 1993
    assert users.loc[264876277, "gender"] == "" and users.loc[264876277, "location"] == ""
    assert users.loc[3197468391, "location"] == "Medan  Indonesia"
    assert users.loc[123290209, "joinedAt"] is pd.NaT and users.loc[1998893232, "joinedAt"] is pd.NaT  # "None", ""
    assert users.loc[3197468391, "joinedAt"] == pd.Timestamp("2012-10-02T06:40:55.524Z")
    assert np.isnan(users.loc[1998893232, "timezone"]) and users.loc[823183725, "timezone"] == -240

    events = fixtures.events.set_index("event_id")
    no_place = events.loc[3044094474]
    assert no_place["city"] == no_place["country"] == "" and np.isnan(no_place["lat"]) and np.isnan(no_place["lng"])
    no_coordinates = events.loc[4070486484]
    assert no_coordinates["city"] == "Medan" and np.isnan(no_coordinates["lat"])
    assert events.loc[1480546467, "zip"] == "02139"  # a zip is text: its leading zero stays
    assert events.loc[684921758, "start_time"] == pd.Timestamp("2012-10-05T12:00:00.001Z")
    assert events[["price", "length_hours", "created_time"]].isna().all().all()  # the real file has none
    assert (events[WORD_COLUMNS].sum(axis=1) > 0).all()

    friends = fixtures.friends
    assert not friends["user"].isin([1998893232, 4236494651]).any()  # empty lists: no rows
    assert not friends["friend"].isin(fixtures.users["user_id"]).all()  # outside the sample, as in the real file
    attendees = fixtures.attendees
    big = attendees[attendees["event"] == 2213467950]
    assert (big["response"] == "yes").sum() >= 40 and set(big["response"]) == {"yes", "maybe", "invited", "no"}
    assert attendees["response"].isin(["yes", "maybe", "invited", "no"]).all()
    stamps = fixtures.train["timestamp"]
    assert pd.Timestamp("2012-10-04 23:31:09+00:00") in set(stamps)  # written without a fraction


def test_events_are_kept_when_named_unless_keep_all(fixtures):
    named = set(fixtures.train["event"]) | set(fixtures.attendees["event"])
    assert set(fixtures.events["event_id"]) == named and len(named) == 25
    everything = read(FIXTURES, keep_all=True)
    assert len(everything.events) == 28
    assert everything.events["event_id"].tolist()[:25] == fixtures.events["event_id"].tolist()  # file order


def test_fixtures_are_enough_to_train_on(fixtures):
    train, events = fixtures.train, fixtures.events.set_index("event_id")
    assert len(train) >= 60 and train["interested"].sum() >= 15 and train["not_interested"].sum() >= 2
    both = train.groupby("user")["interested"].agg(["min", "max"])
    assert ((both["min"] == 0) & (both["max"] == 1)).sum() >= 8
    stamps = train["timestamp"]
    assert stamps.max() - stamps.min() >= pd.Timedelta(days=20)
    thirds = pd.cut(stamps, 3, labels=False)
    assert all(train.loc[thirds == part, "interested"].nunique() == 2 for part in range(3))
    assert (train["event"].map(events["start_time"]) > stamps).all()
    assert train["user"].isin(fixtures.users["user_id"]).all()
    assert not train.duplicated(["user", "event"]).any()


def test_fixtures_round_trip(fixtures, tmp_path):
    everything = read(FIXTURES, keep_all=True)
    write(everything, tmp_path)
    assert_tables_equal(read(tmp_path, keep_all=True), everything)


def test_the_worlds_tables_round_trip_exactly(tmp_path):
    tables = EventsWorld(n_users=150, n_days=4, events_per_day=12, sessions_per_day=40, warmup_days=5).generate()
    write(tables, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)
    assert_tables_equal(read(tmp_path, keep_all=True), tables)
    assert_tables_equal(read(tmp_path), tables)  # every event has its host among the attendees
    header = (tmp_path / "events.csv").read_text().split("\n", 1)[0].split(",")
    assert header == list(EVENTS_SCHEMA) + ["price", "length_hours", "created_time"]
    first_train_row = (tmp_path / "train.csv").read_text().split("\n")[1].split(",")
    assert first_train_row[3].endswith("000+00:00") and " " in first_train_row[3]


def test_missing_files_are_named(fixture_copy):
    (fixture_copy / "user_friends.csv").unlink()
    (fixture_copy / "train.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"\['user_friends.csv', 'train.csv'\]"):
        read(fixture_copy)


@pytest.mark.parametrize(
    ("file", "column"), [("train.csv", "timestamp"), ("events.csv", "lat"), ("users.csv", "locale")]
)
def test_missing_columns_are_named(fixture_copy, file, column):
    frame = pd.read_csv(fixture_copy / file, dtype=str, keep_default_na=False)
    frame.drop(columns=[column]).to_csv(fixture_copy / file, index=False)
    with pytest.raises(ValueError, match=rf"{file} lacks columns \['{column}'\]"):
        read(fixture_copy)


def test_unparseable_values_name_the_file(fixture_copy):
    path = fixture_copy / "event_attendees.csv"
    path.write_text(path.read_text().replace("3537982273", "35379x2273", 1))
    with pytest.raises(ValueError, match="event_attendees.csv"):
        read(fixture_copy)


def test_extra_columns_are_ignored(fixture_copy):
    users = pd.read_csv(fixture_copy / "users.csv", dtype=str, keep_default_na=False)
    users.assign(country="ID").to_csv(fixture_copy / "users.csv", index=False)
    assert list(read(fixture_copy).users.columns) == list(USERS_SCHEMA)
