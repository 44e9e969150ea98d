"""A recommendation system's entry in the registry: its training, serving and routes are the shared
core's (common.pipelines.recommender, common.serving.recommender); its data comes from the loader the
system passes in (`load_dataset(config) -> Dataset`), the shape of its data (profile columns...) from
`schema() -> Schema`, which the routes read to build the request body before any model is loaded; its part on
the online simulator from `online(config) -> OnlineSystem`, if it has one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from common.app.system import System

if TYPE_CHECKING:
    from common.data.dataset import Schema


def recommender_system(
    name: str,
    load_dataset: Callable[[dict], Any],
    sample_request: Callable[[dict, Any, int], tuple[str, dict]],
    accepts_data: bool = False,
    bench_catalog_sizes: tuple[int, ...] = (),
    *,
    schema: Callable[[], Schema],
    online: Callable[[dict], Any] | None = None,
) -> System:
    """Heavy imports (torch, Feast, MLflow) wait until a command needs them; so does the schema (the
    system's data module), until the API builds its routes."""

    def train(config: dict) -> dict:
        from common.pipelines.recommender import train as run_pipeline

        return run_pipeline(name, config, load_dataset(config))

    def load_service(config: dict):
        from common.serving.recommender import load_service as load

        return load(name, config)

    def router():
        from common.serving.recommend_api import router as make_router

        return make_router(name, schema())

    return System(
        name,
        train,
        load_service,
        router,
        sample_request,
        accepts_data,
        bench_catalog_sizes,
        load_dataset=load_dataset,
        online=online,
    )
