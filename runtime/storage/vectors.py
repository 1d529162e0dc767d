"""Vectors of turns and episodes for semantic recall: stored as bytes, compared in process.

A vector is little-endian float32, normalised to length 1 when written, so the dot product of
two is their cosine and no database extension is needed: :class:`InProcessIndex` reads one
person's vectors of one model and scores them in Python (``array``, no numpy). That is
linear in the person's history (about 10 ms per 1,000 vectors of 384 dimensions here); a
deployment with pgvector or sqlite-vec would implement :class:`VectorIndex` over an index of
its own, fed from the same ``recall_vectors`` rows (``dims`` says the column's size, ``model``
keeps models apart), and nothing else would change.

Vectors go with their source row: the triggers of migration 0006 delete them when the turn or
episode is deleted (forget, retention, roll-up) or its text changes.
"""

from __future__ import annotations

import heapq
import math
import operator
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Table,
    and_,
    bindparam,
    func,
    insert,
    select,
)

from mnemobot.runtime.storage.tables import EPISODES, RECALL_VECTORS, TURNS

__all__ = [
    "InProcessIndex",
    "Unembedded",
    "VectorIndex",
    "VectorKind",
    "VectorStore",
    "normalised",
    "pack",
    "unpack",
]

VectorKind = Literal["turn", "episode"]

_v = RECALL_VECTORS.c


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


@dataclass(frozen=True, slots=True)
class Unembedded:
    """A turn or episode with no vector of the model yet: what to embed."""

    kind: VectorKind
    id: str
    user_id: str
    text: str


class VectorIndex(Protocol):
    """Finds one person's nearest vectors of one model; the seam for pgvector/sqlite-vec."""

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
        rows = conn.execute(_PERSON_VECTORS, {"user_id": user_id, "model": model, "kind": kind})
        dims = len(query)
        scored = (
            (sum(map(operator.mul, query, vector)), source_id)
            for source_id, blob in rows
            if len(vector := unpack(blob)) == dims
        )
        return [(source_id, score) for score, source_id in heapq.nlargest(limit, scored)]


def _text_present(column: Column[str]) -> ColumnElement[bool]:
    return func.length(func.trim(column)) > 0


class VectorStore:
    """Reads what lacks a vector and writes vectors; statements are dialect-neutral."""

    def unembedded(
        self, conn: Connection, model: str, *, session_id: str | None = None, limit: int
    ) -> list[Unembedded]:
        """Turns, then episodes, with no ``model`` vector: one session's, or any (oldest first)."""
        found: list[Unembedded] = []
        sources: tuple[tuple[VectorKind, Table, Column[str], Column[str]], ...] = (
            ("turn", TURNS, TURNS.c.text, TURNS.c.session_id),
            ("episode", EPISODES, EPISODES.c.summary, EPISODES.c.conversation_id),
        )
        for kind, table, text, session in sources:
            room = limit - len(found)
            if room <= 0:
                break
            t = table.c
            missing = and_(_v.source_kind == kind, _v.source_id == t.id, _v.model == model)
            query = (
                select(t.id, t.user_id, text)
                .outerjoin(RECALL_VECTORS, missing)
                .where(_v.source_id.is_(None), t.user_id.is_not(None), _text_present(text))
                .order_by(t.created_at, t.id)
                .limit(room)
            )
            if session_id is not None:
                query = query.where(session == session_id)
            found.extend(Unembedded(kind, i, u, s) for i, u, s in conn.execute(query).all())
        return found

    def put(
        self,
        conn: Connection,
        model: str,
        embedded: Sequence[tuple[Unembedded, array[float]]],
        now: datetime,
    ) -> int:
        """Store vectors (already normalised); those another worker stored meanwhile are kept."""
        if not embedded:
            return 0
        ids = [item.id for item, _ in embedded]
        there = set(
            conn.execute(
                select(_v.source_kind, _v.source_id).where(_v.model == model, _v.source_id.in_(ids))
            ).all()
        )
        rows = [
            {
                "source_kind": item.kind,
                "source_id": item.id,
                "model": model,
                "user_id": item.user_id,
                "dims": len(vector),
                "vector": pack(vector),
                "created_at": now,
            }
            for item, vector in embedded
            if (item.kind, item.id) not in there
        ]
        if rows:
            conn.execute(insert(RECALL_VECTORS), rows)
        return len(rows)

    def count(self, conn: Connection, user_id: str | None = None) -> int:
        """Vectors stored (a person's, or all): for tests and ``mnemobot`` diagnostics."""
        query = select(func.count()).select_from(RECALL_VECTORS)
        if user_id is not None:
            query = query.where(_v.user_id == user_id)
        return int(conn.execute(query).scalar() or 0)
