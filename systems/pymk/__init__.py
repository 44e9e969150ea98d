"""People you may know (design-chapters/mlsd-pymk.md)."""

from functools import cache

from common.app.system import System


def load_data(config: dict):
    """The world's tables and its oracle, or the public edge list under config["data"]."""
    from systems.pymk.dataset import SocialData

    if config.get("data"):
        from systems.pymk.edgelist import read

        return SocialData.from_tables(read(config["data"]))
    from systems.pymk.world import PymkWorld

    world = PymkWorld(**config["world"])
    return SocialData.from_tables(world.generate(), world.edge_probability)


def _train(config: dict) -> dict:
    from systems.pymk.pipeline import train

    return train(config, load_data(config))


def _load_service(config: dict):
    from systems.pymk.serving import PymkService

    return PymkService.load(config)


def _router():
    from systems.pymk.api import router

    return router()


@cache
def _users(kind: str):
    """The ids a benchmark asks for: users with a stored list (`precomputed`) or the others."""
    import numpy as np
    import pandas as pd

    from common.app.paths import system_dir

    users = pd.read_parquet(system_dir("pymk") / "raw" / "users.parquet", columns=["user_id"])["user_id"]
    stored = pd.read_parquet(
        system_dir("pymk") / "feature_repo" / "sources" / "pymk_lists.parquet", columns=["user_id"]
    )
    precomputed = users.isin(stored["user_id"]).to_numpy()
    return users.to_numpy()[precomputed if kind == "precomputed" else ~precomputed].astype(np.int64)


def _sample_request(config: dict, rng, k: int) -> tuple[str, dict]:
    """As many requests from users with a stored list as from the others (whose lists are computed on
    demand), or only one kind (config["bench_workload"])."""
    kind = config.get("bench_workload") or ("precomputed" if rng.random() < 0.5 else "on_demand")
    return "/pymk/recommend", {"user_id": int(rng.choice(_users(kind))), "k": k}


def _online(config: dict):
    from systems.pymk.online import online_system

    return online_system(config)


SYSTEM = System(
    name="pymk",
    train=_train,
    load_service=_load_service,
    router=_router,
    sample_request=_sample_request,
    accepts_data=True,
    bench_workloads=("precomputed", "on_demand"),
    online=_online,
)
