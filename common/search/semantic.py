"""The semantic candidate source's encoders for product search: query text and product text -> unit vectors
whose inner product (cosine) scores relevance, learned from the search logs' (query, engaged product) pairs.

    encoder = QueryProductEncoder().fit(queries, product_texts, (query_rows, product_rows))
    products = encoder.encode_products(product_texts)      # (n_products, 64) unit rows: a faiss inner-product index
    query = encoder.encode_queries(["red runing shoes"])   # (1, 64)

    tuned = fine_tune_sentence_encoder(queries, product_texts, (query_rows, product_rows))  # all-MiniLM-L6-v2
    tuned.save("data/search/minilm-tuned")                  # served by SentenceEncoder("data/search/minilm-tuned")

Hashed two-tower (Nigam et al., KDD 2019, "Semantic Product Search", Amazon). A text becomes a bag of
hashed features: its words, its word pairs, and the character trigrams of each word padded with "#"
("runing" -> #ru run uni nin ing ng#, five of them shared with "running"), so a misspelling or an unseen
inflection still lands near the word it means. Each feature is hashed into one of `n_buckets` rows of one
embedding table that both towers share (a word means the same in a query and a title); the bag's mean goes
through a per-side linear head and is L2-normalised. There is no vocabulary to fit or to miss: any text,
any new product, gets a vector. What the pairs teach beyond spelling is vocabulary that shares no letters:
"couch" comes to sit next to "sofa" when couch queries lead to sofas.

Training is the in-batch sampled softmax of common/retrieval/two_tower.py, text to text: each batch's
engaged products are the other queries' negatives, the logQ correction (Yi et al. 2019) subtracts each
product's log share of the pairs so popular products are not pushed down for being sampled more, and a
product that is the positive of several rows of a batch is no negative of any of them. Products are told
apart by their text, not their row: two rows with the same title get the same vector whatever is done, so
they are one product here. The best epoch on held-out queries is kept.

Fine-tuning. `fine_tune_sentence_encoder` trains the pretrained sentence encoder on the same pairs with
sentence-transformers' MultipleNegativesRankingLoss (in-batch negatives, scale 20 = temperature 0.05)
inside the one training loop of common/models/training.py. The library's own SentenceTransformerTrainer
(and `model.fit`, built on it) needs the `datasets` and `accelerate` packages, which this project does not
install; the loss, the tokenisation and the model are the library's, and nothing is written to disk until
`save` is called.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils import murmurhash3_32
from torch import nn

from common.models.text import FineTunedSentenceEncoder, SentenceEncoder
from common.models.training import train_keeping_best_epoch
from common.retrieval.two_tower import _Bags
from common.search.query import tokenise

# murmurhash3 with a fixed seed: Python's own hash() of a str changes with every process (PYTHONHASHSEED),
# and a fitted table indexed by it would mean nothing to the next process. Changing the seed invalidates
# every fitted model.
HASH_SEED = 2019
ENCODE_BATCH_SIZE = 16384  # texts per forward pass: bounds the memory of the gathered ids at a 1M catalogue


def text_features(text: str) -> list[str]:
    """The features of a text, before hashing; the first letter says what each is, so the word "ing" and
    the trigram "ing" of "running" do not share a bucket: w = word, c = character trigram, b = word pair."""
    tokens = tokenise(text)
    return [key for word in tokens for key in _word_features(word)] + _pair_features(tokens)


def _word_features(word: str) -> list[str]:
    padded = f"#{word}#"
    return [f"w{word}"] + [f"c{padded[i : i + 3]}" for i in range(len(padded) - 2)]


def _pair_features(tokens: Sequence[str]) -> list[str]:
    return [f"b{a} {b}" for a, b in pairwise(tokens)]


class TextHasher:
    """Texts -> bags of hashed feature ids. Catalogue titles repeat their words, so each word's ids and
    each word pair's id are hashed once per hasher (one per call: a cache kept across serving calls would
    grow with every misspelling ever typed)."""

    def __init__(self, n_buckets: int):
        self.n_buckets = n_buckets
        self.words: dict[str, list[int]] = {}
        self.pairs: dict[str, int] = {}

    def bucket(self, feature: str) -> int:
        return murmurhash3_32(feature, seed=HASH_SEED, positive=True) % self.n_buckets

    def bags(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, indptr): text i's ids are ids[indptr[i]:indptr[i + 1]]; a text without words has none."""
        ids: list[int] = []
        indptr = [0]
        for text in texts:
            tokens = tokenise(text)
            for word in tokens:
                word_ids = self.words.get(word)
                if word_ids is None:
                    word_ids = self.words[word] = [self.bucket(f) for f in _word_features(word)]
                ids += word_ids
            for pair in _pair_features(tokens):
                pair_id = self.pairs.get(pair)
                if pair_id is None:
                    pair_id = self.pairs[pair] = self.bucket(pair)
                ids.append(pair_id)
            indptr.append(len(ids))
        return np.array(ids, dtype=np.int64), np.array(indptr, dtype=np.int64)


