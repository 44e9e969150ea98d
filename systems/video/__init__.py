"""Video recommendation (design-chapters/mlsd-video-recom.md)."""

from common.system import System


def _train(config: dict) -> dict:
    from common.recsys.pipeline import train
    from systems.video.recdata import load

    return train("video", config, load(config))


def _load_service(config: dict):
    from common.recsys.service import load_service

    return load_service("video", config)


def _router():
    from common.recsys.api import router

    return router("video")


def _sample_request(config: dict, rng, k: int) -> tuple[str, dict]:
    """A known user most of the time; one request in twenty from a new user with only a profile."""
    n_users = config["world"]["n_users"]
    if rng.random() > 0.05:
        return "/video/recommend", {"user_id": int(rng.integers(0, n_users)), "k": k}
    profile = {"age": int(rng.integers(13, 70)), "country": "us", "language": "en", "gender": "female"}
    return "/video/recommend", {"user_id": n_users + int(rng.integers(0, 10**6)), "k": k, "profile": profile}


# Heavy imports (torch, Feast, MLflow) wait until a command needs them.
SYSTEM = System(
    name="video",
    train=_train,
    load_service=_load_service,
    router=_router,
    sample_request=_sample_request,
    bench_catalog_sizes=(1_000_000,),
)
