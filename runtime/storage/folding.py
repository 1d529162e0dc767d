"""How the recall index folds a word (case, accents), so that a query is folded the same.

A query word matches only what the index stored, letter for letter. SQLite's FTS5 tokenizer
(``unicode61 remove_diacritics 2``, marks inside words since 0013) lowercases and takes
accents off Latin letters, and leaves every other letter as written: Russian "й", Greek "ά",
Japanese "が" and Korean syllables stay; a Greek final "ς" becomes "σ". Folding a query with
Unicode's compatibility decomposition (NFKD, then dropping the marks), as recall did before,
took those apart too, so their words were never found: no Korean word at all (a syllable
decomposes into its letters), no Russian word with "й", no Japanese word with a voiced kana.

:class:`Fts5Folding` asks SQLite's own tokenizer how it folds each letter (once a letter, in
an in-memory table), so the two cannot disagree. PostgreSQL's index folds with
``unaccent(lower(...))`` (0005), which takes accents off Greek letters too; its queries are
folded again in the database by the same expression (``mnemobot_search_query``, 0012), so
:func:`latin_fold`, which changes nothing that expression would not, is all it needs here.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
import unicodedata
from collections.abc import Callable
from typing import Any

__all__ = [
    "SPACED_FUNCTION",
    "SPACED_SCRIPTS",
    "Fold",
    "Fts5Folding",
    "has_spaced_script",
    "latin_fold",
    "register_spaced",
    "spaced",
    "spaced_runs",
    "units",
]

Fold = Callable[[str], str]


_COMBINING_DIACRITICS = range(0x300, 0x370)  # accents typed apart from their letter


@functools.lru_cache(maxsize=4096)
def _latin_letter(char: str) -> str:
    if ord(char) in _COMBINING_DIACRITICS:
        return ""
    decomposed = unicodedata.normalize("NFD", char)
    if len(decomposed) > 1 and unicodedata.name(decomposed[0], "").startswith("LATIN"):
        return "".join(c for c in decomposed if not unicodedata.combining(c))
    return char


class _LatinTable(dict[int, str]):
    """``str.translate``'s table for :func:`latin_fold`, filled as letters are first met."""

    def __missing__(self, code: int) -> str:
        folded = self[code] = _latin_letter(chr(code))
        return folded


_LATIN = _LatinTable()


def latin_fold(text: str) -> str:
    """Lowercase, and Latin letters without accents ("São" -> "sao"); every other letter as
    written. ASCII is only lowercased (a prompt folds the person's 1,000 newest lines with
    embeddings on)."""
    lowered = text.lower()
    if lowered.isascii():
        return lowered
    return lowered.translate(_LATIN)


class Fts5Folding:
    """Folds text as SQLite's ``unicode61 remove_diacritics 2`` tokenizer does, letter by
    letter: what it makes of each letter not yet seen is read from the tokenizer itself, in an
    in-memory FTS5 table. Characters it splits words at become spaces.

    Thread-safe: searches run on several threads. Where this Python's SQLite has no FTS5
    (it then cannot hold the index either), :func:`latin_fold` stands in.
    """

    TOKENIZER = "unicode61 remove_diacritics 2 categories 'L* N* Co M*'"  # as 0013 made the index

    def __init__(self) -> None:
        self._table: dict[int, str] = {code: chr(code).lower() for code in range(128)}
        self._lock = threading.Lock()
        self._probe: sqlite3.Connection | None = None
        try:
            probe = sqlite3.connect(":memory:", check_same_thread=False)
            probe.execute(
                f'CREATE VIRTUAL TABLE word USING fts5(text, tokenize="{self.TOKENIZER}")'
            )
            probe.execute("CREATE VIRTUAL TABLE folded USING fts5vocab(word, 'instance')")
            self._probe = probe
        except sqlite3.OperationalError:  # no FTS5 in this build
            self._probe = None

    def __call__(self, text: str) -> str:
        if text.isascii():
            return text.lower()
        if self._probe is None:
            return latin_fold(text)
        new = set(map(ord, text)).difference(self._table)
        if new:
            self._learn(new)
        return text.translate(self._table)

    def _learn(self, codes: set[int]) -> None:
        assert self._probe is not None
        with self._lock:
            for code in codes - self._table.keys():
                self._table[code] = self._letter(chr(code))

    def _letter(self, char: str) -> str:
        """``char`` as the tokenizer stores it between two letters: the middle of one token,
        or a space when it ends one (punctuation, a space, a symbol). A lone surrogate (not
        Unicode: SQLite cannot take it, and a command line's undecodable bytes are read as
        such) ends a word too."""
        assert self._probe is not None
        if 0xD800 <= ord(char) <= 0xDFFF:
            return " "
        with self._probe:
            self._probe.execute("INSERT INTO word (rowid, text) VALUES (1, ?)", (f"q{char}q",))
            rows = self._probe.execute("SELECT term FROM folded ORDER BY offset")
            tokens: list[str] = [term for (term,) in rows]
            self._probe.execute("DELETE FROM word")
        if len(tokens) == 1 and tokens[0].startswith("q") and tokens[0].endswith("q"):
            return tokens[0][1:-1]
        return " "


