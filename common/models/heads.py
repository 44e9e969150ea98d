"""The tasks of a multi-task model, and the labels each learns from: shared by the one-network model
(common.models.multitask) and N independent models (common.models.tabular.LightGBMHeads).

    heads = [Head("click", "click"), Head("satisfy", "positive", given="engaged"),
             Head("dwell", "dwell_s", "regression", transform="log1p")]
    labels, masks = head_labels(heads, targets, len(X))     # (n, n_heads) each
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Head:
    name: str  # what predict_heads calls it
    target: str  # the targets column it learns
    kind: str = "binary"  # or "regression"
    given: str | None = None  # learn only from rows where this (binary) target is 1
    weight: float = 1.0  # of its loss in the sum
    transform: str | None = None  # "log1p": a regression head learns log1p(target)


def head_labels(heads: list[Head], targets: pd.DataFrame, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, masks), each (n, n_heads): every head's target (transformed) and the rows it learns from."""
    needed = list(dict.fromkeys(c for h in heads for c in (h.target, h.given) if c is not None))
    missing = [c for c in needed if c not in targets.columns]
    if missing:
        raise ValueError(f"targets is missing columns {missing}; it needs {needed}")
    if len(targets) != n_rows:
        raise ValueError(f"targets has {len(targets)} rows for {n_rows} rows of X")
    columns = {c: targets[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in needed}
    labels, masks = np.zeros((n_rows, len(heads))), np.ones((n_rows, len(heads)), dtype=bool)
    for j, head in enumerate(heads):
        if head.given is not None:
            given = columns[head.given]
            if not np.isin(given, (0.0, 1.0)).all():
                raise ValueError(f"targets[{head.given!r}] must contain only 0 and 1")
            if not (given == 1).any():
                raise ValueError(f"targets has no {head.given} rows: the {head.name} head would have nothing to learn")
            masks[:, j] = given == 1
        values = columns[head.target]
        if head.kind == "binary":
            if not np.isin(values[masks[:, j]], (0.0, 1.0)).all():
                raise ValueError(f"targets[{head.target!r}] must contain only 0 and 1")
            if head.given is not None and (values[~masks[:, j]] == 1).any():
                raise ValueError(
                    f"targets has {head.target} rows that are not {head.given}: {head.target} implies {head.given}"
                )
        elif not np.isfinite(values[masks[:, j]]).all():
            raise ValueError(f"targets[{head.target!r}] must be finite on the {head.name} head's rows")
        values = np.where(masks[:, j], values, 0.0)
        labels[:, j] = np.log1p(values) if head.transform == "log1p" else values
    return labels, masks