def hashed_bags(texts: Sequence[str], n_buckets: int) -> _Bags:
    """Each text's hashed feature ids (the rows of the shared embedding table it averages)."""
    return _Bags(*TextHasher(n_buckets).bags(texts))


def distinct_texts(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct texts): texts[i] == distinct_texts[codes[i]]."""
    codes, uniques = pd.factorize(np.asarray(texts, dtype=object))
    if (codes < 0).any():
        raise ValueError("texts must be strings, not missing values")
    return codes, np.asarray(uniques, dtype=object)


class _HashedTwoTowerNet(nn.Module):
    """Shared hashed-feature embeddings, mean-pooled, then one linear head per side and an L2 norm."""

    def __init__(self, n_buckets: int, dim: int):
        super().__init__()
        # Sparse gradients: a batch touches a few thousand of the table's rows, and the training loop steps
        # only those (SparseAdam); a dense update of every row was most of the fit time.
        self.embedding = nn.EmbeddingBag(n_buckets, dim, mode="mean", sparse=True)  # an empty bag gives zeros
        self.query_head = nn.Linear(dim, dim)
        self.product_head = nn.Linear(dim, dim)

    def queries(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """ids: (n_ids,) int64, offsets: (n,) start of each text's ids -> (n, dim) unit rows."""
        return F.normalize(self.query_head(self.embedding(ids, offsets)), dim=1)

    def products(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.product_head(self.embedding(ids, offsets)), dim=1)


def _log_shares(products: np.ndarray, n_products: int) -> np.ndarray:
    """(n_products,) float32 log of each product's share of `products`; -inf for those absent (never in a batch)."""
    with np.errstate(divide="ignore"):
        return np.log(np.bincount(products, minlength=n_products) / max(len(products), 1)).astype(np.float32)


