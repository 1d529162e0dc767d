"""recall.around.neighbours against the database: the lines said right before and after each
hit in its session, found by index seeks. On SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from mnemobot.runtime.recall.around import Around, neighbours
from mnemobot.runtime.recall.search import Recalled
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import TURNS
from tests.runtime.storage.test_fulltext import T0, write_lines


def hit(line_id: str, session_id: str) -> Recalled:
    return Recalled("turn", line_id, "", 1.0, 0, T0, session_id=session_id)


def session_of(database: Database, line_id: str) -> str:
    with database.read() as conn:
        return str(conn.execute(select(TURNS.c.session_id).where(TURNS.c.id == line_id)).scalar())


def test_each_hit_gets_the_lines_right_before_and_after_it_in_its_session(
    database: Database,
) -> None:
    # two lines a moment, told apart by seq, as the rows of one turn
    a, b, c, d, e, f = write_lines(database, "ana", list("abcdef"), per_moment=2)
    (other,) = write_lines(database, "ana", ["another session"])
    write_lines(database, "bea", ["someone else"] * 3)
    session = session_of(database, a)
    hits = [hit(b, session), hit(d, session), hit(other, session_of(database, other))]

    with database.read() as conn:
        places, lines = neighbours(conn, "ana", hits)

    assert places == {b: Around(a, c), d: Around(c, e), other: Around(None, None)}
    # c sits between two hits: it is next to the one it follows
    assert [(row["text"], row["next_to"]) for row in lines] == [("a", b), ("c", b), ("e", d)]
    assert f not in {row["id"] for row in lines}


def test_another_persons_lines_are_never_neighbours(database: Database) -> None:
    (mine,) = write_lines(database, "ana", ["mine"])
    theirs = write_lines(database, "bea", ["before", "theirs", "after"])
    with database.read() as conn:
        places, lines = neighbours(
            conn, "ana", [hit(theirs[1], session_of(database, theirs[1])), hit(mine, "x")]
        )
    assert places == {mine: Around(None, None)}
    assert lines == []
