"""What a shopper types for an intent: the query text of the product-search world.

    python -c "from systems.search.queries import *; print(compose(Intent('shoes', 'boots', '', 'red', '', '9'), 7, 3))"

The natural query names the intent's attributes in the order people say them, then the noun:
brand, colour, size, material, noun ("lumivo black 55 inch smart television"), except a size with
a label, which follows the noun ("sneakers size 9"). Deviations from it, one bit of `flags` each:

  SYNONYM         the noun is another of the type's forms ("trainers" for "sneakers")
  COLOUR_SYNONYM  so is the colour ("gray" for "grey")
  SHUFFLED        the phrases rotated ("size 9 grey sneakers")
  VAGUE           only the category word ("footwear") or only the noun
  FILLER          a word that constrains nothing ("cheap", "for women")
  MISSPELLED      one word of five letters or more with one edit: a deletion, insertion, substitution
                  (of a neighbouring key) or transposition, never a known word

Which synonym, filler, rotation and typo an intent gets comes from the intent's own seed, so an
intent's queries are a handful of variants: the natural one when no bit is set, the most common.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from systems.search.vocabulary import (
    CATEGORIES,
    COLOURS,
    ENGLISH,
    FILLERS_AFTER,
    FILLERS_BEFORE,
    FILLERS_GENDERED,
    brands,
)

SYNONYM, COLOUR_SYNONYM, SHUFFLED, VAGUE, FILLER, MISSPELLED = 1, 2, 4, 8, 16, 32
KNOWN = ENGLISH | brands()  # a typo must not land on one of these, so misspelled queries can be counted
MIN_TYPO_LENGTH = 5
_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
# Keys beside each letter on its row: the substitutions and insertions a slipping finger makes.
NEIGHBOURS = {row[i]: row[max(i - 1, 0) : i] + row[i + 1 : i + 2] for row in _KEYBOARD_ROWS for i in range(len(row))}


@dataclass(frozen=True)
class Intent:
    """What the shopper wants, by canonical names; "" for an attribute left open."""

    category: str
    product_type: str
    brand: str
    colour: str
    material: str
    size: str


def compose(intent: Intent, flags: int, seed: int) -> tuple[str, str]:
    """(query, clean query): the query `flags` make of `intent`, and the same query before its
    misspelling (equal when MISSPELLED is not set or the query has no word long enough)."""
    category = CATEGORIES[intent.category]
    nouns = category.types[intent.product_type].nouns
    colours = COLOURS.get(intent.colour, (intent.colour,))
    fillers = FILLERS_BEFORE + FILLERS_AFTER + (FILLERS_GENDERED if category.gendered else ())
    # Every choice is drawn, in this order, whatever the flags: the intent's variants share them.
    rng = random.Random(seed)
    other_noun = rng.choice(nouns[1:]) if len(nouns) > 1 else nouns[0]
    other_colour = rng.choice(colours[1:]) if len(colours) > 1 else colours[0]
    vague_to_category = rng.random() < 0.5
    category_word = rng.choice(category.words)
    filler = rng.choice(fillers)
    rotation = rng.random()

    noun = other_noun if flags & SYNONYM else nouns[0]
    if flags & VAGUE:
        phrases = [category_word if vague_to_category else noun]
    else:
        colour = other_colour if flags & COLOUR_SYNONYM else intent.colour
        labelled = f"{category.size_label} {intent.size}" if intent.size and category.size_label else ""
        size_first = "" if category.size_label else intent.size
        phrases = [p for p in (intent.brand, colour, size_first, intent.material, noun, labelled) if p]
        if flags & SHUFFLED and len(phrases) > 1:
            shift = 1 + int(rotation * (len(phrases) - 1))
            phrases = phrases[shift:] + phrases[:shift]
    if flags & FILLER:
        phrases = [filler, *phrases] if filler in FILLERS_BEFORE else [*phrases, filler]
    clean = " ".join(phrases)
    return (misspell(clean, rng) if flags & MISSPELLED else clean), clean


def misspell(text: str, rng: random.Random, attempts: int = 10) -> str:
    """`text` with one typo in one of its words of MIN_TYPO_LENGTH letters or more."""
    tokens = text.split()
    long_words = [i for i, word in enumerate(tokens) if len(word) >= MIN_TYPO_LENGTH and word.isalpha()]
    if not long_words:
        return text
    i = rng.choice(long_words)
    for _ in range(attempts):
        typo = _typo(tokens[i], rng)
        if typo not in KNOWN:
            return " ".join([*tokens[:i], typo, *tokens[i + 1 :]])
    return text


def _typo(word: str, rng: random.Random) -> str:
    """One edit of `word`, never of its first letter (people rarely get that one wrong)."""
    position = rng.randrange(1, len(word) - 1)
    edit = rng.randrange(4)
    if edit == 0:
        return word[:position] + word[position + 1 :]
    if edit == 1:
        return word[:position] + rng.choice(NEIGHBOURS[word[position]]) + word[position:]
    if edit == 2:
        return word[:position] + rng.choice(NEIGHBOURS[word[position]]) + word[position + 1 :]
    return word[:position] + word[position + 1] + word[position] + word[position + 2 :]
