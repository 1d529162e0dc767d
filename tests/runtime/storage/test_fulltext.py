"""The recall index's query execution: what a search reads, and what it remembers between
searches. Every test runs on SQLite and PostgreSQL (the ranking itself is tested through
recall, in tests/runtime/recall)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.fulltext import FullText, SearchTerm
from mnemobot.runtime.storage.tables import SESSIONS, TURNS, USERS, new_id

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def write_lines(db: Database, user_id: str, lines: list[str], per_moment: int = 1) -> list[str]:
    """``lines`` said by ``user_id`` in one new session (the person is made if new), in order;
    ``per_moment`` lines share each second, told apart by ``seq`` (as the rows of one turn
    are). Returns the lines' ids."""
    ids = [new_id() for _ in lines]
    with db.write() as conn:
        if conn.execute(USERS.select().where(USERS.c.id == user_id)).first() is None:
            conn.execute(insert(USERS).values(id=user_id, display_name=user_id, created_at=T0))
        session_id = new_id()
        conn.execute(
            insert(SESSIONS).values(
                id=session_id,
                conversation=f"console:b:{user_id}:{session_id}",
                channel="console:b",
                chat_id=user_id,
                user_id=user_id,
                active_bot="b",
                started_at=T0,
                last_activity_at=T0,
            )
        )
        conn.execute(
            insert(TURNS),
            [
                {
                    "id": line_id,
                    "session_id": session_id,
                    "user_id": user_id,
                    "bot": "b",
                    "role": "user",
                    "seq": i % per_moment,
                    "line": i,
                    "text": line,
                    "created_at": T0 + timedelta(seconds=i // per_moment),
                }
                for i, (line_id, line) in enumerate(zip(ids, lines, strict=True))
            ],
        )
    return ids


def test_line_counts_are_remembered_until_the_transcript_grows(database: Database) -> None:
    fulltext = FullText(database)
    zebra = [SearchTerm("zebra"), SearchTerm("zebr", prefix=True)]
    write_lines(database, "ana", ["a zebra here"] * 10 + ["nothing to see"] * 190)

    def counted() -> dict[str, int] | None:
        with database.read() as conn:
            return fulltext.line_counts(conn, zebra, fulltext.lines(conn))

    if not database.is_sqlite:  # PostgreSQL: estimates from its statistics, see below
        return
    assert counted() == {"zebra": 10, "zebr": 10}
    write_lines(database, "ana", ["another zebra"])  # 201 lines: under 1% more
    assert counted() == {"zebra": 10, "zebr": 10}
    write_lines(database, "ana", ["zebras, two"] * 2)  # 203 lines: counted again
    assert counted() == {"zebra": 11, "zebr": 13}


def analyze(database: Database) -> None:
    """What autovacuum does after enough writes: PostgreSQL's statistics of the transcript."""
    with database.write() as conn:
        conn.exec_driver_sql("ANALYZE turns")


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_estimates_counts_from_its_statistics_read_once_per_analyze(
    database: Database,
) -> None:
    """PostgreSQL's exact count, ts_stat, reads the whole index, and counting a common word's
    lines reads them all: the planner's statistics of the index column list the common words
    and the share of lines holding each; a word not listed is rare, and counted."""
    fulltext = FullText(database)
    terms = [SearchTerm("zebra"), SearchTerm("zebr", prefix=True), SearchTerm("okapi")]
    write_lines(database, "ana", ["a zebra here"] * 10 + ["zebras, two"] * 4)
    write_lines(database, "ana", ["nothing to see"] * 186)

    def counted() -> dict[str, int] | None:
        with database.read() as conn:
            return fulltext.line_counts(conn, terms, fulltext.lines(conn))

    # Not analysed since it held lines (a new database): its few lines are counted
    assert counted() == {"zebra": 10, "zebr": 14, "okapi": 0}
    analyze(database)
    with database.read() as conn:
        assert fulltext.lines(conn) == 200
    assert counted() == {"zebra": 10, "zebr": 14, "okapi": 0}  # 200 lines: all sampled, exact
    write_lines(database, "ana", ["zebra"] * 100 + ["okapi"])
    # "zebra" is listed as common: its share is the statistics', until the next ANALYZE
    assert counted() == {"zebra": 10, "zebr": 14, "okapi": 0}
    analyze(database)
    assert counted() == {"zebra": 110, "zebr": 114, "okapi": 1}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_rebuild_gathers_postgresqls_statistics_as_after_a_restore(database: Database) -> None:
    """`mnemobot db reindex` after a restore or an import: PostgreSQL's statistics, which
    say which words are common, are there at once, not when autovacuum comes by."""
    write_lines(database, "ana", ["a zebra here"] * 300)

    def estimated() -> float:
        with database.read() as conn:
            return float(conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE oid = 'turns'::regclass"
            ).scalar_one())  # fmt: skip

    assert estimated() <= 0  # the test database's statistics are of its empty tables
    FullText(database).rebuild()

    assert estimated() == 300
    fulltext = FullText(database)
    with database.read() as conn:
        assert fulltext._common_words(conn, fulltext.lines(conn)) is not None


