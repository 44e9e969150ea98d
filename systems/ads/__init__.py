"""Ads click prediction (design-chapters/mlsd-ads-ranking.md)."""

from common.app.system import System


def _train(config: dict) -> dict:
    from common.pipelines.classifier import train
    from systems.ads.dataset import load
    from systems.ads.ranker import TASK

    return train("ads", config, load(config), TASK)


def _load_service(config: dict):
    from systems.ads.serving import AdsService

    return AdsService.load(config)


def _router():
    from systems.ads.api import router

    return router()


def _sample_request(config: dict, rng, k: int) -> tuple[str, dict]:
    """A known user most of the time, an unknown one (cold start) one request in twenty."""
    n_users = config["world"]["n_users"]
    user_id = int(rng.integers(0, n_users)) if rng.random() > 0.05 else n_users + int(rng.integers(0, 10**6))
    context = {"device": str(rng.choice(["mobile", "desktop", "tablet"])), "hour": int(rng.integers(0, 24))}
    return "/ads/rank", {"user_id": user_id, "context": context, "k": k}


def _online(config: dict):
    from systems.ads.online import online_system

    return online_system(config)


# Heavy imports (torch, Feast, MLflow) wait until a command needs them.
SYSTEM = System(
    name="ads",
    train=_train,
    load_service=_load_service,
    router=_router,
    sample_request=_sample_request,
    online=_online,
)
