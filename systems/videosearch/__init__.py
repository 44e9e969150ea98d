"""Multimodal video search (design-chapters/mlsd-mm-video-search.md)."""

from functools import cache

from common.app.system import System


def load_world(config: dict):
    from systems.videosearch.world import VideoSearchWorld

    return VideoSearchWorld(**config["world"])


def _train(config: dict) -> dict:
    from systems.videosearch.pipeline import train

    return train(config, load_world(config))


def _load_service(config: dict):
    from systems.videosearch.serving import VideoSearchService

    return VideoSearchService.load(config)


def _router():
    from systems.videosearch.api import router

    return router()


@cache
def _queries() -> list[str]:
    """The test split's annotated query texts, written by the last training."""
    import pandas as pd

    from common.app.paths import system_dir

    return pd.read_parquet(system_dir("videosearch") / "raw" / "queries.parquet")["text"].tolist()


def _online(config: dict):
    from systems.videosearch.online import online_system

    return online_system(config)


def _sample_request(config: dict, rng, k: int) -> tuple[str, dict]:
    queries = _queries()
    return "/videosearch/query", {"query": queries[int(rng.integers(len(queries)))], "k": k}


SYSTEM = System(
    name="videosearch",
    train=_train,
    load_service=_load_service,
    router=_router,
    sample_request=_sample_request,
    online=_online,
)
