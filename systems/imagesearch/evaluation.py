"""Offline evaluation of image search (chapter section 2's offline metrics) on judged query photos.

Each list is scored against the world's graded relevance (3 same object, 2 same shape and colour, 1 same
shape): MRR, recall@k, precision@k and mAP count an image relevant when it shows the query's object (the
chapter's "similar images"; there are a handful per query), nDCG@k takes the grades as gains, so a list of
same-shape look-alikes beats a list of strangers. Only what a searcher may see is judged: private images are
never relevant (the served results drop them).

The oracle ranks by the true grade; it is the best any model can do, and the models' numbers read as a share
of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.evaluation.metrics import average_precision, dcg_at_k, precision_at_k, recall_at_k, reciprocal_rank

ORACLE = "oracle (true grades)"
RELEVANT_GRADE = 3


@dataclass(frozen=True)
class Judgments:
    """For each query, the grade of every catalogue image (a function: the matrix would be queries x images)."""

    grades_of: object  # (query positions, image rows) -> (n, m) int8 grades
    visible: np.ndarray  # (n_images,) bool: may be shown (public)
    n_queries: int

    def grades(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.where(self.visible[rows], self.grades_of(queries, rows), 0).astype(np.int8)

    def grade_counts(self) -> np.ndarray:
        """(n_queries, 4): how many visible images hold each grade, for each query (the ideal lists)."""
        counts = np.zeros((self.n_queries, 4), dtype=np.int64)
        rows = np.flatnonzero(self.visible)
        for start in range(0, self.n_queries, 256):
            queries = np.arange(start, min(start + 256, self.n_queries))
            grades = self.grades_of(queries[:, None], rows[None, :])
            for g in range(4):
                counts[queries, g] = (grades == g).sum(axis=1)
        return counts


def list_metrics(ranked: np.ndarray, judgments: Judgments, counts: np.ndarray, k: int) -> dict[str, float]:
    """ranked: (n_queries, depth) image rows, best first (-1 pads a short list). Queries with no relevant
    image (every photo of the object private) are left out of MRR, recall and mAP."""
    rows = np.where(ranked >= 0, ranked, 0)
    grades = np.where(ranked >= 0, judgments.grades(np.arange(len(ranked))[:, None], rows), 0)
    return _summary(grades, counts, k)


def oracle_metrics(counts: np.ndarray, k: int, depth: int) -> dict[str, float]:
    """The ideal list of each query: every grade-3 image, then grade 2, then grade 1."""
    ideal = np.stack([_ideal_grades(row, depth) for row in counts])
    return _summary(ideal, counts, k)


def per_query(grades: np.ndarray, counts: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Each query's metrics from its list's grades (n_queries, depth)."""
    depth = grades.shape[1]
    names = ("mrr", f"recall_at_{k}", f"precision_at_{k}", "map", f"ndcg_at_{k}")
    values: dict[str, list[float]] = {name: [] for name in names}
    for row_grades, row_counts in zip(grades, counts, strict=True):
        positions = np.arange(depth)
        relevant = positions[row_grades >= RELEVANT_GRADE]
        # Recall and AP divide by every relevant image, found or not: the ones the list missed stand in as
        # positions past its end (which it never ranks), so the shared metric functions count them.
        missed = max(0, row_counts[RELEVANT_GRADE] - len(relevant))
        everything_relevant = np.r_[relevant, depth + np.arange(missed)]
        if len(everything_relevant):
            values["mrr"].append(reciprocal_rank(positions, relevant))
            values[f"recall_at_{k}"].append(recall_at_k(positions, everything_relevant, k))
            values["map"].append(average_precision(positions, everything_relevant, depth))
        values[f"precision_at_{k}"].append(precision_at_k(positions, relevant, k))
        ideal = dcg_at_k(_ideal_grades(row_counts, k), k)
        values[f"ndcg_at_{k}"].append(dcg_at_k(row_grades, k) / ideal if ideal > 0 else 0.0)
    return {name: np.asarray(v) for name, v in values.items()}


def _summary(grades: np.ndarray, counts: np.ndarray, k: int) -> dict[str, float]:
    return {name: float(v.mean()) for name, v in per_query(grades, counts, k).items()}


def _ideal_grades(counts: np.ndarray, depth: int) -> np.ndarray:
    return np.repeat(np.array([3, 2, 1, 0], dtype=np.int8), np.minimum(counts[::-1], depth))[:depth]
