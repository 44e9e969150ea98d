"""systems.imagesearch.world: the graded relevance is what the docstring says (3 same object, 2 same shape and
colour, 1 same shape), every object is in the catalogue, near-copies are re-uploads of an earlier photo, the
logged clicks carry position bias and grow with the grade, and the world is reproducible from its seed."""

import numpy as np
import pytest

from common.app.config import load_config
from common.images.render import COLOUR_NAMES, SHAPES, TEXTURES
from systems.imagesearch.world import GRADES, SPLITS, ImageSearchWorld, object_grades

SMALL = {"n_objects": 300, "n_queries": 100, "n_searches": 800}


@pytest.fixture(scope="module")
def world():
    return ImageSearchWorld(**SMALL, seed=0)


@pytest.fixture(scope="module")
def tables(world):
    return world.generate()


def _hand_grade(objects, q: int, i: int) -> int:
    """The documented grades, one pair at a time."""
    if q == i:
        return GRADES["same object"]
    if objects.shape[q] == objects.shape[i] and objects.colour[q] == objects.colour[i]:
        return GRADES["same shape and colour"]
    if objects.shape[q] == objects.shape[i]:
        return GRADES["same shape"]
    return 0


def _pixel_distance(pixels: np.ndarray, a: int, b: int) -> float:
    return float(np.abs(pixels[a].astype(np.float32) - pixels[b].astype(np.float32)).mean())


# --- relevance ---------------------------------------------------------------------


def test_grades_match_the_objects_shape_and_colour_by_hand(world):
    objects = world.objects
    queries, images = np.arange(0, 300, 7), np.arange(300)
    grades = world.grades(queries, images)
    assert grades.shape == (len(queries), 300) and grades.dtype == np.int8
    expected = np.array([[_hand_grade(objects, q, i) for i in images] for q in queries])
    np.testing.assert_array_equal(grades, expected)
    assert set(np.unique(grades)) == {0, 1, 2, 3}  # every grade occurs, so each branch was checked


def test_same_colour_but_another_shape_is_grade_0(world):
    """Colour alone makes no look-alike: only the shape family opens the grades below 3."""
    objects = world.objects
    q = 0
    other_shape_same_colour = np.flatnonzero(
        (objects.shape != objects.shape[q]) & (objects.colour == objects.colour[q])
    )
    same_shape_other_colour = np.flatnonzero(
        (objects.shape == objects.shape[q]) & (objects.colour != objects.colour[q])
    )
    assert len(other_shape_same_colour) and len(same_shape_other_colour)
    assert (world.grades([q], other_shape_same_colour) == 0).all()
    assert (world.grades([q], same_shape_other_colour) == 1).all()


def test_paired_grades_are_the_diagonal_of_the_matrix(world):
    rng = np.random.default_rng(0)
    q, i = rng.integers(0, 300, 500), rng.integers(0, 300, 500)
    i[:50] = q[:50]  # some same-object pairs
    paired = object_grades(world.objects, q, i, paired=True)
    np.testing.assert_array_equal(paired, [_hand_grade(world.objects, a, b) for a, b in zip(q, i, strict=True)])


# --- the catalogue ------------------------------------------------------------------


def test_every_object_has_a_catalogue_photo_and_about_the_configured_number(world, tables):
    images = tables["images"]
    counts = images.groupby("object_id").size()
    assert set(counts.index) == set(range(300)) and counts.min() >= 1
    assert abs(counts.mean() - world.photos_per_object) < 0.3
    assert tables["pixels"].shape == (len(images), 32, 32, 3) and tables["pixels"].dtype == np.uint8
    np.testing.assert_array_equal(images["image_id"], np.arange(len(images)))


def test_catalogue_columns_describe_the_photos_object(world, tables):
    images = tables["images"]
    objects = world.objects.take(images["object_id"].to_numpy())

    assert (images["shape"] == np.asarray(SHAPES)[objects.shape]).all()
    assert (images["colour"] == np.asarray(COLOUR_NAMES)[objects.colour]).all()
    assert (images["texture"] == np.asarray(TEXTURES)[objects.texture]).all()
    assert images["day"].between(0, world.n_days - 1).all()


def test_private_share_is_about_the_configured_rate(world, tables):
    # ~1,500 uploads: the share's standard deviation is about 0.006.
    assert abs(tables["images"]["private"].mean() - world.private_rate) < 0.02


def test_near_copies_are_later_reuploads_of_one_photo_of_the_same_object(world, tables):
    images, pixels = tables["images"], tables["pixels"]
    duplicate_of = images["duplicate_of"].to_numpy()
    objects, days = images["object_id"].to_numpy(), images["day"].to_numpy()
    copies = np.flatnonzero(duplicate_of >= 0)
    originals = duplicate_of[copies]
    assert 0.01 < len(copies) / len(images) <= world.duplicate_rate + 0.01
    assert (originals != copies).all()
    assert (objects[originals] == objects[copies]).all()
    assert (days[copies] >= days[originals]).all()
    assert (duplicate_of[originals] < 0).all()  # a copy of an original photo, not of another copy

    copy_distances, sibling_distances = [], []
    for copy, original in zip(copies, originals, strict=True):
        siblings = [
            s
            for s in np.flatnonzero(objects == objects[copy])
            if s not in (copy, original) and duplicate_of[s] != original
        ]
        copy_distances.append(_pixel_distance(pixels, copy, original))
        nearest_sibling = min((_pixel_distance(pixels, copy, s) for s in siblings), default=np.inf)
        assert copy_distances[-1] < nearest_sibling, copy  # closer to its original than to any other photo
        sibling_distances.extend(_pixel_distance(pixels, copy, s) for s in siblings)
    # New sensor noise and a touch of exposure against a new pose: several times closer on average.
    assert np.mean(copy_distances) < 0.4 * np.mean(sibling_distances)


