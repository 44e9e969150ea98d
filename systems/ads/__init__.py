"""Ads click prediction (design-chapters/mlsd-ads-ranking.md)."""

from common.system import System


def _train(config: dict) -> dict:
    from systems.ads.pipeline import train

    return train(config)


def _load_service(config: dict):
    from systems.ads.serving import load_service

    return load_service(config)


def _router():
    from systems.ads.api import router

    return router()


# Heavy imports (torch, Feast, MLflow) wait until a command needs them.
SYSTEM = System(name="ads", train=_train, load_service=_load_service, router=_router)
