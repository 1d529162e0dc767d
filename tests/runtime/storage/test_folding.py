"""A query's words folded as the recall index folds text (storage.folding): SQLite's FTS5
takes accents off Latin letters only and leaves every other letter as written."""

from __future__ import annotations

import pytest

from mnemobot.runtime.storage.folding import Fts5Folding, latin_fold


@pytest.mark.parametrize(
    ("written", "folded"),
    [
        ("São Paulo", "sao paulo"),
        ("Crème BRÛLÉE", "creme brulee"),
        ("e\u0301te\u0301", "ete"),  # accents typed apart from their letters
        ("Чайковский Ёлка", "чайковский ёлка"),  # "й" and "ё" are letters of their own
        ("한국어", "한국어"),  # a Hangul syllable is not taken apart into its letters
        ("ビデオゲーム", "ビデオゲーム"),  # nor a voiced kana
        ("Γιώργος", "γιώργος"),
    ],
)
def test_latin_fold_takes_accents_off_latin_letters_only(written: str, folded: str) -> None:
    assert latin_fold(written) == folded


def test_fts5_folding_folds_as_the_index_tokenizer_does() -> None:
    fold = Fts5Folding()

    assert fold("São Paulo") == "sao paulo"
    assert fold("Γιώργος") == "γιώργοσ"  # FTS5 keeps Greek accents, makes a final sigma σ
    assert fold("한국어 ビデオゲーム Чайковский") == "한국어 ビデオゲーム чайковский"
    assert fold("İstanbul") == "istanbul"
    assert fold("naïve—Zoë") == "naive zoe"  # a dash ends a word, as in the index
    assert fold("PLAIN ascii") == "plain ascii"
    assert fold("caf\udcff bar") == "caf  bar"  # undecodable bytes of a command line


def test_the_folding_asks_the_tokenizer_the_index_was_made_with(tmp_path) -> None:
    from sqlalchemy import text

    from mnemobot.runtime.storage.database import Database
    from mnemobot.runtime.storage.fulltext import SOURCES
    from mnemobot.runtime.storage.migrate import upgrade

    db = Database(f"sqlite:///{tmp_path / 'index.db'}")
    db.start()
    try:
        upgrade(db)
        with db.read() as conn:
            made = {
                name: sql
                for name, sql in conn.execute(text("SELECT name, sql FROM sqlite_master"))
                if name in {f"{source}_fts" for source in SOURCES}
            }
    finally:
        db.stop()
    assert len(made) == len(SOURCES)
    assert all(f'tokenize="{Fts5Folding.TOKENIZER}"' in sql for sql in made.values()), made


def test_scripts_written_without_spaces_are_indexed_character_by_character() -> None:
    from mnemobot.runtime.storage.folding import spaced, units

    assert spaced("我在北京 ok") == " 我  在  北  京  ok"
    assert units("ข้าวผัด") == ["ข้", "า", "ว", "ผั", "ด"]  # a letter keeps its marks
    assert spaced("한국어 and ascii") == "한국어 and ascii"  # written with spaces: as it is
    assert spaced(None) is None and spaced(42) == 42  # what a trigger may hand it
