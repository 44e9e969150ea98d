"""Event recommendation (design-chapters/mlsd-event-recom.md)."""

from functools import cache

from common.app.system import System


def load_dataset(config: dict):
    """The Kaggle tables of the world, or of the real files under config["data"], as a Dataset."""
    from systems.events.dataset import EventsOracle, to_dataset

    if config.get("data"):
        from systems.events.kaggle import read

        return to_dataset(read(config["data"]))
    from systems.events.world import EventsWorld

    world = EventsWorld(**config["world"])
    return to_dataset(world.generate(), EventsOracle(world))


def _train(config: dict) -> dict:
    from common.pipelines.ranking import train
    from systems.events.ranker import TASK

    return train("events", config, load_dataset(config), TASK)


def _load_service(config: dict):
    from systems.events.serving import EventsService

    return EventsService.load(config)


def _router():
    from systems.events.api import router

    return router()


@cache
def _known(column: str, table: str):
    """A column of the last training's raw tables (ids are not 0..n-1, so requests draw from them)."""
    import pandas as pd

    from common.app.paths import system_dir

    return (
        pd.read_parquet(system_dir("events") / "raw" / f"{table}.parquet", columns=[column])[column].dropna().to_numpy()
    )


def _sample_request(config: dict, rng, k: int) -> tuple[str, dict]:
    """A known user most of the time; one request in twenty from a new user, at an event's place."""
    if rng.random() > 0.05:
        return "/events/recommend", {"user_id": int(rng.choice(_known("user_id", "users"))), "k": k}
    i = int(rng.integers(0, len(_known("event_lat", "items"))))
    location = {"lat": float(_known("event_lat", "items")[i]), "lng": float(_known("event_lng", "items")[i])}
    return "/events/recommend", {"user_id": 2**52 + int(rng.integers(0, 10**6)), "k": k, "location": location}


def _online(config: dict):
    from systems.events.online import online_system

    return online_system(config)


# Heavy imports (torch, Feast, MLflow) wait until a command needs them.
SYSTEM = System(
    name="events",
    train=_train,
    load_service=_load_service,
    router=_router,
    sample_request=_sample_request,
    accepts_data=True,
    online=_online,
)
