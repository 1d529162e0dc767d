"""Vectors for semantic recall: stored as bytes, compared in process.

Five kinds of row have vectors (:data:`VectorKind`): transcript lines (``turn``), episodes,
a person's facts (``fact``: the live ``user_memory`` value, as "key: value"), the earlier
values in the fact history (``earlier_fact``, superseded rows only, as recall searches them),
and free-text memories (``memory``, the text alone: its topics are words for the full-text
search, not part of what it says).

A vector is little-endian float32, normalised to length 1 when written, so the dot product of
two is their cosine and no database extension is needed: :class:`InProcessIndex` reads one
person's vectors of one model and scores them in Python (``array``, no numpy). That is
linear in the person's history (about 10 ms per 1,000 vectors of 384 dimensions here); where
the deployment has sqlite-vec (:mod:`.sqlite_vec`) or pgvector (:mod:`.pgvector`), a
:class:`VectorIndex` of theirs compares the same ``recall_vectors`` rows in the database
(``dims`` says a vector's size, ``model`` keeps models apart), and nothing else changes.

Vectors go with their source row: the triggers of migrations 0006 (turns, episodes) and 0009
(facts, their history, memories) delete them when the row is deleted (forget, retention,
roll-up, TTL expiry, a key deleted) or its text changes (a fact's key or value, a memory's
text); the next pass of the filler embeds the new text.

A turn's vector is made from the line and the line said right after it in its session
(:func:`turn_text`): the reply often names what a line only points at ("take a look at
this" before "what a beautiful sunset!"), and the line after a question is its answer. On
LoCoMo's dev split with the local model that put the evidence line among the 20 nearest for
0.44 of evidence lines (0.31 by the line alone; strict evidence-turn recall 0.725 -> 0.745,
bench/README.md). The stored ``model`` of a turn vector says so (:func:`stored_model`), so
vectors of the line alone, written before, are never compared with these: they are left to
go with their turns, and the catch-up pass embeds those turns again. The line after is newer,
so retention, which deletes the oldest lines first, never leaves it inside a kept vector.
The catch-up pass leaves the turns of a session still open to that session's own job: its
last line has no line after it yet, and would keep a vector of the line alone.

A fact or memory that the bots' sensitive rules hide (:mod:`memory.sensitive`: no model sees
it) is never sent to the embedding model: :meth:`VectorStore.put` stores an empty vector for
it (``dims`` 0), which marks it done, is never near any query, and goes with its row.
"""

from __future__ import annotations

import heapq
import json
import math
import operator
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any, Literal, Protocol

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    func,
    insert,
    select,
)

from mnemobot.runtime.storage.tables import (
    EPISODES,
    FACT_HISTORY,
    RECALL_VECTORS,
    SESSIONS,
    TURNS,
    USER_MEMORIES,
    USER_MEMORY,
)

__all__ = [
    "TURN_TEXT",
    "InProcessIndex",
    "Unembedded",
    "VectorIndex",
    "VectorKind",
    "VectorStore",
    "fact_text",
    "normalised",
    "pack",
    "stored_model",
    "turn_text",
    "unpack",
]

VectorKind = Literal["turn", "episode", "fact", "earlier_fact", "memory"]
PERSON_KINDS: tuple[VectorKind, ...] = ("fact", "memory", "earlier_fact")  # not of a session

_v = RECALL_VECTORS.c

TURN_TEXT = "next"  # a turn's vector: the line and the one after it (stored_model's mark)


def stored_model(model: str, kind: VectorKind) -> str:
    """The ``model`` column of a vector of ``kind``: a turn's says how its text was made."""
    return f"{model}#{TURN_TEXT}" if kind == "turn" else model


def turn_text(line: str, after: str | None) -> str:
    """What a turn's vector is made from: the line, then the line said right after it."""
    return line if after is None else f"{line}\n{after}"


def normalised(values: Sequence[float]) -> array[float]:
    """``values`` scaled to length 1 (a zero vector stays zero), as float32."""
    vector = array("f", values)
    length = math.sqrt(sum(x * x for x in vector))
    if length > 0:
        vector = array("f", (x / length for x in vector))
    return vector


def pack(vector: array[float]) -> bytes:
    """The stored form: float32, little-endian whatever the machine."""
    if sys.byteorder != "little":
        vector = array("f", vector)
        vector.byteswap()
    return vector.tobytes()


def unpack(blob: bytes) -> array[float]:
    vector = array("f")
    vector.frombytes(blob)
    if sys.byteorder != "little":
        vector.byteswap()
    return vector


def fact_text(key: str, value: Any) -> str:
    """What a fact's vector is made from: "favourite food: sushi" for ``favourite_food``.

    The key's underscores and dashes read as spaces, so its words mean what they say to the
    model; a value that is not a string is its JSON.
    """
    words = " ".join(key.replace("_", " ").replace("-", " ").split())
    if value is None:
        return words
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"{words}: {shown}"


