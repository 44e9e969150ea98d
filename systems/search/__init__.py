"""Product search (design-chapters/mlsd-search.md)."""

from functools import cache

from common.app.system import System


def load_data(config: dict):
    """The world's catalogue, logs and oracle, or the Shopping Queries files under config["data"]."""
    if config.get("data"):
        from systems.search.esci import read

        esci = config["esci"]
        return read(config["data"], esci["locale"], esci["version"], esci["validation_share"], config["seed"])
    from systems.search.world import ProductWorld
    from systems.search.world_data import search_data

    world = ProductWorld(**config["world"])
    return search_data(world, world.generate(), config)


def _train(config: dict) -> dict:
    from systems.search.pipeline import train

    return train(config, load_data(config))


def _load_service(config: dict):
    from systems.search.serving import SearchService

    return SearchService.load(config)


def _router():
    from systems.search.api import router

    return router()


@cache
def _queries() -> list[str]:
    """Queries shoppers typed (the logs' keys), or the catalogue's titles' first words (public data)."""
    import pandas as pd

    from common.app.paths import system_dir

    raw = system_dir("search") / "raw"
    if (raw / "query_keys.parquet").exists():
        return pd.read_parquet(raw / "query_keys.parquet")["query"].tolist()
    titles = pd.read_parquet(raw / "products.parquet", columns=["product_title"])["product_title"]
    return [" ".join(title.split()[:3]) for title in titles.head(10_000)]


def _sample_request(config: dict, rng, k: int) -> tuple[str, dict]:
    queries = _queries()
    return "/search/query", {"query": queries[int(rng.integers(len(queries)))], "k": k}


def _online(config: dict):
    from systems.search.online import online_system

    return online_system(config)


SYSTEM = System(
    name="search",
    train=_train,
    load_service=_load_service,
    router=_router,
    sample_request=_sample_request,
    accepts_data=True,
    online=_online,
)