def in_batch_softmax_loss(
    q: torch.Tensor,
    p: torch.Tensor,
    products: torch.Tensor,
    log_q: torch.Tensor,
    weights: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """Weighted cross entropy of each row's own product against the batch's other products.
    q, p: (B, d) unit rows; products: (B,) product ids; log_q: (B,) their log sampling probability."""
    logits = q @ p.T / temperature - log_q.unsqueeze(0)  # (B, B): row i = query i against every batch product
    # A product engaged from several rows of the batch would otherwise be a negative of its own positive.
    same = products.unsqueeze(0) == products.unsqueeze(1)  # (B, B)
    same.fill_diagonal_(False)
    logits = logits.masked_fill(same, float("-inf"))
    losses = F.cross_entropy(logits, torch.arange(len(q)), reduction="none")  # (B,)
    return (losses * weights).sum() / weights.sum()


class QueryProductEncoder(BaseEstimator):
    """Hashed-feature two-tower for queries and product texts, scikit-learn style.

    fit(queries, product_texts, pairs, weights):
      queries        query texts (one per row; repeats are fine)
      product_texts  the products' texts (title plus a few attribute words)
      pairs          (query rows, product rows): one pair per engagement, so a pair engaged often repeats
      weights        optional (n_pairs,) weight of each pair in the loss (a purchase above a click)
    A `validation_share` of the distinct query texts is held out, with all their pairs, and the epoch with the
    lowest in-batch loss on them is kept: the score is of queries never trained on, as at serving.
    Learned state: `module_`, `train_loss_`, `validation_loss_` (per epoch) and `best_epoch_`; the fitted
    encoder pickles with the standard library pickle (its size is the table: n_buckets x dim float32).

    Measured on one CPU thread, dim 64, 5-10-word texts: encoding 1M product texts takes about 11 s, one
    query 0.15 ms. The table's gradients are sparse and SparseAdam steps only the rows a batch touched: with
    a dense Adam, fitting 100k pairs for 5 epochs took about 190 s at 2**18 buckets (the whole table
    rewritten at every step); sparse, the product-search world's 71k pairs for 6 epochs at 2**16 take ~13 s.
    """

    def __init__(
        self,
        n_buckets: int = 2**18,
        dim: int = 64,
        temperature: float = 0.05,
        epochs: int = 8,
        batch_size: int = 512,
        learning_rate: float = 3e-3,
        weight_decay: float = 0.0,
        validation_share: float = 0.1,
        random_state: int = 0,
        verbose: bool = False,
    ):
        self.n_buckets = n_buckets
        self.dim = dim
        self.temperature = temperature
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_share = validation_share
        self.random_state = random_state
        self.verbose = verbose

    def fit(
        self,
        queries: Sequence[str],
        product_texts: Sequence[str],
        pairs: tuple[np.ndarray, np.ndarray],
        weights: np.ndarray | None = None,
    ) -> QueryProductEncoder:
        query_rows, product_rows = (np.asarray(rows, dtype=np.int64) for rows in pairs)
        if len(query_rows) == 0 or len(query_rows) != len(product_rows):
            raise ValueError("pairs must be two index arrays of the same, non-zero length")
        weights = np.ones(len(query_rows)) if weights is None else np.asarray(weights, dtype=np.float64)
        if weights.shape != query_rows.shape:
            raise ValueError(f"{len(weights)} weights for {len(query_rows)} pairs")
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)

        query_codes, query_texts = distinct_texts(queries)
        product_codes, product_index = distinct_texts(product_texts)
        pair_queries, pair_products = query_codes[query_rows], product_codes[product_rows]
        held_out = (rng.random(len(query_texts)) < self.validation_share)[pair_queries]  # (n_pairs,)
        train = ~held_out
        if not train.any():
            raise ValueError("every query was held out for validation; lower validation_share")

        # q_j: the chance that a batch slot holds product j, its share of the training pairs (not of the
        # weights: weights scale a row's loss, they do not make a row drawn more often).
        train_log_q = _log_shares(pair_products[train], len(product_index))
        query_bags = hashed_bags(query_texts, self.n_buckets)
        product_bags = hashed_bags(product_index, self.n_buckets)
        self.module_ = _HashedTwoTowerNet(self.n_buckets, self.dim)

        def pair_loss(pair_rows: np.ndarray, log_q: np.ndarray) -> torch.Tensor:
            products = pair_products[pair_rows]
            q = self.module_.queries(*query_bags.take(pair_queries[pair_rows]))  # (B, d)
            p = self.module_.products(*product_bags.take(products))  # (B, d)
            return in_batch_softmax_loss(
                q,
                p,
                torch.from_numpy(products),
                torch.from_numpy(log_q[products]),
                torch.from_numpy(weights[pair_rows].astype(np.float32)),
                self.temperature,
            )

        train_rows, held_out_rows = np.flatnonzero(train), rng.permutation(np.flatnonzero(held_out))
        held_out_log_q = _log_shares(pair_products[held_out], len(product_index))  # their own draw probabilities

        def validation_loss() -> float:
            with torch.inference_mode():
                batches = [
                    held_out_rows[start : start + self.batch_size]
                    for start in range(0, len(held_out_rows), self.batch_size)
                ]
                # Fixed batches (shuffled once), so the epochs are compared on the same negatives.
                total = sum(pair_loss(rows, held_out_log_q).item() * weights[rows].sum() for rows in batches)
            return total / weights[held_out_rows].sum()

        log = train_keeping_best_epoch(
            self.module_,
            (torch.from_numpy(train_rows),),
            lambda rows: pair_loss(rows.numpy(), train_log_q),
            validation_loss if len(held_out_rows) else None,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            rng=rng,
            desc="query-product two-tower",
            verbose=self.verbose,
        )
        self.train_loss_, self.validation_loss_, self.best_epoch_ = log.train_loss, log.eval_loss, log.best_epoch
        return self

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 unit rows."""
        return self._encode(self.module_.queries, texts)

    def encode_products(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 unit rows; each distinct text is encoded once (catalogues repeat titles)."""
        return self._encode(self.module_.products, texts)

    def _encode(self, tower, texts: Sequence[str]) -> np.ndarray:
        if not hasattr(self, "module_"):
            raise RuntimeError("QueryProductEncoder is not fitted; call fit first")
        codes, texts = distinct_texts(texts)
        hasher = TextHasher(self.n_buckets)
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), ENCODE_BATCH_SIZE):
                ids, indptr = hasher.bags(texts[start : start + ENCODE_BATCH_SIZE])
                chunk = tower(torch.from_numpy(ids), torch.from_numpy(indptr[:-1]))  # (chunk, dim)
                vectors[start : start + len(chunk)] = chunk.numpy()
        return vectors[codes]


