"""Offline evaluation of people you may know (chapter section 2): the lists of every model and baseline
request by request (mAP@k, recall@k), and each as an edge classifier (ROC-AUC), beside the oracle.

Every list ranks the same candidates, the funnel's: the models through the served funnel, common
neighbours and Adamic-Adar and personalised PageRank by their scores, the oracle by the world's true
P(friendship forms that day). Relevant: the friendships the user formed in the snapshot's step.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from common.evaluation.classification import markdown_table
from common.evaluation.metrics import auc
from common.evaluation.requests import ORACLE, RequestLists, oracle_lists
from common.graph import proximity
from common.models.node_embeddings import NodeEmbeddings
from common.pipelines.ranking import Examples, lists_markdown
from systems.pymk.features import GNN_FEATURE
from systems.pymk.funnel import EmbeddingScorer, PairScorer, VectorScorer
from systems.pymk.snapshots import Snapshot

LABEL = "friended"
GNN = "graphsage"


def served_scorers(snapshot: Snapshot, models: dict, links: NodeEmbeddings) -> dict:
    """The scorer of each trained model at a snapshot, the GNN alone among them."""
    scorers = {name: PairScorer(snapshot.state, snapshot.gather, model, links) for name, model in models.items()}
    scorers[GNN] = EmbeddingScorer(links)
    return scorers


def evaluate(config, data, snapshots: dict, examples: dict, models: dict, embeddings: dict) -> RequestLists:
    """Every list for the sampled requests of each day: the funnel with each model, the baselines over the
    same candidates, and the oracle's ranking of them; relevant = the friendships formed that day."""
    k, result = config["evaluation"]["k"], RequestLists()
    for at, snapshot in snapshots.items():
        day = examples[at]
        ppr = proximity.personalized_pagerank(
            snapshot.state.adjacency, np.asarray(day.rows), **config["baselines"]["ppr"]
        )
        funnels = {
            f"funnel: {name}": snapshot.funnel.funnel(s)
            for name, s in served_scorers(snapshot, models, embeddings[at]).items()
        }
        funnels.update(snapshot.funnel.baselines())
        funnels["personalised PageRank"] = snapshot.funnel.funnel(VectorScorer(dict(zip(day.rows, ppr, strict=True))))
        labels_u, labels_v = snapshot.state.labels()
        for i, (row, request) in enumerate(zip(day.rows, day.requests, strict=True)):
            key = len(result.users)
            relevant = snapshot.state.user_ids[labels_v[labels_u == row]]
            lists = {name: f.catalog.item_ids[f.recommend(request, k).rows] for name, f in funnels.items()}
            if data.oracle is not None:
                candidates = snapshot.state.user_ids[day.candidates[i]]
                truth = data.oracle(np.full(len(candidates), request.user_id), candidates, at)
                lists[ORACLE] = oracle_lists(candidates, truth, k)
            result.add(key, request.user_id, lists, relevant, dict.fromkeys(relevant.tolist(), 1.0), day.merged[i])
    return result


def edge_auc(test: Examples, models, days, examples, snapshots, data) -> pd.DataFrame:
    """ROC-AUC of each model and baseline as an edge classifier on the test candidate pairs (the
    chapter's offline metric of the GNN), beside the oracle's."""
    y = test.targets[LABEL].to_numpy()
    scores = {name: model.predict_proba(test.X)[:, 1] for name, model in models.items()}
    scores[GNN] = test.X[GNN_FEATURE].to_numpy()
    scores["common neighbours"] = test.X["mutual_friends"].to_numpy()
    scores["Adamic-Adar"] = test.X["adamic_adar"].to_numpy()
    if data.oracle is not None:
        truth = []
        for at in days:
            u, v = examples[at].pairs
            ids = snapshots[at].state.user_ids
            truth.append(data.oracle(ids[u], ids[v], at))
        scores[ORACLE] = np.concatenate(truth)
    return pd.DataFrame(
        [
            {"model": name, "roc_auc": auc(y, s), "pairs": len(y), "positives": int(y.sum())}
            for name, s in scores.items()
        ]
    )


def results_markdown(k, lists: pd.DataFrame, edges: pd.DataFrame, recall: pd.DataFrame, champion, evaluation) -> str:
    columns = ["list", f"precision@{k}", f"recall@{k}", f"map@{k}", "requests"]
    parts = lists_markdown(k, lists, recall, champion, len(evaluation.merged), "the friendships formed", columns)
    parts += [
        "Edge classifier on the test candidate pairs",
        "",
        markdown_table(edges.to_dict("records"), list(edges.columns)),
    ]
    return "\n".join(parts)
