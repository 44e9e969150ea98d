"""A small CNN image encoder trained here, contrastively, on the CPU (no pretrained image weights can be had
on these machines): image -> unit vector whose inner product with another's says how alike they look.

    encoder = ImageEncoder(dim=64).fit(images)                      # self-supervised: SimCLR
    encoder = ImageEncoder(dim=64).fit(images, pairs=(rows, rows2))  # from positive pairs (e.g. clicks)
    encoder = ImageEncoder(dim=64).fit_labelled(images, labels, classes)  # supervised: name what photos show
    vectors = encoder.encode(images)                                 # (n, 64) float32 unit rows -> faiss
    encoder.save(path); ImageEncoder.load(path)                      # weights in one safetensors file

Preprocessing, as the image-search chapter lists it: resize (to `input_size`, bilinear), scale to 0..1,
normalise each channel to mean 0 and variance 1 (the training images' statistics, kept with the model).
Architecture (the chapter's "image -> convolutional layers -> FC layers -> embedding vector"): five 3x3
convolutions with batch norm and ReLU, two of them strided (32 -> 16 -> 8 pixels), global average pooling, a
linear layer to the embedding; `pooling="avg+max"` pools the maxima too, which keep a small detail (a corner
sticker) that averaging over the whole frame dilutes. Small on purpose: at width 24 it trains at about 2,000
images a second on two cores.

Training (the chapter's positive samples, two of its three ways):
  * self-supervised (SimCLR, Chen et al. 2020): two random views of one image (common/images/augment.py) are
    the positive pair; the other images of the batch are the negatives. Free, but the positives are only as
    good as the augmentations are like real differences between photos.
  * from pairs, e.g. a query image and a result the user clicked: real positives, but noisy (a click is not a
    judgment) and only as many as there are clicks. Both images of a pair are lightly augmented too.
The loss is NT-Xent (common/models/contrastive.py), on a small projection head above the embedding, which
SimCLR found keeps more of the image in the embedding itself. Rows of a batch holding the same image are no
negatives of each other. With `init`, training starts from another fitted encoder's weights (fine-tuning).

Or supervised (`fit_labelled`), the way pretrained image encoders are made: a linear head per label on the
embedding (a photo set whose labels name what each photo shows, common/images/labelled.py), the sum of their
cross entropies; the heads are dropped after training, the embedding kept.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, safe_open, save_file
from sklearn.base import BaseEstimator
from torch import nn

from common.images.augment import Augmentation, augment
from common.models.contrastive import nt_xent
from common.models.training import train_keeping_best_epoch

ENCODE_BATCH_SIZE = 2048
# The click pairs are already two different photos: lighter views than SimCLR's, which must make them up.
PAIR_AUGMENTATION = Augmentation(rotation=0.3, scale=(0.9, 1.1), shift=0.05, noise=0.02)


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


POOLINGS = ("avg", "avg+max")


class _AvgMaxPool(nn.Module):
    """(B, C, H, W) -> (B, 2C): each channel's mean and maximum over the frame."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


