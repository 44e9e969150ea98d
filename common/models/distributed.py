"""Ray for the parts that outgrow one process: data-parallel training of the torch models (Ray Train) and
batch jobs over a whole catalogue (Ray Data).

On one machine `ray.init()` starts a local cluster for the job and stops it after. On a real cluster, start
it (`ray start --head` on one node, `ray start --address=<head>:6379` on the others, or KubeRay on
Kubernetes) and set RAY_ADDRESS to the head's address (e.g. `ray://head:10001` or `auto` on a node of the
cluster): `ray.init()` reads it, and the same code spreads the workers over the nodes. Ray Train then
needs storage every node can reach for the fitted model (RAY_STORAGE: an NFS path or an s3:// URI).

    model = fit_data_parallel(TwoTowerModel(...), 2, users, items, interactions)
    embedded = map_batches_on_ray(items, rows_to_frame, batch_size=4096)   # a frame, in the items' order
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)
STORAGE_SETTING = "RAY_STORAGE"
FITTED = "fitted.pkl"


@contextmanager
def ray_cluster() -> Iterator[None]:
    """The cluster RAY_ADDRESS names, or a local one for the block (stopped after, so a training leaves no
    Ray processes behind). Inside a block that already holds one, that one."""
    import ray

    if ray.is_initialized():
        yield
        return
    ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    try:
        yield
    finally:
        ray.shutdown()


def _train_on_worker(config: dict) -> None:
    """One Ray Train worker: fit its copy of the estimator (common/models/training.py shares the batches and
    averages the gradients within the process group Ray Train set up), then rank 0 hands the fitted model
    back as the run's checkpoint."""
    import ray
    import ray.train

    estimator, args, kwargs = ray.get(config["job"])
    fitted = estimator.fit(*args, **kwargs)
    rank = ray.train.get_context().get_world_rank()
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if rank == 0:
            (Path(folder) / FITTED).write_bytes(pickle.dumps(fitted))
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report({"rank": rank}, checkpoint=checkpoint)  # a barrier: every worker reports once


def fit_data_parallel(estimator, workers: int, *args, **kwargs):
    """`estimator.fit(*args, **kwargs)` on `workers` Ray Train workers, data parallel; returns the fitted
    estimator. Each worker trains on its share of every mini-batch and the workers average their gradients,
    so they hold one model, the one a single process would train with the same batches (a mini-batch's
    gradient is the mean of its shares' when the loss is a mean over rows). The estimator must train with
    common.models.training (every torch model here does)."""
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    with ray_cluster(), tempfile.TemporaryDirectory() as local_storage:
        trainer = TorchTrainer(
            _train_on_worker,
            train_loop_config={"job": ray.put((estimator, args, kwargs))},
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=False),
            run_config=RunConfig(
                name=f"{type(estimator).__name__}-{os.getpid()}",
                storage_path=os.environ.get(STORAGE_SETTING) or local_storage,
            ),
        )
        result = trainer.fit()
        with result.checkpoint.as_directory() as folder:
            fitted = pickle.loads((Path(folder) / FITTED).read_bytes())
    log.info("%s trained by %d Ray Train workers", type(estimator).__name__, workers)
    return fitted


def fit(estimator, workers: int | None, *args, **kwargs):
    """The estimator fitted in this process (workers None, or an estimator that cannot train data parallel),
    else on `workers` Ray Train workers (one included: what a cluster of one costs)."""
    if workers is not None and getattr(estimator, "trains_data_parallel", False):
        return fit_data_parallel(estimator, workers, *args, **kwargs)
    return estimator.fit(*args, **kwargs)


def map_batches_on_ray(
    table: pd.DataFrame, function: Callable[[pd.DataFrame], pd.DataFrame], batch_size: int, concurrency: int = 2
) -> pd.DataFrame:
    """`function` (rows -> a frame with one row per row) over `table` in batches, by Ray Data across the
    cluster's CPUs: a catalogue embedded by its tower, lists precomputed for every user. The frames come back
    as one, in the table's order."""
    import ray

    with ray_cluster():
        dataset = ray.data.from_pandas(table.reset_index(drop=True).assign(_row=np.arange(len(table))))

        def apply(batch: pd.DataFrame) -> pd.DataFrame:
            return function(batch.drop(columns="_row")).reset_index(drop=True).assign(_row=batch["_row"].to_numpy())

        mapped = dataset.map_batches(apply, batch_format="pandas", batch_size=batch_size, concurrency=concurrency)
        result = mapped.to_pandas()
    return result.sort_values("_row").drop(columns="_row").reset_index(drop=True)
