"""The text encoders put texts of one topic closer together than texts of different topics; the pretrained word
vectors pool each word's vector (known answers) and keep what words mean."""

import pickle

import numpy as np
import pytest

from common.models.text import LsaEncoder, SentenceEncoder, WordVectorEncoder, text_encoder

# The sentence encoder runs on the caller's torch threads: one, beside the other test worker.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPORTS = [
    "What a match tonight, the striker scored twice before half time",
    "The goalkeeper saved a penalty in the final minute of the game",
    "Our team won the league after a tense season of football",
    "The coach praised the defenders after the match",
]
COOKING = [
    "Tried a new recipe for garlic butter pasta with fresh basil",
    "Slow roasted tomatoes make the best sauce for dinner",
    "Baking bread at home needs flour, water, salt and patience",
    "This soup recipe uses fresh herbs and roasted garlic",
]


def topic_separation(vectors: np.ndarray) -> float:
    """Mean cosine within a topic minus mean cosine across topics."""
    similarity = vectors @ vectors.T
    topic = np.arange(8) < 4
    same = topic[:, None] == topic[None, :]
    off_diagonal = ~np.eye(8, dtype=bool)
    return float(similarity[same & off_diagonal].mean() - similarity[~same].mean())


def test_pretrained_minilm_separates_topics_offline():
    encoder = SentenceEncoder().fit()
    vectors = encoder.encode(SPORTS + COOKING)
    assert vectors.shape == (8, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert topic_separation(vectors) > 0.2
    # Paraphrases with no shared word: only a pretrained model knows they agree.
    a, b, c = encoder.encode(["The striker netted a goal", "A forward scored in the football game", "Bake the bread"])
    assert a @ b > a @ c + 0.2


def test_lsa_is_fit_on_the_corpus_and_separates_its_topics():
    encoder = LsaEncoder(dim=4).fit(SPORTS * 3 + COOKING * 3)
    vectors = encoder.encode(SPORTS + COOKING)
    assert vectors.shape == (8, 4)
    assert topic_separation(vectors) > 0.2


def test_the_config_chooses_the_encoder():
    assert isinstance(text_encoder({"kind": "lsa", "dim": 8}), LsaEncoder)
    assert isinstance(text_encoder({"kind": "minilm"}), SentenceEncoder)
    with pytest.raises(ValueError, match="unknown text encoder"):
        text_encoder({"kind": "bert"})


def test_word_vectors_pool_each_words_pretrained_vector_and_keep_its_meaning():
    encoder = WordVectorEncoder().fit(["the striker scored", "garlic bread"])
    words = SentenceEncoder().fit().encode(["the", "striker", "scored"])
    vectors = encoder.encode(["The striker SCORED!", "", "tourists students garlic"])
    assert vectors.shape == (3, 768) and encoder.dim_ == 768
    np.testing.assert_allclose(vectors[0, :384], words.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(vectors[0, 384:], words.max(axis=0), atol=1e-5)
    assert not vectors[1].any()  # no word: zeros
    assert not {"tourists", "students"} & set(encoder.vectors_)  # words the fit did not see: encoded, not kept
    tourists, students, garlic = encoder.encode(["tourists", "students", "garlic"])[:, :384]
    assert tourists @ students > tourists @ garlic + 0.1  # two groups of people, against a food


def test_word_vectors_pickle_without_the_sentence_model():
    encoder = WordVectorEncoder().fit(["nice cat"])
    clone = pickle.loads(pickle.dumps(encoder))
    assert "_sentence_encoder" not in vars(clone)
    np.testing.assert_array_equal(clone.encode(["cat nice"]), encoder.encode(["cat nice"]))  # known words only
    assert "_sentence_encoder" not in vars(clone)
    assert isinstance(clone.load()._sentence_encoder, SentenceEncoder)
    np.testing.assert_array_equal(clone.encode(["a dog"]), encoder.encode(["a dog"]))
    with pytest.raises(RuntimeError, match="not fitted"):
        WordVectorEncoder().encode(["cat"])


def test_word_sequences_keep_the_order_as_rows_of_the_word_vectors():
    encoder = WordVectorEncoder().fit(["the striker scored", "garlic bread"])
    sequences = encoder.sequences(["Garlic bread, the striker!", "", "the tourists scored"])
    assert sequences.ids.shape == (3, 4)
    words = SentenceEncoder().fit().encode(["garlic", "bread", "the", "striker", "tourists"])
    np.testing.assert_allclose(sequences.table[sequences.ids[0]], words[:4], atol=1e-5)
    assert not sequences.ids[1].any() and sequences.ids[0, 3] and not sequences.ids[2, 3]  # padded after the words
    assert not sequences.table[0].any()  # row 0: no word
    np.testing.assert_allclose(sequences.table[sequences.ids[2, 1]], words[4], atol=1e-5)  # unseen: encoded
    assert "tourists" not in encoder.rows_ and len(encoder.table_) == 6  # and not kept
    long = encoder.sequences([" ".join(["bread"] * (WordVectorEncoder.MAX_WORDS + 5))])
    assert long.ids.shape == (1, WordVectorEncoder.MAX_WORDS)


def test_vectors_and_sequences_at_once_encode_an_unseen_word_once():
    encoder = WordVectorEncoder().fit(["nice cat"]).load()
    texts = ["a nice dog", "cat"]
    vectors, sequences = encoder.encode_with_sequences(texts)
    np.testing.assert_array_equal(vectors, encoder.encode(texts))
    apart = encoder.sequences(texts)
    np.testing.assert_array_equal(sequences.ids, apart.ids)
    np.testing.assert_array_equal(sequences.table, apart.table)
    calls = []
    model = encoder._sentence_encoder
    original = model.encode
    model.encode = lambda words: calls.append(list(words)) or original(words)
    encoder.encode_with_sequences(texts)
    assert calls == [["a", "dog"]]
