"""A transcript line ranked with the lines around it and its conversation's summary.

A question's words are often not in the line that answers it but in the line said before it
(the question it answers: "How long have you had them?" before "3 years now!") or after it
(the reply that names the thing). So the best hits of a search are read with the lines right
before and after them in their session, and every one of those lines is ranked by its own
strength plus a share of its neighbours'; a line no word matched can then outrank a weak hit,
and a hit whose neighbours matched too (a passage about the question) outranks a lone one.
A conversation whose summary matched the question lifts its lines a little.

Strengths come from places, not raw scores: FTS5's bm25 and PostgreSQL's ts_rank_cd differ
in scale, and semantic fusion keeps only the order. The hit at place r (0-based) has strength
1 / (1 + r / :data:`PLACES`).

Measured on LoCoMo's development split (bench/recall.py, memory budget 1,500 tokens), with
the best 5 hits bringing only the line after them as the baseline: strict evidence-turn recall
0.677 -> 0.711 (x1) and 0.573 -> 0.648 (~10x history), evidence-session recall 0.975 -> 0.963
and 0.958 -> 0.919 (more lines of the best conversations go in). The weights were chosen on
that split; the line before weighs more than the line after because most answers follow the
line that asked for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import BindParameter, ColumnElement, Connection, and_, bindparam, func, or_, select

from mnemobot.runtime.storage.tables import TURNS

if TYPE_CHECKING:
    from mnemobot.runtime.recall.search import Recalled

__all__ = [
    "AFTER",
    "BEFORE",
    "EPISODE_LIFT",
    "PLACES",
    "Around",
    "neighbours",
    "ranked_in_context",
    "strength",
]

BEFORE = 0.7  # the line said right before lends this share of its strength
AFTER = 0.3  # the line said right after lends this share of its strength
PLACES = 10  # strength at place r: 1 / (1 + r / PLACES)
EPISODE_LIFT = 1.0  # a line of a conversation whose summary matched: x (1 + this x its strength)


@dataclass(frozen=True, slots=True)
class Around:
    """The ids of the lines said right before and after a line in its session."""

    before: str | None
    after: str | None


# A line's place in its session: (created_at, seq), then id (rows of one turn may share both).
# Each hit's neighbours are found by seeks in the session's (session_id, created_at) index: the
# next line of the same moment, else the first line of the moment before (after) it. A window
# function over the hits' whole sessions read every line of up to 40 sessions (100,000 lines:
# 2,000 rows for 80 wanted); one ORDER BY created_at, seq, id sorted every line up to the hit.
# Lines are found by id, and then checked to be the person's: "user_id || ''" keeps SQLite off
# the user_id index, which it prefers to the id's for a list of ids and walks every line of the
# person with.
_HIT = TURNS.alias("hit")
_LINE = TURNS.alias("line")
_MOMENT = TURNS.alias("moment")


def _next_line(direction: str) -> ColumnElement[Any]:
    """The id of the person's line right before (``"before"``) or after a hit in its session."""
    earlier = direction == "before"
    line, moment, hit = _LINE.c, _MOMENT.c, _HIT.c

    def past(a: Any, b: Any) -> Any:
        return a < b if earlier else a > b

    def nearest(*columns: Any) -> list[Any]:
        return [c.desc() if earlier else c.asc() for c in columns]

    person: BindParameter[Any] = bindparam("user_id")
    same_moment = (
        select(line.id)
        .where(
            line.session_id == hit.session_id,
            line.user_id == person,
            line.created_at == hit.created_at,
            or_(past(line.seq, hit.seq), and_(line.seq == hit.seq, past(line.id, hit.id))),
        )
        .order_by(*nearest(line.seq, line.id))
        .limit(1)
        .scalar_subquery()
    )
    next_moment = (
        select(moment.created_at)
        .where(
            moment.session_id == hit.session_id,
            moment.user_id == person,
            past(moment.created_at, hit.created_at),
        )
        .order_by(*nearest(moment.created_at))
        .limit(1)
        .correlate(_HIT)  # nested a level deeper than the hit's query: say where hit comes from
        .scalar_subquery()
    )
    at_next_moment = (
        select(line.id)
        .where(
            line.session_id == hit.session_id,
            line.user_id == person,
            line.created_at == next_moment,
        )
        .order_by(*nearest(line.seq, line.id))
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(same_moment, at_next_moment)


_PLACES = select(
    _HIT.c.id,
    _HIT.c.session_id,
    _HIT.c.created_at,
    _HIT.c.seq,
    _next_line("before").label("before"),
    _next_line("after").label("after"),
).where(
    _HIT.c.user_id.concat("") == bindparam("user_id"),
    _HIT.c.id.in_(bindparam("hits", expanding=True)),
)
_LINES = select(
    TURNS.c.id,
    TURNS.c.session_id,
    TURNS.c.role,
    TURNS.c.text,
    TURNS.c.seq,
    TURNS.c.created_at,
    TURNS.c.bot,
).where(
    TURNS.c.user_id.concat("") == bindparam("user_id"),
    TURNS.c.id.in_(bindparam("ids", expanding=True)),
)


def strength(place: int) -> float:
    """How strong the hit at ``place`` (0-based) of its list is: 1 at the top, 1/2 at PLACES."""
    return 1.0 / (1.0 + place / PLACES)


def neighbours(
    conn: Connection, user_id: str, hits: Sequence[Recalled]
) -> tuple[dict[str, Around], list[dict[str, Any]]]:
    """Where each of ``hits`` sits in its session, and the lines right before and after them.

    Two statements for all of them: each hit's neighbours' ids (two index seeks a hit), then
    those lines read whole, each with ``next_to``, the id of the hit it is next to (the one
    it follows, when it sits between two). Both in session and time order. Only
    ``user_id``'s lines.
    """
    if not hits:
        return {}, []
    wanted = {hit.id for hit in hits}
    found = conn.execute(_PLACES, {"user_id": user_id, "hits": sorted(wanted)}).mappings().all()
    found = sorted(found, key=_in_session)
    places = {row["id"]: Around(row["before"], row["after"]) for row in found}
    next_to: dict[str, str] = {}
    for hit_id, around in places.items():  # the hit a line follows wins over the one it precedes
        if around.before is not None and around.before not in wanted:
            next_to.setdefault(around.before, hit_id)
        if around.after is not None and around.after not in wanted:
            next_to[around.after] = hit_id
    if not next_to:
        return places, []
    rows = conn.execute(_LINES, {"user_id": user_id, "ids": sorted(next_to)}).mappings().all()
    lines = [{**row, "next_to": next_to[row["id"]]} for row in sorted(rows, key=_in_session)]
    return places, lines


def _in_session(row: Any) -> tuple[Any, ...]:
    return (row["session_id"], row["created_at"], row["seq"], row["id"])


def ranked_in_context(
    hits: Sequence[Recalled],
    places: dict[str, Around],
    lines: Sequence[Recalled],
    episodes: Sequence[Recalled] = (),
) -> list[tuple[Recalled, float | None]]:
    """``hits`` (best first) and the ``lines`` around them, ranked with their neighbours.

    Lines whose place is known (the hits in ``places`` and the ``lines`` next to them) are
    ranked by their strength plus :data:`BEFORE` and :data:`AFTER` shares of their
    neighbours', lifted by their conversation's summary among ``episodes``; the other hits
    follow in their own order (strength None). Best first; ties keep the hits' order.
    """
    own = {hit.id: strength(place) for place, hit in enumerate(hits)}
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    for hit_id, around in places.items():
        if around.before is not None:
            before[hit_id], after[around.before] = around.before, hit_id
        if around.after is not None:
            after[hit_id], before[around.after] = around.after, hit_id
    lift: dict[str, float] = {}
    for place, episode in enumerate(episodes):
        if episode.session_id is not None:
            lift.setdefault(episode.session_id, 1.0 + EPISODE_LIFT * strength(place))
    by_id = {hit.id: hit for hit in hits} | {line.id: line for line in lines}
    known = [by_id[key] for key in dict.fromkeys([*places, *(line.id for line in lines)])]

    def in_context(line: Recalled) -> float:
        value = own.get(line.id, 0.0)
        value += BEFORE * own.get(before.get(line.id, ""), 0.0)
        value += AFTER * own.get(after.get(line.id, ""), 0.0)
        return value * lift.get(line.session_id or "", 1.0)

    scored = sorted(((in_context(line), n, line) for n, line in enumerate(known)), key=_best)
    ranked: list[tuple[Recalled, float | None]] = [(line, value) for value, _, line in scored]
    placed = {line.id for line in known}
    ranked += [(hit, None) for hit in hits if hit.id not in placed]
    return ranked


def _best(scored: tuple[float, int, Recalled]) -> tuple[float, int]:
    return (-scored[0], scored[1])
