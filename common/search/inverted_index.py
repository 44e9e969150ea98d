"""The inverted index of product search: BM25 per field, fused by field weights.

    index = InvertedIndex.build(ids, {"title": titles, "description": descriptions, "attributes": attributes},
                                weights={"title": 3.0, "description": 1.0, "attributes": 1.5})
    ids, scores = index.search(expand(("white", "sneakers"), synonyms), k=500)   # best first
    features = index.field_scores(("white", "sneakers"), ids[:300])             # (300, 3) for the ranker

Documents are tokenised with common.search.query.tokenise, the function queries go through, so both sides
agree on every term. A document's score is sum over fields f of weight_f * BM25_f (Lucene's BM25 with
per-field statistics): simpler than true BM25F (which mixes term frequencies before saturating them), and
what a per-field library gives honestly. bm25s computes BM25 for every (word, document) when it builds (a
sparse matrix per field); a query sums its words' columns into one array, as bm25s's get_scores does, but
across all fields at once: get_scores fills a fresh catalogue-sized array per field, 2x slower at 200k.

Why bm25s and not tantivy (python -m common.bench.text_index, 1M products, 2-4 word queries, one thread):
search is a tie (top-1000 p50 8.9 ms vs 8.5 ms, p99 17 vs 15 ms; top-100 overlap 0.994, the same BM25 up to
tantivy's quantised lengths), but the ranker's per-field scores of 300 candidates are a binary search in
bm25s's matrix (2.0 ms) against three filtered tantivy searches (8.7 ms): 11 ms against 17 ms per request.
The price: 374 MB on disk and 266 MB resident against tantivy's 55 MB and 45 MB (memory-mapped, so serving
workers share one copy), and a 69 s build against 24 s. Past a few million products or a tight memory budget,
tantivy's compressed postings would win.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bm25s
import numpy as np
from pyroaring import BitMap

from common.search.query import tokenise

Tokens = Sequence[str] | Sequence[Sequence[str]]
# An AND query holding at most this many documents scores them by lookup rather than by a pass over every
# posting of its words. At 1M products, over 400 logged queries: 2.6 ms mean and 8 ms p99 by lookup against
# 8.3 and 27 ms by the pass; the two cost the same at 10-30k documents (no query held more), so past 50k the
# pass is kept.
FEW_MATCHES = 50_000


@dataclass(eq=False)
class InvertedIndex:
    ids: np.ndarray  # (n,) the caller's document ids, in row order
    fields: tuple[str, ...]
    weights: np.ndarray  # (n_fields,) float32, in the order of `fields`
    retrievers: tuple[bm25s.BM25, ...]  # one per field; rows are documents, columns our vocabulary's word ids
    vocabulary: dict[str, int]  # word -> column, shared by every field
    document_counts: np.ndarray  # (n_words,) documents holding the word in any field
    occurrences: np.ndarray  # (n_words,) occurrences of the word over all fields
    by_id: np.ndarray = field(init=False, repr=False)  # (n,) rows in id order: ids to rows by binary search
    ids_are_rows: bool = field(init=False, repr=False)  # ids 0..n-1 in order: an id is its row
    # Word id -> the rows holding it in any field, as a compressed (roaring) bitmap: an AND query is an
    # intersection of unions of them. At a million products: 29 MB for every word, built in 1.5 s, and 0.11 ms
    # a query against 0.93 ms for boolean masks over the catalogue.
    bitmaps: list[BitMap] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_id = np.argsort(self.ids, kind="stable")
        self.ids_are_rows = bool(np.array_equal(self.ids, np.arange(len(self.ids))))
        self.bitmaps = [
            BitMap(np.concatenate([rows for _, rows, _ in self._columns([term])]).astype(np.uint32))
            for term in range(len(self.vocabulary))
        ]

    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        fields: Mapping[str, Sequence[str]],
        weights: Mapping[str, float],
        k1: float = 1.2,
        b: float = 0.75,
    ) -> InvertedIndex:
        """ids: (n,) unique document ids; fields: name -> n texts (empty text for a missing value);
        weights: name -> positive weight of that field's BM25 in the fused score."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or len(ids) == 0 or len(np.unique(ids)) != len(ids):
            raise ValueError("ids must be a non-empty 1-D array of unique ids")
        if not fields or set(fields) != set(weights):
            raise ValueError(f"every field needs a weight: fields {sorted(fields)}, weights {sorted(weights)}")
        for name, texts in fields.items():
            if not name.isidentifier():
                raise ValueError(f"field name {name!r} must be an identifier (it names a directory on save)")
            if len(texts) != len(ids):
                raise ValueError(f"field {name!r} has {len(texts)} texts for {len(ids)} ids")
            if weights[name] <= 0:
                raise ValueError(f"field {name!r} needs a positive weight, got {weights[name]}")
        names = tuple(fields)
        # Word ids shared by all fields: a query term maps to one column in every field's matrix (a word absent
        # from a field has an empty column there), and the corpus reaches bm25s as ids, not one str per token.
        vocabulary: dict[str, int] = {}
        columns = [
            [[vocabulary.setdefault(word, len(vocabulary)) for word in tokenise(text)] for text in fields[name]]
            for name in names
        ]
        retrievers = []
        for rows in columns:
            retriever = bm25s.BM25(k1=k1, b=b, method="lucene")  # Lucene's idf is > 0: a match always scores > 0
            # A field empty in every document has mean length 0: bm25s then divides 0 / 0 for term arrays that
            # are themselves empty, which scores nothing (the only way to get an invalid division here).
            with np.errstate(invalid="ignore"):
                retriever.index((rows, vocabulary), create_empty_token=False, show_progress=False)
            retrievers.append(retriever)
        n_words = len(vocabulary)
        distinct_per_document = (set(itertools.chain(*words)) for words in zip(*columns, strict=True))
        document_counts = np.bincount(_flat(distinct_per_document), minlength=n_words)
        occurrences = np.bincount(_flat(itertools.chain(*columns)), minlength=n_words)
        return cls(
            ids=ids,
            fields=names,
            weights=np.array([weights[name] for name in names], dtype=np.float32),
            retrievers=tuple(retrievers),
            vocabulary=vocabulary,
            document_counts=document_counts,
            occurrences=occurrences,
        )

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, tokens: Tokens, k: int, match_all: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The top-k (ids, float32 scores), best first (ties by row), of the documents that match at least one
        query term; fewer than k when fewer match. tokens: words, or OR-groups of words per position (the output
        of common.search.query.expand); every alternative of a group counts as a query term of its own, so a
        document holding both "sneakers" and "trainers" scores for both (simplest honest semantics: BM25 has no
        notion of a group). Words the index does not know match nothing.

        `match_all`: only the documents that hold every group (one of its alternatives, in any field), as a
        search box's AND does: a group none of whose words the index knows then matches no document, and the
        caller relaxes the query."""
        terms = self._term_ids(tokens)
        if not terms or k <= 0:
            return self.ids[:0], np.zeros(0, np.float32)
        if match_all:
            holding = self._holding_rows(tokens)
            if len(holding) <= FEW_MATCHES:
                # Scoring only the documents that hold every word, by lookup, skips summing the long posting
                # lists of common words ("black") over the whole catalogue: the usual case of an AND query.
                scores = self._scores(terms, holding) @ self.weights
                return self._top(holding, scores, k)
        total = np.zeros(len(self), np.float32)  # (n,) the fused score of every document
        for position, rows, bm25 in self._columns(terms):
            total[rows] += bm25 * self.weights[position]  # a column names each row once: no np.add.at needed
        if match_all:
            return self._top(holding, total[holding], k)
        # Select among the matches only (a matching document scores > 0): partitioning the whole array, mostly
        # tied zeros, is several times slower than finding them first (and a boolean mask finds them 5x faster
        # than flatnonzero on the floats).
        matched = np.flatnonzero(total > 0)
        return self._top(matched, total[matched], k)

    def _top(self, rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best k of (rows, their scores): ids and scores, best first, ties by row."""
        if len(rows) > k:
            best = np.argpartition(scores, -k)[-k:]
            rows, scores = rows[best], scores[best]
        order = np.lexsort((rows, -scores))
        return self.ids[rows[order]], scores[order].astype(np.float32)

    def field_scores(self, tokens: Tokens, ids: np.ndarray) -> np.ndarray:
        """(len(ids), n_fields) float32: each field's unweighted BM25 for these documents, the ranking features
        of candidates; `search`'s score is this @ weights. Unknown ids raise KeyError.

        Binary-searches the candidates in each query term's column: the cost grows with the candidates and the
        terms, not with the catalogue."""
        return self._scores(self._term_ids(tokens), self._rows(np.asarray(ids)))

    def group_scores(self, groups: Sequence[Sequence[str]], ids: np.ndarray) -> np.ndarray:
        """(n_groups, len(ids), n_fields) float32: `field_scores` of each OR-group of a query on its own
        (which groups a document holds, and where), the ids looked up once."""
        rows = self._rows(np.asarray(ids))
        out = np.zeros((len(groups), len(rows), len(self.fields)), np.float32)
        for g, group in enumerate(groups):
            out[g] = self._scores(self._term_ids(group), rows)
        return out

    def _scores(self, term_ids: list[int], rows: np.ndarray) -> np.ndarray:
        # The rows in ascending order: numpy's binary search starts each needle where the last one ended.
        order = np.argsort(rows, kind="stable")
        ascending = rows[order]
        out = np.zeros((len(rows), len(self.fields)), np.float32)
        for position, postings, bm25 in self._columns(term_ids):
            if len(postings) == 0:
                continue  # the word never occurs in this field
            at = np.minimum(np.searchsorted(postings, ascending), len(postings) - 1)
            hit = postings[at] == ascending
            out[order[hit], position] += bm25[at[hit]]
        return out

    def document_frequency(self) -> dict[str, int]:
        """word -> number of documents holding it in any field (relaxation drops the most frequent first)."""
        return {word: int(self.document_counts[i]) for word, i in self.vocabulary.items()}

    def term_counts(self) -> dict[str, int]:
        """word -> occurrences over all documents and fields (the spell corrector's dictionary)."""
        return {word: int(self.occurrences[i]) for word, i in self.vocabulary.items()}

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "ids.npy", self.ids)
        np.save(directory / "document_counts.npy", self.document_counts)
        np.save(directory / "occurrences.npy", self.occurrences)
        words = sorted(self.vocabulary, key=self.vocabulary.__getitem__)  # the word of each column, in order
        meta = {"fields": list(self.fields), "weights": self.weights.tolist(), "words": words}
        (directory / "index.json").write_text(json.dumps(meta))
        for name, retriever in zip(self.fields, self.retrievers, strict=True):
            retriever.save(directory / name, show_progress=False)

    @classmethod
    def load(cls, directory: Path) -> InvertedIndex:
        """The score matrices are memory-mapped: worker processes serving the same index share one copy in the
        page cache instead of each holding its own."""
        directory = Path(directory)
        meta = json.loads((directory / "index.json").read_text())
        retrievers = tuple(
            bm25s.BM25.load(directory / name, mmap=True, load_vocab=False, show_progress=False)
            for name in meta["fields"]
        )
        for retriever in retrievers:
            # Plain ndarray views of the same mapped memory: slicing a np.memmap goes through its Python
            # __getitem__, a few microseconds each, and a request slices a few hundred columns.
            for key in ("data", "indices", "indptr"):
                retriever.scores[key] = np.asarray(retriever.scores[key])
        return cls(
            ids=np.load(directory / "ids.npy"),
            fields=tuple(meta["fields"]),
            weights=np.array(meta["weights"], dtype=np.float32),
            retrievers=retrievers,
            vocabulary={word: i for i, word in enumerate(meta["words"])},
            document_counts=np.load(directory / "document_counts.npy"),
            occurrences=np.load(directory / "occurrences.npy"),
        )

    def _term_ids(self, tokens: Tokens) -> list[int]:
        """The distinct known words of a query (OR-groups flattened) as column ids, in query order: a word
        repeated in the query counts once."""
        if isinstance(tokens, str):
            raise TypeError("tokens must be words, e.g. tokenise(text), not a string (its letters would be words)")
        words = itertools.chain.from_iterable((token,) if isinstance(token, str) else token for token in tokens)
        return list(dict.fromkeys(self.vocabulary[word] for word in words if word in self.vocabulary))

    def _holding_rows(self, tokens: Tokens) -> np.ndarray:
        """Ascending rows of the documents holding, for each group of the query, one of its words in some field:
        the intersection over the groups of the union of their words' bitmaps."""
        every = None
        for token in tokens:
            terms = self._term_ids((token,) if isinstance(token, str) else tuple(token))
            holds = BitMap.union(*(self.bitmaps[term] for term in terms)) if terms else BitMap()
            every = holds if every is None else every & holds
        if not every:
            return np.zeros(0, np.int64)
        return np.frombuffer(every.to_array(), dtype=np.uint32).astype(np.int64)

    def _columns(self, term_ids: Sequence[int]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(field position, rows holding the word ascending, their BM25 in that field) for each term and field:
        the columns of the score matrices bm25s computed at build time (CSC, rows sorted within a column)."""
        for position, retriever in enumerate(self.retrievers):
            data, indices, indptr = (retriever.scores[key] for key in ("data", "indices", "indptr"))
            for term in term_ids:
                start, stop = indptr[term], indptr[term + 1]
                yield position, indices[start:stop], data[start:stop]

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        if self.ids_are_rows:  # the usual case; a binary search over a million ids cost 0.7 ms a request
            ids = np.asarray(ids)
            if len(ids) and (ids.min() < 0 or ids.max() >= len(self)):
                bad = ids[(ids < 0) | (ids >= len(self))]
                raise KeyError(f"ids not in the index: {bad[:10].tolist()}")
            return ids.astype(np.int64, copy=False)
        at = self.by_id[np.minimum(np.searchsorted(self.ids, ids, sorter=self.by_id), len(self) - 1)]
        known = self.ids[at] == ids
        if not known.all():
            raise KeyError(f"ids not in the index: {ids[~known][:10].tolist()}")
        return at


def _flat(lists) -> np.ndarray:
    """The concatenation of iterables of ints as one int64 array (for bincount)."""
    return np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64)
