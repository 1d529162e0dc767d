"""What a word is looked up by: the beginning its stem leaves, in whatever language."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from mnemobot.runtime.recall.query import search_terms
from mnemobot.runtime.recall.stemming import (
    LONGEST_WORD,
    SHORTEST_PREFIX,
    _stem_prefix,
    stem_prefix,
)
from mnemobot.runtime.storage.fulltext import SearchTerm


@pytest.mark.parametrize(
    ("words", "prefix"),
    [
        (["painting", "paintings", "painted"], "paint"),  # not "pain", as four letters were
        (["family", "families"], "famil"),  # "famili" is no beginning of "family"
        (["trabalhar", "trabalho", "trabalhando"], "trabalh"),  # Portuguese's suffixes
        (["пельмени", "пельменей"], "пельмен"),  # another script, its own stemmer
    ],
)
def test_the_forms_of_a_word_share_the_beginning_they_are_looked_up_by(
    words: list[str], prefix: str
) -> None:
    assert {stem_prefix(word) for word in words} == {prefix}


def test_a_word_no_stemmer_shortens_is_looked_up_by_its_first_four_letters() -> None:
    assert stem_prefix("yoga") == "yoga"
    assert stem_prefix("birthday") == "birt"  # no stemmer of the seven shortens it
    assert SHORTEST_PREFIX == 4


def test_no_stem_is_shorter_than_four_letters() -> None:
    # English's stemmer leaves "pain" of "painful"; Portuguese's (and three more) "com" of
    # "comer", too short: "comer" keeps four letters
    assert stem_prefix("painful") == "pain"
    assert stem_prefix("comer") == "come"


def test_a_run_of_letters_longer_than_any_word_is_looked_up_by_its_beginning() -> None:
    token = "ab" * 5000  # a pasted token: found by itself, and not remembered whole
    assert stem_prefix(token) == token[:LONGEST_WORD]
    assert stem_prefix("x" * LONGEST_WORD) == "xxxx"  # a word that long is still stemmed


def test_the_question_is_searched_by_stems() -> None:
    assert search_terms("When did Caroline start painting?") == [
        SearchTerm("carolin", prefix=True),
        SearchTerm("star", prefix=True),  # no stemmer shortens "start"
        SearchTerm("paint", prefix=True),
    ]


def test_stemmers_on_many_threads_give_what_one_gives() -> None:
    """A Snowball stemmer keeps state between calls: each thread has its own."""
    words = [f"{stem}{end}" for stem in ("paint", "walk", "jump") for end in ("s", "ed", "ing")]
    alone = [_stem_prefix.__wrapped__(word) for word in words]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(20):
            assert list(pool.map(_stem_prefix.__wrapped__, words)) == alone


@pytest.mark.parametrize(
    ("question", "searched"),
    [
        ("Quais quadros eu pintei? Quando?", ["quadr", "pint"]),
        ("¿Cuáles cuadros pinté?", ["cuadr", "pint"]),
        ("Quels tableaux ai-je peints ? Pourquoi ?", ["tableau", "peint"]),
        ("Welche Bilder habe ich gemalt? Warum?", ["bild", "gema"]),
    ],
)
def test_a_questions_own_words_are_not_searched_in_the_example_bots_languages(
    question: str, searched: list[str]
) -> None:
    """As "what" and "which" are not: in a short history, a question word in one earlier line
    would weigh as a rare word does."""
    assert [t.word for t in search_terms(question)] == searched
