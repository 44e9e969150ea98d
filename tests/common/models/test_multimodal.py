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
