"""Multimodal multi-label classifiers over posts (the harmful-content chapter's sections 3 and 6): a post's
text, its image and its tabular features (author, interactions) -> one probability per task (category).

    inputs = PostInputs(texts=texts, image_vectors=images, has_image=has, numeric=numeric)
    model = MultimodalClassifier(tasks=("violence", "nudity", "hate", "spam")).fit(inputs, labels)
    model.predict_proba(inputs)                     # (n, 4)
    LateFusion(tasks).fit(inputs, labels)           # a text model and an image model, predictions combined
    PerTaskClassifiers(tasks).fit(inputs, labels)   # one independent network per task

Early fusion (the chapter's choice): the modalities' representations are concatenated first and one shared
network reads them together, so it can learn that a benign text with a benign image is harmful together.
Late fusion runs a network per modality and combines their probabilities (noisy-OR: harmful when either
says so), which cannot see such a combination. Each modality's network also reads the tabular features, so
the comparison isolates the fusion.

Text, any of three parts side by side (the inputs given choose them): the hashed bag of words, character
trigrams and word pairs of common/search/semantic.py, mean pooled from an embedding table trained with the rest
of the network (`texts`: the encoder "trained here", no vocabulary to fit, any language); precomputed vectors, a
pretrained encoder's, through a linear layer (`text_vectors`); a convolution over the sequence of the words'
pretrained vectors (`word_sequences`, common/models/word_convolution.py), which reads phrases ("kill time" is
not "kill"). The bag learns the words that matter here; the pretrained vectors bring what words mean (that
"tourists" and "students" are both groups of people), which a few labels cannot teach.
Image: precomputed vectors (a CNN trained elsewhere, frozen), and a flag for posts without one.
Loss: the sum over tasks of each task's binary cross entropy (the chapter's L = L1 + L2 + ...), or of each
task's focal loss (Lin et al. 2017), which down-weights the easy negatives that dominate rare categories.

Exposure (fit's `exposure`, optional): natural labels say what was reported, and a post seen by more people, or
for longer, is reported more, harmful or not. Given each training post's exposure (its reach, how long it was
observed), a small network of the exposure alone adds to every logit in training and explains that part of the
labels away; the rest of the network learns from the post itself. Predictions read the mean exposure, one
constant for every post: the scores rank posts by what they show, not by who would have seen them (the way a
position feature debiases clicks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit
from sklearn.base import BaseEstimator
from torch import nn

from common.models.training import train_keeping_best_epoch
from common.models.word_convolution import WordConvolution, WordSequences
from common.search.semantic import TextHasher

MODALITIES = ("text", "image")
PREDICT_BATCH_SIZE = 4096


@dataclass(frozen=True)
class PostInputs:
    """A batch of posts, one row each. Give the text as any of `texts` (hashed bags, trained here),
    `text_vectors` or `word_sequences`."""

    numeric: np.ndarray  # (n, f) float: author and interaction features
    image_vectors: np.ndarray  # (n, d) float32, zeros where a post has no image
    has_image: np.ndarray  # (n,) bool
    texts: np.ndarray | None = None  # (n,) str
    text_vectors: np.ndarray | None = None  # (n, t) float32
    word_sequences: WordSequences | None = None  # (n, L) rows of a word-vector table

    def __len__(self) -> int:
        return len(self.numeric)

    def take(self, rows: np.ndarray) -> PostInputs:
        return PostInputs(
            self.numeric[rows],
            self.image_vectors[rows],
            self.has_image[rows],
            None if self.texts is None else self.texts[rows],
            None if self.text_vectors is None else self.text_vectors[rows],
            None if self.word_sequences is None else self.word_sequences.take(rows),
        )


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float, alpha: float) -> torch.Tensor:
    """Mean over rows of the focal loss, per task: (batch, tasks) -> (tasks,). gamma = 0 and alpha = 0.5
    is half the binary cross entropy."""
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    p = torch.sigmoid(logits)
    p_true = labels * p + (1 - labels) * (1 - p)
    weight = labels * alpha + (1 - labels) * (1 - alpha)
    return (weight * (1 - p_true) ** gamma * bce).mean(dim=0)


class _FusionNet(nn.Module):
    """[text representation; image vector, has-image; standardised numerics] -> shared MLP -> one logit per
    task. `modalities` leaves a modality out entirely (late fusion's unimodal networks)."""

    def __init__(
        self,
        n_tasks: int,
        n_numeric: int,
        image_dim: int,
        bag: bool,
        text_dim: int | None,
        phrases: dict | None,
        n_buckets: int,
        width: int,
        hidden: int,
        modalities: tuple[str, ...],
        base_rates: np.ndarray,
        n_exposure: int = 0,
    ):
        super().__init__()
        self.modalities = modalities
        if n_exposure:  # additive: it shifts a post's logits by how exposed it was, whatever it shows
            self.exposure = nn.Sequential(nn.Linear(n_exposure, 8), nn.ReLU(), nn.Linear(8, n_tasks))
        inputs = n_numeric
        if "text" in modalities:
            if bag:
                self.bag = nn.EmbeddingBag(n_buckets, width, mode="mean", sparse=True)
                inputs += width
            if text_dim is not None:
                self.text = nn.Linear(text_dim, width)
                inputs += width
            if phrases is not None:
                self.phrases = WordConvolution(**phrases)
                inputs += self.phrases.out_dim
        if "image" in modalities:
            self.image = nn.Linear(image_dim, width)
            inputs += width + 1
        self.shared = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.heads = nn.Linear(hidden, n_tasks)
        # Starts at the base rates: the first predictions are the prior, not 0.5.
        with torch.no_grad():
            self.heads.bias.copy_(torch.logit(torch.as_tensor(base_rates, dtype=torch.float32).clamp(1e-4, 1 - 1e-4)))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [batch["numeric"]]
        if hasattr(self, "bag"):
            parts.append(F.relu(self.bag(batch["ids"], batch["offsets"])))
        if hasattr(self, "text"):
            parts.append(F.relu(self.text(batch["text_vectors"])))
        if hasattr(self, "phrases"):
            parts.append(self.phrases(batch["word_ids"], batch["word_table"]))
        if "image" in self.modalities:
            has = batch["has_image"][:, None]
            parts += [F.relu(self.image(batch["image_vectors"])) * has, has]
        logits = self.heads(self.shared(torch.cat(parts, dim=1)))
        if hasattr(self, "exposure"):
            logits = logits + self.exposure(batch["exposure"])
        return logits


class MultimodalClassifier(BaseEstimator):
    """One network, one sigmoid head per task (multi-task), early fusion of the given modalities.
    fit(inputs, labels (n, n_tasks) of 0/1, eval_set=(inputs, labels), exposure=(n, e) or None) keeps the
    epoch with the lowest eval loss (and stops `patience` epochs after it, if given); the eval set and
    predictions read the mean exposure. predict_proba(inputs) -> (n, n_tasks)."""

    def __init__(
        self,
        tasks: tuple[str, ...] = ("harmful",),
        modalities: tuple[str, ...] = MODALITIES,
        loss: str = "bce",
        gamma: float = 2.0,
        alpha: float = 0.5,
        n_buckets: int = 2**18,
        width: int = 64,
        hidden: int = 128,
        phrase_dim: int = 32,
        phrase_filters: int = 32,
        phrase_kernels: tuple[int, ...] = (2,),
        epochs: int = 6,
        batch_size: int = 512,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-5,
        patience: int | None = None,
        random_state: int = 0,
        verbose: bool = False,
    ):
        self.tasks = tasks
        self.modalities = modalities
        self.loss = loss
        self.gamma = gamma
        self.alpha = alpha
        self.n_buckets = n_buckets
        self.width = width
        self.hidden = hidden
        self.phrase_dim = phrase_dim
        self.phrase_filters = phrase_filters
        self.phrase_kernels = phrase_kernels
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.random_state = random_state
        self.verbose = verbose

    def fit(
        self,
        inputs: PostInputs,
        labels: np.ndarray,
        eval_set: tuple[PostInputs, np.ndarray] | None = None,
        exposure: np.ndarray | None = None,
    ):
        labels = _check_labels(labels, len(inputs), len(self.tasks))
        exposure = standardised_exposure(exposure, len(inputs))
        unknown = set(self.modalities) - set(MODALITIES)
        if unknown or not self.modalities:
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {self.modalities}")
        if "text" in self.modalities and not self._text_parts(inputs):
            raise ValueError("the text modality needs texts, text_vectors or word_sequences")
        if self.loss not in ("bce", "focal"):
            raise ValueError(f"loss must be bce or focal, got {self.loss!r}")
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        self.numeric_mean_ = inputs.numeric.mean(axis=0)
        self.numeric_std_ = inputs.numeric.std(axis=0) + 1e-6
        self.n_exposure_ = 0 if exposure is None else exposure.shape[1]
        self.text_parts_ = self._text_parts(inputs)
        text_dim = inputs.text_vectors.shape[1] if "vectors" in self.text_parts_ else None
        phrases = None
        if "phrases" in self.text_parts_:
            word_dim = inputs.word_sequences.table.shape[1]
            phrases = {"word_dim": word_dim, "dim": self.phrase_dim, "filters": self.phrase_filters}
            phrases["kernel_sizes"] = tuple(self.phrase_kernels)
        self.module_ = _FusionNet(
            len(self.tasks),
            inputs.numeric.shape[1],
            inputs.image_vectors.shape[1],
            "bag" in self.text_parts_,
            text_dim,
            phrases,
            self.n_buckets,
            self.width,
            self.hidden,
            tuple(self.modalities),
            labels.mean(axis=0),
            self.n_exposure_,
        )
        target = torch.from_numpy(labels)

        def batch_loss(rows: torch.Tensor) -> torch.Tensor:
            indices = rows.numpy()
            batch = self._tensors(inputs.take(indices), None if exposure is None else exposure[indices])
            return self._loss(self.module_(batch), target[rows])

        eval_loss = None
        if eval_set is not None:
            eval_inputs, eval_labels = eval_set
            eval_target = torch.from_numpy(_check_labels(eval_labels, len(eval_inputs), len(self.tasks)))

            def eval_loss() -> float:
                with torch.inference_mode():
                    return float(self._loss(self._logits(eval_inputs), eval_target))

        self._fit_hasher = TextHasher(self.n_buckets)
        try:
            log = self._train(inputs, batch_loss, eval_loss, rng)
        finally:
            del self._fit_hasher
        self.train_loss_, self.eval_loss_, self.best_epoch_ = log.train_loss, log.eval_loss, log.best_epoch
        return self

    @staticmethod
    def _text_parts(inputs: PostInputs) -> tuple[str, ...]:
        """The text parts the inputs hold, side by side: a hashed bag trained here, precomputed vectors, the
        words' sequence."""
        given = (("bag", inputs.texts), ("vectors", inputs.text_vectors), ("phrases", inputs.word_sequences))
        return tuple(part for part, value in given if value is not None)

    def _train(self, inputs: PostInputs, batch_loss, eval_loss, rng: np.random.Generator):
        return train_keeping_best_epoch(
            self.module_,
            (torch.arange(len(inputs)),),
            batch_loss,
            eval_loss,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            rng=rng,
            desc="multimodal classifier",
            verbose=self.verbose,
            patience=self.patience,
        )

    def predict_proba(self, inputs: PostInputs) -> np.ndarray:
        if not hasattr(self, "module_"):
            raise RuntimeError("MultimodalClassifier is not fitted; call fit first")
        with torch.inference_mode():
            return expit(self._logits(inputs).numpy().astype(np.float64))

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.loss == "focal":
            return focal_loss(logits, labels, self.gamma, self.alpha).sum()
        return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(dim=0).sum()

    def _logits(self, inputs: PostInputs) -> torch.Tensor:
        chunks = [
            self.module_(self._tensors(inputs.take(np.arange(start, min(start + PREDICT_BATCH_SIZE, len(inputs))))))
            for start in range(0, len(inputs), PREDICT_BATCH_SIZE)
        ]
        return torch.cat(chunks) if chunks else torch.empty((0, len(self.tasks)))

    def _tensors(self, inputs: PostInputs, exposure: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """The network's batch; `exposure` standardised (training), else the mean exposure (zeros)."""
        numeric = (np.asarray(inputs.numeric, dtype=np.float64) - self.numeric_mean_) / self.numeric_std_
        if exposure is None:
            exposure = np.zeros((len(inputs), getattr(self, "n_exposure_", 0)))
        batch = {
            "numeric": torch.from_numpy(numeric.astype(np.float32)),
            "image_vectors": torch.from_numpy(np.asarray(inputs.image_vectors, dtype=np.float32)),
            "has_image": torch.from_numpy(np.asarray(inputs.has_image, dtype=np.float32)),
            "exposure": torch.from_numpy(np.asarray(exposure, dtype=np.float32)),
        }
        if "text" in self.modalities:
            if "vectors" in self.text_parts_:
                if inputs.text_vectors is None:
                    raise ValueError("this model reads text_vectors; the inputs have none")
                batch["text_vectors"] = torch.from_numpy(np.asarray(inputs.text_vectors, dtype=np.float32))
            if "phrases" in self.text_parts_:
                if inputs.word_sequences is None:
                    raise ValueError("this model reads word_sequences; the inputs have none")
                sequences = inputs.word_sequences.compact()  # only the batch's words are projected
                batch["word_ids"] = torch.from_numpy(sequences.ids)
                batch["word_table"] = torch.from_numpy(np.asarray(sequences.table, dtype=np.float32))
            if "bag" in self.text_parts_:
                if inputs.texts is None:
                    raise ValueError("this model reads texts; the inputs have none")
                # One hasher per fit (its word cache makes the epochs' repeated words cheap), a new one per
                # prediction call (a cache kept across serving calls would grow with every word ever posted).
                hasher = getattr(self, "_fit_hasher", None) or TextHasher(self.n_buckets)
                ids, indptr = hasher.bags(list(inputs.texts))
                batch["ids"], batch["offsets"] = torch.from_numpy(ids), torch.from_numpy(indptr[:-1])
        return batch


class LateFusion:
    """A text network and an image network (each with the tabular features), trained apart; a post's
    probability per task is the noisy-OR of the two: 1 - (1 - p_text)(1 - p_image); the image network says
    nothing (0) for a post without an image."""

    def __init__(self, **network):
        self.network = network

    def fit(self, inputs: PostInputs, labels: np.ndarray, eval_set=None, exposure=None) -> LateFusion:
        text, image = ({**self.network, "modalities": (m,)} for m in MODALITIES)
        self.text_ = MultimodalClassifier(**text).fit(inputs, labels, eval_set, exposure)
        self.image_ = MultimodalClassifier(**image).fit(inputs, labels, eval_set, exposure)
        return self

    def predict_proba(self, inputs: PostInputs) -> np.ndarray:
        p_text = self.text_.predict_proba(inputs)
        p_image = self.image_.predict_proba(inputs) * np.asarray(inputs.has_image, dtype=np.float64)[:, None]
        return 1 - (1 - p_text) * (1 - p_image)


class PerTaskClassifiers:
    """One independent early-fusion network per task (the chapter's "one binary classifier per category":
    nothing shared, each trained and kept on its own)."""

    def __init__(self, **network):
        self.network = network

    def fit(self, inputs: PostInputs, labels: np.ndarray, eval_set=None, exposure=None) -> PerTaskClassifiers:
        tasks = self.network["tasks"]
        labels = _check_labels(labels, len(inputs), len(tasks))
        self.models_ = []
        for j, task in enumerate(tasks):
            one = None if eval_set is None else (eval_set[0], np.asarray(eval_set[1])[:, [j]])
            network = {**self.network, "tasks": (task,)}
            self.models_.append(MultimodalClassifier(**network).fit(inputs, labels[:, [j]], one, exposure))
        return self

    def predict_proba(self, inputs: PostInputs) -> np.ndarray:
        return np.hstack([model.predict_proba(inputs) for model in self.models_])


def standardised_exposure(exposure: np.ndarray | None, n_rows: int) -> np.ndarray | None:
    """The training rows' exposure (n_rows, e), checked and standardised: the mean exposure, which every
    prediction reads, is 0."""
    if exposure is None:
        return None
    exposure = np.asarray(exposure, dtype=np.float64)
    if exposure.ndim != 2 or len(exposure) != n_rows or not np.isfinite(exposure).all():
        raise ValueError(f"exposure must be finite (n_rows, e) with n_rows = {n_rows}, got shape {exposure.shape}")
    return (exposure - exposure.mean(axis=0)) / (exposure.std(axis=0) + 1e-6)


def _check_labels(labels: np.ndarray, n_rows: int, n_tasks: int) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.float32)
    if labels.shape != (n_rows, n_tasks):
        raise ValueError(f"labels must be (n_rows, n_tasks) = ({n_rows}, {n_tasks}), got {labels.shape}")
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    return labels
