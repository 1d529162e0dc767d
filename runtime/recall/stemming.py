"""A word's stem, as the beginning a search looks it up by: "painting" by "paint", not "pain".

A search matches the beginning of a word, and what matters is how much of the word that is.
The first four letters of every word found "researching" for "research", but also "pain" for
"painting" and "reserved" for "research". Snowball's stemmers (PyStemmer: the Snowball
project's C library) know where a language's suffixes start: "paint" for "painting", "famil"
for "family", "пельмен" for "пельменей".

The runtime does not know a message's language (a person may write in any, to any bot), so
a word goes through the stemmers of every language the stop list covers (a word of another
script, through its script's), and is looked up by the shortest beginning any of them
leaves, of at least four letters; a word none of them shortens, by its first four letters as
before. So a stemmer only narrows what a word matched before, never widens it, and one
language's suffix stripped from another language's word costs no more than the four letters
did. Measured on LoCoMo's development split (bench/recall.py), strict evidence-turn recall
0.710 -> 0.720 (x1), 0.678 -> 0.689 (x3), 0.659 -> 0.672 (x9), PostgreSQL 0.709 -> 0.719,
evidence-session recall as before or better. The English stemmer alone gave 0.723 at x1, but
strips nothing from a Portuguese word; every Snowball language (Estonian's, Basque's and
Czech's suffixes cutting English and Portuguese words short: "comida" to "comi") 0.720 / 0.688.
"""

from __future__ import annotations

import functools
import threading

import Stemmer

__all__ = ["LANGUAGES", "LONGEST_WORD", "SCRIPTS", "SHORTEST_PREFIX", "stem_prefix"]

SHORTEST_PREFIX = 4  # no word is looked up by fewer letters (three was too loose: bench/README.md)
LONGEST_WORD = 64

# Which stemmers a word goes through, by the script of its first letter (a stemmer leaves
# another script's word as it is): the stop list's languages (recall/query.py) for Latin
# letters, and a stemmer or two for each other script Snowball has.
SCRIPTS: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (
        0x0000,
        0x024F,
        ("english", "portuguese", "spanish", "french", "german", "italian", "dutch"),
    ),
    (0x0370, 0x03FF, ("greek",)),
    (0x0400, 0x04FF, ("russian",)),
    (0x0530, 0x058F, ("armenian",)),
    (0x0590, 0x05FF, ("yiddish",)),
    (0x0600, 0x06FF, ("arabic", "persian")),
    (0x0900, 0x097F, ("hindi", "nepali")),
    (0x0B80, 0x0BFF, ("tamil",)),
)
LANGUAGES = tuple(language for _, _, languages in SCRIPTS for language in languages)

_local = threading.local()  # a Snowball stemmer keeps state between calls: one a thread


def _stemmers(letter: str) -> list[Stemmer.Stemmer]:
    by_language: dict[str, Stemmer.Stemmer] | None = getattr(_local, "stemmers", None)
    if by_language is None:
        # stems are remembered by stem_prefix, once for every thread: not again by each stemmer
        by_language = _local.stemmers = {
            name: Stemmer.Stemmer(name, maxCacheSize=0) for name in LANGUAGES
        }
    code = ord(letter)
    for first, last, languages in SCRIPTS:
        if first <= code <= last:
            return [by_language[name] for name in languages]
    return []


def stem_prefix(word: str) -> str:
    """The beginning of ``word`` (folded, at least :data:`SHORTEST_PREFIX` long) to look it
    up by.

    A stem need not be a beginning of its word ("family" -> "famili"): what the two share is.
    A run of more than :data:`LONGEST_WORD` letters is no word a stemmer knows (a pasted
    token, a hash): it is looked up by that many, so it finds itself, and what is remembered
    of it stays small.
    """
    if len(word) > LONGEST_WORD:
        return word[:LONGEST_WORD]
    return _stem_prefix(word)


@functools.lru_cache(maxsize=8192)
def _stem_prefix(word: str) -> str:
    best = word
    for stemmer in _stemmers(word[0]):
        stem = stemmer.stemWord(word)
        shared = stem if word.startswith(stem) else _shared_start(stem, word)
        if SHORTEST_PREFIX <= len(shared) < len(best):
            best = shared
    return best if best != word else word[:SHORTEST_PREFIX]


def _shared_start(one: str, other: str) -> str:
    length = 0
    for a, b in zip(one, other, strict=False):
        if a != b:
            break
        length += 1
    return one[:length]
