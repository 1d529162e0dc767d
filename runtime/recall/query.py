"""From a message to the words worth looking for, in any language.

Measured on LoCoMo's development split (bench/recall.py): a question's function words
("what", "did", "de", "und") match most of a transcript and push the evidence out, so a short
stop list of the example bots' languages (English, Portuguese, Spanish, French, German, plus
Italian and Dutch) is dropped; the rest is ranked by the index's own IDF, so a person's name,
which is in every line they wrote, weighs little by itself. "research" must still find
"researching": words of four letters or more are looked up by the beginning their stem
leaves, of four letters or more (:mod:`recall.stemming`; the first four letters alone took
strict evidence-turn recall on the split from 0.63 to 0.68, stems to 0.72).

By meaning (``[memory] embedding``), a question is embedded without the words that are in
many of the person's lines (:func:`meaning_query`): a sentence vector has no IDF, so "When did
Melanie run a charity race?" lands near every "Thanks, Melanie!" of a history where the name
is in one line of ten. On LoCoMo's dev split with the local model: strict evidence-turn
recall 0.745 -> 0.762 (bench/README.md).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

from mnemobot.runtime.recall.stemming import SHORTEST_PREFIX, stem_prefix
from mnemobot.runtime.storage.folding import (
    Fold,
    has_spaced_script,
    latin_fold,
    spaced_runs,
    units,
)
from mnemobot.runtime.storage.fulltext import SearchTerm

__all__ = [
    "COMMON_IN_MEANING",
    "COMMON_IN_MEANING_FLOOR",
    "MAX_TERMS",
    "PREFIX_LETTERS",
    "STOP_WORDS",
    "fold",
    "meaning_query",
    "search_terms",
]

PREFIX_LETTERS = SHORTEST_PREFIX  # words this long or longer are looked up by their stem
MIN_LETTERS = 2  # shorter words say nothing
MAX_TERMS = 24  # a pasted page must not become a query of a thousand words
COMMON_IN_MEANING = 0.08  # a word in more than this share of the lines is not embedded
COMMON_IN_MEANING_FLOOR = 10  # ...nor in fewer than this many (a short history keeps all)
# (dev split, MiniLM: strict 0.752 / 0.759 / 0.762 at 0.03 / 0.05 / 0.08, 0.756 at 0.1)

_STOP_WORDS_TEXT = """
a an the and or but if of to in on at by for with from as into onto about over after before
than then is are was were be been being am do does did done doing have has had having will
would shall should can could may might must i me my mine we us our you your yours he him his
she her hers it its they them their theirs this that these those what when where which who
whom whose why how there here not no yes so too very just also any some all s t d ll re ve m
don didn doesn isn wasn ever kind type sort thing things one ones
der die das und oder ist sind war ein eine einen dem den des zu mit von im auf fur nicht wie
wann wo wer was hat haben ich du er sie wir ihr es welche welcher welches welchen welchem
warum wieso weshalb wieviel habe hast hatte hatten bin bist
le la les un une des et ou est sont etait de du au aux en pour avec pas que qui quoi quand ou
comment je tu il elle nous vous ils elles quel quelle quels quelles pourquoi combien ai avons
avez ont suis sommes etes
el los las y o es son fue del al con por para no que cuando donde quien como yo tu mi cual
cuales quienes cuanto cuantos cuanta cuantas porque
lo gli e di da per che chi come dove quale quali perche
het een van op te dat wat wie hoe wanneer waar welke waarom
os as um uma do da em com nao onde eu voce meu minha qual quais quando quem quanto quantos
quanta quantas foi
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())  # folded: no accents, as fold() gives

_WORD = re.compile(r"\w+", re.UNICODE)


@functools.cache
def _index_word() -> re.Pattern[str]:
    """A word as the recall index takes one: letters and digits with the marks among them (a
    Hindi vowel sign, an Arabic vowel point), which ``\\w`` leaves out (migration 0013).
    Built on first use: it walks the Basic Multilingual Plane's categories (~20 ms)."""
    marks: list[str] = []
    start = None
    for code in range(0x300, 0x10000):
        is_mark = unicodedata.category(chr(code)).startswith("M")
        if is_mark and start is None:
            start = code
        elif not is_mark and start is not None:
            marks.append(f"{re.escape(chr(start))}-{re.escape(chr(code - 1))}")
            start = None
    return re.compile(rf"(?:\w|[{''.join(marks)}])+")


