"""common.images.labelled: the labelled photo set (ImageNet's stand-in) is reproducible, its labels are in range
and say exactly which photos carry a sticker."""

import numpy as np
import pytest

from common.images.labelled import CLASSES, labelled_photos


def test_labels_are_in_range_and_a_sticker_has_both_its_labels():
    images, labels = labelled_photos(400, size=16, seed=0, sticker_rate=0.5)
    assert images.shape == (400, 16, 16, 3) and images.dtype == np.uint8
    assert set(labels) == set(CLASSES)
    for name, values in labels.items():
        assert values.shape == (400,) and 0 <= values.min() and values.max() < CLASSES[name], name
    stickered = labels["sticker"] > 0
    assert ((labels["sticker_colour"] > 0) == stickered).all()
    assert 0.4 < stickered.mean() < 0.6


def test_the_same_seed_gives_the_same_photos_and_another_seed_others():
    a, labels_a = labelled_photos(50, size=16, seed=3)
    b, labels_b = labelled_photos(50, size=16, seed=3)
    c, _ = labelled_photos(50, size=16, seed=4)
    np.testing.assert_array_equal(a, b)
    assert all((labels_a[k] == labels_b[k]).all() for k in CLASSES)
    assert not np.array_equal(a, c)


def test_a_sticker_changes_the_corner_not_the_centre():
    """Photos without stickers at sticker_rate 0; with sticker_rate 1 the same objects and poses (the same draws)
    gain a sticker, which only touches the frame's corners."""
    plain, _ = labelled_photos(30, size=32, seed=5, sticker_rate=0.0)
    marked, labels = labelled_photos(30, size=32, seed=5, sticker_rate=1.0)
    assert (labels["sticker"] > 0).all()
    changed = np.abs(plain.astype(int) - marked.astype(int)).sum(axis=(0, 3)) > 0
    assert not changed[12:20, 12:20].any() and changed.any()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="n must be"):
        labelled_photos(0)
    with pytest.raises(ValueError, match="sticker_rate"):
        labelled_photos(10, sticker_rate=1.5)
