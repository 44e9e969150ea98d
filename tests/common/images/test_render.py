"""The renderer draws what the objects and photos say, the same way every time, whatever the chunk size."""

from dataclasses import replace

import numpy as np
import pytest

from common.images.render import BACKGROUNDS, COLOUR_NAMES, COLOURS, SHAPES, TEXTURES, Objects, Photos, render


def one_of_each(n: int, **columns) -> Objects:
    """n objects: red, white accent, solid, on the light background, unless a column says otherwise."""
    defaults = {
        "shape": 0,
        "colour": COLOUR_NAMES.index("red"),
        "accent": COLOUR_NAMES.index("white"),
        "texture": TEXTURES.index("solid"),
        "background": BACKGROUNDS.index("light"),
    }
    defaults.update(columns)
    return Objects(
        **{name: np.broadcast_to(np.asarray(value, np.int64), (n,)).copy() for name, value in defaults.items()}
    )


def canonical(n: int) -> Photos:
    return Photos.sample(np.arange(n), np.random.default_rng(0), spread=0.0)


def near(image: np.ndarray, colour: str, tolerance: float = 40) -> np.ndarray:
    """Pixels within tolerance (Euclidean, 0..255) of a named colour."""
    return np.linalg.norm(image.astype(np.float32) - np.asarray(COLOURS[colour], np.float32), axis=-1) < tolerance


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(0)
    objects = Objects.sample(300, rng)
    photos = Photos.sample(np.repeat(np.arange(300), 2), rng)
    return objects, photos


def test_the_vocabularies_are_rich_enough():
    assert len(SHAPES) >= 10 and len(COLOURS) >= 10 and len(BACKGROUNDS) >= 6
    assert {"solid", "stripes", "checker", "dots", "gradient"} <= set(TEXTURES)
    assert COLOUR_NAMES == tuple(COLOURS)
    rgb = np.asarray(list(COLOURS.values()), np.float32)
    gaps = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1) + np.eye(len(rgb)) * 1e9
    assert gaps.min() > 60  # well separated


def test_render_is_uint8_and_deterministic_for_a_seed(world):
    objects, photos = world
    photos = photos.take(np.arange(100))
    first = render(objects, photos, size=32, seed=3)
    assert first.shape == (100, 32, 32, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, render(objects, photos, size=32, seed=3))
    other = render(objects, photos, size=32, seed=4)  # other noise, same scene
    assert not np.array_equal(first, other)
    assert np.abs(first.astype(int) - other).mean() < 12
    for size in (16, 128):
        assert render(objects, photos.take(np.arange(4)), size=size).shape == (4, size, size, 3)


def test_chunk_size_does_not_change_the_output(world):
    objects, photos = world
    rng = np.random.default_rng(1)
    photos = photos.take(np.arange(300))  # more than one noise block of 256 photos
    photos = photos.with_marks(np.where(rng.random(300) < 0.3, rng.integers(0, len(SHAPES), 300), -1), 2)
    whole = render(objects, photos, size=24, seed=5)
    for chunk in (37, 256, 1000):
        np.testing.assert_array_equal(render(objects, photos, size=24, seed=5, chunk=chunk), whole)


def test_canonical_photos_of_one_object_are_identical(world):
    objects, _ = world
    photos = Photos.sample(np.full(5, 7), np.random.default_rng(2), spread=0.0)
    assert (photos.rotation == 0).all() and (photos.scale == np.float32(0.7)).all() and not photos.flip.any()
    assert (photos.noise == 0).all() and (photos.brightness == 1).all() and (photos.mark == -1).all()
    images = render(objects, photos, seed=9)
    assert (images == images[0]).all()


def test_photos_of_one_object_are_closer_than_photos_of_different_objects(world):
    objects, photos = world
    images = render(objects, photos, size=32).astype(np.float32)
    first, second = images[0::2], images[1::2]
    same = np.abs(first - second).mean(axis=(1, 2, 3))
    shuffled = np.roll(np.arange(len(second)), 1)
    different = np.abs(first - second[shuffled]).mean(axis=(1, 2, 3))
    assert same.mean() < 0.8 * different.mean()
    assert same.mean() > 15  # yet far from copies: pose, crop, light and noise move most pixels


def test_every_shape_family_has_its_own_outline():
    n = len(SHAPES)
    objects = one_of_each(
        n,
        shape=np.arange(n),
        colour=COLOUR_NAMES.index("white"),
        accent=COLOUR_NAMES.index("grey"),
        background=BACKGROUNDS.index("dark"),
    )
    masks = render(objects, canonical(n), size=32).mean(axis=-1) > 80
    assert (masks.mean(axis=(1, 2)) > 0.08).all()  # every shape is drawn, at a fair size
    differ = (masks[:, None] != masks[None]).mean(axis=(2, 3))
    assert differ[~np.eye(n, dtype=bool)].min() > 0.03


