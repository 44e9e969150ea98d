"""common.models.word_convolution: the convolution reads adjacent words, which no bag of words can: texts made of
the same words, harmful only when two of them stand together, are told apart by it and not by pooled vectors."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from common.models.multimodal import MultimodalClassifier, PostInputs
from common.models.word_convolution import PADDING, WordConvolution, WordSequences

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VOCABULARY = ("kill", "time", "the", "cat", "rain", "tea", "sun", "dog")
SMALL = {"tasks": ("harmful",), "width": 8, "hidden": 16, "epochs": 8, "batch_size": 128, "learning_rate": 0.01}


def phrase_posts(seed: int, n: int = 2_000) -> tuple[PostInputs, np.ndarray]:
    """Every text holds "kill" and "time" once among fillers; the label is whether "kill time" stands together,
    so the texts' bags of words say nothing of it."""
    rng = np.random.default_rng(seed)
    table = np.vstack([np.zeros((1, 6)), np.random.default_rng(99).normal(size=(len(VOCABULARY), 6))])
    ids = np.zeros((n, 9), dtype=np.int64)
    for r, wanted in enumerate(rng.random(n) < 0.5):
        together = None
        while together != wanted:  # "kill" and "time" placed at random until they stand as wanted
            words = list(rng.integers(3, len(VOCABULARY) + 1, size=rng.integers(4, 8)))
            words.insert(rng.integers(0, len(words) + 1), 1)
            words.insert(rng.integers(0, len(words) + 1), 2)
            together = any(a == 1 and b == 2 for a, b in zip(words[:-1], words[1:], strict=False))
        ids[r, : len(words)] = words
    together = np.array([any(a == 1 and b == 2 for a, b in zip(row[:-1], row[1:], strict=True)) for row in ids])
    pooled = np.stack([table[row[row > 0]].mean(axis=0) for row in ids]).astype(np.float32)
    inputs = PostInputs(
        numeric=rng.normal(size=(n, 1)),
        image_vectors=np.zeros((n, 2), dtype=np.float32),
        has_image=np.zeros(n, dtype=bool),
        text_vectors=pooled,
        word_sequences=WordSequences(ids, table.astype(np.float32)),
    )
    return inputs, together[:, None].astype(np.float32)


def test_the_convolution_reads_a_phrase_the_pooled_words_cannot():
    (train, labels), (test, truth) = phrase_posts(0), phrase_posts(1)
    assert 0.3 < labels.mean() < 0.7
    pooled_only = PostInputs(train.numeric, train.image_vectors, train.has_image, text_vectors=train.text_vectors)
    pooled = MultimodalClassifier(**SMALL).fit(pooled_only, labels)
    test_pooled = PostInputs(test.numeric, test.image_vectors, test.has_image, text_vectors=test.text_vectors)
    assert roc_auc_score(truth[:, 0], pooled.predict_proba(test_pooled)[:, 0]) < 0.7
    phrases = MultimodalClassifier(**SMALL).fit(train, labels)
    assert phrases.text_parts_ == ("vectors", "phrases")
    assert roc_auc_score(truth[:, 0], phrases.predict_proba(test)[:, 0]) > 0.95
    with pytest.raises(ValueError, match="word_sequences"):
        phrases.predict_proba(test_pooled)


def test_padding_and_the_words_the_batch_does_not_use_change_nothing():
    torch.manual_seed(0)
    layer = WordConvolution(word_dim=6, dim=4, filters=5, kernel_sizes=(1, 2, 3))
    table = torch.randn(10, 6)
    table[PADDING] = 0
    ids = torch.tensor([[3, 4, 5, 0, 0], [7, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    out = layer(ids, table)
    assert out.shape == (3, 15) and layer.out_dim == 15
    padded = torch.cat([ids, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    torch.testing.assert_close(layer(padded, table), out)
    assert not out[1, 5:].any()  # one word: no window of two or three words
    assert not out[2].any()  # no word at all
    one_word = layer(torch.tensor([[7]]), table)  # narrower than the widest window
    torch.testing.assert_close(one_word, out[1:2])
    compact = WordSequences(ids.numpy(), table.numpy()).compact()
    assert len(compact.table) == 5 and compact.ids.shape == ids.shape  # padding and the 4 words used
    np.testing.assert_array_equal(compact.table[compact.ids], table.numpy()[ids.numpy()])
    torch.testing.assert_close(layer(torch.from_numpy(compact.ids), torch.from_numpy(compact.table)), out)
    with pytest.raises(ValueError, match="kernel_sizes"):
        WordConvolution(word_dim=6, kernel_sizes=())
