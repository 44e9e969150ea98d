"""Game recommendation (design-chapters/mlsd-game-recom.md)."""

from common.app.recommender_system import recommender_system


def _load_dataset(config: dict):
    from systems.game.recdata import load

    return load(config)


def _schema():
    from systems.game.recdata import SCHEMA

    return SCHEMA


def _sample_request(config: dict, rng, k: int) -> tuple[str, dict]:
    """A known user most of the time; one request in twenty from a new player who picked genres."""
    n_users = config["world"]["n_users"]
    if rng.random() > 0.05:
        return "/game/recommend", {"user_id": int(rng.integers(0, n_users)), "k": k}
    genres = [str(g) for g in rng.choice(["Action", "RPG", "Strategy", "Casual", "Simulation"], 2, replace=False)]
    return "/game/recommend", {"user_id": n_users + int(rng.integers(0, 10**6)), "k": k, "favourite_genres": genres}


def _online(config: dict):
    from systems.game.online import online_system

    return online_system(config)


SYSTEM = recommender_system("game", _load_dataset, _sample_request, accepts_data=True, schema=_schema, online=_online)
