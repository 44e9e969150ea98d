"""Amazon's Shopping Queries dataset (ESCI, Reddy et al. 2022) from a local folder, in its own schema:

  shopping_queries_dataset_examples.parquet   example_id, query, query_id, product_id, product_locale,
                                              esci_label (E / S / C / I), small_version, large_version, split
  shopping_queries_dataset_products.parquet   product_id, product_title, product_description,
                                              product_bullet_point, product_brand, product_color, product_locale

    make train SYSTEM=search DATA=/path/to/esci

The ranking learns from the annotations (exact 3, substitute 2, complement 1, irrelevant 0), one group per
query; a seeded share of the training queries is held out for validation; the test split's queries are the
evaluation, each judged over its annotated products only (unannotated products count 0), and nDCG uses the
ESCI gains (1, 0.1, 0.01, 0). The files carry no behaviour, so the engagement features read 0, and no
category, so the intent classifier has nothing to learn. The paper's baseline for the reranking task
(task 1, small version, cross-encoder): nDCG 0.852 over each query's annotated products.

`write(...)` stores any SearchData's judged pairs in this schema: the test fixtures are the world's,
written as ESCI files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from systems.search.dataset import ESCI_NAMES, GRADE_OF_ESCI, TEXT_COLUMNS, Judged, SearchData, complete_products

EXAMPLES = "shopping_queries_dataset_examples.parquet"
PRODUCTS = "shopping_queries_dataset_products.parquet"
EXAMPLE_COLUMNS = (
    "example_id",
    "query",
    "query_id",
    "product_id",
    "product_locale",
    "esci_label",
    "small_version",
    "large_version",
    "split",
)
# No clock in the files: every example is "now", so point-in-time reads see the (static) features.
TIMESTAMP = pd.Timestamp("2022-06-01", tz="UTC")


def read(path: str | Path, locale: str = "us", version: str = "small_version", validation_share: float = 0.1, seed=0):
    folder = Path(path)
    missing = [name for name in (EXAMPLES, PRODUCTS) if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {missing}: expected the Shopping Queries dataset's parquet files")
    examples = pd.read_parquet(folder / EXAMPLES)
    absent = set(EXAMPLE_COLUMNS) - set(examples.columns)
    if absent:
        raise ValueError(f"{folder / EXAMPLES} lacks the columns {sorted(absent)}")
    examples = examples[(examples["product_locale"] == locale) & (examples[version] == 1)]
    if examples.empty:
        raise ValueError(f"no {version} examples in locale {locale!r} under {folder}")
    unknown = set(examples["esci_label"]) - set(GRADE_OF_ESCI)
    if unknown:
        raise ValueError(f"unknown esci_label values {sorted(unknown)}: expected E, S, C, I")
    products = pd.read_parquet(folder / PRODUCTS)
    products = products[(products["product_locale"] == locale)].drop_duplicates("product_id")
    products = complete_products(products[products["product_id"].isin(examples["product_id"])])
    rows = pd.Index(products["product_id"])
    examples = examples.assign(product=rows.get_indexer(examples["product_id"]))
    examples = examples[examples["product"] >= 0]  # an example whose product the file lacks
    examples["grade"] = examples["esci_label"].map(GRADE_OF_ESCI).astype(np.int8)

    train = examples[examples["split"] == "train"]
    queries = np.sort(train["query_id"].unique())
    held_out = np.random.default_rng(seed).random(len(queries)) < validation_share
    split = np.where(np.isin(train["query_id"], queries[held_out]), "validation", "train")
    training = pd.DataFrame(
        {
            "query": train["query"].to_numpy(),
            "product": train["product"].to_numpy(np.int64),
            "grade": train["grade"].to_numpy(),
            "group": train["query_id"].to_numpy(np.int64),
            "timestamp": TIMESTAMP,
            "split": split,
        }
    )
    judged = {
        "validation": _judged(train[split == "validation"]),
        "test": _judged(examples[examples["split"] == "test"]),
    }
    logs = pd.DataFrame(
        {"query": pd.Series(dtype=str), "product": pd.Series(dtype=np.int64), "timestamp": pd.Series(dtype=object)}
    )
    return SearchData(products, training, logs, judged, engaged_grade=2, source=str(folder))


def _judged(examples: pd.DataFrame) -> Judged:
    """One split's queries, each judged over its annotated products only."""
    by_query = {q: g for q, g in examples.groupby("query_id", sort=True)}
    keys = list(by_query)
    queries = pd.DataFrame({"query_key": keys, "query": [by_query[q]["query"].iloc[0] for q in keys]})

    def graded(row: int) -> tuple[np.ndarray, np.ndarray]:
        group = by_query[keys[row]]
        return group["product"].to_numpy(np.int64), group["grade"].to_numpy(np.int8)

    return Judged(queries, graded, complete=False)