def fine_tune_sentence_encoder(
    queries: Sequence[str],
    product_texts: Sequence[str],
    pairs: tuple[np.ndarray, np.ndarray],
    *,
    epochs: int = 1,
    batch_size: int = 64,
    learning_rate: float = 2e-5,
    max_pairs: int = 20_000,
    validation_share: float = 0.1,
    path: str | None = None,
    random_state: int = 0,
    verbose: bool = False,
) -> FineTunedSentenceEncoder:
    """The sentence encoder at `path` (None: the pretrained all-MiniLM-L6-v2) fine-tuned on (query, product
    text) pairs with MultipleNegativesRankingLoss: each query against its product and the batch's others.

    At most `max_pairs` pairs are drawn (uniformly over the pairs, so a pair engaged often is drawn more);
    a `validation_share` of the distinct queries is held out, and the epoch with the lowest held-out loss is
    kept. A batch keeps the first row of each repeated query or product text: the library's loss has no
    mask for a duplicate that would be a negative of itself (its trainer offers a no-duplicates sampler).
    Cost, measured on one CPU thread: about 20 s per 1000 pairs at batch 64 (3-word queries, 15-word product
    texts; forward and backward of both sides). The tuned encoder then encodes about 4 ms a text in
    batches and 12 ms a single query, against 0.15 ms for QueryProductEncoder.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub: the weights are local
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    encoder = FineTunedSentenceEncoder(path)
    SentenceEncoder.fit(encoder)  # loads the starting weights
    model = encoder.model_
    loss = MultipleNegativesRankingLoss(model)
    torch.manual_seed(random_state)
    rng = np.random.default_rng(random_state)

    query_rows, product_rows = (np.asarray(rows, dtype=np.int64) for rows in pairs)
    drawn = rng.choice(len(query_rows), size=min(max_pairs, len(query_rows)), replace=False)
    query_codes, query_texts = distinct_texts(queries)
    product_codes, product_index = distinct_texts(product_texts)
    pair_queries, pair_products = query_codes[query_rows[drawn]], product_codes[product_rows[drawn]]
    held_out = (rng.random(len(query_texts)) < validation_share)[pair_queries]

    def pair_loss(rows: np.ndarray) -> torch.Tensor:
        _, first_query = np.unique(pair_queries[rows], return_index=True)
        _, first_product = np.unique(pair_products[rows], return_index=True)
        rows = rows[np.intersect1d(first_query, first_product)]
        features = [
            model.preprocess(list(query_texts[pair_queries[rows]])),
            model.preprocess(list(product_index[pair_products[rows]])),
        ]
        return loss(features, None)

    held_out_rows = np.flatnonzero(held_out)

    def validation_loss() -> float:
        model.eval()  # no dropout while scoring; the training loop turns it back on for the next epoch
        with torch.inference_mode():
            batches = [held_out_rows[i : i + batch_size] for i in range(0, len(held_out_rows), batch_size)]
            return float(np.mean([pair_loss(rows).item() for rows in batches]))

    train_keeping_best_epoch(
        model,
        (torch.from_numpy(np.flatnonzero(~held_out)),),
        lambda rows: pair_loss(rows.numpy()),
        validation_loss if len(held_out_rows) else None,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=0.0,
        rng=rng,
        desc="fine-tune sentence encoder",
        verbose=verbose,
    )
    return encoder
