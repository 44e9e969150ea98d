"""Offline evaluation of product search (chapter section 6): each judged query through the served funnel.

For every query the candidates are generated once (understanding -> BM25 and semantic sources -> fusion),
then each list is scored with nDCG@k over the ESCI gains (exact 1, substitute 0.1, complement 0.01,
linear as in the ESCI benchmark):
  bm25 / semantic          each source's own order
  <encoder> alone          other encoders searching the whole catalogue by cosine (MiniLM, fine-tuned)
  fusion                   reciprocal rank fusion of the two sources
  stage 1: <model>         each pointwise stage-1 model over every candidate (the first one feeds stage 2)
  stage 2: <model>         each stage-2 model over stage 1's best (the served funnel)
  oracle over candidates   the candidates sorted by their true grade: the best any ranker could do
and, where only some products are annotated (ESCI), each stage-2 model reordering exactly the annotated
products of the query (the benchmark's reranking task); and the recall of the exact products of each
source, of the fusion and of the page. On the world, the
queries that were misspelt also say whether spell correction restored the words the shopper meant,
and the fusion's recall with and without correction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from common.evaluation.metrics import ndcg_at_k, paired_bootstrap_interval
from common.search.funnel import Candidates, QueryUnderstanding, SearchFunnel, Stage, Understood
from common.search.query import tokenise
from common.serving.timing import StageTimer
from systems.search.dataset import Judged

ORACLE = "oracle over candidates"
FUSION = "fusion"


def stage_1(name: str) -> str:
    return f"stage 1: {name}"


def stage_2(name: str) -> str:
    return f"stage 2: {name}"


def reranked(name: str) -> str:
    return f"reranking the annotated products: {name}"


@dataclass
class SearchEvaluation:
    lists: pd.DataFrame  # list, ndcg@k, exact_recall, queries
    recall: pd.DataFrame  # source, exact recall of its candidates
    spelling: dict[str, float]  # misspelt queries: share fixed, fusion recall with / without correction


def _order(rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    found = ~np.isnan(scores)
    return rows[found][np.argsort(-scores[found], kind="stable")]


def _mean(values: list[float]) -> float:
    """The mean over the queries that have exact products (NaN: none had)."""
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else np.nan


BASELINE = "bm25"
BASELINE_DIFFERENCE = "minus bm25 (95% CI)"


def _against(values: list[float], baseline: list[float] | None) -> str:
    """The mean per-query difference from the baseline list and its paired bootstrap interval."""
    if baseline is None:
        return ""
    mean, low, high = paired_bootstrap_interval(values, baseline)
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def _recall(ranked: np.ndarray, exact: set[int]) -> float:
    return len(exact.intersection(ranked.tolist())) / len(exact) if exact else np.nan


def evaluate(
    funnel: SearchFunnel,
    firsts: Mapping[str, Stage],
    seconds: Mapping[str, Stage],
    judged: Judged,
    k: int,
    alone: Mapping[str, Callable[[Understood], np.ndarray]] | None = None,
) -> SearchEvaluation:
    alone = alone or {}
    ndcg: dict[str, list[float]] = {}
    recall_at_k: dict[str, list[float]] = {}
    recall: dict[str, list[float]] = {}  # over the whole list: a source's candidates
    spelling = {"misspelt": 0, "fixed": 0, "recall_corrected": [], "recall_uncorrected": []}
    raw = QueryUnderstanding(None, funnel.understanding.synonyms, funnel.understanding.document_frequency)
    uncorrected = SearchFunnel(raw, funnel.sources, funnel.fusion, per_source=funnel.per_source)
    for row in tqdm(range(len(judged)), desc="evaluating queries", leave=False):
        query = judged.queries.iloc[row]
        candidates, _ = funnel.candidates(query["query"], StageTimer())
        gains = judged.gains(row)
        rows_graded, grades = judged.graded(row)
        exact = set(rows_graded[grades == 3].tolist())
        lists = {name: _order(candidates.rows, scores) for name, scores in candidates.source_scores.items()}
        lists[FUSION] = candidates.rows
        for name, search in alone.items():
            lists[name] = search(candidates.query)
        if len(candidates.rows):
            orders = {name: np.argsort(-stage.score(candidates), kind="stable") for name, stage in firsts.items()}
            for name, order in orders.items():
                lists[stage_1(name)] = candidates.rows[order]
            served = next(iter(firsts))  # the first stage 1 feeds stage 2
            top = candidates.take(orders[served][: firsts[served].keep])
            for name, stage in seconds.items():
                lists[stage_2(name)] = top.rows[np.argsort(-stage.score(top), kind="stable")]
        else:
            for name in [*map(stage_1, firsts), *map(stage_2, seconds)]:
                lists[name] = candidates.rows
        if not judged.complete:  # the ESCI reranking task: order the query's annotated products
            annotated = Candidates(candidates.query, rows_graded, np.zeros(len(rows_graded)), {})
            for name, stage in seconds.items():
                lists[reranked(name)] = rows_graded[np.argsort(-stage.score(annotated), kind="stable")]
        truth = np.array([gains.get(int(r), 0.0) for r in candidates.rows])
        lists[ORACLE] = candidates.rows[np.argsort(-truth, kind="stable")]
        for name, ranked in lists.items():
            ndcg.setdefault(name, []).append(ndcg_at_k(ranked.tolist(), gains, k, linear=True))
            recall_at_k.setdefault(name, []).append(_recall(ranked[:k], exact))
            recall.setdefault(name, []).append(_recall(ranked, exact))
        clean = query.get("clean_query")
        if isinstance(clean, str) and tokenise(clean) != tokenise(query["query"]):
            spelling["misspelt"] += 1
            spelling["fixed"] += candidates.query.corrected == tokenise(clean)
            spelling["recall_corrected"].append(_recall(candidates.rows, exact))
            as_typed = uncorrected.candidates(query["query"], StageTimer())[0]
            spelling["recall_uncorrected"].append(_recall(as_typed.rows, exact))
    table = pd.DataFrame(
        {
            "list": list(ndcg),
            f"ndcg@{k}": [float(np.mean(v)) for v in ndcg.values()],
            BASELINE_DIFFERENCE: [_against(ndcg[name], ndcg.get(BASELINE)) for name in ndcg],
            f"exact_recall@{k}": [_mean(recall_at_k[name]) for name in ndcg],
            "queries": [len(v) for v in ndcg.values()],
        }
    )
    sources = [*(s.name for s in funnel.sources), *alone, FUSION]
    recall_table = pd.DataFrame(
        {"source": sources, f"exact_recall@{funnel.per_source}": [_mean(recall[s]) for s in sources]}
    )
    n = spelling["misspelt"]
    spelling_summary = {
        "misspelt_queries": n,
        "share_fixed": spelling["fixed"] / n if n else np.nan,
        "fusion_recall_corrected": _mean(spelling["recall_corrected"]),
        "fusion_recall_uncorrected": _mean(spelling["recall_uncorrected"]),
    }
    return SearchEvaluation(table, recall_table, spelling_summary)