def write(data: SearchData, folder: Path, products_per_query: int, seed: int = 0) -> None:
    """The judged queries of `data` as ESCI files: each query with `products_per_query` graded products
    and the products they name.
    Validation queries become training ones; the test split stays test."""
    rng, rows, next_id = np.random.default_rng(seed), [], 0
    esci_label = {grade: name[0].upper() for grade, name in ESCI_NAMES.items()}
    for split, judged in (("train", data.judged["validation"]), ("test", data.judged["test"])):
        for row in range(len(judged)):
            products, grades = judged.graded(row)
            picked = _pick(products, grades, products_per_query, len(data.products), rng)
            query = judged.queries.iloc[row]
            for product, grade in picked:
                rows.append((next_id, query["query"], int(query["query_key"]), product, esci_label[grade], split))
                next_id += 1
    examples = pd.DataFrame(rows, columns=["example_id", "query", "query_id", "product", "esci_label", "split"])
    named = data.products.iloc[np.unique(examples["product"])]
    ids = {row: f"P{int(pid):07d}" for row, pid in zip(named.index, named["product_id"], strict=True)}
    examples["product_id"] = examples.pop("product").map(ids)
    examples["product_locale"] = "us"
    examples["small_version"] = 1
    examples["large_version"] = 1
    folder.mkdir(parents=True, exist_ok=True)
    examples[list(EXAMPLE_COLUMNS)].to_parquet(folder / EXAMPLES, index=False)
    products = named[list(TEXT_COLUMNS)].assign(product_id=named.index.map(ids), product_locale="us")
    products[["product_id", *TEXT_COLUMNS, "product_locale"]].to_parquet(folder / PRODUCTS, index=False)


def _pick(products: np.ndarray, grades: np.ndarray, n: int, n_products: int, rng) -> list[tuple[int, int]]:
    """Up to a quarter of n of each of exact, substitute and complement products, then random ones
    (mostly irrelevant, at their true grade), shuffled: every label the annotators use."""
    grade_of = dict(zip(products.tolist(), grades.tolist(), strict=True))
    picked = {}
    for grade in (3, 2, 1):
        pool = products[grades == grade]
        for product in rng.choice(pool, size=min(n // 4, len(pool)), replace=False):
            picked[int(product)] = grade
    while len(picked) < min(n, n_products):
        other = int(rng.integers(n_products))
        picked.setdefault(other, int(grade_of.get(other, 0)))
    pairs = list(picked.items())
    rng.shuffle(pairs)
    return pairs


if __name__ == "__main__":
    # The test fixtures: python -m systems.search.esci tests/systems/search/fixtures/esci
    import sys

    from common.app.config import load_config
    from systems.search import load_data

    config = load_config("search", "tiny")
    config["evaluation"]["queries"] = 40  # per split: 40 training and 40 test queries
    write(load_data(config), Path(sys.argv[1]), products_per_query=12, seed=config["seed"])
