"""The visual search's two towers (the multimodal video-search chapter): query text and a video's sampled
frames -> unit vectors whose inner product scores relevance, learned contrastively from annotated
(query text, video) pairs.

    encoder = VideoTextEncoder().fit(texts, frames, (text_rows, video_rows))
    videos = encoder.encode_videos(frames)              # (n_videos, 64) unit rows: a faiss inner-product index
    query = encoder.encode_texts(["dog on a beach"])   # (1, 64)

Text tower: the hashed bag of words, word pairs and character trigrams of common/search/semantic.py (no
vocabulary to fit or to miss), mean-pooled from a sparse table, then a linear head. Video tower, frame level
as the chapter chooses (cheaper than a video-level model such as ViViT): each frame's pre-extracted vector
through a small MLP, the mean over frames, a linear head. Mean pooling is order-free, so it reads a concept
shown in any frame and lets a blank frame only dilute, never dominate.

Training is CLIP's symmetric InfoNCE: in a batch of pairs, each text must pick its video among the batch's
videos and each video its text among the batch's texts. Two rows of a batch with the same video or the
same text are no negatives of each other (a query "dog" written for two videos has two right answers).
A `validation_share` of the distinct texts is held out with all their pairs and the best epoch on them kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from torch import nn

from common.models.contrastive import symmetric_info_nce
from common.models.training import train_keeping_best_epoch
from common.search.semantic import ENCODE_BATCH_SIZE, TextHasher, distinct_texts, hashed_bags

VIDEO_BATCH_SIZE = 8192  # videos per forward pass when encoding: (8192, F, d) float32 is a few MB


class _VideoTextNet(nn.Module):
    def __init__(self, n_buckets: int, frame_dim: int, hidden: int, dim: int):
        super().__init__()
        # Sparse gradients: a batch touches a few thousand rows of the table (SparseAdam steps only those).
        self.embedding = nn.EmbeddingBag(n_buckets, dim, mode="mean", sparse=True)
        self.text_head = nn.Linear(dim, dim)
        self.frame_mlp = nn.Sequential(nn.Linear(frame_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.video_head = nn.Linear(hidden, dim)

    def texts(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """ids: (n_ids,) int64, offsets: (n,) start of each text's ids -> (n, dim) unit rows."""
        return F.normalize(self.text_head(self.embedding(ids, offsets)), dim=1)

    def videos(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: (n, F, frame_dim) float32 -> (n, dim) unit rows."""
        pooled = self.frame_mlp(frames).mean(dim=1)  # (n, hidden)
        return F.normalize(self.video_head(pooled), dim=1)


class VideoTextEncoder(BaseEstimator):
    """Text tower and frame-level video tower trained contrastively, scikit-learn style.

    fit(texts, frames, pairs):
      texts   query texts (repeats are fine)
      frames  (n_videos, n_frames, frame_dim) pre-extracted frame features, float16 or float32
      pairs   (text rows, video rows): one annotated (query text, video) pair per element
    Learned state: `module_`, `train_loss_`, `validation_loss_` (per epoch), `best_epoch_`. Pickles with the
    standard library pickle.
    """

    def __init__(
        self,
        n_buckets: int = 2**16,
        dim: int = 64,
        hidden: int = 128,
        temperature: float = 0.05,
        epochs: int = 10,
        batch_size: int = 512,
        learning_rate: float = 3e-3,
        weight_decay: float = 0.0,
        validation_share: float = 0.1,
        random_state: int = 0,
        verbose: bool = False,
    ):
        self.n_buckets = n_buckets
        self.dim = dim
        self.hidden = hidden
        self.temperature = temperature
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_share = validation_share
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, texts: Sequence[str], frames: np.ndarray, pairs: tuple[np.ndarray, np.ndarray]) -> VideoTextEncoder:
        text_rows, video_rows = (np.asarray(rows, dtype=np.int64) for rows in pairs)
        if len(text_rows) == 0 or len(text_rows) != len(video_rows):
            raise ValueError("pairs must be two index arrays of the same, non-zero length")
        if np.ndim(frames) != 3:
            raise ValueError(f"frames must be (n_videos, n_frames, frame_dim), got shape {np.shape(frames)}")
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)

        text_codes, unique_texts = distinct_texts(texts)
        pair_texts = text_codes[text_rows]  # (n_pairs,) distinct-text id of each pair
        held_out = (rng.random(len(unique_texts)) < self.validation_share)[pair_texts]
        if held_out.all():
            raise ValueError("every text was held out for validation; lower validation_share")
        bags = hashed_bags(unique_texts, self.n_buckets)
        self.module_ = _VideoTextNet(self.n_buckets, frames.shape[2], self.hidden, self.dim)

        def pair_loss(rows: np.ndarray) -> torch.Tensor:
            text_ids, video_ids = torch.from_numpy(pair_texts[rows]), torch.from_numpy(video_rows[rows])
            t = self.module_.texts(*bags.take(pair_texts[rows]))  # (B, d)
            v = self.module_.videos(torch.from_numpy(frames[video_rows[rows]].astype(np.float32)))  # (B, d)
            same = (text_ids[:, None] == text_ids[None, :]) | (video_ids[:, None] == video_ids[None, :])  # (B, B)
            same.fill_diagonal_(False)
            return symmetric_info_nce(t, v, same, self.temperature)

        held_out_rows = rng.permutation(np.flatnonzero(held_out))

        def validation_loss() -> float:
            # Fixed batches (shuffled once), so the epochs are compared on the same negatives.
            batches = [held_out_rows[i : i + self.batch_size] for i in range(0, len(held_out_rows), self.batch_size)]
            with torch.inference_mode():
                return sum(pair_loss(rows).item() * len(rows) for rows in batches) / len(held_out_rows)

        log = train_keeping_best_epoch(
            self.module_,
            (torch.from_numpy(np.flatnonzero(~held_out)),),
            lambda rows: pair_loss(rows.numpy()),
            validation_loss if len(held_out_rows) else None,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            rng=rng,
            desc="video-text two-tower",
            verbose=self.verbose,
        )
        self.train_loss_, self.validation_loss_, self.best_epoch_ = log.train_loss, log.eval_loss, log.best_epoch
        return self

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 unit rows; each distinct text is encoded once."""
        self._check_fitted()
        codes, distinct = distinct_texts(texts)
        hasher = TextHasher(self.n_buckets)
        vectors = np.empty((len(distinct), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(distinct), ENCODE_BATCH_SIZE):
                ids, indptr = hasher.bags(distinct[start : start + ENCODE_BATCH_SIZE])
                chunk = self.module_.texts(torch.from_numpy(ids), torch.from_numpy(indptr[:-1]))  # (chunk, dim)
                vectors[start : start + len(chunk)] = chunk.numpy()
        return vectors[codes]

    def encode_videos(self, frames: np.ndarray) -> np.ndarray:
        """frames: (n, n_frames, frame_dim) -> (n, dim) float32 unit rows."""
        self._check_fitted()
        vectors = np.empty((len(frames), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(frames), VIDEO_BATCH_SIZE):
                chunk = torch.from_numpy(np.asarray(frames[start : start + VIDEO_BATCH_SIZE], dtype=np.float32))
                vectors[start : start + len(chunk)] = self.module_.videos(chunk).numpy()
        return vectors

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise RuntimeError("VideoTextEncoder is not fitted; call fit first")