class ConvEmbedder(nn.Module):
    """(B, 3, H, W) normalised pixels -> (B, dim) unit embeddings; `project` adds the training-only head."""

    def __init__(self, width: int, dim: int, pooling: str = "avg"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        pool = [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if pooling == "avg" else [_AvgMaxPool()]
        self.features = nn.Sequential(
            *_conv(3, width),
            *_conv(width, width, stride=2),
            *_conv(width, 2 * width),
            *_conv(2 * width, 2 * width, stride=2),
            *_conv(2 * width, 4 * width),
            *pool,
        )
        self.embedding = nn.Linear(4 * width * (1 if pooling == "avg" else 2), dim)
        self.projection = nn.Sequential(nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.raw(pixels), dim=1)

    def raw(self, pixels: torch.Tensor) -> torch.Tensor:
        """The embedding before its normalisation (what a classification head reads)."""
        return self.embedding(self.features(pixels))

    def project(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.projection(self.raw(pixels)), dim=1)


class ImageEncoder(BaseEstimator):
    """The CNN, scikit-learn style. fit(images, pairs=None, init=None): images (n, H, W, 3) uint8; pairs
    (rows_a, rows_b) of positive pairs, or None for SimCLR; init a fitted ImageEncoder to start from.
    fit_labelled(images, labels, classes): supervised, {label: (n,) class indices}, {label: number of classes}.
    cosine_decay: the learning rate falls to 0 along a half cosine over the epochs (common/models/training.py).
    Learned state: `module_`, `mean_`, `std_` (per channel), `train_loss_`, `validation_loss_`, `best_epoch_`.
    """

    def __init__(
        self,
        dim: int = 64,
        width: int = 24,
        input_size: int = 32,
        pooling: str = "avg",
        temperature: float = 0.1,
        epochs: int = 8,
        batch_size: int = 256,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-5,
        validation_share: float = 0.05,
        cosine_decay: bool = False,
        random_state: int = 0,
        verbose: bool = False,
    ):
        self.dim = dim
        self.width = width
        self.input_size = input_size
        self.pooling = pooling
        self.temperature = temperature
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_share = validation_share
        self.cosine_decay = cosine_decay
        self.random_state = random_state
        self.verbose = verbose

    def fit(
        self,
        images: np.ndarray,
        pairs: tuple[np.ndarray, np.ndarray] | None = None,
        init: ImageEncoder | None = None,
    ) -> ImageEncoder:
        _check_images(images)
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        generator = torch.Generator().manual_seed(self.random_state)
        pixels = self._scaled(images)  # (n, 3, s, s) float32 in [0, 1]
        if init is not None:
            init._check_fitted()
            mine, theirs = self._architecture(), init._architecture()
            if theirs != mine:
                raise ValueError(
                    f"init has dim, width, input_size, pooling {theirs}; this encoder {mine}: fine-tuning keeps"
                    " the architecture"
                )
            self.module_ = copy.deepcopy(init.module_)
            self.mean_, self.std_ = init.mean_, init.std_
        else:
            self._start(pixels)
        rows_a, rows_b, spec = _training_pairs(len(images), pairs)
        held_out = rng.random(len(rows_a)) < self.validation_share

        def batch_loss(batch: np.ndarray, views: torch.Generator) -> torch.Tensor:
            a, b = rows_a[batch], rows_b[batch]
            crossed = a[:, None] == b[None, :]
            same = torch.from_numpy((a[:, None] == a[None, :]) | (b[:, None] == b[None, :]) | crossed | crossed.T)
            view_a = self._normalised(augment(pixels[a], views, spec))
            view_b = self._normalised(augment(pixels[b], views, spec))
            return nt_xent(self.module_.project(view_a), self.module_.project(view_b), self.temperature, same)

        held_out_rows = rng.permutation(np.flatnonzero(held_out))

        def validation_loss() -> float:
            # The same batches and the same random views every epoch, so the epochs are compared fairly.
            views = torch.Generator().manual_seed(self.random_state + 1)
            batches = [held_out_rows[i : i + self.batch_size] for i in range(0, len(held_out_rows), self.batch_size)]
            with torch.inference_mode():
                return sum(batch_loss(rows, views).item() * len(rows) for rows in batches) / len(held_out_rows)

        self._train(
            self.module_,
            np.flatnonzero(~held_out),
            lambda rows: batch_loss(rows.numpy(), generator),
            validation_loss if len(held_out_rows) >= 2 else None,
            rng,
            "image encoder",
        )
        return self

    def fit_labelled(self, images: np.ndarray, labels: dict[str, np.ndarray], classes: dict[str, int]) -> ImageEncoder:
        """Supervised: one linear head per label on the (unnormalised) embedding, trained with the CNN on the
        sum of the heads' cross entropies; validation_share of the images picks the best epoch."""
        _check_images(images)
        if set(labels) != set(classes) or not labels:
            raise ValueError(f"labels {sorted(labels)} and classes {sorted(classes)} must name the same labels")
        targets = {}
        for name, values in labels.items():
            values = np.asarray(values, dtype=np.int64)
            if values.shape != (len(images),) or values.min() < 0 or values.max() >= classes[name]:
                raise ValueError(f"label {name!r} must be ({len(images)},) class indices in 0..{classes[name] - 1}")
            targets[name] = torch.from_numpy(values)
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        pixels = self._scaled(images)
        self._start(pixels)
        heads = nn.ModuleDict({name: nn.Linear(self.dim, k) for name, k in classes.items()})
        network = nn.ModuleDict({"cnn": self.module_, "heads": heads})
        held_out = rng.random(len(images)) < self.validation_share

        def batch_loss(rows: torch.Tensor) -> torch.Tensor:
            embedding = self.module_.raw(self._normalised(pixels[rows]))
            return sum(F.cross_entropy(head(embedding), targets[name][rows]) for name, head in heads.items())

        validation_rows = torch.from_numpy(np.flatnonzero(held_out))

        def validation_loss() -> float:
            with torch.inference_mode():
                batches = validation_rows.split(ENCODE_BATCH_SIZE)
                return sum(batch_loss(rows).item() * len(rows) for rows in batches) / len(validation_rows)

        self._train(
            network,
            np.flatnonzero(~held_out),
            batch_loss,
            validation_loss if len(validation_rows) else None,
            rng,
            "image encoder (labelled)",
        )
        return self

    def encode(self, images: np.ndarray) -> np.ndarray:
        """(n, H, W, 3) uint8 -> (n, dim) float32 unit rows."""
        self._check_fitted()
        _check_images(images)
        vectors = np.empty((len(images), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(images), ENCODE_BATCH_SIZE):
                chunk = self._normalised(self._scaled(images[start : start + ENCODE_BATCH_SIZE]))
                vectors[start : start + len(chunk)] = self.module_(chunk).numpy()
        return vectors

    def save(self, path: str | Path, provenance: dict | None = None) -> None:
        """The fitted encoder in one safetensors file (tensors only: loading it runs no code): the CNN's
        weights, the pixel statistics, its settings, and `provenance` (JSON: how it was made) for `load`."""
        self._check_fitted()
        tensors = {f"module.{k}": v.contiguous() for k, v in self.module_.state_dict().items()}
        tensors |= {"mean": self.mean_.contiguous(), "std": self.std_.contiguous()}
        metadata = {"params": json.dumps(self.get_params()), "provenance": json.dumps(provenance or {})}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> ImageEncoder:
        """An encoder `save` wrote; its provenance in `provenance_`."""
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
        if "params" not in metadata:
            raise ValueError(f"{path} is not an image encoder saved by ImageEncoder.save (no settings in it)")
        encoder = cls(**json.loads(metadata["params"]))
        tensors = load_file(str(path))
        encoder.module_ = ConvEmbedder(encoder.width, encoder.dim, encoder.pooling)
        weights = {name.removeprefix("module."): t for name, t in tensors.items() if name.startswith("module.")}
        encoder.module_.load_state_dict(weights)
        encoder.module_.eval()
        encoder.mean_, encoder.std_ = tensors["mean"], tensors["std"]
        encoder.provenance_ = json.loads(metadata.get("provenance", "{}"))
        return encoder

    def _scaled(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (n, H, W, 3) -> float32 (n, 3, s, s) in [0, 1], resized to the input size."""
        pixels = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
        if pixels.shape[-1] != self.input_size or pixels.shape[-2] != self.input_size:
            pixels = F.interpolate(pixels, size=(self.input_size, self.input_size), mode="bilinear", antialias=True)
        return pixels.contiguous()

    def _train(self, network: nn.Module, train_rows: np.ndarray, batch_loss, validation_loss, rng, desc: str) -> None:
        """The shared training loop with this encoder's settings, over `train_rows`; its log kept."""
        log = train_keeping_best_epoch(
            network,
            (torch.from_numpy(train_rows),),
            batch_loss,
            validation_loss,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            rng=rng,
            desc=desc,
            verbose=self.verbose,
            cosine_decay=self.cosine_decay,
        )
        self.train_loss_, self.validation_loss_, self.best_epoch_ = log.train_loss, log.eval_loss, log.best_epoch

    def _start(self, pixels: torch.Tensor) -> None:
        """A new CNN, and the per-channel statistics of these (n, 3, s, s) training pixels."""
        self.module_ = ConvEmbedder(self.width, self.dim, self.pooling)
        self.mean_ = pixels.mean(dim=(0, 2, 3)).view(1, 3, 1, 1)
        self.std_ = pixels.std(dim=(0, 2, 3)).view(1, 3, 1, 1).clamp_min(1e-3)

    def _architecture(self) -> tuple:
        return self.dim, self.width, self.input_size, getattr(self, "pooling", "avg")

    def _normalised(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.mean_) / self.std_

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise RuntimeError("ImageEncoder is not fitted; call fit first")


def _training_pairs(
    n_images: int, pairs: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray, Augmentation]:
    """(rows_a, rows_b, augmentation): SimCLR pairs each image with itself (two views of it), heavily
    augmented; given pairs are two different images, lightly augmented."""
    if pairs is None:
        rows = np.arange(n_images, dtype=np.int64)
        return rows, rows, Augmentation()
    rows_a, rows_b = (np.asarray(rows, dtype=np.int64) for rows in pairs)
    if len(rows_a) < 2 or len(rows_a) != len(rows_b):
        raise ValueError("pairs must be two row arrays of the same length, at least 2")
    if min(rows_a.min(), rows_b.min()) < 0 or max(rows_a.max(), rows_b.max()) >= n_images:
        raise ValueError(f"pair rows must index the {n_images} images")
    return rows_a, rows_b, PAIR_AUGMENTATION


def _check_images(images: np.ndarray) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        shape = getattr(images, "shape", None)
        raise ValueError(f"images must be a (n, H, W, 3) uint8 array, got {type(images).__name__} of shape {shape}")
    if len(images) == 0:
        raise ValueError("no images given")
