"""common.models.multimodal: a network reads the hashed words, precomputed text vectors, or both side by side,
and learns from whichever part holds the signal; an input it was fitted on must be there at prediction."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from common.models.multimodal import MultimodalClassifier, PostInputs

N = 3_000
SMALL = {"tasks": ("harmful",), "n_buckets": 2**10, "width": 8, "hidden": 16, "epochs": 6, "batch_size": 128}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def posts(seed: int, signal_in: str) -> tuple[PostInputs, np.ndarray]:
    """Posts whose label is written either in one word of the text or in one text-vector dimension."""
    rng = np.random.default_rng(seed)
    label = rng.random(N) < 0.3
    words = np.array(["cat", "dog", "sun", "rain", "tea"])
    texts = np.array([" ".join(rng.choice(words, 5)) for _ in range(N)], dtype=object)
    if signal_in == "words":
        texts = np.where(label, texts + " alarm", texts)
    vectors = rng.normal(size=(N, 4)).astype(np.float32)
    if signal_in == "vectors":
        vectors[:, 0] += 3.0 * label
    inputs = PostInputs(
        numeric=rng.normal(size=(N, 2)),
        image_vectors=np.zeros((N, 3), dtype=np.float32),
        has_image=np.zeros(N, dtype=bool),
        texts=texts,
        text_vectors=vectors,
    )
    return inputs, label[:, None].astype(np.float32)


@pytest.mark.parametrize("signal_in", ["words", "vectors"])
def test_both_text_parts_are_read(signal_in):
    train, labels = posts(0, signal_in)
    test, truth = posts(1, signal_in)
    model = MultimodalClassifier(**SMALL).fit(train, labels)
    assert model.text_parts_ == ("bag", "vectors")
    assert roc_auc_score(truth[:, 0], model.predict_proba(test)[:, 0]) > 0.95


def test_a_text_part_fitted_on_must_be_given_at_prediction():
    train, labels = posts(0, "vectors")
    model = MultimodalClassifier(**{**SMALL, "epochs": 1}).fit(train, labels)
    without_vectors = PostInputs(train.numeric, train.image_vectors, train.has_image, texts=train.texts)
    with pytest.raises(ValueError, match="text_vectors"):
        model.predict_proba(without_vectors)
    words_only = MultimodalClassifier(**{**SMALL, "epochs": 1}).fit(without_vectors, labels)
    assert words_only.text_parts_ == ("bag",) and not hasattr(words_only.module_, "text")


def reported_posts(seed: int) -> tuple[PostInputs, np.ndarray, np.ndarray, np.ndarray]:
    """Posts harmful by one text-vector dimension, whose labels are reports: a post's exposure (its author's
    popularity, a numeric input, plus luck) raises its chance of a report, harmful or not. (inputs, labels,
    truth, exposure)."""
    rng = np.random.default_rng(seed)
    harmful = rng.random(N) < 0.2
    vectors = rng.normal(size=(N, 4)).astype(np.float32)
    vectors[:, 0] += 3.0 * harmful
    popularity = rng.normal(size=N)
    exposure = popularity + rng.normal(size=N)
    reported = rng.random(N) < 1 / (1 + np.exp(-(np.where(harmful, -0.5, -3.5) + 2.0 * exposure)))
    inputs = PostInputs(
        numeric=np.column_stack([popularity, rng.normal(size=N)]),
        image_vectors=np.zeros((N, 3), dtype=np.float32),
        has_image=np.zeros(N, dtype=bool),
        text_vectors=vectors,
    )
    return inputs, reported[:, None].astype(np.float32), harmful, exposure[:, None]


def test_the_exposure_explains_its_part_of_the_labels_away():
    train, labels, _, exposure = reported_posts(0)
    test, _, harmful, _ = reported_posts(1)
    settings = {**SMALL, "learning_rate": 0.01}  # the popularity is learned first; the exposure takes it over after
    blind = MultimodalClassifier(**settings).fit(train, labels)
    debiased = MultimodalClassifier(**settings).fit(train, labels, exposure=exposure)
    popularity = test.numeric[~harmful, 0]

    def popularity_correlation(model) -> float:  # among the benign posts: what ranks them, besides harm
        return float(np.corrcoef(model.predict_proba(test)[~harmful, 0], popularity)[0, 1])

    # Blind to the exposure, the model learns that a popular author's posts are reported: a benign post of one
    # scores high. Given it, the scores rank the posts by what they show.
    assert popularity_correlation(blind) > 0.5
    assert abs(popularity_correlation(debiased)) < 0.2
    auc = {
        name: roc_auc_score(harmful, m.predict_proba(test)[:, 0])
        for name, m in [("blind", blind), ("debiased", debiased)]
    }
    assert auc["debiased"] > auc["blind"] + 0.02, auc
    # Measured: popularity correlation 0.86 blind, -0.06 debiased; ROC-AUC against the truth 0.78 and 0.98.


def test_an_exposure_must_be_finite_and_one_row_per_post():
    train, labels, _, exposure = reported_posts(0)
    with pytest.raises(ValueError, match="exposure"):
        MultimodalClassifier(**SMALL).fit(train, labels, exposure=exposure[:10])
    with pytest.raises(ValueError, match="exposure"):
        MultimodalClassifier(**SMALL).fit(train, labels, exposure=np.full_like(exposure, np.nan))
