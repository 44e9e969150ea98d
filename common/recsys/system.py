"""A recommendation system's entry in the registry: its training, serving and routes are the shared
core's (common.recsys), its data comes from `systems/<name>/recdata.py` (`load(config) -> RecData`)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from common.system import System


def recommender_system(
    name: str,
    sample_request: Callable[[dict, Any, int], tuple[str, dict]],
    accepts_data: bool = False,
    bench_catalog_sizes: tuple[int, ...] = (),
) -> System:
    """Heavy imports (torch, Feast, MLflow) wait until a command needs them."""

    def train(config: dict) -> dict:
        from common.recsys.pipeline import train as run_pipeline

        return run_pipeline(name, config, import_module(f"systems.{name}.recdata").load(config))

    def load_service(config: dict):
        from common.recsys.service import load_service as load

        return load(name, config)

    def router():
        from common.recsys.api import router as make_router

        return make_router(name)

    return System(name, train, load_service, router, sample_request, accepts_data, bench_catalog_sizes)
