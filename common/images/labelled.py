"""A labelled photo set: the stand-in for the public labelled image dataset (ImageNet, say) that a pretrained
image encoder has learnt from, which these machines cannot download.

    images, labels = labelled_photos(30_000, size=32, seed=0)
    labels["shape"]   # (n,) int: the object's shape family, an index into render.SHAPES
    CLASSES["shape"]  # how many classes that label has

Rendered photos of random objects (common/images/render.py), a share of them with a corner sticker, each named
by what it shows: the object's shape, colour, texture and background, and the sticker's shape and colour (0: no
sticker, k: index k - 1). It holds no system's data and no system's judgement (what is relevant, what is
harmful): an encoder pretrained on it knows what is in a photo, as an ImageNet model knows a knife or a rat,
and a system still has to learn what its users make of that.
"""

from __future__ import annotations

import numpy as np

from common.images.render import BACKGROUNDS, COLOURS, SHAPES, TEXTURES, Objects, Photos, render

CLASSES = {
    "shape": len(SHAPES),
    "colour": len(COLOURS),
    "texture": len(TEXTURES),
    "background": len(BACKGROUNDS),
    "sticker": len(SHAPES) + 1,
    "sticker_colour": len(COLOURS) + 1,
}


def labelled_photos(
    n: int, size: int = 32, seed: int = 0, sticker_rate: float = 0.5
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(images (n, size, size, 3) uint8, {label: (n,) int64} for each label of CLASSES)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 0 <= sticker_rate <= 1:
        raise ValueError(f"sticker_rate must be in 0..1, got {sticker_rate}")
    rng = np.random.default_rng(seed)
    objects = Objects.sample(n, rng)
    stickered = rng.random(n) < sticker_rate
    sticker = np.where(stickered, rng.integers(0, len(SHAPES), n), -1)
    sticker_colour = rng.integers(0, len(COLOURS), n)
    photos = Photos.sample(np.arange(n), rng).with_marks(sticker, sticker_colour)
    labels = {
        "shape": objects.shape,
        "colour": objects.colour,
        "texture": objects.texture,
        "background": objects.background,
        "sticker": sticker + 1,
        "sticker_colour": np.where(stickered, sticker_colour + 1, 0),
    }
    return render(objects, photos, size=size, seed=seed), labels
