"""Array helpers the worlds and the funnel share: seeded categorical draws and first occurrences."""

from __future__ import annotations

import numpy as np


def draw_rows(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) probability matrix: (n,) column indices."""
    draws = (probabilities.cumsum(axis=1) < rng.random((len(probabilities), 1))).sum(axis=1)
    return np.minimum(draws, probabilities.shape[1] - 1)


def first_occurrence(keys: np.ndarray) -> np.ndarray:
    """(n,) True at the first occurrence of each key (de-duplication keeps those)."""
    keep = np.zeros(len(keys), dtype=bool)
    keep[np.unique(np.asarray(keys), return_index=True)[1]] = True
    return keep


def first_in_row(ids: np.ndarray) -> np.ndarray:
    """(rows, c) booleans: True at the first occurrence of each id within its row."""
    order = np.argsort(ids, axis=1, kind="stable")
    ordered = np.take_along_axis(ids, order, axis=1)
    first = np.ones(ids.shape, dtype=bool)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    result = np.empty_like(first)
    np.put_along_axis(result, order, first, axis=1)
    return result
