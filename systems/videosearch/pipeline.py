"""Training of multimodal video search (chapter sections 4-7), on the video-search world.

videos -> the text index (BM25 over title, description, tags) -> query understanding (a speller over the
   index's words weighted by the training queries; synonyms mined from the annotated pairs)
annotated training pairs + frames -> the text and video encoders, trained contrastively -> the videos'
   vectors -> faiss
the validation queries -> the weighted sum's text weight (the best validation MRR of config's grid)
-> each blend (weighted sum, RRF) and each source alone on the validation and test queries
   (systems/videosearch/evaluation.py) -> the champion blend by validation MRR -> MLflow ->
   `videosearch-ranker@champion`
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common.app.paths import system_dir
from common.data.atomic import replaced_atomically
from common.evaluation.classification import markdown_table
from common.funnel.catalog import ItemTable
from common.funnel.reranking import build_steps
from common.search.funnel import QueryUnderstanding, SearchContext
from common.search.video_encoder import VideoTextEncoder
from common.tracking import runs as tracking
from systems.video.world import AGE_RATINGS, MINIMUM_AGE
from systems.videosearch.evaluation import (
    ORACLE,
    Judged,
    judged_queries,
    list_metrics,
    oracle_metrics,
    run,
    typical_relevant,
)
from systems.videosearch.retrieval import TEXT, VISUAL, Fusion, VideoRetrieval, build_retrieval
from systems.videosearch.world import VideoSearchWorld

log = logging.getLogger(__name__)
SYSTEM = "videosearch"
SPLITS = ("validation", "test")


@dataclass
class ServedVideoSearch:
    """What the registry holds: the query side of both sources and the blend; the indexes, the videos'
    vectors and the catalogue are files under data/videosearch/."""

    understanding: QueryUnderstanding
    encoder: VideoTextEncoder
    known: frozenset[str]
    visualness: dict[str, float]
    fusion: Fusion
    visual_index: str  # the faiss index of this encoder's video vectors, under data/videosearch/index


def catalog_table(videos: pd.DataFrame) -> ItemTable:
    """The columns the re-ranking rules read, by catalogue row."""
    minimum_age = MINIMUM_AGE[pd.Categorical(videos["age_rating"], AGE_RATINGS).codes]
    regions = np.empty(len(videos), dtype=object)  # lists (parquet reads arrays back: no truth value)
    regions[:] = [list(countries) for countries in videos["available_regions"]]
    columns = {
        "minimum_age": minimum_age,
        "available_regions": regions,
        "channel_id": videos["channel_id"].to_numpy(),
    }
    return ItemTable(videos["video_id"].to_numpy(np.int64), columns)


def vectors_path(index_dir: Path, visual_index: str) -> Path:
    return index_dir / f"{visual_index}.vectors.npy"


def train(config: dict, world: VideoSearchWorld) -> dict:
    started = time.perf_counter()
    tables = world.generate()
    videos, frames, queries = tables["videos"], tables["frames"], tables["queries"]
    folder = system_dir(SYSTEM)
    write_raw(videos, queries, folder / "raw")
    train_pairs = queries[queries["split"] == "train"]
    log.info("%d videos, %d annotated pairs (%d for training)", len(videos), len(queries), len(train_pairs))
    retrieval, costs = build_retrieval(config, videos, frames, train_pairs, folder / "index")
    visual_index = f"visual-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}"
    retrieval.ann.save(folder / "index" / visual_index)
    np.save(vectors_path(folder / "index", visual_index), retrieval.vectors)

    e = config["evaluation"]
    judged = {s: judged_queries(world, queries, s, e["queries"], config["seed"]) for s in SPLITS}
    weight, tuning = tune_text_weight(config, retrieval, judged["validation"])
    fusions = {"word": Fusion("word"), "weighted_sum": Fusion("weighted_sum", weight), "rrf": Fusion("rrf")}
    evaluation = {"validation": evaluate(config, retrieval, fusions, judged["validation"], videos)}
    metrics = {name: {"validation_mrr": evaluation["validation"].loc[name, "mrr"]} for name in fusions}
    champion = tracking.choose_champion(metrics, config["champion"])
    evaluation["test"] = evaluate(config, retrieval, fusions, judged["test"], videos, champion)
    for name in fusions:
        metrics[name]["test_mrr"] = evaluation["test"].loc[name, "mrr"]
    log.info("evaluated at %.0fs", time.perf_counter() - started)
    query_side = (retrieval.understanding, retrieval.encoder, retrieval.known, retrieval.visualness)
    served = {name: ServedVideoSearch(*query_side, fusion, visual_index) for name, fusion in fusions.items()}
    table = results_markdown(config, evaluation["test"], champion, judged["test"], tuning, costs, len(videos))
    data_params = {
        "scale": config["scale"],
        "seed": config["seed"],
        "n_videos": len(videos),
        "n_train_pairs": len(train_pairs),
        "text_weight": weight,
    }

    version = tracking.record_bundles(SYSTEM, config, champion, served, metrics, data_params, table)
    seconds = time.perf_counter() - started
    log.info("video search pipeline done in %.0fs; champion %s", seconds, champion)
    return {
        "champion": champion,
        "champion_version": version,
        "metrics": metrics,
        "table": table,
        "evaluation": evaluation,
        "text_weight": weight,
        "pipeline_seconds": seconds,
    }


def write_raw(videos: pd.DataFrame, queries: pd.DataFrame, folder: Path) -> None:
    """What serving reads besides the models: the catalogue, and the test queries the benchmark sends."""
    folder.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(folder / "videos.parquet") as temporary:
        videos.to_parquet(temporary, index=False)
    with replaced_atomically(folder / "queries.parquet") as temporary:
        queries.loc[queries["split"] == "test", ["text"]].drop_duplicates().to_parquet(temporary)


def tune_text_weight(config: dict, retrieval: VideoRetrieval, judged: Judged) -> tuple[float, pd.DataFrame]:
    """The weighted sum's text weight with the best validation MRR, and each weight's MRR."""
    e, rows = config["evaluation"], []
    for weight in config["fusion"]["text_weights"]:
        funnel = retrieval.funnel(config, Fusion("weighted_sum", weight))
        ranked = run(lambda text, f=funnel: f.search(text, e["depth"]).rows, judged)
        rows.append({"text_weight": weight, "validation_mrr": list_metrics(ranked, judged, e["k"], e["depth"])["mrr"]})
    tuning = pd.DataFrame(rows)
    best = float(tuning.loc[tuning["validation_mrr"].idxmax(), "text_weight"])
    log.info("text weight %.1f (validation MRR %.4f)", best, tuning["validation_mrr"].max())
    return best, tuning


def evaluate(
    config: dict, retrieval: VideoRetrieval, fusions: dict, judged: Judged, videos, champion: str | None = None
) -> pd.DataFrame:
    """One row per list: each source alone, each blend, the champion blend behind the re-ranking rules (for
    the config's evaluation searcher), the oracle."""
    e, serving = config["evaluation"], config["serving"]
    catalog = catalog_table(videos)
    funnels = {
        f"{TEXT} alone (BM25)": retrieval.funnel(config, None, only=TEXT),
        f"{VISUAL} alone (encoders + faiss)": retrieval.funnel(config, None, only=VISUAL),
        **{name: retrieval.funnel(config, fusion) for name, fusion in fusions.items()},
    }
    if champion is not None:
        rules = build_steps(serving["re_ranking"], catalog)
        funnels[with_rules(champion)] = retrieval.funnel(config, fusions[champion], re_ranking=rules, catalog=catalog)
    context = SearchContext(serving["evaluation_context"])
    rows = {}
    for name, funnel in funnels.items():
        ranked = run(lambda text, f=funnel: f.search(text, e["depth"], context=context).rows, judged)
        rows[name] = list_metrics(ranked, judged, e["k"], e["depth"])
    rows[ORACLE] = oracle_metrics(judged, e["k"], e["depth"])
    return pd.DataFrame.from_dict(rows, orient="index")


def with_rules(fusion: str) -> str:
    return f"{fusion} + re-ranking rules"


def results_markdown(
    config: dict, test: pd.DataFrame, champion: str, judged: Judged, tuning: pd.DataFrame, costs: dict, n: int
) -> str:
    e = config["evaluation"]
    table = test.copy()
    table.insert(0, "list", [f"{name} (champion)" if name == champion else name for name in table.index])
    typical = typical_relevant(judged)
    context = ", ".join(f"{key} {value}" for key, value in config["serving"]["evaluation_context"].items())
    rules = ", ".join(step["step"] for step in config["serving"]["re_ranking"])
    weights = ", ".join(f"{row.text_weight:g}: {row.validation_mrr:.3f}" for row in tuning.itertuples())
    return "\n".join(
        [
            f"Test queries: {int(table['queries'].max())}; MRR of the annotated video (counted to rank {e['depth']}),"
            " overall and per kind of query; hit rates of the annotated video; precision and recall against"
            " every video the world holds relevant",
            "",
            markdown_table(table.to_dict("records"), list(table.columns)),
            "",
            "Videos that fit a query as well as its annotated one, median per kind: "
            + ", ".join(f"{kind} {value:.0f}" for kind, value in typical.items()),
            f"Re-ranking rules for a searcher of {context}: {rules}",
            f"Weighted sum, validation MRR per text weight: {weights}",
            f"Indexes over {n} videos: BM25 (bm25s, 3 fields) built in {costs['bm25_seconds']:.1f} s; encoders"
            f" trained in {costs['encoder_seconds']:.0f} s; faiss {costs['faiss']}, built in"
            f" {costs['faiss_seconds']:.1f} s",
        ]
    )
