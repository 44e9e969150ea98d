"""The one training loop of every torch model here (DCN v2, DeepFM, the multi-task ranker, the
two-tower): Adam over shuffled mini-batches, keeping the weights of the best evaluation epoch."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm


@dataclass(frozen=True)
class TrainingLog:
    train_loss: list[float]  # mean batch loss per epoch
    eval_loss: list[float]  # per epoch; empty without an eval loss
    best_epoch: int  # 1-based: the lowest eval loss, or the last epoch without one


def train_keeping_best_epoch(
    module: nn.Module,
    data: Sequence[torch.Tensor],
    batch_loss: Callable[..., torch.Tensor],
    eval_loss: Callable[[], float] | None,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    weight_decay: float,
    rng: np.random.Generator,
    desc: str,
    verbose: bool = False,
    patience: int | None = None,
) -> TrainingLog:
    """Adam over shuffled mini-batches of `data` (tensors sharing their first dimension; `batch_loss`
    takes one batch of each). With `eval_loss`, the weights of the epoch with the lowest eval loss are
    kept; with `patience` too, training stops once that many epochs in a row have not lowered it (the rest
    would only be thrown away). Leaves `module` in eval mode.

    Embedding tables built with `sparse=True` get sparse gradients and their own SparseAdam (without
    weight decay, which it lacks): a step then touches only the rows the batch used, where a dense Adam
    rewrites the whole table (a 2**18-row hashed vocabulary: most of the step's time)."""
    optimizers = _optimizers(module, learning_rate, weight_decay)
    train_losses: list[float] = []
    eval_losses: list[float] = []
    best_epoch, best_state = epochs, None
    n_rows = len(data[0])
    n_batches = math.ceil(n_rows / batch_size)
    for epoch in range(1, epochs + 1):
        module.train()
        order = torch.from_numpy(rng.permutation(n_rows))
        progress = tqdm(range(n_batches), desc=f"{desc} epoch {epoch}/{epochs}", disable=not verbose)
        total = 0.0
        for b in progress:
            batch = order[b * batch_size : (b + 1) * batch_size]
            loss = batch_loss(*(tensor[batch] for tensor in data))
            for optimizer in optimizers:
                optimizer.zero_grad()
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
            total += loss.item()
            progress.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        train_losses.append(total / n_batches)
        if eval_loss is not None:
            eval_losses.append(eval_loss())
            progress.set_postfix(eval_loss=f"{eval_losses[-1]:.4f}")
            if eval_losses[-1] == min(eval_losses):
                best_epoch = epoch
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        progress.close()
        if patience is not None and eval_losses and epoch - best_epoch >= patience:
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return TrainingLog(train_losses, eval_losses, best_epoch)


def _optimizers(module: nn.Module, learning_rate: float, weight_decay: float) -> list[torch.optim.Optimizer]:
    """Adam for the dense parameters; SparseAdam for the tables of sparse embeddings, if any."""
    sparse = {
        id(p)
        for m in module.modules()
        if isinstance(m, nn.Embedding | nn.EmbeddingBag) and m.sparse
        for p in m.parameters(recurse=False)
    }
    dense = [p for p in module.parameters() if id(p) not in sparse]
    tables = [p for p in module.parameters() if id(p) in sparse]
    optimizers = [torch.optim.Adam(dense, lr=learning_rate, weight_decay=weight_decay)] if dense else []
    if tables:
        optimizers.append(torch.optim.SparseAdam(tables, lr=learning_rate))
    return optimizers
