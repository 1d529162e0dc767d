"""What of a question is embedded: without the words in many of the person's lines."""

from __future__ import annotations

import re

from mnemobot.runtime.recall.query import (
    COMMON_IN_MEANING,
    COMMON_IN_MEANING_FLOOR,
    _LinesHolding,
    fold,
    meaning_query,
)

# 200 lines: a word in more than 16 of them (8%) is common; "race" is in 2
LINES = [
    *[f"Thanks, Melanie! That is great number {n}." for n in range(17)],
    "I ran a charity race last week",
    "The race was for mental health",
    *[f"filler line number {n}" for n in range(181)],
]


def test_a_name_in_many_lines_is_left_out_and_the_rest_kept_as_written() -> None:
    assert (COMMON_IN_MEANING, COMMON_IN_MEANING_FLOOR, len(LINES)) == (0.08, 10, 200)
    assert meaning_query("When did Melanie run a charity race?", LINES) == (
        "When did run a charity race?"
    )
    assert meaning_query("When did Melanie run?", LINES[2:]) == "When did Melanie run?"  # 15


def test_a_word_is_counted_as_the_search_looks_it_up() -> None:
    # "Melanie's" is "melan", as "Melanie" is; "the" and "a" are stop words and stay
    assert meaning_query("What is Melanie's favourite book?", LINES) == ("What is favourite book?")
    mel = ["Mel is great", *LINES]  # "mel" (3 letters) is itself, not "melan"
    assert meaning_query("Is Mel the best?", mel) == "Is Mel the best?"


def test_a_short_history_keeps_every_word() -> None:
    lines = [*(["Thanks, Melanie!"] * 10), "I ran a charity race"]  # 10 of 11, at the floor
    assert meaning_query("When did Melanie run?", lines) == "When did Melanie run?"
    assert meaning_query("When did Melanie run?", [*lines, "Melanie"]) == "When did run?"


def test_a_question_of_common_words_alone_and_a_new_person_keep_the_question() -> None:
    assert meaning_query("Melanie?", LINES) == "Melanie?"
    assert meaning_query("When did Melanie run?", []) == "When did Melanie run?"


def test_lines_are_counted_by_their_words_whatever_the_script() -> None:
    """A key is counted where a word starts with it (or is it, when shorter than four
    letters), once a line: as splitting every line into its words would count it."""
    lines = [
        "São Paulo é ótimo; Ünïcode_test naïve",
        "x_mela mela Melanie\nmel, melanie's",
        "ﬁne ﬁsh 日本語 テスト",
        "dog dogs hotdog do_g dog",
        "",
        *LINES[:30],
    ]

    def by_words(key: str) -> int:
        return sum(1 for line in lines if key in {w[:4] for w in re.findall(r"\w+", fold(line))})

    keys = {w[:4] for line in lines for w in re.findall(r"\w+", fold(line))}
    holding = _LinesHolding(lines)
    assert {key: holding.count(key) for key in keys} == {key: by_words(key) for key in keys}
    assert (holding.count("mela"), holding.count("dog"), holding.count("sao")) == (
        18,
        1,
        1,
    )  # 17 of LINES and one here
    # a ligature stays a letter of its own, as SQLite's index keeps it
    assert (holding.count("ﬁne"), holding.count("fine")) == (1, 0)
