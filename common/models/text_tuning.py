"""Fine-tuning a pretrained sentence encoder on labelled texts: the encoder plus one linear head per task,
trained together on the sum of the tasks' binary cross entropies; the head is then dropped and the tuned
encoder embeds texts like any other (a multi-label classifier's text features).

    tuned = fine_tune_on_labels(texts, labels)      # all-MiniLM-L6-v2 (or `path`), (n, tasks) 0/1 labels
    vectors = tuned.encode(texts)

Costly on a CPU (a forward and a backward pass of six transformer layers per text), so it reads at most
`max_texts` texts; the frozen encoder reads them all the same way, so the two compare on equal data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.models.text import FineTunedSentenceEncoder, SentenceEncoder
from common.models.training import train_keeping_best_epoch


class _EncoderWithHeads(nn.Module):
    def __init__(self, model: nn.Module, dim: int, base_rates: np.ndarray):
        super().__init__()
        self.model = model
        self.heads = nn.Linear(dim, len(base_rates))
        with torch.no_grad():
            self.heads.bias.copy_(torch.logit(torch.as_tensor(base_rates, dtype=torch.float32).clamp(1e-4, 1 - 1e-4)))

    def forward(self, texts: list[str]) -> torch.Tensor:
        features = self.model.preprocess(texts)
        return self.heads(self.model(features)["sentence_embedding"])


def fine_tune_on_labels(
    texts: Sequence[str],
    labels: np.ndarray,
    *,
    epochs: int = 1,
    batch_size: int = 32,
    learning_rate: float = 3e-5,
    max_texts: int = 4_000,
    path: str | None = None,
    random_state: int = 0,
    verbose: bool = False,
) -> FineTunedSentenceEncoder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub: the weights are local
    texts = np.asarray(texts, dtype=object)
    labels = np.asarray(labels, dtype=np.float32)
    if labels.ndim != 2 or len(labels) != len(texts):
        raise ValueError(f"labels must be (n_texts, n_tasks), got {labels.shape} for {len(texts)} texts")
    encoder = FineTunedSentenceEncoder(path)
    SentenceEncoder.fit(encoder)  # loads the starting weights
    torch.manual_seed(random_state)
    rng = np.random.default_rng(random_state)
    drawn = np.sort(rng.permutation(len(texts))[:max_texts])
    texts, labels = texts[drawn], torch.from_numpy(labels[drawn])
    module = _EncoderWithHeads(encoder.model_, encoder.dim_, labels.numpy().mean(axis=0))

    def batch_loss(rows: torch.Tensor) -> torch.Tensor:
        logits = module(list(texts[rows.numpy()]))
        return F.binary_cross_entropy_with_logits(logits, labels[rows], reduction="none").mean(dim=0).sum()

    train_keeping_best_epoch(
        module,
        (torch.arange(len(texts)),),
        batch_loss,
        None,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=0.0,
        rng=rng,
        desc="fine-tune sentence encoder on labels",
        verbose=verbose,
    )
    encoder.model_.eval()
    return encoder
