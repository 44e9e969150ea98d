"""News feed (design-chapters/mlsd-newsfeed.md)."""

from common.app.system import System


def _train(config: dict) -> dict:
    from common.pipelines.ranking import train
    from systems.newsfeed.dataset import load
    from systems.newsfeed.ranker import TASK

    return train("newsfeed", config, load(config), TASK)


def _load_service(config: dict):
    from systems.newsfeed.serving import NewsfeedService

    return NewsfeedService.load(config)


def _online(config: dict):
    from systems.newsfeed.online import online_system

    return online_system(config)


def _router():
    from systems.newsfeed.api import router

    return router()


def _sample_request(config: dict, rng, k: int) -> tuple[str, dict]:
    """A user of the world most of the time, one request in twenty from a new user (a popular feed)."""
    n_users = config["world"]["n_users"]
    user_id = int(rng.integers(0, n_users)) if rng.random() > 0.05 else n_users + int(rng.integers(0, 10**6))
    return "/newsfeed/feed", {"user_id": user_id, "k": k, "device": str(rng.choice(["mobile", "desktop"]))}


# Heavy imports (torch, Feast, MLflow) wait until a command needs them.
SYSTEM = System(
    name="newsfeed",
    train=_train,
    load_service=_load_service,
    router=_router,
    sample_request=_sample_request,
    online=_online,
)
