"""Query understanding (the search chapter's section 3), before any candidate is generated:

    speller = SpellCorrector.build(vocabulary_counts)        # words of the catalogue, weighted by queries
    tokens = tokenise("Red  Runing-Shoes!")                   # ("red", "runing", "shoes")
    corrected, changed = speller.correct(tokens)              # ("red", "running", "shoes"), True
    synonyms = mine_synonyms(queries, clicks)                 # {"sneakers": {"trainers"}, ...} from the logs
    expand(corrected, synonyms)                               # each token with its synonyms
    relaxations(corrected, document_frequency)                # drop the least telling word first, then the next

Spell correction is symspellpy's symmetric-delete lookup (the maintained library, not a hand-written
edit distance) over the vocabulary the index knows: a word the index has is never "corrected", and among
the closest known words the most frequent wins, so frequency in queries breaks ties the way users type.
Synonyms are mined from behaviour, not a thesaurus: two queries that differ in one word and lead to the
same clicks make that word pair a synonym candidate, kept when enough query pairs agree.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from symspellpy import SymSpell, Verbosity

TOKEN = re.compile(r"[a-z0-9]+")


def normalise(text: str) -> str:
    """Lower case, accents folded (café -> cafe), every run of non-alphanumerics one space."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return " ".join(TOKEN.findall(folded))


def tokenise(text: str) -> tuple[str, ...]:
    return tuple(normalise(text).split())


@dataclass
class SpellCorrector:
    """Corrects each unknown word to the most frequent known word within its edit budget: 1 edit for
    words of up to `short` letters (two edits turn "red" into too many words), else `max_edit_distance`.
    Numbers (sizes, model years) are never corrected."""

    symspell: SymSpell
    max_edit_distance: int = 2
    short: int = 4

    @classmethod
    def build(cls, counts: Mapping[str, int], max_edit_distance: int = 2, short: int = 4) -> SpellCorrector:
        """counts: each known word and its frequency (in queries, or in the catalogue's text)."""
        symspell = SymSpell(max_dictionary_edit_distance=max_edit_distance, prefix_length=7)
        for word, count in counts.items():
            if count > 0 and TOKEN.fullmatch(word):
                symspell.create_dictionary_entry(word, int(count))
        return cls(symspell, max_edit_distance, short)

    def knows(self, word: str) -> bool:
        return word in self.symspell.words

    def correct_word(self, word: str) -> str:
        if word.isdigit() or self.knows(word):
            return word
        budget = 1 if len(word) <= self.short else self.max_edit_distance
        suggestions = self.symspell.lookup(word, Verbosity.CLOSEST, max_edit_distance=budget)
        if not suggestions:
            return word  # nothing close: keep it (relaxation may drop it later)
        best = max(suggestions, key=lambda s: (s.count, -len(s.term), s.term))  # CLOSEST: all at one distance
        return best.term

    def correct(self, tokens: Sequence[str]) -> tuple[tuple[str, ...], bool]:
        """The corrected tokens and whether any changed (the response then says "showing results for")."""
        corrected = tuple(self.correct_word(token) for token in tokens)
        return corrected, corrected != tuple(tokens)


def mine_synonyms(
    queries: Sequence[str], clicked: Sequence[int], min_support: int = 3, min_overlap: float = 0.5
) -> dict[str, set[str]]:
    """Word pairs that stand for each other, from the logs: one (query, clicked item) pair per click.

    Two distinct queries of the same length that differ in exactly one word, and whose clicked items
    overlap (Jaccard >= min_overlap), vote for that word pair; pairs with at least `min_support` votes are
    synonyms, both ways ("sneakers" ~ "trainers" when "white sneakers" and "white trainers" lead to the
    same shoes, and "running sneakers" and "running trainers" do too)."""
    items_of: dict[tuple[str, ...], set[int]] = defaultdict(set)
    for query, item in zip(queries, clicked, strict=True):
        tokens = tokenise(query)
        if tokens:
            items_of[tokens].add(int(item))
    # Queries that differ in one word share the rest: bucket them by the query with that word masked.
    buckets: dict[tuple, list[tuple[str, ...]]] = defaultdict(list)
    for tokens in items_of:
        for i in range(len(tokens)):
            buckets[(i, tokens[:i] + tokens[i + 1 :])].append(tokens)
    votes: Counter = Counter()
    for (i, _), members in buckets.items():
        for a, b in combinations(members, 2):
            shared = len(items_of[a] & items_of[b]) / len(items_of[a] | items_of[b])
            if shared >= min_overlap:
                votes[tuple(sorted((a[i], b[i])))] += 1
    synonyms: dict[str, set[str]] = defaultdict(set)
    for (a, b), count in votes.items():
        if count >= min_support:
            synonyms[a].add(b)
            synonyms[b].add(a)
    return dict(synonyms)


def expand(tokens: Sequence[str], synonyms: Mapping[str, Iterable[str]]) -> tuple[tuple[str, ...], ...]:
    """Each token with its synonyms (itself first, the others sorted): an OR group per position."""
    return tuple((token, *sorted(set(synonyms.get(token, ())) - {token})) for token in tokens)


def relaxations(tokens: Sequence[str], document_frequency: Mapping[str, int]) -> list[tuple[str, ...]]:
    """The query with one more word dropped at each step, the least telling first (the most frequent in the
    catalogue, such as "good" or "new"; an unknown word counts as the most frequent: it matches nothing),
    down to one word: what to try, in order, when nothing matches."""
    ceiling = max(document_frequency.values(), default=0) + 1
    order = sorted(range(len(tokens)), key=lambda i: (-document_frequency.get(tokens[i], ceiling), i))
    steps, dropped = [], set()
    for i in order[:-1]:
        dropped.add(i)
        steps.append(tuple(token for j, token in enumerate(tokens) if j not in dropped))
    return steps
