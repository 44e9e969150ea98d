"""A convolution over a text's sequence of pretrained word vectors (Kim 2014, "Convolutional Neural Networks for
Sentence Classification"): each filter reads a window of adjacent words, and its strongest response anywhere in
the text is kept (max over positions). A bag of words, pooled or hashed, sees "nude" in "nude lipstick" as it
sees it alone; a window of two words sees the phrase, and, reading pretrained vectors, generalises to phrases
whose words are alike ("photo shoot", "disparar fotos") where hashed word pairs must see each pair many times.

    sequences = WordSequences(ids, table)      # ids (n, L): rows of table (V, d), 0 where the text has no word
    layer = WordConvolution(word_dim=384, dim=32, filters=32, kernel_sizes=(2,))
    layer(ids, table)                          # (n, filters x len(kernel_sizes))

The vectors stay frozen; a linear map projects them to `dim` first. It is applied to the table's rows, not to
every position of every text, and only to the rows a batch uses (`WordSequences.compact`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PADDING = 0  # the id of "no word": row 0 of every table is zeros


@dataclass(frozen=True)
class WordSequences:
    """Texts as rows of a word-vector table: ids (n, L) int, left-aligned, PADDING after the last word."""

    ids: np.ndarray  # (n, L) int64
    table: np.ndarray  # (V, d) float32, row PADDING zeros

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: np.ndarray) -> WordSequences:
        return WordSequences(self.ids[rows], self.table)

    def compact(self) -> WordSequences:
        """The same texts over a table of only the words they use (PADDING stays row 0)."""
        used, local = np.unique(np.concatenate([[PADDING], self.ids.ravel()]), return_inverse=True)
        return WordSequences(local[1:].reshape(self.ids.shape), self.table[used])


class WordConvolution(nn.Module):
    """(ids (n, L), table (V, word_dim)) -> (n, filters x len(kernel_sizes)): per kernel size k, ReLU of a
    convolution over every window of k adjacent words, max over the windows. A text shorter than k words (or
    with none) gives zeros."""

    def __init__(self, word_dim: int, dim: int = 32, filters: int = 32, kernel_sizes: tuple[int, ...] = (2,)):
        super().__init__()
        if not kernel_sizes or min(kernel_sizes) < 1:
            raise ValueError(f"kernel_sizes must be positive window lengths, got {kernel_sizes}")
        self.kernel_sizes = tuple(kernel_sizes)
        self.project = nn.Linear(word_dim, dim)
        self.convolutions = nn.ModuleList(nn.Conv1d(dim, filters, k) for k in self.kernel_sizes)
        self.out_dim = filters * len(self.kernel_sizes)

    def forward(self, ids: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        words = ids != PADDING
        length = int(words.sum(dim=1).max()) if len(ids) else 0
        # The batch's longest text, and at least one window: no window of padding only, and none missing.
        width = max(length, max(self.kernel_sizes))
        ids = F.pad(ids, (0, max(width - ids.shape[1], 0)), value=PADDING)[:, :width]
        words = ids != PADDING
        x = F.embedding(ids, self.project(table)).transpose(1, 2)  # (n, dim, width)
        parts = []
        for k, convolution in zip(self.kernel_sizes, self.convolutions, strict=True):
            # A window is real when its last word is (the words are left-aligned); ReLU makes 0 the floor, so
            # zeroing the other windows keeps them out of the max.
            response = F.relu(convolution(x)) * words[:, None, k - 1 :]
            parts.append(response.max(dim=2).values)
        return torch.cat(parts, dim=1)
