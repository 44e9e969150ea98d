"""What every system provides to the shared CLI, Makefile and API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter


@dataclass(frozen=True)
class System:
    name: str
    train: Callable[[dict], dict]  # config -> summary (metrics per model, champion)
    load_service: Callable[[dict], Any]  # config -> serving bundle; raises ServiceUnavailable
    router: Callable[[], APIRouter]  # the system's endpoints
    # (config, rng, k) -> (path, body) of a realistic request, for benchmarks: a JSON dict, or a
    # common.bench.endpoint.Form for an endpoint that takes a form (an image upload)
    sample_request: Callable[[dict, Any, int], tuple[str, Any]]
    # Whether `train` reads real data from a local path (config["data"]) instead of the world.
    accepts_data: bool = False
    # Catalogue sizes `make bench` also measures, grown with synthetic items (common.bench.padding).
    bench_catalog_sizes: tuple[int, ...] = ()
    # Kinds of request `make bench` also measures alone, after the usual mix: sample_request then finds
    # the kind in config["bench_workload"] (PYMK: users with a stored list, users computed on demand).
    bench_workloads: tuple[str, ...] = ()
    # config -> its Dataset, for the recommendation systems (what their training reads): benchmarks of the
    # shared core's parts (common/bench/distributed.py) load a system's world through it.
    load_dataset: Callable[[dict], Any] | None = None
    # config -> the system on the online simulator (common.online.simulator.OnlineSystem): its world's users after
    # the logs and its policies; None while the system has no online part.
    online: Callable[[dict], Any] | None = None


class ServiceUnavailable(RuntimeError):
    """The system cannot serve yet (no champion model, no feature store); the message says
    what to run."""
