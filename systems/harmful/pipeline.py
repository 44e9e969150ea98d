"""Training of harmful content detection (chapter sections 4-7), on the harmful-content world.

posts, authors, reports, hand labels (the world) -> the authors' profile into Feast, read back as of each post
-> the image encoder: the small CNN of an early-fusion network trained end to end on the natural labels, then
   frozen (the chapter's pre-trained feature extractor, trained here) -> every image's vector
-> the natural labels (reports) of the training posts; the hand labels of the validation and test posts; the
   world's truth of posts held out from training
-> each model (systems/harmful/models.py) fits on the natural labels, stops early on the validation posts
-> its thresholds on the validation posts (systems/harmful/evaluation.py) -> its metrics on the test posts and
   on the held-out combination-only posts -> the champion by mean validation PR-AUC
-> the online metrics of the served policy simulated on the held-out posts -> MLflow ->
   `harmful-ranker@champion`
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from common.evaluation.classification import markdown_table
from common.models.image_encoder import ImageEncoder
from common.models.multimodal import MultimodalClassifier, PostInputs
from common.models.text import SentenceEncoder
from common.models.text_tuning import fine_tune_on_labels
from common.tracking import runs as tracking
from systems.harmful.evaluation import (
    Thresholds,
    actions,
    category_metrics,
    choose_thresholds,
    online_metrics,
)
from systems.harmful.features import author_features_as_of, natural_labels, numeric_inputs, publish_authors
from systems.harmful.models import build_model
from systems.harmful.world import CATEGORIES, HarmfulWorld

log = logging.getLogger(__name__)
SYSTEM = "harmful"
ORACLE = "oracle (true probabilities)"
PRETRAINED = {"minilm", "minilm_tuned"}


@dataclass
class ServedModerator:
    """What the registry holds: the classifier, the encoders its inputs need and the served thresholds."""

    model: object
    image_encoder: ImageEncoder
    text_encoder: object | None  # a sentence encoder for the models reading text vectors, else None
    thresholds: Thresholds
    categories: tuple[str, ...]
    image_size: int


@dataclass
class Posts:
    """Every post's inputs and labels, rows in the posts table's order."""

    table: pd.DataFrame
    inputs: PostInputs
    natural: np.ndarray  # (n, categories) from the reports
    truth: np.ndarray  # (n, categories) the world's
    oracle: np.ndarray  # (n, categories) the world's probabilities
    rows: dict[str, np.ndarray]  # train, validation, test, held_out
    hand: dict[str, np.ndarray]  # validation, test: the hand labels of those rows


def train(config: dict, world: HarmfulWorld) -> dict:
    started = time.perf_counter()
    posts, image_encoder = prepare(config, world)
    log.info("posts ready at %.0fs: %s", time.perf_counter() - started, {k: len(v) for k, v in posts.rows.items()})
    fitted, text_encoders, seconds = fit_models(config, posts)
    predictions = {name: predict(model, posts, text_encoders.get(name)) for name, model in fitted.items()}
    predictions[ORACLE] = {split: posts.oracle[rows] for split, rows in posts.rows.items()}
    m = config["moderation"]
    thresholds = {
        name: choose_thresholds(posts.hand["validation"], p["validation"], m["remove_precision"], m["demote_precision"])
        for name, p in predictions.items()
    }
    results = {name: evaluate(config, posts, p, thresholds[name]) for name, p in predictions.items()}
    metrics = {name: results[name]["metrics"] for name in fitted}
    champion = tracking.choose_champion(metrics, config["champion"])
    online = simulate_online(config, posts, predictions, thresholds, champion)
    log.info("champion %s at %.0fs", champion, time.perf_counter() - started)
    served = {
        name: ServedModerator(
            model, image_encoder, text_encoders.get(name), thresholds[name], CATEGORIES, config["image_size"]
        )
        for name, model in fitted.items()
    }
    table = results_markdown(config, posts, results, champion, online, seconds)
    data_params = {"scale": config["scale"], "seed": config["seed"], "n_posts": len(posts.table)}

    version = tracking.record_bundles(SYSTEM, config, champion, served, metrics, data_params, table)
    total = time.perf_counter() - started
    log.info("harmful pipeline done in %.0fs; champion %s", total, champion)
    return {
        "champion": champion,
        "champion_version": version,
        "metrics": metrics,
        "results": results,
        "online": online,
        "thresholds": thresholds,
        "table": table,
        "pipeline_seconds": total,
    }


def prepare(config: dict, world: HarmfulWorld) -> tuple[Posts, ImageEncoder]:
    tables = world.generate()
    table, reports, hand = tables["posts"].reset_index(drop=True), tables["reports"], tables["hand_labelled"]
    start, end = table["created_at"].min().normalize(), table["created_at"].max()
    repo = publish_authors(SYSTEM, tables["authors"], start, end)
    numeric = numeric_inputs(author_features_as_of(repo, table))
    position = pd.Series(np.arange(len(table)), index=table["post_id"].to_numpy())
    rows, labels = {}, {}
    for split in ("validation", "test"):
        part = hand[hand["split"] == split]
        rows[split] = position[part["post_id"]].to_numpy()
        labels[split] = part[list(CATEGORIES)].to_numpy(dtype=np.float32)
    rng = np.random.default_rng(config["seed"])
    rest = np.setdiff1d(np.arange(len(table)), np.concatenate(list(rows.values())))
    held_out = rng.random(len(rest)) < config["held_out_share"]
    rows["train"], rows["held_out"] = rest[~held_out], rest[held_out]
    has_image = table["has_image"].to_numpy()
    pixels = np.zeros((len(table), world.image_size, world.image_size, 3), dtype=np.uint8)
    pixels[has_image] = world.images(table[has_image])
    no_vectors = np.zeros((len(table), config["image_encoder"]["dim"]), dtype=np.float32)
    inputs = PostInputs(numeric, no_vectors, has_image, texts=table["text"].to_numpy(), pixels=pixels)
    posts = Posts(
        table=table,
        inputs=inputs,
        natural=natural_labels(table, reports, CATEGORIES),
        truth=table[[f"true_{c}" for c in CATEGORIES]].to_numpy(dtype=np.float32),
        oracle=table[[f"p_{c}" for c in CATEGORIES]].to_numpy(dtype=np.float64),
        rows=rows,
        hand=labels,
    )
    image_encoder = train_image_encoder(config, posts)
    vectors = no_vectors.copy()
    vectors[has_image] = image_encoder.encode(pixels[has_image])
    posts.inputs = PostInputs(numeric, vectors, has_image, texts=inputs.texts)
    return posts, image_encoder


def train_image_encoder(config: dict, posts: Posts) -> ImageEncoder:
    """The image encoder every model reads: the CNN of an early-fusion network trained end to end (text, image
    and author features together) on the training posts' natural labels, then frozen. No pretrained image
    weights can be had here. A self-supervised CNN (SimCLR) was measured too: neither keeps the small stickers
    in its vectors well (the README's probe), the reason no model finds the combination-only posts yet."""
    c = config["image_encoder"]
    started = time.perf_counter()
    network = {**config["network"], "epochs": c["epochs"]}
    model = MultimodalClassifier(
        tasks=CATEGORIES, image_cnn={"width": c["width"]}, random_state=config["seed"], **network
    )
    train, validation = posts.rows["train"], posts.rows["validation"]
    model.fit(posts.inputs.take(train), posts.natural[train], (posts.inputs.take(validation), posts.hand["validation"]))
    log.info("image encoder trained in %.0fs (in an early-fusion network)", time.perf_counter() - started)
    return model.image_encoder()


def fit_models(config: dict, posts: Posts) -> tuple[dict, dict, dict]:
    """Each configured model fitted on the training posts' natural labels; the ones reading a pretrained text
    encoder (and the hashed-text control marked `subset`) on a sample of them (the encoder is slow on a CPU)."""
    fitted, text_encoders, seconds = {}, {}, {}
    train_rows, validation = posts.rows["train"], posts.rows["validation"]
    subset = train_rows[: config["minilm"]["train_posts"]]
    for name, spec in config["models"].items():
        started = time.perf_counter()
        text = spec.get("text", "hashed")
        rows = subset if text in PRETRAINED or spec.get("subset") else train_rows
        encoder = None
        if text in PRETRAINED:
            encoder = sentence_encoder(config, posts, subset, tuned=text == "minilm_tuned")
            text_encoders[name] = encoder
        model = build_model(spec, CATEGORIES, config["network"], config["seed"])
        fit_inputs = model_inputs(posts, rows, encoder)
        eval_set = (model_inputs(posts, validation, encoder), posts.hand["validation"])
        fitted[name] = model.fit(fit_inputs, posts.natural[rows], eval_set)
        seconds[name] = time.perf_counter() - started
        log.info("%s fitted in %.0fs on %d posts", name, seconds[name], len(rows))
    return fitted, text_encoders, seconds


def sentence_encoder(config: dict, posts: Posts, rows: np.ndarray, tuned: bool):
    c = config["minilm"]
    if not tuned:
        return SentenceEncoder(c.get("path")).fit()
    tune = rows[: c["tune_texts"]]
    return fine_tune_on_labels(
        posts.table["text"].to_numpy()[tune],
        posts.natural[tune],
        epochs=c["epochs"],
        batch_size=c["batch_size"],
        path=c.get("path"),
        random_state=config["seed"],
    )


def model_inputs(posts: Posts, rows: np.ndarray, text_encoder=None) -> PostInputs:
    inputs = posts.inputs.take(rows)
    if text_encoder is None:
        return inputs
    vectors = text_encoder.encode(list(inputs.texts))
    return PostInputs(inputs.numeric, inputs.image_vectors, inputs.has_image, texts=None, text_vectors=vectors)


def predict(model, posts: Posts, text_encoder) -> dict[str, np.ndarray]:
    """The model's probabilities on the evaluation rows (held-out posts: full-data models only, the
    pretrained encoders would take minutes to read them)."""
    splits = ("validation", "test") if text_encoder is not None else ("validation", "test", "held_out")
    return {s: model.predict_proba(model_inputs(posts, posts.rows[s], text_encoder)) for s in splits}


def evaluate(config: dict, posts: Posts, p: dict, thresholds: Thresholds) -> dict:
    """Per category on the test posts; the mean PR-AUC on validation (the champion's metric); the held-out
    combination-only posts."""
    test = category_metrics(posts.hand["test"], p["test"], thresholds, CATEGORIES)
    validation = category_metrics(posts.hand["validation"], p["validation"], thresholds, CATEGORIES)
    metrics = {
        "validation_mean_pr_auc": float(np.nanmean([v["pr_auc"] for v in validation.values()])),
        "test_mean_pr_auc": float(np.nanmean([v["pr_auc"] for v in test.values()])),
    }
    for category, values in test.items():
        metrics |= {f"test_{category}_{k}": float(v) for k, v in values.items() if k != "positives"}
    return {"test": test, "metrics": metrics, "combination": combination_metrics(posts, p.get("held_out"), thresholds)}


def combination_metrics(posts: Posts, p: np.ndarray | None, thresholds: Thresholds) -> dict:
    """On the held-out posts: harmful only through their text-image pair (hate, violence) against the benign
    posts: ROC-AUC of the score of their categories, and the share acted on (demoted or removed)."""
    if p is None:
        return {}
    table = posts.table.iloc[posts.rows["held_out"]]
    truth = posts.truth[posts.rows["held_out"]]
    pair_categories = [CATEGORIES.index("violence"), CATEGORIES.index("hate")]
    combination = table["combination_only"].to_numpy() & (truth[:, pair_categories].sum(axis=1) > 0)
    benign = truth.sum(axis=1) == 0
    score = p[:, pair_categories].max(axis=1)
    action, _ = actions(p, thresholds)
    if combination.sum() == 0 or benign.sum() == 0:
        return {"posts": int(combination.sum())}
    labels = np.r_[np.ones(combination.sum()), np.zeros(benign.sum())]
    return {
        "posts": int(combination.sum()),
        "roc_auc": float(roc_auc_score(labels, np.r_[score[combination], score[benign]])),
        "acted_on": float((action[combination] > 0).mean()),
    }


def simulate_online(config: dict, posts: Posts, predictions: dict, thresholds: dict, champion: str) -> dict:
    """The served policy, no moderation and the oracle's policy over the held-out posts."""
    held_out = posts.rows["held_out"]
    table = posts.table.iloc[held_out]
    harmful = posts.truth[held_out].sum(axis=1) > 0
    reach = table["impressions"].to_numpy(dtype=np.float64)
    reported = table["n_reports"].to_numpy() > 0
    demote_reach = config["moderation"]["demote_reach"]
    policies = {
        "no moderation": np.zeros(len(held_out), dtype=np.int64),
        f"served ({champion})": actions(predictions[champion]["held_out"], thresholds[champion])[0],
        "oracle (removes exactly the harmful posts)": np.where(harmful, 2, 0),
    }
    return {name: online_metrics(a, harmful, reach, reported, demote_reach) for name, a in policies.items()}


def results_markdown(config: dict, posts: Posts, results: dict, champion: str, online: dict, seconds: dict) -> str:
    rows = []
    for name, result in results.items():
        row = {"model": f"{name} (champion)" if name == champion else name}
        for category, values in result["test"].items():
            row[f"{category} PR-AUC"] = values["pr_auc"]
        row["mean PR-AUC"] = result["metrics"]["test_mean_pr_auc"]
        row["mean ROC-AUC"] = float(np.nanmean([v["roc_auc"] for v in result["test"].values()]))
        combination = result["combination"]
        row["combination ROC-AUC"] = combination.get("roc_auc", float("nan"))
        row["combination acted on"] = combination.get("acted_on", float("nan"))
        rows.append(row)
    removal = []
    for name in (champion, ORACLE):
        for category, values in results[name]["test"].items():
            removal.append(
                {
                    "model": name,
                    "category": category,
                    "test positives": values["positives"],
                    "F1": values["f1"],
                    "removal precision": values["remove_precision"],
                    "removal recall": values["remove_recall"],
                }
            )
    policy_rows = [{"policy": name, **values} for name, values in online.items()]
    n = {split: len(rows) for split, rows in posts.rows.items()}
    combination_posts = next((r["combination"].get("posts") for r in results.values() if r["combination"]), 0)
    m = config["moderation"]
    return "\n".join(
        [
            f"Posts: {len(posts.table)}; trained on {n['train']} posts' natural labels (reports); hand-labelled"
            f" {n['validation']} validation and {n['test']} test posts; {n['held_out']} held-out posts judged by"
            f" the world's truth ({combination_posts} of them harmful only through their text-image pair)",
            "",
            "Test posts (hand labels), per category PR-AUC; the combination-only held-out posts against the benign"
            " ones (models reading the pretrained encoder are not run on the held-out posts):",
            "",
            markdown_table(rows, list(rows[0]), floatfmt=".3f"),
            "",
            f"Removal (threshold: validation precision >= {m['remove_precision']}) and F1, test posts:",
            "",
            markdown_table(removal, list(removal[0]), floatfmt=".3f"),
            "",
            f"Online, simulated on the held-out posts (demoted posts keep {m['demote_reach']:.0%} of their reach):",
            "",
            markdown_table(policy_rows, list(policy_rows[0]), floatfmt=".4f"),
            "",
            "Fit seconds: " + ", ".join(f"{name} {s:.0f}" for name, s in seconds.items()),
        ]
    )
