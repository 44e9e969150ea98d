"""The one training loop of every torch model here (DCN v2, DeepFM, the multi-task ranker, the
two-tower): Adam over shuffled mini-batches, keeping the weights of the best evaluation epoch.

Run by several processes in one torch.distributed process group (common/models/distributed.py starts them
with Ray Train), the loop is data parallel: every process holds the same weights, takes its share of each
mini-batch, and the gradients are averaged across processes before each step, so all take the same step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR
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
    cosine_decay: bool = False,
) -> TrainingLog:
    """Adam over shuffled mini-batches of `data` (tensors sharing their first dimension; `batch_loss`
    takes one batch of each). With `eval_loss`, the weights of the epoch with the lowest eval loss are
    kept; with `patience` too, training stops once that many epochs in a row have not lowered it (the rest
    would only be thrown away). With `cosine_decay`, the learning rate falls from learning_rate to 0 along a
    half cosine, a step per batch over all the epochs: the last epochs settle instead of jittering around the
    minimum at the full rate. Leaves `module` in eval mode.

    Embedding tables built with `sparse=True` get sparse gradients and their own SparseAdam (without
    weight decay, which it lacks): a step then touches only the rows the batch used, where a dense Adam
    rewrites the whole table (a 2**18-row hashed vocabulary: most of the step's time)."""
    optimizers = _optimizers(module, learning_rate, weight_decay)
    group = _process_group(module)
    train_losses: list[float] = []
    eval_losses: list[float] = []
    best_epoch, best_state = epochs, None
    n_rows = len(data[0])
    n_batches = math.ceil(n_rows / batch_size)
    schedulers = [CosineAnnealingLR(o, T_max=epochs * n_batches) for o in optimizers] if cosine_decay else []
    for epoch in range(1, epochs + 1):
        module.train()
        order = torch.from_numpy(rng.permutation(n_rows))
        if group is not None:
            dist.broadcast(order, src=0)  # one order for all: the processes split each batch, never overlap
        progress = tqdm(range(n_batches), desc=f"{desc} epoch {epoch}/{epochs}", disable=not verbose)
        total = 0.0
        for b in progress:
            batch = order[b * batch_size : (b + 1) * batch_size]
            if group is not None:
                rank, world = group
                if len(batch) < world:
                    continue  # a last batch too small to share: every process skips it alike
                batch = batch[rank::world]
            loss = batch_loss(*(tensor[batch] for tensor in data))
            for optimizer in optimizers:
                optimizer.zero_grad()
            loss.backward()
            if group is not None:
                _average_gradients(module, group[1])
            for optimizer in optimizers:
                optimizer.step()
            for scheduler in schedulers:
                scheduler.step()
            total += loss.item()
            progress.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        train_losses.append(_mean_across(total, group) / n_batches)
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


def _process_group(module: nn.Module) -> tuple[int, int] | None:
    """(rank, world size) when this process trains in a group of several, after giving every process rank 0's
    weights (as DistributedDataParallel does at its start); None when it trains alone."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    if any(isinstance(m, nn.Embedding | nn.EmbeddingBag) and m.sparse for m in module.modules()):
        raise NotImplementedError("data-parallel training averages dense gradients: sparse embedding tables cannot")
    for tensor in module.state_dict().values():
        dist.broadcast(tensor, src=0)
    return dist.get_rank(), dist.get_world_size()


def _average_gradients(module: nn.Module, world: int) -> None:
    """Every process's gradients replaced by their mean over the processes, in one all-reduce of them all
    flattened together (a bucket, as DistributedDataParallel makes): the models here call their towers'
    methods rather than forward(), which DistributedDataParallel needs to see to synchronise."""
    trained = [p for p in module.parameters() if p.requires_grad]
    for p in trained:
        if p.grad is None:  # unused by this process's share of the batch: its part of the sum is zero
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in trained]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def _mean_across(value: float, group: tuple[int, int] | None) -> float:
    if group is None:
        return value
    total = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(total)
    return float(total) / group[1]


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
