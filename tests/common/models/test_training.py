"""common.models.training: the best evaluation epoch's weights are kept, and with a patience the loop stops once
the evaluation loss has stopped falling; cosine decay steps the learning rate down."""

import numpy as np
import torch
from torch import nn

from common.models.training import train_keeping_best_epoch


def run(eval_losses: list[float], patience: int | None):
    module = nn.Linear(1, 1)
    seen = []

    def eval_loss() -> float:
        seen.append(module.weight.item())  # the weight each epoch ended with
        return eval_losses[len(seen) - 1]

    log = train_keeping_best_epoch(
        module,
        (torch.ones(8, 1),),
        lambda x: module(x).sum(),  # every step moves the weight: each epoch ends elsewhere
        eval_loss,
        epochs=len(eval_losses),
        batch_size=4,
        learning_rate=0.1,
        weight_decay=0.0,
        rng=np.random.default_rng(0),
        desc="test",
        patience=patience,
    )
    return log, seen, module.weight.item()


def test_the_best_epoch_is_kept_and_patience_stops_after_it():
    losses = [3.0, 2.0, 2.5, 2.6, 1.0, 2.7]
    log, seen, weight = run(losses, patience=None)
    assert log.best_epoch == 5 and len(log.eval_loss) == 6 and weight == seen[4]
    log, seen, weight = run(losses, patience=2)
    assert log.eval_loss == [3.0, 2.0, 2.5, 2.6]  # two epochs without a new best after the second: stop
    assert log.best_epoch == 2 and weight == seen[1]
    log, _, _ = run(losses, patience=3)
    assert log.best_epoch == 5 and len(log.eval_loss) == 6


def test_cosine_decay_steps_the_learning_rate_down_a_half_cosine():
    """A constant gradient makes each of Adam's steps exactly the learning rate of its time: with cosine_decay,
    step k of T is learning_rate * (1 + cos(pi k / T)) / 2."""
    module = nn.Linear(1, 1, bias=False)
    weights = []

    def batch_loss(x):
        weights.append(module.weight.item())
        return module.weight.sum() + 0.0 * x.sum()

    train_keeping_best_epoch(
        module,
        (torch.zeros(10, 1),),
        batch_loss,
        None,
        epochs=2,
        batch_size=2,
        learning_rate=0.1,
        weight_decay=0.0,
        rng=np.random.default_rng(0),
        desc="test",
        cosine_decay=True,
    )
    steps = -np.diff(weights)  # the first 9 of the 10 steps
    np.testing.assert_allclose(steps, 0.05 * (1 + np.cos(np.pi * np.arange(9) / 10)), rtol=1e-4)
