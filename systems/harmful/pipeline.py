"""Training of harmful content detection (chapter sections 4-7), on the harmful-content world.

posts, authors, reports, hand labels (the world) -> the authors' profile into Feast, read back as of each post
-> the image encoder: the small CNN pretrained to name what photos show on a labelled photo set (ImageNet's
   stand-in, common/images/labelled.py), frozen -> every image's vector
-> every post's text as all-MiniLM-L6-v2's vectors of its words, pooled and in order (the networks read both by
   default, the order through a convolution that sees phrases; the pooled words alone, the hashed words trained
   here, and MiniLM reading whole posts, are compared)
-> the natural labels (reports) of the training posts, and how exposed each was to reporters (its reach, its
   days before the logs were read); the hand labels of the validation and test posts; the world's truth of
   posts held out from training
-> each model (systems/harmful/models.py) fits on the natural labels, the exposure explaining its part of them
   away (training only), and stops early on the validation posts
-> its thresholds on the validation posts (systems/harmful/evaluation.py) -> its metrics on the test posts and
   on the held-out combination-only posts -> the champion by mean validation PR-AUC -> MLflow ->
   `harmful-ranker@champion`
The online metrics are measured on the simulator, on the posts of days after these (systems/harmful/online.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from common.evaluation.classification import markdown_table
from common.images.pretrained import pretrained_image_encoder
from common.models.image_encoder import ImageEncoder
from common.models.multimodal import PostInputs
from common.models.text import SentenceEncoder, WordVectorEncoder
from common.models.text_tuning import fine_tune_on_labels
from common.models.word_convolution import WordSequences
from common.tracking import runs as tracking
from systems.harmful.evaluation import (
    COUNTS,
    Thresholds,
    actions,
    category_metrics,
    choose_thresholds,
    image_probes,
    precision_interval,
    removal_reliability,
)
from systems.harmful.features import (
    author_features_as_of,
    natural_labels,
    numeric_inputs,
    publish_authors,
    report_exposure,
)
from systems.harmful.models import build_model
from systems.harmful.world import CATEGORIES, HarmfulWorld

log = logging.getLogger(__name__)
IMAGE_CHUNK = 16_384  # posts whose images are rendered and embedded at once
SYSTEM = "harmful"
ORACLE = "oracle (true probabilities)"
# What a model reads of the text (config `text`): the hashed words (trained here); the pretrained word vectors,
# pooled (words) and in order through a convolution (phrases); the hashed and pooled words; or the pretrained
# sentence encoder's vectors, frozen or fine-tuned (on a sample: slow on a CPU).
TEXTS = ("hashed", "words", "words+phrases", "hashed+words", "minilm", "minilm_tuned")
DEFAULT_TEXT = "words+phrases"
WORD_VECTOR_PARTS = {"words", "phrases"}  # the parts read through the word vectors
SENTENCE_ENCODERS = {"minilm", "minilm_tuned"}


def post_inputs(
    text: str, numeric, image_vectors, has_image, texts, text_encoder=None, text_vectors=None, word_sequences=None
) -> PostInputs:
    """The inputs a model reading `text` takes. text_vectors, word_sequences: the text encoder's vectors and
    sequences of these texts, when already computed."""
    if text not in TEXTS:
        raise ValueError(f"unknown text {text!r}; expected one of {TEXTS}")
    parts = set(text.split("+"))
    if {"words", "phrases"} <= parts and text_vectors is None and word_sequences is None:
        text_vectors, word_sequences = text_encoder.encode_with_sequences(list(texts))  # unseen words once
    if parts & {"words", *SENTENCE_ENCODERS} and text_vectors is None:
        text_vectors = text_encoder.encode(list(texts))
    if "phrases" in parts and word_sequences is None:
        word_sequences = text_encoder.sequences(list(texts))
    return PostInputs(
        numeric,
        image_vectors,
        has_image,
        texts=texts if "hashed" in parts else None,
        text_vectors=text_vectors if parts & {"words", *SENTENCE_ENCODERS} else None,
        word_sequences=word_sequences if "phrases" in parts else None,
    )


@dataclass
class ServedModerator:
    """What the registry holds: the classifier, the encoders its inputs need and the served thresholds."""

    model: object
    image_encoder: ImageEncoder
    text: str  # which of TEXTS the model reads
    text_encoder: object | None  # the word or sentence encoder that text needs, else None
    thresholds: Thresholds
    categories: tuple[str, ...]
    image_size: int

    def inputs(self, numeric, image_vectors, has_image, texts) -> PostInputs:
        return post_inputs(self.text, numeric, image_vectors, has_image, texts, self.text_encoder)

    def load(self) -> ServedModerator:
        """Load what the registry does not hold (the word vectors' sentence encoder), before any request."""
        if isinstance(self.text_encoder, WordVectorEncoder):
            self.text_encoder.load()
        return self


@dataclass
class Posts:
    """Every post's inputs and labels, rows in the posts table's order."""

    table: pd.DataFrame
    inputs: PostInputs
    natural: np.ndarray  # (n, categories) from the reports
    exposure: np.ndarray  # (n, 2) what else the reports depended on: log reach, log days observed
    truth: np.ndarray  # (n, categories) the world's
    oracle: np.ndarray  # (n, categories) the world's probabilities
    rows: dict[str, np.ndarray]  # train, validation, test, held_out
    hand: dict[str, np.ndarray]  # validation, test: the hand labels of those rows
    words: WordVectorEncoder  # the pretrained word vectors
    word_vectors: np.ndarray  # (n, d) every post's text through it, pooled
    word_sequences: WordSequences  # every post's words in order


def train(config: dict, world: HarmfulWorld) -> dict:
    started = time.perf_counter()
    if config.get("torch_threads"):
        torch.set_num_threads(config["torch_threads"])
    posts, image_encoder = prepare(config, world)
    log.info("posts ready at %.0fs: %s", time.perf_counter() - started, {k: len(v) for k, v in posts.rows.items()})
    fitted, text_encoders, seconds, validation_inputs = fit_models(config, posts)
    predictions = {}
    for name, model in fitted.items():
        text = model_text(config["models"][name])
        predictions[name] = predict(model, posts, text, text_encoders.get(name), validation_inputs[name])
    predictions[ORACLE] = {split: posts.oracle[rows] for split, rows in posts.rows.items()}
    m = config["moderation"]
    rule = (m["remove_target"], m["demote_precision"], m["remove_confidence"])
    validation = posts.hand["validation"]
    thresholds = {name: choose_thresholds(validation, p["validation"], *rule) for name, p in predictions.items()}
    results = {name: evaluate(config, posts, p, thresholds[name]) for name, p in predictions.items()}
    metrics = {name: results[name]["metrics"] for name in fitted}
    champion = tracking.choose_champion(metrics, config["champion"])
    reliability = {name: removal_rules_compared(config, posts, predictions[name]) for name in (champion, ORACLE)}
    train_rows = posts.rows["train"]
    probes = image_probes(posts.table.iloc[train_rows], posts.inputs.image_vectors[train_rows])
    log.info("champion %s at %.0fs", champion, time.perf_counter() - started)
    served = {
        name: ServedModerator(
            model,
            image_encoder,
            model_text(config["models"][name]),
            text_encoders.get(name),
            thresholds[name],
            CATEGORIES,
            config["image_size"],
        )
        for name, model in fitted.items()
    }
    table = results_markdown(config, posts, results, champion, probes, seconds, reliability)
    data_params = {"scale": config["scale"], "seed": config["seed"], "n_posts": len(posts.table)}

    version = tracking.record_bundles(SYSTEM, config, champion, served, metrics, data_params, table)
    total = time.perf_counter() - started
    log.info("harmful pipeline done in %.0fs; champion %s", total, champion)
    return {
        "champion": champion,
        "champion_version": version,
        "metrics": metrics,
        "results": results,
        "image_probes": probes,
        "thresholds": thresholds,
        "removal_reliability": reliability,
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
    image_encoder = pretrained_image_encoder(config["image_encoder"], config["image_size"], config["seed"])
    vectors = np.zeros((len(table), image_encoder.dim), dtype=np.float32)
    for start in range(0, len(table), IMAGE_CHUNK):  # rendered a chunk at a time: pixels are never all held
        chunk = table.iloc[start : start + IMAGE_CHUNK]
        shown = chunk["has_image"].to_numpy()
        vectors[start + np.flatnonzero(shown)] = image_encoder.encode(world.images(chunk[shown]))
    texts = table["text"].to_numpy()
    started = time.perf_counter()
    words = WordVectorEncoder(config["minilm"].get("path")).fit(texts[rows["train"]])
    word_vectors, word_sequences = words.encode_with_sequences(texts)
    log.info("word vectors of %d words in %.0fs", len(words.vectors_), time.perf_counter() - started)
    posts = Posts(
        table=table,
        inputs=PostInputs(numeric, vectors, has_image, texts=texts),
        natural=natural_labels(table, reports, CATEGORIES),
        exposure=report_exposure(table, reports),
        truth=table[[f"true_{c}" for c in CATEGORIES]].to_numpy(dtype=np.float32),
        oracle=table[[f"p_{c}" for c in CATEGORIES]].to_numpy(dtype=np.float64),
        rows=rows,
        hand=labels,
        words=words,
        word_vectors=word_vectors,
        word_sequences=word_sequences,
    )
    return posts, image_encoder


def fit_models(config: dict, posts: Posts) -> tuple[dict, dict, dict, dict]:
    """Each configured model fitted on the training posts' natural labels; the ones reading a pretrained text
    encoder (and the hashed-text control marked `subset`) on a sample of them (the encoder is slow on a CPU).
    (models, their text encoders, fit seconds, the validation posts' inputs each read: kept for its predictions,
    a sentence encoder's vectors of every validation post being slow to compute twice)."""
    fitted, text_encoders, seconds, validation_inputs = {}, {}, {}, {}
    train_rows, validation = posts.rows["train"], posts.rows["validation"]
    subset = train_rows[: config["minilm"]["train_posts"]]
    for name, spec in config["models"].items():
        started = time.perf_counter()
        text = model_text(spec)
        rows = subset if text in SENTENCE_ENCODERS or spec.get("subset") else train_rows
        encoder = None
        if text in SENTENCE_ENCODERS:
            encoder = sentence_encoder(config, posts, subset, tuned=text == "minilm_tuned")
        elif set(text.split("+")) & WORD_VECTOR_PARTS:
            encoder = posts.words
        if encoder is not None:
            text_encoders[name] = encoder
        model = build_model(spec, CATEGORIES, config["network"], config["seed"])
        fit_inputs = model_inputs(posts, rows, text, encoder)
        validation_inputs[name] = model_inputs(posts, validation, text, encoder)
        eval_set = (validation_inputs[name], posts.hand["validation"])
        exposure = posts.exposure[rows] if spec.get("exposure", config["debias_exposure"]) else None
        fitted[name] = model.fit(fit_inputs, posts.natural[rows], eval_set, exposure=exposure)
        seconds[name] = time.perf_counter() - started
        log.info("%s fitted in %.0fs on %d posts", name, seconds[name], len(rows))
    return fitted, text_encoders, seconds, validation_inputs


def sentence_encoder(config: dict, posts: Posts, rows: np.ndarray, tuned: bool):
    c = config["minilm"]
    if not tuned:
        return SentenceEncoder(c.get("path")).fit()  # on the training's threads
    tune = rows[: c["tune_texts"]]
    return fine_tune_on_labels(
        posts.table["text"].to_numpy()[tune],
        posts.natural[tune],
        epochs=c["epochs"],
        batch_size=c["batch_size"],
        path=c.get("path"),
        random_state=config["seed"],
    )


def model_text(spec: dict) -> str:
    """What a configured model reads of the text (TEXTS); the logistic baseline hashes its own words."""
    return "hashed" if spec["kind"] == "logistic" else spec.get("text", DEFAULT_TEXT)


def model_inputs(posts: Posts, rows: np.ndarray, text: str, text_encoder=None) -> PostInputs:
    i = posts.inputs.take(rows)
    parts = set(text.split("+"))
    vectors = posts.word_vectors[rows] if "words" in parts else None
    sequences = posts.word_sequences.take(rows) if "phrases" in parts else None
    return post_inputs(text, i.numeric, i.image_vectors, i.has_image, i.texts, text_encoder, vectors, sequences)


def predict(
    model, posts: Posts, text: str, text_encoder, validation_inputs: PostInputs | None = None
) -> dict[str, np.ndarray]:
    """The model's probabilities on the evaluation rows (held-out posts: not for the models reading the
    sentence encoder, which would take minutes to read them); `validation_inputs`: the validation posts'
    inputs, when already computed."""
    splits = ("validation", "test") if text in SENTENCE_ENCODERS else ("validation", "test", "held_out")
    known = {"validation": validation_inputs} if validation_inputs is not None else {}
    return {
        s: model.predict_proba(known[s] if s in known else model_inputs(posts, posts.rows[s], text, text_encoder))
        for s in splits
    }


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
        metrics |= {f"test_{category}_{k}": float(v) for k, v in values.items() if k not in COUNTS}
    return {"test": test, "metrics": metrics, "combination": combination_metrics(posts, p.get("held_out"), thresholds)}


def removal_rules_compared(config: dict, posts: Posts, p: dict) -> dict[str, dict]:
    """How often removal rules keep the promise (evaluation.removal_reliability) on the held-out posts, which the
    truth judges, for thresholds chosen on as many posts as the validation holds (a third of the held-out posts
    at most): the served rule against the point estimate without a margin and the lower bound's rule. Empty for a
    model not run on them."""
    if "held_out" not in p:
        return {}
    m, reliability = config["moderation"], config["moderation"]["reliability"]
    promise = m["remove_precision"]
    served = f"lower bound at {m['remove_confidence']:.0%}" if m["remove_confidence"] is not None else "point estimate"
    rules = {
        f"point estimate at {promise}": (promise, None),
        f"{served} at {m['remove_target']} (served)": (m["remove_target"], m["remove_confidence"]),
        f"lower bound at {reliability['confidence']:.0%} at {promise}": (promise, reliability["confidence"]),
    }
    truth = posts.truth[posts.rows["held_out"]]
    return {
        rule: removal_reliability(
            truth, p["held_out"], CATEGORIES, draw_size(posts), target, confidence, reliability["draws"], 0, promise
        )
        for rule, (target, confidence) in rules.items()
    }


def draw_size(posts: Posts) -> int:
    """How many held-out posts stand in for the validation posts in each draw of removal_rules_compared."""
    return min(len(posts.rows["validation"]), len(posts.rows["held_out"]) // 3)


def combination_metrics(posts: Posts, p: np.ndarray | None, thresholds: Thresholds) -> dict:
    """On the held-out posts: harmful only through their text-image pair (hate, violence) against the benign
    posts with an image (the pair needs one: against them only the pair tells), and against all benign posts:
    ROC-AUC of the score of their categories; and the share acted on (demoted or removed)."""
    if p is None:
        return {}
    table = posts.table.iloc[posts.rows["held_out"]]
    truth = posts.truth[posts.rows["held_out"]]
    pair_categories = [CATEGORIES.index("violence"), CATEGORIES.index("hate")]
    combination = table["combination_only"].to_numpy() & (truth[:, pair_categories].sum(axis=1) > 0)
    benign = truth.sum(axis=1) == 0
    with_image = benign & table["has_image"].to_numpy()
    score = p[:, pair_categories].max(axis=1)
    action, _ = actions(p, thresholds)
    if combination.sum() == 0 or with_image.sum() == 0:
        return {"posts": int(combination.sum())}

    def roc_against(negatives: np.ndarray) -> float:
        labels = np.r_[np.ones(combination.sum()), np.zeros(negatives.sum())]
        return float(roc_auc_score(labels, np.r_[score[combination], score[negatives]]))

    return {
        "posts": int(combination.sum()),
        "roc_auc": roc_against(with_image),
        "roc_auc_all_benign": roc_against(benign),
        "acted_on": float((action[combination] > 0).mean()),
    }


def results_markdown(
    config: dict, posts: Posts, results: dict, champion: str, probes: dict, seconds: dict, reliability: dict
) -> str:
    rows = []
    for name, result in results.items():
        row = {"model": f"{name} (champion)" if name == champion else name}
        for category, values in result["test"].items():
            row[f"{category} PR-AUC"] = values["pr_auc"]
        row["mean PR-AUC"] = result["metrics"]["test_mean_pr_auc"]
        row["mean ROC-AUC"] = float(np.nanmean([v["roc_auc"] for v in result["test"].values()]))
        combination = result["combination"]
        row["pair ROC-AUC (benign with image)"] = combination.get("roc_auc", float("nan"))
        row["pair ROC-AUC (all benign)"] = combination.get("roc_auc_all_benign", float("nan"))
        row["pair acted on"] = combination.get("acted_on", float("nan"))
        rows.append(row)
    removal = []
    for name in (champion, ORACLE):
        for category, values in results[name]["test"].items():
            low, high = precision_interval(values["removals_right"], values["removals"])
            removal.append(
                {
                    "model": name,
                    "category": category,
                    "test positives": values["positives"],
                    "F1": values["f1"],
                    "removals": values["removals"],
                    "removal precision": values["remove_precision"],
                    "its 95% interval": f"{low:.3f}-{high:.3f}" if values["removals"] else "",
                    "removal recall": values["remove_recall"],
                }
            )
    reliable = [
        {"model": name, "rule": rule, "category": category} | values
        for name, rules in reliability.items()
        for rule, per_category in rules.items()
        for category, values in per_category.items()
    ]
    n = {split: len(rows) for split, rows in posts.rows.items()}
    combination_posts = next((r["combination"].get("posts") for r in results.values() if r["combination"]), 0)
    m = config["moderation"]
    return "\n".join(
        [
            f"Posts: {len(posts.table)}; trained on {n['train']} posts' natural labels (reports); hand-labelled"
            f" {n['validation']} validation and {n['test']} test posts; {n['held_out']} held-out posts judged by"
            f" the world's truth ({combination_posts} of them harmful only through their text-image pair)",
            "",
            "Test posts (hand labels), per category PR-AUC; the held-out posts harmful only through their text-image"
            " pair against the benign posts with an image, and against all benign posts (models reading the"
            " sentence encoder are not run on the held-out posts):",
            "",
            markdown_table(rows, list(rows[0]), floatfmt=".3f"),
            "",
            f"Removal (threshold: validation precision >= {m['remove_target']}"
            + (f" at confidence {m['remove_confidence']}" if m["remove_confidence"] is not None else "")
            + f" at it and above; the promise: precision >= {m['remove_precision']}) and F1, test posts:",
            "",
            markdown_table(removal, list(removal[0]), floatfmt=".3f"),
            "",
            *(
                [
                    f"Whether a removal threshold keeps the promise (precision >= {m['remove_precision']}):"
                    f" {m['reliability']['draws']} times, thresholds chosen"
                    f" on {draw_size(posts)} random held-out posts (standing in for the {n['validation']} validation"
                    f" posts), the removals' precision and recall on the other {n['held_out'] - draw_size(posts)}"
                    " (the truth judges):",
                    "",
                    markdown_table(reliable, list(reliable[0]), floatfmt=".3f"),
                    "",
                ]
                if reliable
                else []
            ),
            "What the frozen image vectors show (a linear probe's ROC-AUC on the training posts with an image):",
            "",
            markdown_table(
                [{"property": k, "probe ROC-AUC": v} for k, v in probes.items()],
                ["property", "probe ROC-AUC"],
                floatfmt=".3f",
            ),
            "",
            "Fit seconds: " + ", ".join(f"{name} {s:.0f}" for name, s in seconds.items()),
        ]
    )
