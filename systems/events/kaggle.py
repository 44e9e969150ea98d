"""The public Kaggle "Event Recommendation Engine Challenge" files: their schema, a reader and
a writer. The synthetic world writes exactly these tables, so the same pipeline runs on the
world or on the real data.

    python -c "from systems.events.kaggle import read; print(read('tests/systems/events/fixtures/kaggle').train.head())"

Files (comma-separated, a header row; names and columns as published):
  users.csv             user_id,locale,birthyear,gender,joinedAt,location,timezone
  events.csv            event_id,user_id,start_time,city,state,zip,country,lat,lng,c_1,...,c_100,c_other
                        [,price,length_hours,created_time: the world's only; NaN / NaT when a file lacks them]
  user_friends.csv      user,friends                    friends: space-separated user ids
  event_attendees.csv   event,yes,maybe,invited,no      each a space-separated list of user ids
  train.csv             user,event,invited,timestamp,interested,not_interested

Quirks of the real files, all parsed here: birthyear "None" (or anything not a number) and
joinedAt "None" or empty mean unknown; gender, location, timezone, an event's city, state, zip,
country, lat and lng may be empty; any id list may be empty. Timestamps: joinedAt and start_time
look like `2012-10-31T00:00:00.001Z`, train's timestamp like `2012-10-02 15:53:05.754000+00:00`;
the writer keeps milliseconds, which is all the real files carry.

In memory the wide id lists are long tables, one row per listed id, in file order: `friends`
(user, friend) and `attendees` (event, user, response), the latter grouped by event, then by
response in the file's column order (yes, maybe, invited, no). A user can be both invited and a
responder. In the real files most friend and attendee ids are not in users.csv (users.csv is a
sample of the app's users), and events.csv holds 3M events (1.2 GB): the reader streams it and
keeps only the events that train.csv or event_attendees.csv name, unless `keep_all`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

USERS_FILE = "users.csv"
EVENTS_FILE = "events.csv"
FRIENDS_FILE = "user_friends.csv"
ATTENDEES_FILE = "event_attendees.csv"
TRAIN_FILE = "train.csv"
FILES = (USERS_FILE, EVENTS_FILE, FRIENDS_FILE, ATTENDEES_FILE, TRAIN_FILE)

WORD_COLUMNS = [f"c_{i}" for i in range(1, 101)] + ["c_other"]
RESPONSES = ["yes", "maybe", "invited", "no"]  # event_attendees.csv's list columns, in file order

TIMESTAMP = "datetime64[ns, UTC]"
# Column -> in-memory dtype, in file order. "timestamp" columns become TIMESTAMP; str columns
# hold "" where the file is empty.
USERS_SCHEMA = {
    "user_id": "int64",
    "locale": "str",
    "birthyear": "float64",
    "gender": "str",
    "joinedAt": "timestamp",
    "location": "str",
    "timezone": "float64",
}
EVENTS_SCHEMA = {
    "event_id": "int64",
    "user_id": "int64",
    "start_time": "timestamp",
    "city": "str",
    "state": "str",
    "zip": "str",
    "country": "str",
    "lat": "float64",
    "lng": "float64",
    **dict.fromkeys(WORD_COLUMNS, "int32"),  # int32: 101 counts for each of 3M events
}
# The world's, absent from the real file: the chapter's price and length, and when the event was
# created (the real files say only when it was first shown).
EVENTS_EXTRA = {"price": "float64", "length_hours": "float64", "created_time": "timestamp"}
TRAIN_SCHEMA = {
    "user": "int64",
    "event": "int64",
    "invited": "int8",
    "timestamp": "timestamp",
    "interested": "int8",
    "not_interested": "int8",
}
FRIENDS_COLUMNS = ["user", "friends"]
ATTENDEES_COLUMNS = ["event", *RESPONSES]

_ARROW_TYPES = {
    "int64": pa.int64(),
    "int32": pa.int32(),
    "int8": pa.int8(),
    "float64": pa.float64(),
    "str": pa.string(),
    "timestamp": pa.timestamp("ns", tz="UTC"),
}
EVENTS_BLOCK_BYTES = 64 << 20  # events.csv is streamed in blocks of this size


@dataclass(frozen=True)
class KaggleTables:
    """The five public tables, dtypes normalised (see the module docstring)."""

    users: (
        pd.DataFrame
    )  # user_id int64, locale, birthyear float (NaN: unknown), gender, joinedAt, location, timezone float
    events: (
        pd.DataFrame
    )  # event_id, user_id (creator), start_time, city, state, zip, country, lat, lng, c_*, price, length_hours
    friends: pd.DataFrame  # user, friend: one row per listed friend
    attendees: pd.DataFrame  # event, user, response in RESPONSES
    train: pd.DataFrame  # user, event, invited, timestamp, interested, not_interested


# ---- reading -------------------------------------------------------------------------------
def read(path: Path | str, keep_all: bool = False) -> KaggleTables:
    """Read the five files from a directory (the real data, the world's or fixtures). Only the
    events named by train.csv or event_attendees.csv are kept unless `keep_all`."""
    path = Path(path)
    missing = [name for name in FILES if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{path} lacks {missing}; a Kaggle event data directory holds {list(FILES)}")
    users = _read_users(path / USERS_FILE)
    train = _to_pandas_dtypes(_read_typed(path / TRAIN_FILE, TRAIN_SCHEMA).to_pandas(), TRAIN_SCHEMA)
    friends = _read_lists(path / FRIENDS_FILE, "user", ["friends"], "friend")
    attendees = _read_lists(path / ATTENDEES_FILE, "event", RESPONSES, "user")
    named = None if keep_all else np.union1d(train["event"].to_numpy(), attendees["event"].to_numpy())
    events = _read_events(path / EVENTS_FILE, named)
    return KaggleTables(users, events, friends, attendees, train)


def _header(file: Path) -> list[str]:
    with file.open(encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle), [])


def _require_columns(header: list[str], required, name: str) -> None:
    missing = [c for c in required if c not in set(header)]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}; expected {list(required)}")


def _convert_options(schema: dict[str, str]) -> pacsv.ConvertOptions:
    # "None" is how the real files write an unknown birthyear or joinedAt; str columns never
    # become null, so a city or a location is "" when empty and never confused with a null.
    return pacsv.ConvertOptions(
        column_types={c: _ARROW_TYPES[t] for c, t in schema.items()},
        include_columns=list(schema),
        null_values=["", "None"],
        strings_can_be_null=False,
    )


def _read_typed(file: Path, schema: dict[str, str]) -> pa.Table:
    """pyarrow's reader, typed at parse time; columns outside the schema are skipped."""
    _require_columns(_header(file), schema, file.name)
    try:
        table = pacsv.read_csv(file, convert_options=_convert_options(schema))
    except pa.ArrowInvalid as error:
        raise ValueError(f"{file.name}: {error}") from error
    _check_complete(table, schema, file.name)
    return table


def _check_complete(table: pa.Table, schema: dict[str, str], name: str) -> None:
    """Ids, counts and flags are never missing in the public files: a null there is an error."""
    for column, dtype in schema.items():
        if dtype.startswith("int") and table[column].null_count:
            raise ValueError(f"{name}: column {column!r} has {table[column].null_count} missing values")


def _to_pandas_dtypes(frame: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    """A new frame of the schema's columns in the schema's dtypes (built at once: many columns)."""
    converted = {}
    for column, dtype in schema.items():
        values = frame[column]
        if dtype == "timestamp":
            converted[column] = values.astype(TIMESTAMP)
        elif dtype == "str":
            converted[column] = values.astype(object)
        else:
            converted[column] = values.astype(dtype)
    return pd.DataFrame(converted)


def _read_users(file: Path) -> pd.DataFrame:
    # birthyear is read as text: besides "None" the real column may hold stray non-years, which
    # mean unknown as well (NaN), rather than failing the whole file.
    schema = {**USERS_SCHEMA, "birthyear": "str"}
    frame = _to_pandas_dtypes(_read_typed(file, schema).to_pandas(), schema)
    frame["birthyear"] = pd.to_numeric(frame["birthyear"], errors="coerce").astype("float64")
    return frame


def _read_lists(file: Path, key: str, list_columns: list[str], id_name: str) -> pd.DataFrame:
    """A file of space-separated id lists as a long table: (key, id_name[, response]) per id,
    in file order (by line, then by list column)."""
    schema = {key: "int64", **dict.fromkeys(list_columns, "str")}
    table = _read_typed(file, schema)
    keys = table[key].to_numpy()
    parts = []
    for rank, column in enumerate(list_columns):
        lists = pc.utf8_split_whitespace(table[column])
        flat = pc.list_flatten(lists)
        kept = pc.not_equal(flat, "")  # a leading or doubled space splits off an empty token
        line = pc.filter(pc.list_parent_indices(lists), kept).to_numpy()
        try:
            ids = pc.cast(pc.filter(flat, kept), pa.int64()).to_numpy()
        except pa.ArrowInvalid as error:
            raise ValueError(f"{file.name}: column {column!r}: {error}") from error
        parts.append((line, np.full(len(line), rank, dtype=np.int8), ids))
    line, rank, ids = (np.concatenate(arrays) for arrays in zip(*parts, strict=True))
    order = np.lexsort((rank, line))  # lexsort is stable: list order is kept within a list
    frame = pd.DataFrame({key: keys[line[order]].astype(np.int64), id_name: ids[order].astype(np.int64)})
    if len(list_columns) > 1:
        frame["response"] = np.asarray(list_columns, dtype=object)[rank[order]]
    return frame


def _read_events(file: Path, named: np.ndarray | None) -> pd.DataFrame:
    """Stream events.csv block by block, keeping the events in `named` (all when None)."""
    header = _header(file)
    _require_columns(header, EVENTS_SCHEMA, file.name)
    extra = {c: t for c, t in EVENTS_EXTRA.items() if c in header}
    schema = {**EVENTS_SCHEMA, **extra}
    wanted = None if named is None else pa.array(named, type=pa.int64())
    batches = []
    try:
        reader = pacsv.open_csv(
            file,
            read_options=pacsv.ReadOptions(block_size=EVENTS_BLOCK_BYTES),
            convert_options=_convert_options(schema),
        )
        for batch in reader:
            if wanted is not None:
                batch = batch.filter(pc.is_in(batch["event_id"], value_set=wanted))
            batches.append(batch)
    except pa.ArrowInvalid as error:
        raise ValueError(f"{file.name}: {error}") from error
    table = pa.Table.from_batches(batches, schema=reader.schema)
    _check_complete(table, schema, file.name)
    frame = table.to_pandas()
    for column in EVENTS_EXTRA.keys() - extra.keys():
        frame[column] = (
            pd.Series(pd.NaT, index=frame.index, dtype=TIMESTAMP) if EVENTS_EXTRA[column] == "timestamp" else np.nan
        )
    return _to_pandas_dtypes(frame, {**EVENTS_SCHEMA, **EVENTS_EXTRA})


# ---- writing -------------------------------------------------------------------------------
def write(tables: KaggleTables, path: Path | str) -> None:
    """Write the tables as the five public files into a directory (created if needed), events
    with the world's price, length_hours and created_time at the end. read(path, keep_all=True) gives the
    tables back, given timestamps in whole milliseconds and the long tables in file order."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    users = tables.users
    _write(
        {
            "user_id": users["user_id"],
            "locale": users["locale"],
            "birthyear": _numbers(users["birthyear"], missing="None"),
            "gender": users["gender"],
            "joinedAt": _iso_z(users["joinedAt"], missing="None"),
            "location": users["location"],
            "timezone": _numbers(users["timezone"]),
        },
        path / USERS_FILE,
    )
    events = tables.events
    columns = {column: events[column] for column in EVENTS_SCHEMA}
    columns["start_time"] = _iso_z(events["start_time"])
    for column in ["lat", "lng"]:
        columns[column] = _numbers(events[column])
    for column, dtype in EVENTS_EXTRA.items():
        columns[column] = _iso_z(events[column]) if dtype == "timestamp" else _numbers(events[column])
    _write(columns, path / EVENTS_FILE)
    _write(_lists(tables.friends, "user", "friend", ["friends"], tables.users["user_id"]), path / FRIENDS_FILE)
    _write(_lists(tables.attendees, "event", "user", RESPONSES), path / ATTENDEES_FILE)
    train = tables.train
    _write(
        {**{c: train[c] for c in TRAIN_SCHEMA}, "timestamp": _space_offset(train["timestamp"])},
        path / TRAIN_FILE,
    )


def _write(columns: dict, file: Path) -> None:
    pd.DataFrame({c: np.asarray(v) for c, v in columns.items()}).to_csv(file, index=False, lineterminator="\n")


def _numbers(values: pd.Series, missing: str = "") -> np.ndarray:
    """Floats as the real files write them: whole numbers without a decimal point (480, 1993),
    others in full (shortest round-tripping repr), NaN as `missing`."""
    values = values.to_numpy(dtype=np.float64)
    return np.array(
        [missing if v != v else str(int(v)) if v.is_integer() else repr(v) for v in values.tolist()], dtype=object
    )


def _milliseconds(values: pd.Series) -> np.ndarray:
    """`YYYY-MM-DDTHH:MM:SS.mmm` per timestamp ("NaT" where missing)."""
    return np.datetime_as_string(values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(), unit="ms")


def _iso_z(values: pd.Series, missing: str = "") -> np.ndarray:
    """2012-10-31T00:00:00.001Z"""
    text = _milliseconds(values).astype(object) + "Z"
    return np.where(values.isna().to_numpy(), missing, text)


def _space_offset(values: pd.Series) -> np.ndarray:
    """2012-10-02 15:53:05.754000+00:00"""
    text = pd.Series(_milliseconds(values), dtype=object)
    return (text.str.replace("T", " ", regex=False) + "000+00:00").to_numpy()


def _lists(frame: pd.DataFrame, key: str, id_name: str, columns: list[str], keys: pd.Series | None = None) -> dict:
    """A long table back to one line per key, with a space-separated list per column: keys in
    order of first appearance, then those of `keys` without rows (users without friends)."""
    order = pd.unique(frame[key].to_numpy())
    if keys is not None:
        order = pd.unique(np.concatenate([order, keys.to_numpy()]))
    column = frame["response"].to_numpy() if len(columns) > 1 else np.full(len(frame), columns[0], dtype=object)
    unknown = set(pd.unique(column)) - set(columns)
    if unknown:
        raise ValueError(f"responses {sorted(unknown)} are none of {columns}")
    text = pd.DataFrame({key: frame[key].to_numpy(), "column": column, "id": frame[id_name].to_numpy().astype(str)})
    out = {key: order}
    for name in columns:
        lists = text.loc[text["column"] == name].groupby(key, sort=False)["id"].agg(" ".join)
        out[name] = lists.reindex(order, fill_value="").to_numpy()
    return out