RARE, COMMON = SearchTerm("okapi"), SearchTerm("tea")


def search(
    database: Database,
    user_id: str,
    limit: int,
    gate: list[SearchTerm],
    enough: int | None = None,
) -> list[tuple[str, float]]:
    fulltext = FullText(database)
    with database.read() as conn:
        rows = fulltext.search(
            conn, "turns", user_id, [RARE, COMMON], limit=limit, now=T0, gates=[gate], enough=enough
        )
    return [(row["text"], row["score"]) for row in rows]


def test_a_gate_that_fills_the_search_ranks_only_its_lines_each_scored_by_every_word(
    database: Database,
) -> None:
    lines = ["okapi and tea", "an okapi", "okapi okapi tea tea", "tea tea tea", "tea for two"]
    write_lines(database, "ana", lines)
    write_lines(database, "bea", ["okapi tea"] * 5)  # another person's lines: never returned
    write_lines(database, "cy", ["nothing to do with it"] * 40)

    ungated = search(database, "ana", 10, [])
    assert {text for text, _ in ungated} == set(lines)
    assert "tea tea tea" in [text for text, _ in ungated[:3]]  # without the gate, in the best 3
    gated = search(database, "ana", 3, [RARE])
    assert {text for text, _ in gated} == {"okapi and tea", "an okapi", "okapi okapi tea tea"}
    assert [score for _, score in gated] == sorted((s for _, s in gated), reverse=True)
    scores = dict(ungated)
    for text, score in gated:  # the same score as when every line holding a word is ranked
        assert abs(score - scores[text]) < 1e-9


def test_a_gate_that_cannot_fill_the_search_is_not_used(database: Database) -> None:
    write_lines(database, "ana", ["okapi and tea", "tea", "tea for two", "more tea"])
    assert search(database, "ana", 3, [RARE]) == search(database, "ana", 3, [])
    assert len(search(database, "ana", 3, [RARE])) == 3


def test_a_gate_that_fills_what_the_caller_uses_is_kept_though_short_of_the_limit(
    database: Database,
) -> None:
    write_lines(database, "ana", ["okapi and tea", "an okapi", "tea", "tea for two", "more tea"])

    kept = search(database, "ana", 4, [RARE], enough=2)
    short = search(database, "ana", 4, [RARE], enough=3)

    assert {text for text, _ in kept} == {"okapi and tea", "an okapi"}  # one search, gated
    assert short == search(database, "ana", 4, [])  # fewer than enough: every line is ranked
    assert len(short) == 4


def test_a_wider_gate_is_tried_before_none(database: Database) -> None:
    write_lines(database, "ana", ["an okapi"] * 2 + ["a zebu"] * 50 + ["tea"] * 100)
    okapi, zebu, tea = SearchTerm("okapi"), SearchTerm("zebu"), SearchTerm("tea")
    fulltext = FullText(database)

    def texts(enough: int) -> list[str]:
        with database.read() as conn:
            rows = fulltext.search(
                conn, "turns", "ana", [okapi, zebu, tea], limit=200, now=T0,
                gates=[[okapi], [okapi, zebu]], enough=enough,
            )  # fmt: skip
        return [row["text"] for row in rows]

    assert sorted(set(texts(40))) == ["a zebu", "an okapi"]  # the wider gate fills 40
    assert len(texts(40)) == 52
    assert len(texts(60)) == 152  # neither fills 60: every line holding a word is ranked
