"""Offline evaluation of video search (chapter section 5): sampled annotated queries through the served
funnel, one list per source, per blend, and the oracle.

MRR is the chapter's metric: the eval data are (query, video) pairs, so a list is scored by the rank of the
query's annotated video (counted to `depth`). Other videos can fit a query as well (the world knows which:
`VideoSearchWorld.relevant_videos`), so the oracle is the best list that cannot tell equally relevant videos
apart: all of them first, in random order (common.evaluation.metrics.shuffled_reciprocal_rank). Beside MRR,
the annotated video's hit rate at k and at depth (how often a source finds it at all), and against the
oracle's relevance: precision@k and recall@depth (of min(depth, relevant) videos).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.evaluation.metrics import reciprocal_rank, shuffled_reciprocal_rank
from systems.videosearch.world import KINDS, VideoSearchWorld

ORACLE = "oracle (relevant videos first, in random order)"


@dataclass
class Judged:
    """Sampled queries of one split (query_id, text, video_id, kind) and each one's relevant videos."""

    queries: pd.DataFrame
    relevant: list[np.ndarray]


def judged_queries(world: VideoSearchWorld, queries: pd.DataFrame, split: str, n: int, seed: int) -> Judged:
    chosen = queries[queries["split"] == split]
    chosen = chosen.sample(min(n, len(chosen)), random_state=seed).reset_index(drop=True)
    return Judged(chosen, world.relevant_videos(chosen["query_id"].to_numpy()))


def run(search: Callable[[str], np.ndarray], judged: Judged) -> list[np.ndarray]:
    """Each query's ranked video rows."""
    return [search(text) for text in judged.queries["text"]]


def list_metrics(ranked: list[np.ndarray], judged: Judged, k: int, depth: int) -> dict[str, float]:
    annotated = judged.queries["video_id"].to_numpy()
    rr = np.array([reciprocal_rank(rows[:depth], (target,)) for rows, target in zip(ranked, annotated, strict=True)])
    relevant_hits = [np.isin(rows[:depth], relevant) for rows, relevant in zip(ranked, judged.relevant, strict=True)]
    return _summary(
        judged,
        rr,
        hit_k=[target in rows[:k] for rows, target in zip(ranked, annotated, strict=True)],
        hit_depth=[target in rows[:depth] for rows, target in zip(ranked, annotated, strict=True)],
        precision=[hits[:k].sum() / k for hits in relevant_hits],
        recall=[
            hits.sum() / min(depth, len(relevant))
            for hits, relevant in zip(relevant_hits, judged.relevant, strict=True)
        ],
        k=k,
        depth=depth,
    )


def oracle_metrics(judged: Judged, k: int, depth: int) -> dict[str, float]:
    """The expected values of the oracle's list: relevant videos first, in a random order."""
    n = np.array([len(relevant) for relevant in judged.relevant])
    return _summary(
        judged,
        np.array([shuffled_reciprocal_rank(int(m), depth) for m in n]),
        hit_k=np.minimum(k, n) / n,
        hit_depth=np.minimum(depth, n) / n,
        precision=np.minimum(k, n) / k,
        recall=np.ones(len(n)),
        k=k,
        depth=depth,
    )


def _summary(judged: Judged, rr: np.ndarray, hit_k, hit_depth, precision, recall, k: int, depth: int) -> dict:
    kind = judged.queries["kind"].to_numpy()
    out = {"mrr": float(rr.mean())}
    out.update({f"mrr_{name}": float(rr[kind == name].mean()) if (kind == name).any() else np.nan for name in KINDS})
    out.update(
        {
            f"hit@{k}": float(np.mean(hit_k)),
            f"hit@{depth}": float(np.mean(hit_depth)),
            f"precision@{k}": float(np.mean(precision)),
            f"recall@{depth}": float(np.mean(recall)),
            "queries": len(rr),
        }
    )
    return out


def typical_relevant(judged: Judged) -> dict[str, float]:
    """How many videos fit each query, the median per kind: why the oracle's MRR is below 1."""
    n = pd.Series([len(relevant) for relevant in judged.relevant])
    return n.groupby(judged.queries["kind"].to_numpy()).median().to_dict()