def fold(text: str) -> str:
    """Lowercase, and Latin letters without accents ("São" -> "sao"): what the stop words are
    written in, and how :func:`meaning_query` compares words (:func:`storage.folding.latin_fold`;
    a search folds its words as its index does, :attr:`FullText.fold`)."""
    return latin_fold(text)


def search_terms(message: str, fold: Fold = fold) -> list[SearchTerm]:
    """The terms to search ``message`` by, each once, in the order they were written, folded
    with ``fold`` (the index's own, :attr:`FullText.fold`, or a word matches nothing).

    A run of Chinese, Japanese, Thai, Lao, Khmer or Burmese characters is searched as the
    pairs of characters it holds ("北京烤鸭" as "北京", "京烤", "烤鸭"; one character alone as
    itself; a Thai letter with its marks is one): the index takes each of them as a word
    (:mod:`storage.folding`), and a pair is matched where its two characters stand side by
    side.
    """
    terms: dict[str, SearchTerm] = {}
    for word in _index_word().findall(fold(message)):
        for term in _terms_of(word):
            terms.setdefault(term.word, term)
            if len(terms) == MAX_TERMS:
                return list(terms.values())
    return list(terms.values())


def _terms_of(word: str) -> list[SearchTerm]:
    if has_spaced_script(word):
        terms: list[SearchTerm] = []
        for part in spaced_runs(word):
            if not part:
                continue
            if has_spaced_script(part):
                each = units(part)
                pairs = ["".join(each[i : i + 2]) for i in range(max(len(each) - 1, 1))]
                terms += [SearchTerm(pair) for pair in pairs]
            else:
                terms += _terms_of(part)
        return terms
    if len(word) < MIN_LETTERS or word in STOP_WORDS:
        return []
    return [SearchTerm(_key(word), prefix=len(word) >= PREFIX_LETTERS)]


def _key(word: str) -> str:
    """A folded word as :func:`search_terms` looks it up: its stem's letters, or itself."""
    return stem_prefix(word) if len(word) >= PREFIX_LETTERS else word


def meaning_query(message: str, lines: Sequence[str]) -> str:
    """``message`` without the words in more than :data:`COMMON_IN_MEANING` of ``lines``
    (and in more than :data:`COMMON_IN_MEANING_FLOOR` of them: in a short history, a word in
    one line of ten is what the question is about).

    A word counts as :func:`search_terms` would look it up ("Melanie's" is "melan", in every
    line holding "Melanie"); stop words and short words stay, as they shape the sentence. A
    message whose every word is common is kept whole. ``lines``: the person's newest lines.
    """
    if not lines:
        return message
    limit = max(COMMON_IN_MEANING * len(lines), COMMON_IN_MEANING_FLOOR)
    holding = _LinesHolding(lines)
    common: dict[str, bool] = {}

    def is_common(key: str) -> bool:
        if key not in common:
            common[key] = holding.count(key) > limit
        return common[key]

    kept = []
    for token in message.split():
        words = [
            w for w in _WORD.findall(fold(token)) if len(w) >= MIN_LETTERS and w not in STOP_WORDS
        ]
        if words and all(is_common(_key(w)) for w in words):
            continue
        kept.append(token)
    return " ".join(kept) if kept else message


class _LinesHolding:
    """How many of some lines hold a word with a given key (:func:`_key`).

    The lines are folded and joined once, and each key is found with ``str.find``, checked
    to start a word (and, for a key shorter than :data:`PREFIX_LETTERS`, to end it): a
    question asks about a handful of keys, where splitting 1,000 lines into words cost
    ~6 ms a prompt.
    """

    _SEPARATOR = "\n"  # not a word character: no word spans two lines

    def __init__(self, lines: Sequence[str]) -> None:
        folded = [fold(line) for line in lines]
        self.text = self._SEPARATOR.join(folded)
        self.starts = list(accumulate((len(line) + 1 for line in folded[:-1]), initial=0))

    def count(self, key: str) -> int:
        text, whole = self.text, len(key) < PREFIX_LETTERS
        found: set[int] = set()
        at = text.find(key)
        while at >= 0:
            end = at + len(key)
            starts_word = at == 0 or not _is_word_char(text[at - 1])
            ends_word = not whole or end == len(text) or not _is_word_char(text[end])
            if starts_word and ends_word:
                found.add(bisect_right(self.starts, at) - 1)
            at = text.find(key, at + 1)
        return len(found)


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"  # what \w matches (re's Unicode mode)
