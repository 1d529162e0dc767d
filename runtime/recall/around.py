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

from sqlalchemy import Connection

from mnemobot.runtime.storage.fulltext import lines_at

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


# A hit's neighbours are the person's lines at its session's ``line`` - 1 and + 1 (stored with
# each line since migration 0011), all read in one statement (storage.fulltext.lines_at).
# Before, each was found by seeks on (session, time, seq, id), four subqueries a hit: ~2 ms a
# prompt for 40 hits at 100,000 lines, against ~0.8 ms now (bench/recall_cost.py).


def strength(place: int) -> float:
    """How strong the hit at ``place`` (0-based) of its list is: 1 at the top, 1/2 at PLACES."""
    return 1.0 / (1.0 + place / PLACES)


def neighbours(
    conn: Connection, user_id: str, hits: Sequence[Recalled]
) -> tuple[dict[str, Around], list[dict[str, Any]]]:
    """Where each of ``hits`` sits in its session, and the lines right before and after them.

    One statement for all of them. Each hit gets an :class:`Around`, in session order; the
    lines returned are those next to a hit that are not hits themselves, each with
    ``next_to``, the id of the hit it is next to (the one it follows, when it sits between
    two), in session order too. Only ``user_id``'s lines.

    A hit without a place has no lines around it to read: one written by a worker older than
    migration 0011 while a newer one already searched (a rolling upgrade). It is still a hit,
    ranked alone, after the placed ones when they tie.
    """
    placed = sorted(
        (hit.session_id, hit.line, hit.id)
        for hit in hits
        if hit.session_id is not None and hit.line is not None
    )
    wanted = sorted({(session, line + step) for session, line, _ in placed for step in (-1, 1)})
    rows = lines_at(conn, user_id, wanted)
    at = {(row["session_id"], row["line"]): row["id"] for row in rows}
    places = {
        hit: Around(at.get((session, line - 1)), at.get((session, line + 1)))
        for session, line, hit in placed
    }
    for hit in hits:
        places.setdefault(hit.id, Around(None, None))
    hit_ids = {hit.id for hit in hits}
    next_to: dict[str, str] = {}
    for hit_id, around in places.items():  # the hit a line follows wins over the one it precedes
        if around.before is not None and around.before not in hit_ids:
            next_to.setdefault(around.before, hit_id)
        if around.after is not None and around.after not in hit_ids:
            next_to[around.after] = hit_id
    lines = [
        {**row, "next_to": next_to[row["id"]]}
        for row in sorted(rows, key=lambda row: (row["session_id"], row["line"]))
        if row["id"] in next_to
    ]
    return places, lines


def ranked_in_context(
    hits: Sequence[Recalled],
    places: dict[str, Around],
    lines: Sequence[Recalled],
    episodes: Sequence[Recalled] = (),
) -> list[tuple[Recalled, float]]:
    """The hits whose place is known (those in ``places``) and the ``lines`` next to them,
    ranked with their neighbours; the other ``hits`` are left out.

    Each line is ranked by its strength plus :data:`BEFORE` and :data:`AFTER` shares of its
    neighbours', lifted by its conversation's summary among ``episodes``. Best first; ties
    keep the hits' order. The hits left out (read for ranking by date, past those read with
    their neighbours) would rank below every line here, where a prompt's memory budget is
    spent long before: a long history's prompt handled ~80 of them for nothing.
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
    return [(line, value) for value, _, line in scored]


def _best(scored: tuple[float, int, Recalled]) -> tuple[float, int]:
    return (-scored[0], scored[1])