def test_near_copies_of_the_tiny_config_world_look_like_their_originals():
    """The world the tiny pipeline trains on (it calibrates the near-copy threshold on these re-uploads)."""
    config = load_config("imagesearch", "tiny")
    tables = ImageSearchWorld(**config["world"], image_size=config["image_size"]).generate()
    images, pixels = tables["images"], tables["pixels"]
    duplicate_of, objects = images["duplicate_of"].to_numpy(), images["object_id"].to_numpy()
    unlike = []
    for copy in np.flatnonzero(duplicate_of >= 0):
        original = duplicate_of[copy]
        # Other copies of the same original are copies of one photo too: no siblings.
        siblings = [
            s
            for s in np.flatnonzero(objects == objects[copy])
            if s not in (copy, original) and duplicate_of[s] != original
        ]
        nearest_sibling = min((_pixel_distance(pixels, copy, s) for s in siblings), default=np.inf)
        if duplicate_of[original] >= 0 or _pixel_distance(pixels, copy, original) >= nearest_sibling:
            unlike.append(int(copy))
    assert unlike == []


# --- queries and logs ----------------------------------------------------------------


def test_queries_are_new_photos_of_catalogue_objects_split_in_half(tables):
    queries = tables["queries"]
    assert len(queries) == 100 and queries["object_id"].between(0, 299).all()
    assert (queries["split"].value_counts() == 50).all() and set(queries["split"]) == set(SPLITS)
    assert tables["query_pixels"].shape == (100, 32, 32, 3)
    assert tables["search_pixels"].shape == (800, 32, 32, 3)
    catalogue = tables["pixels"].reshape(len(tables["pixels"]), -1)
    assert not (tables["query_pixels"][:10].reshape(10, 1, -1) == catalogue[None]).all(axis=2).any()  # new photos


def test_each_search_shows_distinct_public_images_with_their_true_grade(world, tables):
    images, searches, impressions = tables["images"], tables["searches"], tables["impressions"]
    shown = impressions.groupby("search_id")
    assert (shown.size() == world.impressions).all() and (shown["image_id"].nunique() == world.impressions).all()
    assert all(sorted(positions) == list(range(world.impressions)) for _, positions in shown["position"])
    assert not images["private"].to_numpy()[impressions["image_id"]].any()
    query_objects = searches["object_id"].to_numpy()[impressions["search_id"]]
    image_objects = images["object_id"].to_numpy()[impressions["image_id"]]
    expected = [_hand_grade(world.objects, q, i) for q, i in zip(query_objects, image_objects, strict=True)]
    np.testing.assert_array_equal(impressions["grade"], expected)


def test_clicks_grow_with_the_grade_as_configured(world, tables):
    """P(click) = position_bias ** position * attractiveness[grade], positions uniform: averaged over the ten
    positions a grade's click rate is attractiveness * mean(0.85 ** 0..9) = attractiveness * 0.535."""
    impressions = tables["impressions"]
    by_grade = impressions.groupby("grade")["clicked"].agg(["mean", "size"])
    mean_bias = np.mean(world.position_bias ** np.arange(world.impressions))
    for grade, row in by_grade.iterrows():
        expected = world.attractiveness[grade] * mean_bias
        assert abs(row["mean"] - expected) < 4 * np.sqrt(expected * (1 - expected) / row["size"]) + 1e-3, grade
    assert by_grade["mean"].is_monotonic_increasing


def test_clicks_fall_with_position_at_equal_grade(world, tables):
    """The same grade is clicked about 1 / 0.85 ** 5 = 2.25 times as often in the first five positions as in the
    last five."""
    impressions = tables["impressions"]
    for grade in (2, 3):
        same = impressions[impressions["grade"] == grade]
        top = same.loc[same["position"] < 5, "clicked"].mean()
        bottom = same.loc[same["position"] >= 5, "clicked"].mean()
        assert 1.6 < top / bottom < 3.5, (grade, top, bottom)
    grade_3 = impressions[impressions["grade"] == 3]
    by_position = grade_3.groupby("position")["clicked"].mean()
    assert by_position[0] > by_position[4] > by_position[9]


# --- reproducibility and arguments -------------------------------------------------------


def test_same_seed_same_world_other_seed_another(tables):
    again = ImageSearchWorld(**SMALL, seed=0).generate()
    for name in ("images", "queries", "searches", "impressions"):
        assert again[name].equals(tables[name]), name
    for name in ("pixels", "query_pixels", "search_pixels"):
        np.testing.assert_array_equal(again[name], tables[name])
    other = ImageSearchWorld(**SMALL, seed=1).generate()
    assert not other["impressions"].equals(tables["impressions"])
    assert len(other["images"]) != len(tables["images"]) or not np.array_equal(other["pixels"], tables["pixels"])


@pytest.mark.parametrize("build_day", [0, -1, 31])
def test_build_day_outside_the_days_is_refused(build_day):
    with pytest.raises(ValueError, match="build_day"):
        ImageSearchWorld(n_objects=10, n_days=30, build_day=build_day)


def test_build_day_may_be_the_last_day():
    assert ImageSearchWorld(n_objects=10, n_days=30, build_day=30).build_day == 30
