"""Video recommendation (design-chapters/mlsd-video-recom.md)."""

from common.app.recommender_system import recommender_system


def _load_dataset(config: dict):
    from systems.video.recdata import load

    return load(config)


def _schema():
    from systems.video.recdata import SCHEMA

    return SCHEMA


def _sample_request(config: dict, rng, k: int) -> tuple[str, dict]:
    """A known user most of the time; one request in twenty from a new user with only a profile."""
    n_users = config["world"]["n_users"]
    if rng.random() > 0.05:
        return "/video/recommend", {"user_id": int(rng.integers(0, n_users)), "k": k}
    profile = {"age": int(rng.integers(13, 70)), "country": "us", "language": "en", "gender": "female"}
    return "/video/recommend", {"user_id": n_users + int(rng.integers(0, 10**6)), "k": k, "profile": profile}


def _online(config: dict):
    from systems.video.online import online_system

    return online_system(config)


SYSTEM = recommender_system(
    "video", _load_dataset, _sample_request, bench_catalog_sizes=(1_000_000,), schema=_schema, online=_online
)