@dataclass(frozen=True, slots=True)
class Unembedded:
    """A row with no vector of the model yet: what to embed.

    ``key`` and ``value`` (facts and memories only) are what the sensitive rules are checked
    against before ``text`` may go to the model.
    """

    kind: VectorKind
    id: str
    user_id: str
    text: str
    key: str | None = None
    value: Any = None


class VectorIndex(Protocol):
    """Finds one person's nearest vectors of one model; the seam for sqlite-vec and pgvector."""

    def nearest(
        self,
        conn: Connection,
        user_id: str,
        model: str,
        kind: VectorKind,
        query: array[float],
        limit: int,
    ) -> list[tuple[str, float]]:
        """Up to ``limit`` (source id, cosine similarity), most similar first."""
        ...


_PERSON_VECTORS = select(_v.source_id, _v.vector).where(
    _v.user_id == bindparam("user_id"),
    _v.model == bindparam("model"),
    _v.source_kind == bindparam("kind"),
)


class InProcessIndex:
    """Scores every vector the person has of the model, in Python; needs no extension."""

    def nearest(
        self,
        conn: Connection,
        user_id: str,
        model: str,
        kind: VectorKind,
        query: array[float],
        limit: int,
    ) -> list[tuple[str, float]]:
        if limit < 1:
            return []
        stored = stored_model(model, kind)
        rows = conn.execute(_PERSON_VECTORS, {"user_id": user_id, "model": stored, "kind": kind})
        dims = len(query)
        scored = (
            (sum(map(operator.mul, query, vector)), source_id)
            for source_id, blob in rows
            if len(vector := unpack(blob)) == dims
        )
        return [(source_id, score) for score, source_id in heapq.nlargest(limit, scored)]


def _text_present(column: Column[str]) -> ColumnElement[bool]:
    return func.length(func.trim(column)) > 0


_SOURCE_OF: dict[VectorKind, Table] = {
    "turn": TURNS,
    "episode": EPISODES,
    "fact": USER_MEMORY,
    "earlier_fact": FACT_HISTORY,
    "memory": USER_MEMORIES,
}
_SESSION_OF: dict[VectorKind, Column[str]] = {
    "turn": TURNS.c.session_id,
    "episode": EPISODES.c.conversation_id,
}


_t, _e, _f, _h, _n = TURNS.c, EPISODES.c, USER_MEMORY.c, FACT_HISTORY.c, USER_MEMORIES.c
# kind -> the columns its text is made from, and what else a row needs to be recalled at all:
# a text (a fact's key is never empty), and for the history a superseded value (the live one
# is the fact itself), as recall's searches read them.
_TEXT_OF: dict[VectorKind, tuple[tuple[Column[Any], ...], ColumnElement[bool] | None]] = {
    "turn": ((_t.text,), _text_present(_t.text)),
    "episode": ((_e.summary,), _text_present(_e.summary)),
    "fact": ((_f.key, _f.value), None),
    "earlier_fact": ((_h.key, _h.value), _h.superseded_at.is_not(None)),
    "memory": ((_n.memory,), _text_present(_n.memory)),
}


_still_open = exists().where(SESSIONS.c.id == TURNS.c.session_id, SESSIONS.c.ended_at.is_(None))


def _missing(kind: VectorKind, model: str) -> Select[Any]:
    """Rows of ``kind`` with no ``model`` vector, oldest first: id, user_id, text columns."""
    t = _SOURCE_OF[kind].c
    columns, recalled = _TEXT_OF[kind]
    vector = and_(
        _v.source_kind == kind, _v.source_id == t.id, _v.model == stored_model(model, kind)
    )
    query = (
        select(t.id, t.user_id, *columns)
        .outerjoin(RECALL_VECTORS, vector)
        .where(_v.source_id.is_(None), t.user_id.is_not(None))
        .order_by(t.created_at, t.id)
    )
    return query if recalled is None else query.where(recalled)


def _as_read(item: Unembedded) -> tuple[str, ...]:
    """What must not have changed for ``item``'s vector to be stored: its row and person,
    and for a fact or memory (whose text a bot rewrites) the text the vector is made from."""
    if item.kind in PERSON_KINDS:
        return (item.kind, item.id, item.user_id, item.text)
    return (item.kind, item.id, item.user_id)


def _unembedded(kind: VectorKind, row: Any) -> Unembedded:
    if kind in ("fact", "earlier_fact"):
        source_id, user_id, key, value = row
        return Unembedded(kind, source_id, user_id, fact_text(key, value), key, value)
    source_id, user_id, text = row
    if kind == "memory":
        return Unembedded(kind, source_id, user_id, text, None, text)
    return Unembedded(kind, source_id, user_id, text)


def _lines_after(conn: Connection, ids: Sequence[str]) -> dict[str, str]:
    """For each turn of ``ids``, the text of the line said right after it in its session (by
    created_at, seq, id, as recall.around orders them) by the same person; turns that are
    their session's last are left out. Reads the sessions of ``ids`` whole: one session after
    it ends, as a rule."""
    if not ids:
        return {}
    sessions = select(_t.session_id).where(_t.id.in_(ids)).distinct().scalar_subquery()
    rows = conn.execute(
        select(_t.id, _t.session_id, _t.user_id, _t.text)
        .where(_t.session_id.in_(sessions))
        .order_by(_t.session_id, _t.created_at, _t.seq, _t.id)
    ).all()
    wanted = set(ids)
    return {
        line.id: following.text
        for line, following in pairwise(rows)
        if line.id in wanted
        and (line.session_id, line.user_id) == (following.session_id, following.user_id)
    }


