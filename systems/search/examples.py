"""The rankers' training examples (chapter section 6): logged pages, the chapter's negatives beside them,
and every feature of each (query, product) row as of its search's time."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm import tqdm

from common.search.funnel import SearchFunnel
from common.serving.timing import StageTimer
from systems.search.features import COUNTS, PREFIXES, VIEWS, counts_of, pair_columns, product_columns
from systems.search.ranking import PairFeatures


def sample_groups(examples: pd.DataFrame, n: int, rng) -> pd.DataFrame:
    groups = examples["group"].unique()
    if len(groups) > n:
        groups = rng.choice(groups, size=n, replace=False)
    return examples[examples["group"].isin(groups)].reset_index(drop=True)


def with_negatives(pages: pd.DataFrame, funnel: SearchFunnel, config: dict, n_products: int, rng) -> pd.DataFrame:
    """Each logged page plus negatives at grade 0, the chapter's "random negative samples, e.g. from pages
    10 and beyond": products the funnel's own candidate generation finds for the query beyond rank
    `deep_from` (they look like what the rankers will face: matching words, history of their own), and a
    few from anywhere in the catalogue. A page alone holds only what the old engine chose to show; a ranker
    that never saw a poor candidate would not know to push one down."""
    deep = {}
    for query in tqdm(pages["query"].unique(), desc="negatives from the candidates", leave=False):
        rows = funnel.candidates(query, StageTimer())[0].rows
        deep[query] = rows[config["deep_from"] :] if len(rows) > config["deep_from"] else rows[len(rows) // 2 :]
    first = pages.drop_duplicates("group")
    extra = []
    for group, query in zip(first["group"], first["query"], strict=True):
        pool = deep[query]
        take = rng.choice(pool, size=min(config["deep_negatives"], len(pool)), replace=False) if len(pool) else []
        anywhere = rng.integers(0, n_products, size=config["random_negatives"])
        extra.append((group, np.concatenate([np.asarray(take, np.int64), anywhere])))
    rows = first.set_index("group").loc[[g for g, products in extra for _ in products]].reset_index()
    rows["product"] = np.concatenate([products for _, products in extra])
    rows["grade"] = 0
    widened = pd.concat([pages, rows[pages.columns]], ignore_index=True)
    shown = widened.duplicated(["group", "product"], keep="first")  # a negative the page already holds
    return widened[~shown].reset_index(drop=True)


def example_features(examples: pd.DataFrame, understanding, features: PairFeatures, repo, keys, n_products):
    """Every stage-2 column of the examples: text and model columns, engagement as of each example."""
    distinct = examples["query"].unique().tolist()
    understood = [understanding.understand(q) for q in distinct]
    query_of = pd.Index(distinct).get_indexer(examples["query"])
    rows = examples["product"].to_numpy(np.int64)
    columns = features.cheap_many(understood, query_of, rows)
    if repo is None:  # no logs (ESCI): no engagement yet
        zeros = {c: np.zeros(len(rows)) for c in COUNTS}
        return pd.DataFrame({**columns, **product_columns(zeros), **pair_columns(zeros)})
    entity = pd.DataFrame(
        {
            "product": rows,
            "pair": keys.keys(examples["query"]) * n_products + rows,
            "event_timestamp": pd.to_datetime(examples["timestamp"], utc=True),
        }
    )
    counts = repo.as_of(tuple(view.name for view in VIEWS), entity)
    product, pair = (counts_of(counts, prefix) for prefix in PREFIXES)
    return pd.DataFrame({**columns, **product_columns(product), **pair_columns(pair)})
