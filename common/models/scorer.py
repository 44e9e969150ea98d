"""The ranking score of any model: its named heads (`predict_heads`; a plain classifier has one head,
"probability") combined as a system's config says.

    score(model, X, {"combine": "probability"})                         # ads: calibrated P(click)
    score(model, X, {"combine": "product", "heads": ["engage", "satisfy"]})   # P(click) x P(like | click)
    score(model, X, {"combine": "engage_odds"})                         # game: sampled negatives, below
    score(model, X, {"combine": "weighted_sum", "weights": {"like": 1.0, "share": 3.0}})   # news feed

"engage_odds" is odds(engage) x P(positive | engage), for rankers trained against negatives drawn
uniformly from the catalogue (logs without impressions): the odds a classifier learns there are
P(engaged | user, item) / (rate x 1 / n_items), proportional to the true engagement probability,
whereas its probability saturates near 1 for every popular item and stops telling them apart
(measured on the game world: the funnel fell below popularity).
"""

from __future__ import annotations

import numpy as np

COMBINATIONS = ("probability", "product", "engage_odds", "weighted_sum")


def heads(model, X) -> dict[str, np.ndarray]:
    """The model's named heads; a plain classifier's one head is "probability", P(positive)."""
    if hasattr(model, "predict_heads"):
        return model.predict_heads(X)
    return {"probability": model.predict_proba(X)[:, 1]}


def score(model, X, combination: dict) -> np.ndarray:
    """(n,) the ranking score, higher is better."""
    if combination.get("combine", "probability") == "probability":
        return model.predict_proba(X)[:, 1]
    return combine(heads(model, X), combination)


def combine(named: dict[str, np.ndarray], combination: dict) -> np.ndarray:
    """(n,) the score from heads already predicted (a caller that also reports them)."""
    kind = combination.get("combine", "probability")
    if kind == "probability":
        return named["probability"]
    if kind == "product":
        return np.prod([named[head] for head in combination["heads"]], axis=0)
    if kind == "weighted_sum":
        return np.sum([weight * named[head] for head, weight in combination["weights"].items()], axis=0)
    if kind == "engage_odds":
        # A single-head model is its own engagement probability, with nothing known after the engagement.
        engage = np.clip(named["engage"] if "engage" in named else named["probability"], 1e-12, 1 - 1e-12)
        return engage / (1.0 - engage) * named.get("satisfy", 1.0)
    raise ValueError(f"unknown score combination {kind!r}; choose one of {COMBINATIONS}")