class VectorStore:
    """Reads what lacks a vector and writes vectors; statements are dialect-neutral."""

    def unembedded(
        self,
        conn: Connection,
        model: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        limit: int,
    ) -> list[Unembedded]:
        """Rows with no ``model`` vector, oldest first within each kind, ``limit`` at most.

        ``session_id``: that session's turns, then its episode. ``user_id``: that person's
        facts, memories and earlier fact values. Neither: any of them, the person kinds
        first (a few rows a person, each worth more to recall than one transcript line, so a
        long backlog of old transcript never holds them up), then turns of ended sessions
        (an open one's are its ``embed_session`` job's), then episodes.
        """
        if session_id is not None and user_id is not None:
            raise ValueError("unembedded: a session's rows or a person's, not both")
        kinds: tuple[VectorKind, ...]
        if session_id is not None:
            kinds = ("turn", "episode")
        elif user_id is not None:
            kinds = PERSON_KINDS
        else:
            kinds = (*PERSON_KINDS, "turn", "episode")
        found: list[Unembedded] = []
        for kind in kinds:
            room = limit - len(found)
            if room <= 0:
                break
            query = _missing(kind, model).limit(room)
            if session_id is not None:
                query = query.where(_SESSION_OF[kind] == session_id)
            if user_id is not None:
                query = query.where(_SOURCE_OF[kind].c.user_id == user_id)
            if kind == "turn" and session_id is None:
                query = query.where(~_still_open)
            rows: Sequence[Any] = conn.execute(query).all()
            if kind == "turn":  # the line and the one said after it (turn_text)
                after = _lines_after(conn, [row[0] for row in rows])
                rows = [(i, u, turn_text(text, after.get(i))) for i, u, text in rows]
            found.extend(_unembedded(kind, row) for row in rows)
        return found

    def put(
        self,
        conn: Connection,
        model: str,
        embedded: Sequence[tuple[Unembedded, array[float]]],
        now: datetime,
    ) -> int:
        """Store vectors (already normalised; empty for a row kept from the model); those
        another worker stored meanwhile are kept, and none is stored for a row that went, or
        changed hands or text, since it was read (:meth:`_current`)."""
        if not embedded:
            return 0
        ids = [item.id for item, _ in embedded]
        models = {stored_model(model, item.kind) for item, _ in embedded}
        there = set(
            conn.execute(
                select(_v.source_kind, _v.source_id).where(
                    _v.model.in_(models), _v.source_id.in_(ids)
                )
            ).all()
        )
        current = self._current(conn, [item for item, _ in embedded])
        rows = [
            {
                "source_kind": item.kind,
                "source_id": item.id,
                "model": stored_model(model, item.kind),
                "user_id": item.user_id,
                "dims": len(vector),
                "vector": pack(vector),
                "created_at": now,
            }
            for item, vector in embedded
            if (item.kind, item.id) not in there and _as_read(item) in current
        ]
        if rows:
            conn.execute(insert(RECALL_VECTORS), rows)
        return len(rows)

    @staticmethod
    def _current(conn: Connection, items: Sequence[Unembedded]) -> set[tuple[str, ...]]:
        """Of ``items``, those whose row is still as it was read (:func:`_as_read`): the
        embedding call takes a while, and a vector stored for a row deleted or rewritten
        meanwhile would outlive the trigger that fired for it. The rows are held till commit
        (PostgreSQL ``FOR SHARE``), so a change waits for the vector and its trigger then
        removes it; a row being changed right now is skipped (``SKIP LOCKED``: no waiting, no
        deadlock with a turn) and embedded by a later pass. SQLite's writes are serial."""
        current: set[tuple[str, ...]] = set()
        for kind in dict.fromkeys(item.kind for item in items):
            t = _SOURCE_OF[kind].c
            columns = _TEXT_OF[kind][0] if kind in PERSON_KINDS else ()
            ids = [item.id for item in items if item.kind == kind]
            query = (
                select(t.id, t.user_id, *columns)
                .where(t.id.in_(ids))
                .with_for_update(read=True, skip_locked=True)
            )
            found = conn.execute(query).all()
            if kind in PERSON_KINDS:
                current.update(_as_read(_unembedded(kind, row)) for row in found)
            else:
                current.update((kind, source_id, user_id) for source_id, user_id in found)
        return current

    def count(self, conn: Connection, user_id: str | None = None) -> int:
        """Vectors stored (a person's, or all): for tests and ``mnemobot`` diagnostics."""
        query = select(func.count()).select_from(RECALL_VECTORS)
        if user_id is not None:
            query = query.where(_v.user_id == user_id)
        return int(conn.execute(query).scalar() or 0)
