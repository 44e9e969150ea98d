"""Image search (design-chapters/mlsd-image-search.md)."""

from functools import cache

from common.app.system import System


def load_corpus(config: dict):
    """The world at the config's scale, or the folder of images config["data"] names (DATA=/path)."""
    from systems.imagesearch.corpus import folder_corpus, world_corpus
    from systems.imagesearch.world import ImageSearchWorld

    if config.get("data"):
        f = config["folder"]
        return folder_corpus(config["data"], config["image_size"], f["query_share"], f["added_share"], config["seed"])
    return world_corpus(ImageSearchWorld(**config["world"], image_size=config["image_size"]))


def _train(config: dict) -> dict:
    from systems.imagesearch.pipeline import train

    return train(config, load_corpus(config))


def _load_service(config: dict):
    from systems.imagesearch.serving import ImageSearchService

    return ImageSearchService.load(config)


def _online(config: dict):
    from systems.imagesearch.online import online_system

    return online_system(config)


def _router():
    from systems.imagesearch.api import router

    return router()


def _public_ids() -> list[int]:
    """The catalogue's public image ids, written by the last training: read again when a training (or another
    data dir) changes the file, or a retrained catalogue's sample request would name an image it lacks."""
    from systems.imagesearch.pipeline import raw_dir

    path = raw_dir() / "images.parquet"
    return _public_ids_in(path, path.stat().st_mtime_ns)


@cache
def _public_ids_in(path, modified_ns: int) -> list[int]:
    from systems.imagesearch.serving import public_ids_in

    return public_ids_in(path)


def _png(image_id: int) -> bytes:
    import numpy as np

    from common.images.files import encode_png
    from systems.imagesearch.pipeline import raw_dir

    return encode_png(np.asarray(np.load(raw_dir() / "pixels.npy", mmap_mode="r")[image_id]))


def _sample_request(config: dict, rng, k: int):
    """A search by a public image's id; in the "upload" workload, that image uploaded as a PNG file."""
    from common.bench.endpoint import Form

    ids = _public_ids()
    image_id = ids[int(rng.integers(len(ids)))]
    if config.get("bench_workload") == "upload":
        return "/imagesearch/search", Form({"k": str(k)}, {"image": ("query.png", _png(image_id), "image/png")})
    return "/imagesearch/search", Form({"image_id": str(image_id), "k": str(k)})


SYSTEM = System(
    name="imagesearch",
    train=_train,
    load_service=_load_service,
    router=_router,
    sample_request=_sample_request,
    accepts_data=True,
    bench_workloads=("upload",),
    online=_online,
)
