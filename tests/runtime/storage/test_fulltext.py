"""The recall index's query execution: what a search reads, and what it remembers between
searches. Every test runs on SQLite and PostgreSQL (the ranking itself is tested through
recall, in tests/runtime/recall)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.fulltext import FullText, SearchTerm
from mnemobot.runtime.storage.tables import SESSIONS, TURNS, USERS, new_id

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def write_lines(db: Database, user_id: str, lines: list[str]) -> None:
    """``lines`` said by ``user_id`` in one new session (the person is made if new)."""
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
                    "id": new_id(),
                    "session_id": session_id,
                    "user_id": user_id,
                    "bot": "b",
                    "role": "user",
                    "text": line,
                    "created_at": T0 + timedelta(seconds=i),
                }
                for i, line in enumerate(lines)
            ],
        )


def test_line_counts_are_remembered_until_the_transcript_grows(database: Database) -> None:
    fulltext = FullText(database)
    zebra = [SearchTerm("zebra"), SearchTerm("zebr", prefix=True)]
    write_lines(database, "ana", ["a zebra here"] * 10 + ["nothing to see"] * 190)

    def counted() -> dict[str, int] | None:
        with database.read() as conn:
            return fulltext.line_counts(conn, zebra, fulltext.lines(conn))

    if not database.is_sqlite:  # PostgreSQL has no cheap count: every word is searched
        assert counted() is None
        return
    assert counted() == {"zebra": 10, "zebr": 10}
    write_lines(database, "ana", ["another zebra"])  # 201 lines: under 1% more
    assert counted() == {"zebra": 10, "zebr": 10}
    write_lines(database, "ana", ["zebras, two"] * 2)  # 203 lines: counted again
    assert counted() == {"zebra": 11, "zebr": 13}
