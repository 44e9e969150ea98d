"""Game recommendation (design-chapters/mlsd-game-recom.md)."""

from common.system import System


def _train(config: dict) -> dict:
    from common.recsys.pipeline import train
    from systems.game.recdata import load

    return train("game", config, load(config, config.get("data")))


def _load_service(config: dict):
    from common.recsys.service import load_service

    return load_service("game", config)


def _router():
    from common.recsys.api import router

    return router("game")


def _sample_request(config: dict, rng, k: int) -> tuple[str, dict]:
    """A known user most of the time; one request in twenty from a new player who picked genres."""
    n_users = config["world"]["n_users"]
    if rng.random() > 0.05:
        return "/game/recommend", {"user_id": int(rng.integers(0, n_users)), "k": k}
    genres = [str(g) for g in rng.choice(["Action", "RPG", "Strategy", "Casual", "Simulation"], 2, replace=False)]
    return "/game/recommend", {"user_id": n_users + int(rng.integers(0, 10**6)), "k": k, "favourite_genres": genres}


# Heavy imports (torch, Feast, MLflow) wait until a command needs them.
SYSTEM = System(
    name="game",
    train=_train,
    load_service=_load_service,
    router=_router,
    sample_request=_sample_request,
    accepts_data=True,
)
