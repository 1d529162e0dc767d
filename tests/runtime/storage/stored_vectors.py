"""Vectors written as the episode worker stores them, for the vector-index tests (sqlite-vec,
pgvector), which compare each index with the in-process one on the same rows."""

from __future__ import annotations

import random
from array import array
from datetime import UTC, datetime

from sqlalchemy import insert

from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import RECALL_VECTORS, USERS
from mnemobot.runtime.storage.vectors import normalised, pack, stored_model

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MODEL = "test/model"


def unit_vector(seed: int, dims: int = 16) -> array[float]:
    """A normalised vector of ``dims`` random values, the same for the same ``seed``."""
    rng = random.Random(seed)
    return normalised([rng.gauss(0, 1) for _ in range(dims)])


def store_vectors(db: Database, vectors: list[tuple[str, str, array[float]]]) -> None:
    """(person, turn id, vector) rows of ``recall_vectors``, in the worker's stored form."""
    rows = [
        {
            "source_kind": "turn",
            "source_id": sid,
            "model": stored_model(MODEL, "turn"),  # as the worker stores a turn's
            "user_id": person,
            "dims": len(vector),
            "vector": pack(vector),
            "created_at": T0,
        }
        for person, sid, vector in vectors
    ]
    with db.write() as conn:
        for person in sorted({p for p, _, _ in vectors}):
            conn.execute(insert(USERS).values(id=person, display_name=person, created_at=T0))
        conn.execute(insert(RECALL_VECTORS), rows)
