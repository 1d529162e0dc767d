"""recall.around.neighbours against the database: the lines said right before and after each
hit in its session, found by their places (``turns.line``). On SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select, update

from mnemobot.runtime.recall.around import Around, neighbours
from mnemobot.runtime.recall.search import Recalled
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.fulltext import place_lines
from mnemobot.runtime.storage.tables import TURNS
from tests.runtime.storage.test_fulltext import T0, write_lines


def hit(database: Database, line_id: str) -> Recalled:
    """The line ``line_id`` as a search finds it: with its session and its place there."""
    with database.read() as conn:
        session_id, line = conn.execute(
            select(TURNS.c.session_id, TURNS.c.line).where(TURNS.c.id == line_id)
        ).one()
    return Recalled("turn", line_id, "", 1.0, 0, T0, session_id=session_id, line=line)


def test_each_hit_gets_the_lines_right_before_and_after_it_in_its_session(
    database: Database,
) -> None:
    # two lines a moment, told apart by seq, as the rows of one turn
    a, b, c, d, e, f = write_lines(database, "ana", list("abcdef"), per_moment=2)
    (other,) = write_lines(database, "ana", ["another session"])
    write_lines(database, "bea", ["someone else"] * 3)
    hits = [hit(database, b), hit(database, d), hit(database, other)]

    with database.read() as conn:
        places, lines = neighbours(conn, "ana", hits, followed=0)

    assert places == {b: Around(a, c), d: Around(c, e), other: Around(None, None)}
    # c sits between two hits: it is next to the one it follows
    assert [(row["text"], row["next_to"]) for row in lines] == [("a", b), ("c", b), ("e", d)]
    assert f not in {row["id"] for row in lines}


def test_the_best_hits_also_get_the_line_two_after_them(database: Database) -> None:
    # the same speaker going on after the other's reply: read for the first ``followed`` hits
    a, b, c, d, e, f, g = write_lines(database, "ana", list("abcdefg"))
    hits = [hit(database, b), hit(database, e)]
    last = hit(database, g)

    with database.read() as conn:
        places, lines = neighbours(conn, "ana", hits, followed=1)
        at_the_end, _ = neighbours(conn, "ana", [last], followed=1)

    assert places == {b: Around(a, c, d), e: Around(d, f)}  # e is not among the best one
    # d sits between the two: next to e, the hit it precedes, not two after b
    assert [(row["text"], row["next_to"]) for row in lines] == [
        ("a", b), ("c", b), ("d", e), ("f", e)
    ]  # fmt: skip
    assert at_the_end == {g: Around(f, None, None)}  # nothing after a session's last line


def test_another_persons_lines_are_never_neighbours(database: Database) -> None:
    (mine,) = write_lines(database, "ana", ["mine"])
    theirs = write_lines(database, "bea", ["before", "theirs", "after"])
    with database.read() as conn:  # bea's line handed in as a hit of ana's: no line around it
        places, lines = neighbours(conn, "ana", [hit(database, theirs[1]), hit(database, mine)])
    assert places == {theirs[1]: Around(None, None), mine: Around(None, None)}
    assert lines == []


def test_a_line_written_without_a_place_is_a_hit_with_no_lines_around_it(
    database: Database,
) -> None:
    # a worker older than migration 0011 wrote it while a newer one searched (rolling upgrade)
    _, unnumbered, after = write_lines(database, "ana", ["before", "unnumbered", "after"])
    with database.write() as conn:
        conn.execute(update(TURNS).where(TURNS.c.id == unnumbered).values(line=None))
    with database.read() as conn:
        places, lines = neighbours(conn, "ana", [hit(database, unnumbered), hit(database, after)])
    # ranked alone; and the line after it finds no number before its own to read
    assert places == {after: Around(None, None), unnumbered: Around(None, None)}
    assert list(places) == [after, unnumbered]  # placed hits first
    assert lines == []


def test_lines_without_a_place_are_numbered_with_their_session_and_then_have_neighbours(
    database: Database,
) -> None:
    # A newer worker numbered a session's lines as it wrote them; an older one (before 0011)
    # wrote two more in between, without a place, during a rolling upgrade.
    a, b, c, d, e = write_lines(database, "ana", list("abcde"))
    untouched = write_lines(database, "ana", ["x", "y"])
    with database.write() as conn:
        for line_id in (b, d):
            conn.execute(update(TURNS).where(TURNS.c.id == line_id).values(line=None))
        conn.execute(update(TURNS).where(TURNS.c.id == c).values(line=1))
        conn.execute(update(TURNS).where(TURNS.c.id == e).values(line=2))

    with database.write() as conn:
        assert place_lines(conn) == (2, 1)  # two lines without a place, in one session

    with database.read() as conn:
        numbered = dict(conn.execute(select(TURNS.c.id, TURNS.c.line)).all())
        places, lines = neighbours(conn, "ana", [hit(database, b)])
    assert [numbered[i] for i in (a, b, c, d, e)] == [0, 1, 2, 3, 4]  # in the order said
    assert [numbered[i] for i in untouched] == [0, 1]
    assert places == {b: Around(a, c, d)}  # the best hit: the line two after it too
    assert [row["text"] for row in lines] == ["a", "c", "d"]
    with database.write() as conn:
        assert place_lines(conn) == (0, 0)  # nothing left to number, nothing written
