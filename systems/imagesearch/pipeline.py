"""Training of image search (chapter sections 4-7), on the image-search world or a folder of images.

corpus (catalogue photos, judged query photos, click pairs) -> data/imagesearch/raw (what serving shows)
-> each encoder (config `models`): raw pixels + PCA (the baseline), the CNN trained self-supervised (SimCLR),
   the CNN trained on click pairs, and the SimCLR CNN fine-tuned on click pairs
-> each embeds the catalogue and the query photos -> exact nearest neighbours -> MRR, recall@k, precision@k,
   mAP, nDCG@k on the validation and test queries (systems/imagesearch/evaluation.py), beside the oracle
-> the champion by validation mAP -> its embeddings into IVF-PQ: built on the uploads before the build day,
   the later ones added (systems/imagesearch/indexing.py), measured against exact search
-> the near-copy threshold from the re-uploads' similarity -> the served path (index + rules) on the test
   queries -> MLflow -> `imagesearch-ranker@champion`
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
from common.models.image_encoder import ImageEncoder
from common.models.pixel_pca import PixelPCA
from common.tracking import runs as tracking
from systems.imagesearch.corpus import Corpus
from systems.imagesearch.evaluation import ORACLE, Judgments, list_metrics, oracle_metrics
from systems.imagesearch.funnel import SimilarImages
from systems.imagesearch.indexing import IndexReport, measure
from systems.imagesearch.world import SPLITS

log = logging.getLogger(__name__)
SYSTEM = "imagesearch"
SERVED = "served: champion + IVF-PQ + re-ranking rules"


@dataclass
class ServedImageSearch:
    """What the registry holds: the encoder and how the served path is set; the index and the catalogue are
    files under data/imagesearch/ (an index only for the champion: the other models' runs are comparisons)."""

    encoder: object  # ImageEncoder or PixelPCA: encode((n, s, s, 3) uint8) -> (n, d) unit rows
    image_size: int
    index_name: str | None
    duplicate_threshold: float


def raw_dir() -> Path:
    return system_dir(SYSTEM) / "raw"


def train(config: dict, corpus: Corpus) -> dict:
    started = time.perf_counter()
    write_raw(corpus)
    log.info("%s", corpus.source)
    encoders, fit_seconds = fit_encoders(config, corpus)
    e = config["evaluation"]
    evaluation: dict[str, dict] = {split: {} for split in SPLITS}
    vectors = {}
    for name, encoder in encoders.items():
        vectors[name] = encoder.encode(corpus.pixels)
        queries = encoder.encode(corpus.query_pixels)
        for split in SPLITS:
            rows = corpus.split(split)
            ranked = exact_ranking(queries[rows], vectors[name], corpus.images["private"].to_numpy(), e["depth"])
            evaluation[split][name] = list_metrics(ranked, judgments(corpus, rows), counts(corpus, rows), e["k"])
    metrics = {name: {f"validation_{m}": v for m, v in evaluation["validation"][name].items()} for name in encoders}
    champion = tracking.choose_champion(metrics, config["champion"])
    log.info("champion %s; indexing at %.0fs", champion, time.perf_counter() - started)

    test_rows = corpus.split("test")
    champion_queries = encoders[champion].encode(corpus.query_pixels)
    index, report = measure(
        config, vectors[champion], corpus.images["day"].to_numpy(), corpus.build_day, champion_queries[test_rows]
    )
    index_name = f"ivfpq-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}"
    index.save(system_dir(SYSTEM) / "index" / index_name)
    threshold, copies = duplicate_threshold(config, corpus, vectors[champion])
    served_path = SimilarImages(index, corpus.images["private"].to_numpy(), threshold, config["serving"]["candidates"])
    ranked = served_path.search_many(champion_queries[test_rows], e["depth"])
    evaluation["test"][SERVED] = list_metrics(ranked, judgments(corpus, test_rows), counts(corpus, test_rows), e["k"])
    for split in SPLITS:
        rows = corpus.split(split)
        evaluation[split][ORACLE] = oracle_metrics(counts(corpus, rows), e["k"], e["depth"])
    for name in encoders:
        metrics[name] |= {f"test_{m}": v for m, v in evaluation["test"][name].items()}
        metrics[name]["fit_seconds"] = fit_seconds[name]

    served = {
        name: ServedImageSearch(encoder, config["image_size"], index_name if name == champion else None, threshold)
        for name, encoder in encoders.items()
    }
    table = results_markdown(config, corpus, evaluation["test"], champion, report, copies, fit_seconds, threshold)
    data_params = {"scale": config["scale"], "seed": config["seed"], "source": corpus.source[:250]}

    version = tracking.record_bundles(SYSTEM, config, champion, served, metrics, data_params, table)
    seconds = time.perf_counter() - started
    log.info("image search pipeline done in %.0fs; champion %s", seconds, champion)
    return {
        "champion": champion,
        "champion_version": version,
        "metrics": metrics,
        "evaluation": {split: pd.DataFrame.from_dict(rows, orient="index") for split, rows in evaluation.items()},
        "index": report,
        "duplicate_threshold": threshold,
        "table": table,
        "pipeline_seconds": seconds,
    }


def write_raw(corpus: Corpus) -> None:
    """What serving reads besides the models: the catalogue table and its pixels (memory-mapped there)."""
    folder = raw_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(folder / "images.parquet") as temporary:
        corpus.images.to_parquet(temporary, index=False)
    with replaced_atomically(folder / "pixels.npy") as temporary, temporary.open("wb") as out:
        np.save(out, corpus.pixels)


def fit_encoders(config: dict, corpus: Corpus) -> tuple[dict, dict[str, float]]:
    """Each configured encoder, fitted; click-trained ones only when the corpus has clicks."""
    rng = np.random.default_rng(config["seed"])
    encoders, seconds = {}, {}
    for name, spec in config["models"].items():
        spec = dict(spec)
        kind, init = spec.pop("kind"), spec.pop("init", None)
        if kind == "clicks" and corpus.click_pairs is None:
            log.info("%s: no clicks in %s, skipped", name, corpus.source)
            continue
        started = time.perf_counter()
        if kind == "pca":
            encoders[name] = PixelPCA(**spec, random_state=config["seed"]).fit(corpus.pixels)
        elif kind == "simclr":
            n_train = spec.pop("train_images")
            sample = np.sort(rng.permutation(len(corpus.pixels))[:n_train])
            encoders[name] = ImageEncoder(**spec, random_state=config["seed"]).fit(corpus.pixels[sample])
        elif kind == "clicks":
            images, pairs = click_training_set(corpus)
            start = encoders[init] if init is not None else None
            encoders[name] = ImageEncoder(**spec, random_state=config["seed"]).fit(images, pairs, init=start)
        else:
            raise ValueError(f"unknown image encoder kind {kind!r} for {name}; expected pca, simclr or clicks")
        seconds[name] = time.perf_counter() - started
        log.info("%s fitted in %.0fs", name, seconds[name])
    return encoders, seconds


def click_training_set(corpus: Corpus) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The photos the click pairs touch (the searches' query photos and the clicked images) and the pairs as
    rows of them."""
    searches, clicked = corpus.click_pairs
    search_rows, search_index = np.unique(searches, return_inverse=True)
    image_rows, image_index = np.unique(clicked, return_inverse=True)
    images = np.concatenate([corpus.search_pixels[search_rows], corpus.pixels[image_rows]])
    return images, (search_index, len(search_rows) + image_index)


def exact_ranking(queries: np.ndarray, catalogue: np.ndarray, private: np.ndarray, depth: int) -> np.ndarray:
    """(n_queries, depth) rows of the public images with the largest inner products, best first; -1 pads the
    lists of a catalogue with fewer public images than depth."""
    ranked = np.full((len(queries), depth), -1, dtype=np.int64)
    public = int((~private).sum())
    width = min(depth, public)
    if width == 0:
        return ranked
    for start in range(0, len(queries), 512):
        scores = queries[start : start + 512] @ catalogue.T
        scores[:, private] = -np.inf
        top = np.argpartition(-scores, width - 1, axis=1)[:, :width]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        ranked[start : start + len(top), :width] = np.take_along_axis(top, order, axis=1)
    return ranked


def judgments(corpus: Corpus, rows: np.ndarray) -> Judgments:
    def grades_of(query_positions: np.ndarray, image_rows: np.ndarray) -> np.ndarray:
        return corpus.grades(rows[query_positions], image_rows)

    return Judgments(grades_of, ~corpus.images["private"].to_numpy(), len(rows))


def counts(corpus: Corpus, rows: np.ndarray) -> np.ndarray:
    return judgments(corpus, rows).grade_counts()


def duplicate_threshold(config: dict, corpus: Corpus, vectors: np.ndarray) -> tuple[float, dict]:
    """The inner product above which a result counts as a copy of the query: the config's quantile of the
    re-uploads' similarity to their originals (so that share of copies slips through), and what it costs:
    the share of distinct photos of one object (no copies) at or above it."""
    s = config["serving"]
    copies = corpus.images["duplicate_of"].to_numpy()
    copy_rows = np.flatnonzero(copies >= 0)
    if len(copy_rows) < 10 or "object_id" not in corpus.images:
        return float(s["default_duplicate_threshold"]), {}
    copy_similarity = (vectors[copy_rows] * vectors[copies[copy_rows]]).sum(axis=1)
    threshold = float(np.quantile(copy_similarity, s["duplicate_quantile"]))
    # Distinct photos of one object: consecutive rows of an object (the world lists them together).
    objects = corpus.images["object_id"].to_numpy()
    pairs = np.flatnonzero((objects[1:] == objects[:-1]) & (copies[1:] < 0) & (copies[:-1] < 0))
    sibling_similarity = (vectors[pairs] * vectors[pairs + 1]).sum(axis=1)
    return threshold, {
        "copies": len(copy_rows),
        "copies_caught": float((copy_similarity >= threshold).mean()),
        "distinct_photos_dropped": float((sibling_similarity >= threshold).mean()),
    }


def results_markdown(
    config: dict,
    corpus: Corpus,
    test: dict,
    champion: str,
    report: IndexReport,
    copies: dict,
    fit_seconds: dict,
    threshold: float,
) -> str:
    e = config["evaluation"]
    k = e["k"]
    rows = [
        {"list": f"{name} (champion)" if name == champion else name, **_labels(values)} for name, values in test.items()
    ]
    columns = ["list", "mrr", f"recall@{k}", f"precision@{k}", "map", f"ndcg@{k}"]
    rebuild = report.rebuild.copy()
    lines = [
        f"Data: {corpus.source}. Test queries: {len(corpus.split('test'))} {corpus.relevance}; exact search over"
        f" each model's embeddings, counted to rank {e['depth']} (mAP) and {k}",
        "",
        markdown_table(rows, columns),
        "",
        "Fit seconds: " + ", ".join(f"{name} {s:.0f}" for name, s in fit_seconds.items()),
        f"IVF-PQ {report.spec}: {report.bytes_per_image:.1f} bytes an image against {report.flat_bytes_per_image:.1f}"
        f" for a flat index ({report.bytes_per_image / report.flat_bytes_per_image:.2f} of it);"
        f" recall@{k} against exact search {report.recall:.3f}: {report.recall_base:.3f} for the {report.n_base}"
        f" images in the built index, {report.recall_added:.3f} for the {report.n_added} added after it;"
        f" built in {report.build_seconds:.1f} s, the additions in {report.add_seconds:.2f} s;"
        f" list imbalance {report.imbalance:.2f}",
        "",
        "Index built on fewer days, the rest added (the rebuild rule):",
        "",
        markdown_table(rebuild.to_dict("records"), list(rebuild.columns), floatfmt=".3f") if len(rebuild) else "-",
    ]
    if copies:
        lines += [
            "",
            f"Near-copies: threshold {threshold:.3f} (inner product) catches {copies['copies_caught']:.1%} of the"
            f" {copies['copies']} re-uploads and drops {copies['distinct_photos_dropped']:.1%} of distinct photos"
            " of one object",
        ]
    return "\n".join(lines)


def _labels(metrics: dict) -> dict:
    """recall_at_10 (MLflow's metric names take no "@") -> recall@10, for the table."""
    return {name.replace("_at_", "@"): value for name, value in metrics.items()}
