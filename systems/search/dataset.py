"""Product search's tables (the world's, or Amazon's Shopping Queries files) as the pipeline reads them.

products     row i is product i: product_id, the ESCI text columns (product_title, product_description,
             product_bullet_point, product_brand, product_color) and, where the data has them, category,
             product_type, size, material, price, review_count, rating, available (else missing)
examples     the ranking's training rows: query, product (row), grade 0-4, group (one search / one
             query), timestamp, split (train / validation). From the world's logs the grade is the
             chapter's: impression 0, click 1, dwell beyond T 2, add to cart 3, purchase 4; from ESCI
             files, the annotation: exact 3, substitute 2, complement 1, irrelevant 0
logs         the behaviour engagement features count (the world's impressions; ESCI has none)
judged       per evaluation split, the queries and their graded products (ESCI grades 3/2/1/0), from the
             world's oracle (every product graded: an unlisted product is irrelevant) or the files'
             annotations (only the annotated products: the reranking task)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

SYSTEM = "search"
TEXT_COLUMNS = ("product_title", "product_description", "product_bullet_point", "product_brand", "product_color")
ATTRIBUTES = ("category", "product_type", "size", "material")
NUMERIC = ("price", "review_count", "rating")
GRADE_OF_ESCI = {"E": 3, "S": 2, "C": 1, "I": 0}
ESCI_NAMES = {3: "exact", 2: "substitute", 1: "complement", 0: "irrelevant"}
ESCI_GAINS = {3: 1.0, 2: 0.1, 1: 0.01, 0: 0.0}  # the ESCI paper's nDCG gains


def engagement_grade(impressions: pd.DataFrame, dwell_seconds: float) -> np.ndarray:
    """The chapter's label of a logged impression: the deepest engagement it led to."""
    grade = impressions["clicked"].to_numpy().astype(np.int8)
    grade[impressions["dwell_seconds"].to_numpy() > dwell_seconds] = 2
    grade[impressions["added_to_cart"].to_numpy()] = 3
    grade[impressions["purchased"].to_numpy()] = 4
    return grade


@dataclass
class Judged:
    """One evaluation split: its queries (query_key, query and, from the world, intent_id and
    clean_query: the query before any misspelling) and each query's graded products."""

    queries: pd.DataFrame
    graded: Callable[[int], tuple[np.ndarray, np.ndarray]]  # query row -> (product rows, ESCI grades)
    complete: bool  # every product is graded (unlisted: irrelevant), or only the listed ones are judged

    def gains(self, row: int) -> dict[int, float]:
        """Product row -> nDCG gain, for the products with a non-zero gain."""
        rows, grades = self.graded(row)
        return {int(r): ESCI_GAINS[int(g)] for r, g in zip(rows, grades, strict=True) if g > 0}

    def __len__(self) -> int:
        return len(self.queries)


@dataclass
class SearchData:
    products: pd.DataFrame
    examples: pd.DataFrame
    logs: pd.DataFrame  # query, product, timestamp, clicked, grade; empty on public data
    judged: dict[str, Judged]  # "validation", "test"
    engaged_grade: int  # the lowest grade that counts as engagement (semantic pairs, stage 1 positives)
    source: str  # "world" or the path of the files

    @property
    def product_text(self) -> list[str]:
        """What the semantic encoders read of a product: its title, brand and colour."""
        p = self.products
        return (p["product_title"] + " " + p["product_brand"] + " " + p["product_color"]).str.strip().tolist()

    def category(self) -> pd.Series | None:
        return self.products["category"] if self.products["category"].notna().any() else None


def complete_products(products: pd.DataFrame) -> pd.DataFrame:
    """Every column the pipeline reads, in row order; text missing -> "", attributes and numbers -> NaN."""
    out = products.reset_index(drop=True).copy()
    for column in TEXT_COLUMNS:
        out[column] = out[column].fillna("").astype(str) if column in out else ""
    for column in ATTRIBUTES:
        if column not in out:
            out[column] = None
    for column in NUMERIC:
        out[column] = out[column].astype(float) if column in out else np.nan
    out["available"] = out["available"].astype(bool) if "available" in out else True
    return out
