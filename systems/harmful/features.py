"""What the harmful-content models read besides the post itself, and the labels they learn from.

Author features (the chapter's "users: only the post author's info"): account age, followers, following,
past violations and reports, posting rate, in Feast (view `author_profile`, service `harmful_classifier`):
training reads them as of each post's time (point-in-time join), serving from the online store by the
request's author id. A post is moderated when it is posted, before anyone interacts with it, so the
interaction counts are no model input (they would also leak the labels: the reports are interactions).

Labels. Training: the natural labels, one per category, 1 when any user report named it by the end of the
world (noisy: reports are biased towards spam and nudity, some are false, late ones are missing), and each
post's exposure to reporters (its reach, its days observed: more of either, more reports, harmful or not), which
training reads to explain that part of the labels away.
Evaluation: the hand labels (validation, test) and, for the posts held out from training, the world's truth.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from common.features.store import FeatureRepo
from common.features.views import View

AUTHOR_FEATURES = ("account_age_days", "followers", "following", "violation_count", "report_count", "posting_rate")
AUTHOR_VIEW = View("author_profile", "author_id")
SERVICE = "harmful_classifier"
# A new account, or an author the store does not know: no history.
NEW_AUTHOR = dict.fromkeys(AUTHOR_FEATURES, 0.0)


def publish_authors(system: str, authors: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> FeatureRepo:
    """The authors' profile as of the world's start into Feast (sources, definitions, online store)."""
    return publish_author_profiles(system, author_profiles(authors, start - timedelta(days=1)), start, end)


def author_profiles(authors: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The authors' profile rows as of one time (the feature view's source rows)."""
    table = authors[["author_id", *AUTHOR_FEATURES]].copy()
    table["posting_rate"] = table["posting_rate"].astype(np.float64)
    table["event_timestamp"] = as_of
    return table


def publish_author_profiles(system: str, profiles: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> FeatureRepo:
    """Profile rows (author_profiles, one or more times per author: the simulated days add theirs) into Feast;
    the online store holds each author's latest."""
    repo = FeatureRepo(system)
    repo.publish(
        {AUTHOR_VIEW.name: profiles},
        [AUTHOR_VIEW],
        {SERVICE: {AUTHOR_VIEW.name: None}},
        (start - timedelta(days=2)).to_pydatetime(),
        (end + timedelta(days=1)).to_pydatetime(),
    )
    return repo


def author_features_as_of(repo: FeatureRepo, posts: pd.DataFrame) -> pd.DataFrame:
    """Each post's author features as of its creation (point-in-time join), in the posts' order."""
    rows = pd.DataFrame({"author_id": posts["author_id"].to_numpy(), "event_timestamp": posts["created_at"].to_numpy()})
    joined = repo.historical(SERVICE, rows)
    return joined[list(AUTHOR_FEATURES)].astype(np.float64).fillna(0.0)


def numeric_inputs(authors: pd.DataFrame) -> np.ndarray:
    """(n, f) model inputs: counts and ages on a log scale (heavy tails), the new-account flag."""
    values = authors[list(AUTHOR_FEATURES)].to_numpy(dtype=np.float64)
    return np.hstack([np.log1p(np.maximum(values, 0.0)), (values[:, :1] <= 30).astype(np.float64)])


def report_exposure(posts: pd.DataFrame, reports: pd.DataFrame) -> np.ndarray:
    """(n_posts, 2) how exposed each post was to reporters when the logs were read (the latest post or report):
    log(1 + its impressions), log(1 + the days since it was posted). The natural labels depend on both,
    harmful or not; the models learn that part from them in training only (common/models/multimodal.py)."""
    read_at = max([posts["created_at"].max(), *([reports["reported_at"].max()] if len(reports) else [])])
    days = (read_at - posts["created_at"]).dt.total_seconds().to_numpy() / 86_400
    return np.column_stack([np.log1p(posts["impressions"].to_numpy(dtype=np.float64)), np.log1p(days)])


def natural_labels(posts: pd.DataFrame, reports: pd.DataFrame, categories: tuple[str, ...]) -> np.ndarray:
    """(n_posts, n_categories) 0/1: whether any report named the category (the posts' order)."""
    position = pd.Series(np.arange(len(posts)), index=posts["post_id"].to_numpy())
    labels = np.zeros((len(posts), len(categories)), dtype=np.float32)
    known = reports[reports["post_id"].isin(position.index)]
    for c, category in enumerate(categories):
        named = known.loc[known["category"] == category, "post_id"]
        labels[position[named.unique()].to_numpy(), c] = 1.0
    return labels
