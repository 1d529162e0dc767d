"""From a message to the words worth looking for: language-neutral, no stemmer.

Measured on LoCoMo's development split (bench/recall.py): a question's function words
("what", "did", "de", "und") match most of a transcript and push the evidence out, so a short
stop list of the example bots' languages (English, Portuguese, Spanish, French, German, plus
Italian and Dutch) is dropped; the rest is ranked by the index's own IDF, so a person's name,
which is in every line they wrote, weighs little by itself. Without a stemmer, "research" must
still find "researching": words of four letters or more are looked up by their first four
letters (strict evidence-turn recall 0.63 -> 0.68 on the split; three letters was too loose).
"""

from __future__ import annotations

import re
import unicodedata

from mnemobot.runtime.storage.fulltext import SearchTerm

__all__ = ["MAX_TERMS", "PREFIX_LETTERS", "STOP_WORDS", "fold", "search_terms"]

PREFIX_LETTERS = 4  # words this long or longer are looked up by this many first letters
MIN_LETTERS = 2  # shorter words say nothing
MAX_TERMS = 24  # a pasted page must not become a query of a thousand words

_STOP_WORDS_TEXT = """
a an the and or but if of to in on at by for with from as into onto about over after before
than then is are was were be been being am do does did done doing have has had having will
would shall should can could may might must i me my mine we us our you your yours he him his
she her hers it its they them their theirs this that these those what when where which who
whom whose why how there here not no yes so too very just also any some all s t d ll re ve m
don didn doesn isn wasn ever kind type sort thing things one ones
der die das und oder ist sind war ein eine einen dem den des zu mit von im auf fur nicht wie
wann wo wer was hat haben ich du er sie wir ihr es
le la les un une des et ou est sont etait de du au aux en pour avec pas que qui quoi quand ou
comment je tu il elle nous vous ils elles
el los las y o es son fue del al con por para no que cuando donde quien como yo tu mi
lo gli e di da per che chi come dove
het een van op te dat wat wie hoe wanneer waar
os as um uma do da em com nao onde eu voce meu minha
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())  # folded: no accents, as fold() gives

_WORD = re.compile(r"\w+", re.UNICODE)


def fold(text: str) -> str:
    """Lowercase without accents, as the index stores words ("São" -> "sao")."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def search_terms(message: str) -> list[SearchTerm]:
    """The terms to search ``message`` by, each once, in the order they were written."""
    terms: dict[str, SearchTerm] = {}
    for word in _WORD.findall(fold(message)):
        if len(word) < MIN_LETTERS or word in STOP_WORDS:
            continue
        term = (
            SearchTerm(word[:PREFIX_LETTERS], prefix=True)
            if len(word) >= PREFIX_LETTERS
            else SearchTerm(word)
        )
        terms.setdefault(term.word, term)
        if len(terms) == MAX_TERMS:
            break
    return list(terms.values())
