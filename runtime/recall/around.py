"""A transcript line ranked with the lines around it and its conversation's summary.

A question's words are often not in the line that answers it but in the line said before it
(the question it answers: "How long have you had them?" before "3 years now!") or after it
(the reply that names the thing), or in what the same speaker said just before, the other's
reply between them ("I'll share the recipe!" ... "Awesome! I'm making it for my family this
weekend"). So the best hits of a search are read with the lines right before and after them in
their session, the very best also with the line two after, and every one of those lines is
scored from what is known of it and of its neighbours (:class:`ContextWeights`): how strong a
hit each is, by its place and by how near its match comes to the best one's; whether the line
before asks a question (the line is then its answer); whether it holds a number (a date, a
count, an age); whether its conversation's summary matched; how strong a hit the line two
before it is. A line no word matched can then outrank a weak hit, and a hit whose neighbours
matched too (a passage about the question) outranks a lone one.

A hit's strength by place: the hit at place r (0-based) has 1 / (1 + r / :data:`PLACES`). Its
match: its relevance (BM25, or the fused score with meaning) over the best hit's, so a score
scale (FTS5's, PostgreSQL's, fusion's) never matters, only how close a hit comes to the best.

The weights (:data:`FITTED`) were fitted on LoCoMo's development split by the words alone
(bench/recall.py; pairwise logistic regression of each question's evidence lines against its
other candidates, histories x1 and x3), and checked by fitting on two conversations and
measuring the third: strict evidence-turn recall 0.721 -> 0.748 (x1) and 0.689 -> 0.718 (x3),
evidence-session recall 0.961 -> 0.959 and 0.951 -> 0.945 (bench/README.md). Before, a line
scored its strength plus 0.7 of the line before's and 0.3 of the line after's, doubled at most
by its summary. With meaning fused the same weights, never fitted on it: strict 0.782 -> 0.791
with the local model, session 0.970 -> 0.965.

The line two after the best hits (:data:`FOLLOWED_HITS`) came after those weights, its one
weight chosen on the same split with them kept (bench/README.md): strict 0.750 -> 0.761 (x1),
0.716 -> 0.729 (x3), 0.791 -> 0.795 with the local model, evidence-session recall unchanged
(0.958 x1). Most of it is one conversation's (+8 evidence lines of 282; the other two +2 and -1):
how often a speaker goes on about what they said after the other's reply is a property of a
person's way of talking, which the acceptance conversations may have less of.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from mnemobot.runtime.storage.fulltext import lines_at

if TYPE_CHECKING:
    from mnemobot.runtime.recall.search import Recalled

__all__ = [
    "FITTED",
    "PLACES",
    "Around",
    "ContextWeights",
    "neighbours",
    "ranked_in_context",
    "strength",
]

PLACES = 10  # strength at place r: 1 / (1 + r / PLACES)
FOLLOWED_HITS = 5  # the best hits whose line two after is read too
# (dev split, weight 1.0, at 0 / 5 / 10 / 20 hits: strict x1 0.750 / 0.761 / 0.761 / 0.761,
# x3 0.716 / 0.729 / 0.730 / 0.735, local model 0.791 / 0.795 / 0.796 / 0.794; evidence-session
# recall x1 0.958 / 0.958 / 0.956 / 0.953)
QUESTION_MARKS = "?\uff1f\u061f\u037e\u055e"  # ? and the full-width, Arabic, Greek, Armenian ones
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True, slots=True)
class ContextWeights:
    """What each thing known of a line ranked in context adds to its score.

    ``own``, ``before`` and ``after``: the line's strength as a hit by its place, and its
    neighbours' (0 for a line no word matched). ``match*``: the same lines' relevance over
    the best hit's. ``summary``: the strength of its conversation's summary among the
    episodes found (0 when it did not match), and ``*_summary`` the products of that with
    ``own``, ``before`` and ``after``. ``number``: the line holds a digit. ``asked``: the line
    before it asks a question, and ``answer`` that times the line before's strength: the
    answer to a question that matched. ``two_before``: the strength of the hit two lines
    before it (the same speaker going on after the other's reply; read for the best
    :data:`FOLLOWED_HITS` hits only).
    """

    own: float
    before: float
    after: float
    match: float = 0.0
    match_before: float = 0.0
    match_after: float = 0.0
    summary: float = 0.0
    own_summary: float = 0.0
    before_summary: float = 0.0
    after_summary: float = 0.0
    number: float = 0.0
    asked: float = 0.0
    answer: float = 0.0
    two_before: float = 0.0


# Fitted on LoCoMo's dev split (module docstring), rounded to 0.05.
FITTED = ContextWeights(
    own=1.7,
    before=0.5,
    after=0.75,
    match=1.9,
    match_before=0.35,
    match_after=1.5,
    summary=1.5,
    own_summary=0.15,
    before_summary=0.4,
    after_summary=-0.35,
    number=0.7,
    asked=0.65,
    answer=1.7,
    two_before=1.0,  # chosen after the others (module docstring): 0.6 / 1.0 / 1.5 gave strict
    # 0.756 / 0.761 / 0.760 (x1), 0.729 / 0.729 / 0.726 (x3)
)


@dataclass(frozen=True, slots=True)
class Around:
    """The ids of the lines said right before and after a line in its session, and two after
    (read for the best hits only: None otherwise)."""

    before: str | None
    after: str | None
    two_after: str | None = None


# A hit's neighbours are the person's lines at its session's ``line`` - 1 and + 1 (stored with
# each line since migration 0011), all read in one statement (storage.fulltext.lines_at).
# Before, each was found by seeks on (session, time, seq, id), four subqueries a hit: ~2 ms a
# prompt for 40 hits at 100,000 lines, against ~0.8 ms now (bench/recall_cost.py).


def strength(place: int) -> float:
    """How strong the hit at ``place`` (0-based) of its list is: 1 at the top, 1/2 at PLACES."""
    return 1.0 / (1.0 + place / PLACES)


def neighbours(
    conn: Connection, user_id: str, hits: Sequence[Recalled], *, followed: int = FOLLOWED_HITS
) -> tuple[dict[str, Around], list[dict[str, Any]]]:
    """Where each of ``hits`` sits in its session, and the lines right before and after them
    (and two after, for the first ``followed`` hits).

    One statement for all of them. Each hit gets an :class:`Around`, in session order; the
    lines returned are those around a hit that are not hits themselves, each with
    ``next_to``, the id of the hit it is next to (the one it follows, when it sits between
    two; one two lines away only when it is next to none), in session order too. Only
    ``user_id``'s lines.

    A hit without a place has no lines around it to read: one written by a worker older than
    migration 0011 while a newer one already searched (a rolling upgrade). It is still a hit,
    ranked alone, after the placed ones when they tie.
    """
    placed = sorted(
        (hit.session_id, hit.line, hit.id)
        for hit in hits
        if hit.session_id is not None and hit.line is not None
    )
    best = {hit.id for hit in hits[:followed]}
    steps = {hit: (-1, 1, 2) if hit in best else (-1, 1) for _, _, hit in placed}
    wanted = sorted(
        {(session, line + step) for session, line, hit in placed for step in steps[hit]}
    )
    rows = lines_at(conn, user_id, wanted)
    at = {(row["session_id"], row["line"]): row["id"] for row in rows}
    places = {
        hit: Around(
            at.get((session, line - 1)),
            at.get((session, line + 1)),
            at.get((session, line + 2)) if hit in best else None,
        )
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
    for hit_id, around in places.items():
        if around.two_after is not None and around.two_after not in hit_ids:
            next_to.setdefault(around.two_after, hit_id)
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
    weights: ContextWeights = FITTED,
) -> list[tuple[Recalled, float]]:
    """The hits whose place is known (those in ``places``) and the ``lines`` next to them,
    ranked with their neighbours and their conversation's summary among ``episodes``, scored
    by ``weights``; the other ``hits`` are left out.

    Best first; ties keep the hits' order. The hits left out (read for ranking by date, past
    those read with their neighbours) would rank below every line here, where a prompt's
    memory budget is spent long before: a long history's prompt handled ~80 of them for
    nothing.
    """
    own = {hit.id: strength(place) for place, hit in enumerate(hits)}
    best = max((hit.relevance or 0.0 for hit in hits), default=0.0)
    match = {hit.id: (hit.relevance or 0.0) / best for hit in hits} if best > 0 else {}
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    for hit_id, around in places.items():
        if around.before is not None:
            before[hit_id], after[around.before] = around.before, hit_id
        if around.after is not None:
            after[hit_id], before[around.after] = around.after, hit_id
    two_before = {around.two_after: hit_id for hit_id, around in places.items() if around.two_after}
    lifted: dict[str, float] = {}
    for place, episode in enumerate(episodes):
        if episode.session_id is not None:
            lifted.setdefault(episode.session_id, strength(place))
    by_id = {hit.id: hit for hit in hits} | {line.id: line for line in lines}
    known = [by_id[key] for key in dict.fromkeys([*places, *(line.id for line in lines)])]
    w = weights

    def in_context(line: Recalled) -> float:
        first, then = before.get(line.id, ""), after.get(line.id, "")
        mine, earlier, later = own.get(line.id, 0.0), own.get(first, 0.0), own.get(then, 0.0)
        summary = lifted.get(line.session_id or "", 0.0)
        previous = by_id.get(first)
        asked = 1.0 if previous is not None and _asks(previous.text) else 0.0
        return (
            w.own * mine
            + w.before * earlier
            + w.after * later
            + w.match * match.get(line.id, 0.0)
            + w.match_before * match.get(first, 0.0)
            + w.match_after * match.get(then, 0.0)
            + summary * (w.summary + w.own_summary * mine)
            + summary * (w.before_summary * earlier + w.after_summary * later)
            + (w.number if _DIGIT.search(line.text) else 0.0)
            + asked * (w.asked + w.answer * earlier)
            + w.two_before * own.get(two_before.get(line.id, ""), 0.0)
        )

    scored = sorted(((in_context(line), n, line) for n, line in enumerate(known)), key=_best)
    return [(line, value) for value, _, line in scored]


def _asks(text: str) -> bool:
    return any(mark in text for mark in QUESTION_MARKS)


def _best(scored: tuple[float, int, Recalled]) -> tuple[float, int]:
    return (-scored[0], scored[1])
