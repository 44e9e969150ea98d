"""Harmful content detection (design-chapters/mlsd-harmful-content.md)."""

from functools import cache

from common.app.system import System


def load_world(config: dict):
    from systems.harmful.world import HarmfulWorld

    return HarmfulWorld(**config["world"], image_size=config["image_size"])


def _train(config: dict) -> dict:
    from systems.harmful.pipeline import train

    return train(config, load_world(config))


def _load_service(config: dict):
    from systems.harmful.serving import ModerationService

    return ModerationService.load(config)


def _router():
    from systems.harmful.api import router

    return router()


@cache
def _sample_posts(scale: str) -> list[dict]:
    """A few hundred of the world's posts as requests (text, language, author, the image as PNG base64)."""
    import base64

    from common.app.config import load_config
    from common.images.files import encode_png

    config = load_config("harmful", scale)
    world = load_world(config)
    posts = world.generate()["posts"].sample(300, random_state=0)
    requests = []
    for post in posts.itertuples():
        body = {"text": post.text, "language": post.language, "author_id": int(post.author_id)}
        if post.has_image:
            image = world.images(posts.loc[[post.Index]])[0]
            body["image"] = base64.b64encode(encode_png(image)).decode()
        requests.append(body)
    return requests


def _sample_request(config: dict, rng, k: int) -> tuple[str, dict]:
    posts = _sample_posts(config["scale"])
    return "/harmful/moderate", posts[int(rng.integers(len(posts)))]


def _online(config: dict):
    from systems.harmful.online import online_system

    return online_system(config)


SYSTEM = System(
    name="harmful",
    train=_train,
    load_service=_load_service,
    router=_router,
    sample_request=_sample_request,
    online=_online,
)
