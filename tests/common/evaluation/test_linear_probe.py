"""common.evaluation.classification.linear_probe_auc: known answers (a property written in the vectors, one
absent from them) and checked inputs."""

import numpy as np
import pytest

from common.evaluation.classification import linear_probe_auc


def test_a_property_written_along_one_direction_is_found():
    rng = np.random.default_rng(0)
    labels = rng.random(2_000) < 0.2
    vectors = rng.normal(size=(2_000, 8))
    vectors[:, 3] += 4.0 * labels
    assert linear_probe_auc(vectors, labels) > 0.97


def test_a_property_absent_from_the_vectors_is_chance():
    rng = np.random.default_rng(1)
    labels = rng.random(4_000) < 0.3
    assert abs(linear_probe_auc(rng.normal(size=(4_000, 8)), labels) - 0.5) < 0.05


def test_one_class_or_mismatched_rows_are_refused():
    vectors = np.zeros((10, 2))
    with pytest.raises(ValueError, match="both classes"):
        linear_probe_auc(vectors, np.zeros(10, dtype=bool))
    with pytest.raises(ValueError, match="one label per vector"):
        linear_probe_auc(vectors, np.ones(9, dtype=bool))
