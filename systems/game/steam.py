"""The public "Game Recommendations on Steam" files (Kaggle, Anton Kozyriev): their schema,
a loader and a writer. The synthetic world writes exactly these files, so the same pipeline
runs on the world or on the real data.

    python -c "from systems.game.steam import load_steam; print(load_steam('data/fixtures/steam').games.head())"

Files (names and columns as published):
  games.csv             app_id,title,date_release,win,mac,linux,rating,positive_ratio,user_reviews,
                        price_final,price_original,discount,steam_deck
  users.csv             user_id,products,reviews
  recommendations.csv   app_id,helpful,funny,date,is_recommended,hours,user_id,review_id
  games_metadata.json   JSON lines: {"app_id": 13500, "description": "...", "tags": ["Action", ...]}

Booleans are written `true` / `false`, dates `YYYY-MM-DD`. In memory dates are UTC timestamps,
booleans bool and tags lists of str. games.csv is a snapshot taken at the end of the data:
its rating, positive_ratio, user_reviews and discount describe that moment, so features
for an earlier prediction time must come from the recommendations, not from them.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

GAMES_FILE = "games.csv"
USERS_FILE = "users.csv"
RECOMMENDATIONS_FILE = "recommendations.csv"
METADATA_FILE = "games_metadata.json"
FILES = (GAMES_FILE, USERS_FILE, RECOMMENDATIONS_FILE, METADATA_FILE)

# Column -> in-memory dtype ("date" and "tags" are handled apart), in file order.
GAMES_SCHEMA = {
    "app_id": "int64",
    "title": "object",
    "date_release": "date",
    "win": "bool",
    "mac": "bool",
    "linux": "bool",
    "rating": "object",
    "positive_ratio": "int64",
    "user_reviews": "int64",
    "price_final": "float64",
    "price_original": "float64",
    "discount": "float64",
    "steam_deck": "bool",
}
USERS_SCHEMA = {"user_id": "int64", "products": "int64", "reviews": "int64"}
RECOMMENDATIONS_SCHEMA = {
    "app_id": "int64",
    "helpful": "int64",
    "funny": "int64",
    "date": "date",
    "is_recommended": "bool",
    "hours": "float64",
    "user_id": "int64",
    "review_id": "int64",
}
METADATA_SCHEMA = {"app_id": "int64", "description": "object", "tags": "tags"}

DATE_DTYPE = "datetime64[ns, UTC]"
_ARROW_TYPES = {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(), "object": pa.string()}

# Steam's review summary: (label, lowest positive %, highest positive %, fewest reviews, most reviews).
RATINGS = [
    ("Overwhelmingly Positive", 95, 100, 500, None),
    ("Very Positive", 80, 100, 50, None),
    ("Positive", 80, 100, 10, 49),
    ("Mostly Positive", 70, 79, 10, None),
    ("Mixed", 40, 69, 10, None),
    ("Mostly Negative", 20, 39, 10, None),
    ("Overwhelmingly Negative", 0, 19, 500, None),
    ("Very Negative", 0, 19, 50, 499),
    ("Negative", 0, 19, 10, 49),
]


@dataclass(frozen=True)
class GameTables:
    """The four public tables, dtypes normalised (see the module docstring)."""

    games: pd.DataFrame
    users: pd.DataFrame
    recommendations: pd.DataFrame
    metadata: pd.DataFrame


def steam_rating(positive_ratio: np.ndarray, user_reviews: np.ndarray) -> np.ndarray:
    """Steam's review summary label from the positive share (%) and the review count; the
    first matching rule wins (checked in the order of RATINGS). Needs at least 10 reviews."""
    ratio = np.asarray(positive_ratio)
    count = np.asarray(user_reviews)
    conditions = [
        (ratio >= low) & (ratio <= high) & (count >= fewest) & (count <= (np.inf if most is None else most))
        for _, low, high, fewest, most in RATINGS
    ]
    labels = np.select(conditions, [label for label, *_ in RATINGS], default="")
    if (labels == "").any():
        raise ValueError("steam_rating needs at least 10 reviews and a ratio in [0, 100]")
    return labels


def conform(tables: GameTables) -> GameTables:
    """The same tables with the canonical column order, dtypes and a fresh index."""
    return GameTables(
        _conform(tables.games, GAMES_SCHEMA, GAMES_FILE),
        _conform(tables.users, USERS_SCHEMA, USERS_FILE),
        _conform(tables.recommendations, RECOMMENDATIONS_SCHEMA, RECOMMENDATIONS_FILE),
        _conform(tables.metadata, METADATA_SCHEMA, METADATA_FILE),
    )


def _conform(frame: pd.DataFrame, schema: dict[str, str], name: str) -> pd.DataFrame:
    _require_columns(frame.columns, schema, name)
    out = {}
    for column, dtype in schema.items():
        values = frame[column]
        if dtype == "date":
            values = pd.to_datetime(values, utc=True).astype(DATE_DTYPE)
        elif dtype == "tags":
            values = values.map(lambda tags: [str(t) for t in tags] if isinstance(tags, list | np.ndarray) else [])
        elif dtype == "object":
            values = values.fillna("").astype(str).astype(object)
        else:
            if values.isna().any():
                raise ValueError(f"{name}: column {column!r} has missing values")
            values = values.astype(dtype)
        out[column] = values.reset_index(drop=True)
    return pd.DataFrame(out)


def _require_columns(columns, schema: dict[str, str], name: str) -> None:
    missing = [c for c in schema if c not in set(columns)]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}; expected {list(schema)}")


# ---- reading -------------------------------------------------------------------------------
def load_steam(path: str | Path) -> GameTables:
    """Read the public files from a directory (the real data or fixtures in its format)."""
    path = Path(path)
    missing = [name for name in FILES if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{path} lacks {missing}; a Steam data directory holds {list(FILES)}")
    return conform(
        GameTables(
            _read_csv(path / GAMES_FILE, GAMES_SCHEMA),
            _read_csv(path / USERS_FILE, USERS_SCHEMA),
            _read_csv(path / RECOMMENDATIONS_FILE, RECOMMENDATIONS_SCHEMA),
            _read_metadata(path / METADATA_FILE),
        )
    )


def _read_csv(file: Path, schema: dict[str, str]) -> pd.DataFrame:
    """pyarrow's reader: typed at parse time, so the 41M-row recommendations.csv fits in memory
    (parsing every cell as a Python string first would not). Columns outside the schema are
    skipped."""
    with file.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), [])
    _require_columns(header, schema, file.name)
    types = {c: pa.timestamp("s") if t == "date" else _ARROW_TYPES[t] for c, t in schema.items()}
    try:
        table = pacsv.read_csv(
            file,
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=list(schema),
                true_values=["true", "True", "TRUE"],
                false_values=["false", "False", "FALSE"],
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as error:
        raise ValueError(f"{file.name}: {error}") from error
    return table.to_pandas()


def _read_metadata(file: Path) -> pd.DataFrame:
    frame = pd.read_json(file, lines=True, dtype=False, convert_dates=False)
    if frame.empty:
        frame = pd.DataFrame(columns=list(METADATA_SCHEMA))
    return frame


# ---- writing -------------------------------------------------------------------------------
def write_steam(tables: GameTables, path: str | Path) -> Path:
    """Write the tables as the public files into a directory (created if needed)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tables = conform(tables)
    _write_csv(tables.games, GAMES_SCHEMA, path / GAMES_FILE)
    _write_csv(tables.users, USERS_SCHEMA, path / USERS_FILE)
    _write_csv(tables.recommendations, RECOMMENDATIONS_SCHEMA, path / RECOMMENDATIONS_FILE)
    with (path / METADATA_FILE).open("w", encoding="utf-8") as handle:
        for app_id, description, tags in tables.metadata.itertuples(index=False):
            record = {"app_id": int(app_id), "description": description, "tags": tags}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def _write_csv(frame: pd.DataFrame, schema: dict[str, str], file: Path) -> None:
    out = frame.copy()
    for column, dtype in schema.items():
        if dtype == "date":
            out[column] = out[column].dt.strftime("%Y-%m-%d")
        elif dtype == "bool":
            out[column] = np.where(out[column], "true", "false")
    out.to_csv(file, index=False, lineterminator="\n")