def test_edges_are_anti_aliased():
    objects = one_of_each(
        1, colour=COLOUR_NAMES.index("white"), accent=COLOUR_NAMES.index("grey"), background=BACKGROUNDS.index("dark")
    )
    image = render(objects, canonical(1), size=32)[0, :, :, 0]
    # Hard edges would leave three levels (background, rim, fill); a soft edge blends them over about a pixel.
    assert len(np.unique(image)) > 10


def test_flip_mirrors_the_object():
    objects = one_of_each(1, shape=SHAPES.index("arrow"))
    photos = canonical(1)
    mirrored = replace(photos, flip=np.array([True]))
    straight, flipped = render(objects, photos), render(objects, mirrored)
    assert not np.array_equal(straight, flipped)
    np.testing.assert_array_equal(flipped, straight[:, :, ::-1])


def test_the_texture_shows_the_accent_colour():
    objects = one_of_each(
        2,
        shape=SHAPES.index("square"),
        colour=COLOUR_NAMES.index("red"),
        accent=COLOUR_NAMES.index("blue"),
        texture=[TEXTURES.index("stripes"), TEXTURES.index("solid")],
    )
    striped, solid = render(objects, canonical(2), size=64)
    middle = (slice(20, 44), slice(20, 44))  # inside the square, away from its rim
    assert near(striped[middle], "red").mean() > 0.2 and near(striped[middle], "blue").mean() > 0.2
    assert near(solid[middle], "red").all()


def test_a_mark_changes_a_corner_and_not_the_centre():
    objects = one_of_each(4, shape=SHAPES.index("circle"), background=BACKGROUNDS.index("cool"))
    photos = canonical(4)
    plain = render(objects, photos, size=32).astype(int)
    marked = render(objects, photos.with_marks(SHAPES.index("star"), COLOUR_NAMES.index("yellow")), size=32).astype(int)
    changed = np.abs(marked - plain).sum(axis=-1) > 30
    assert not changed[:, 10:22, 10:22].any()
    for photo in changed:
        corners = [photo[:16, :16].sum(), photo[:16, 16:].sum(), photo[16:, :16].sum(), photo[16:, 16:].sum()]
        assert sorted(corners)[-1] > 15 and sorted(corners)[-2] == 0  # one corner holds the whole sticker


def test_brighter_photos_are_brighter():
    objects = one_of_each(3, shape=SHAPES.index("star"), background=BACKGROUNDS.index("sky"))
    photos = replace(canonical(3), brightness=np.array([0.7, 1.0, 1.3], np.float32))
    means = render(objects, photos).reshape(3, -1).mean(axis=1)
    assert means[0] < means[1] < means[2]


def test_objects_sample_honours_restrictions_and_never_repeats_an_object():
    rng = np.random.default_rng(3)
    objects = Objects.sample(400, rng, shapes=np.array([1, 3]), colours=np.array([0, 5]))
    assert set(objects.shape) == {1, 3} and set(objects.colour) == {0, 5}
    assert (objects.accent != objects.colour).all()
    assert objects.accent.min() >= 0 and objects.accent.max() < len(COLOURS)
    assert set(objects.texture) == set(range(len(TEXTURES))) and set(objects.background) == set(range(len(BACKGROUNDS)))
    looks = np.stack([objects.shape, objects.colour, objects.accent, objects.texture, objects.background], axis=1)
    assert len(np.unique(looks, axis=0)) == len(objects)  # distinct while the allowed combinations suffice
    many = Objects.sample(3_000, rng, shapes=np.array([0]), colours=np.array([0]))  # more than there are: repeats
    assert len(many) == 3_000 and (many.accent != many.colour).all()
    assert all(column.dtype == np.int64 for column in (many.shape, many.colour, many.accent, many.texture))


def test_take_and_with_marks_keep_rows_aligned(world):
    objects, photos = world
    rows = np.array([5, 1, 5])
    taken = photos.take(rows)
    assert len(taken) == 3 and (taken.object_row == photos.object_row[rows]).all()
    assert (taken.rotation == photos.rotation[rows]).all() and taken.rotation.dtype == np.float32
    assert (objects.take(rows).shape == objects.shape[rows]).all()
    marked = taken.with_marks(np.array([2, -1, 0]), np.array([1, 1, 1]))
    assert (marked.mark == [2, -1, 0]).all() and (taken.mark == -1).all()
    with pytest.raises(ValueError):
        taken.with_marks(np.array([len(SHAPES), -1, 0]), 1)
    with pytest.raises(ValueError):
        Photos.sample(np.arange(3), np.random.default_rng(0), spread=-1)