# Chinese and Japanese are written without spaces between words, and so are Thai, Lao,
# Khmer and Burmese: a tokenizer that splits at spaces and punctuation takes a whole phrase
# as one word, found only by the phrase. So each of their characters (with the vowel signs and
# tone marks written on it, in the four Southeast Asian scripts) is indexed as a word of its
# own (SQLite: the triggers pass the text through ``mnemobot_spaced_2``, registered on every
# connection; PostgreSQL: the index's expression spaces them; 0014, 0015), and a query's run
# of them is searched as the pairs of such characters it holds (recall.query), as CJK
# full-text search usually is: "北京" finds "我在北京吃了饺子", "ข้าวผัด" finds
# "ฉันชอบกินข้าวผัด". Korean is written with spaces, and stays out.
SPACED_SCRIPTS = (
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u31f0-\u31ff"  # Katakana extensions
    "\u3400-\u4dbf"  # CJK ideographs, extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # halfwidth Katakana
    "\U00020000-\U0003134f"  # CJK ideographs, extensions B to G
)
# The Southeast Asian scripts' letters and digits, and the marks written on them (Unicode 14,
# as migration 0015 gives them to PostgreSQL: the two must agree).
SEA_LETTERS = (
    "\u0e01-\u0e30\u0e32-\u0e33\u0e40-\u0e46\u0e50-\u0e59"  # Thai
    "\u0e81-\u0e82\u0e84\u0e86-\u0e8a\u0e8c-\u0ea3\u0ea5\u0ea7-\u0eb0\u0eb2-\u0eb3\u0ebd"
    "\u0ec0-\u0ec4\u0ec6\u0ed0-\u0ed9\u0edc-\u0edf"  # Lao
    "\u1000-\u102a\u103f-\u1049\u1050-\u1055\u105a-\u105d\u1061\u1065-\u1066\u106e-\u1070"
    "\u1075-\u1081\u108e\u1090-\u1099"  # Myanmar
    "\u1780-\u17b3\u17d7\u17dc\u17e0-\u17e9\u17f0-\u17f9"  # Khmer
)
SEA_MARKS = (
    "\u0e31\u0e34-\u0e3a\u0e47-\u0e4e"  # Thai
    "\u0eb1\u0eb4-\u0ebc\u0ec8-\u0ecd"  # Lao
    "\u102b-\u103e\u1056-\u1059\u105e-\u1060\u1062-\u1064\u1067-\u106d\u1071-\u1074"
    "\u1082-\u108d\u108f\u109a-\u109d"  # Myanmar
    "\u17b4-\u17d3\u17dd"  # Khmer
)
_UNIT_PATTERN = f"[{SPACED_SCRIPTS}]|[{SEA_LETTERS}][{SEA_MARKS}]*"
_UNIT = re.compile(f"({_UNIT_PATTERN})")
_RUNS = re.compile(f"((?:{_UNIT_PATTERN})+)")
SPACED_FUNCTION = "mnemobot_spaced_2"  # its name in SQLite's triggers (0015)


def spaced(text: Any) -> Any:
    """``text`` with each character of the scripts above set apart by spaces (see above);
    what is not a string (NULL) as it is."""
    if not isinstance(text, str) or text.isascii():
        return text
    return _UNIT.sub(r" \1 ", text)


def units(word: str) -> list[str]:
    """The characters of ``word`` :func:`spaced` sets apart, in order (a Thai letter with its
    marks is one); nothing for a word of other scripts."""
    return _UNIT.findall(word)


def spaced_runs(word: str) -> list[str]:
    """``word`` cut where runs of the characters :func:`spaced` sets apart begin and end: the
    runs and the parts between them, in order (some empty)."""
    return _RUNS.split(word)


def has_spaced_script(word: str) -> bool:
    return _UNIT.search(word) is not None


_CJK = re.compile(f"([{SPACED_SCRIPTS}])")


def _spaced_cjk(text: Any) -> Any:
    """0014's ``mnemobot_spaced``: Chinese and Japanese only. Its triggers call it until 0015
    replaces them, and 0014 indexes with it on the way up to 0015."""
    if not isinstance(text, str) or text.isascii():
        return text
    return _CJK.sub(r" \1 ", text)


def register_spaced(connection: Any) -> None:
    """Give a SQLite connection the functions its recall index's triggers call (0014, 0015):
    every connection that writes a remembered row needs them."""
    connection.create_function(SPACED_FUNCTION, 1, spaced, deterministic=True)
    connection.create_function("mnemobot_spaced", 1, _spaced_cjk, deterministic=True)
