"""pgvector, where the deployment's PostgreSQL has it: vectors compared in the database.

Semantic recall keeps its vectors in ``recall_vectors`` as float32 bytes (:mod:`.vectors`),
which pgvector cannot read. Where the ``vector`` extension can be had, :func:`enable_pgvector`
gives the table a generated column, ``embedding vector``, computed from those bytes by a SQL
function (:data:`_DECODE`: the bytes' IEEE 754 fields, exactly, about 0.2 ms a vector of 384
dimensions). A generated column is written by PostgreSQL itself in the statement that writes
the row, so it is in step with the bytes in every transaction whoever writes them (the
vector filler, a worker of an older release), goes with its row (forget, retention, TTL, a
changed text: the triggers of migrations 0006 and 0009 delete rows), and adding it fills the
rows already there. The row's bytes stay the one source: the column is derived, like the
full-text ``search`` columns of migration 0005, and ``DROP EXTENSION vector CASCADE`` takes
the function and the column with it, leaving the deployment as it was before.

:class:`PgVectorIndex` then finds a person's nearest vectors with one statement (cosine
distance, ``<=>``, over their rows, in C) instead of every vector read into Python and scored
there. It is an exact search over the person's rows (the ``ix_recall_vectors_person`` index
finds them), not an approximate index (HNSW, IVFFlat): one person's history is small, and
an approximate index over everyone's vectors, filtered by person afterwards, would miss.

The extension is the deployment's to install, and may arrive after the database was made, so
nothing here is a migration: each start with semantic recall on (:class:`PostgresVectors`)
looks for the column and, where it is missing, tries to add it, under the migration lock so
several workers starting at once add it once. A database without pgvector is left exactly as
it is and compares in process; the start-up log says which, and why. Alembic's comparison of
the models with the database does not see the column (:func:`outside_the_models`).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.migrate import MIGRATION_LOCK
from mnemobot.runtime.storage.vectors import (
    InProcessIndex,
    VectorIndex,
    VectorKind,
    stored_model,
)

__all__ = [
    "COLUMN",
    "MAX_DIMS",
    "PgVectorIndex",
    "Pgvector",
    "PostgresVectors",
    "enable_pgvector",
    "outside_the_models",
    "pgvector_in",
]

COLUMN = "embedding"  # recall_vectors' generated pgvector column
MAX_DIMS = 16_000  # pgvector's largest vector; a longer one (none known) is compared in process

# float32 little-endian bytes -> vector, exactly: each value from its sign, exponent and
# mantissa bits (a float8 holds every float32, and the products are powers of two times an
# integer of 24 bits, so nothing rounds). NULL for an empty vector (a row kept from the model,
# dims 0) or one too long for pgvector: such a row is never compared by it. The type is named
# with its schema: pg_restore computes the column with an empty search_path.
_DECODE = """
CREATE OR REPLACE FUNCTION mnemobot_float32_vector(bytes bytea) RETURNS {vector}
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
SELECT CASE WHEN length(bytes) BETWEEN 4 AND {max_bytes} THEN ARRAY(
    SELECT (CASE WHEN e = 0 THEN m * 2::float8 ^ -149
                 ELSE (m + 8388608) * 2::float8 ^ (e - 150) END * (1 - 2 * s))::float4
    FROM (SELECT i,
                 get_byte(bytes, i + 3) >> 7 AS s,
                 ((get_byte(bytes, i + 3) & 127) << 1) | (get_byte(bytes, i + 2) >> 7) AS e,
                 ((get_byte(bytes, i + 2) & 127) << 16) | (get_byte(bytes, i + 1) << 8)
                     | get_byte(bytes, i) AS m
          FROM generate_series(0, length(bytes) - 4, 4) AS i) AS f
    ORDER BY i)::{vector} END
$$
"""
_ADD_COLUMN = (
    f"ALTER TABLE recall_vectors ADD COLUMN IF NOT EXISTS {COLUMN} {{vector}} "
    "GENERATED ALWAYS AS (mnemobot_float32_vector(vector)) STORED"
)
_HAS_COLUMN = text(
    "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'recall_vectors'::regclass "
    f"AND attname = '{COLUMN}' AND NOT attisdropped)"
)
_EXTENSION = text(
    "SELECT e.extversion, n.nspname FROM pg_extension e "
    "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'"
)

# Vectors are stored normalised, so 1 - cosine distance is their dot product, as
# InProcessIndex scores them; a zero vector has no cosine (pgvector: NaN): 0, as its dot
# product is. Ties go to the larger id, as heapq.nlargest over (score, id) gives them, by
# code point as Python compares strings (COLLATE "C"). Only vectors of the query's size: the
# dims condition comes before the distance, which pgvector refuses across sizes. The type and
# operator are named with the extension's schema, which need not be on the search path.
_NEAREST = (
    "SELECT source_id, CASE WHEN distance = 'NaN' THEN 0.0 ELSE 1.0 - distance END "
    "AS similarity FROM ("
    f"SELECT source_id, {COLUMN} OPERATOR({{schema}}.<=>) CAST(:query AS {{schema}}.vector) "
    "AS distance FROM recall_vectors "
    "WHERE user_id = :user_id AND model = :model AND source_kind = :kind AND dims = :dims"
    ') AS scored ORDER BY similarity DESC, source_id COLLATE "C" DESC LIMIT :limit'
)


@dataclass(frozen=True, slots=True)
class Pgvector:
    """pgvector as a database has it for recall (the column is there)."""

    version: str
    schema: str  # where the extension's type and operators are, quoted for SQL


def pgvector_in(conn: Connection) -> Pgvector | None:
    """pgvector's version and schema if ``recall_vectors`` has its column; else None."""
    if not conn.execute(_HAS_COLUMN).scalar():
        return None
    version, schema = conn.execute(_EXTENSION).one()
    return Pgvector(str(version), conn.dialect.identifier_preparer.quote_identifier(schema))


def _literal(vector: array[float]) -> str:
    """pgvector's text form of ``vector``: each float32 by its shortest exact decimal."""
    return "[" + ",".join(map(repr, vector)) + "]"


class PgVectorIndex:
    """A person's nearest vectors of a model, scored by pgvector in the database.

    Needs the ``embedding`` column (:func:`enable_pgvector`); :class:`PostgresVectors`
    decides that. ``schema``: the extension's, quoted (:class:`Pgvector`).
    """

    def __init__(self, schema: str = '"public"') -> None:
        self._nearest = text(_NEAREST.format(schema=schema))
        self._beyond = InProcessIndex()  # a query pgvector cannot hold

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
        if not 0 < len(query) <= MAX_DIMS:
            return self._beyond.nearest(conn, user_id, model, kind, query, limit)
        params = {
            "query": _literal(query),
            "user_id": user_id,
            "model": stored_model(model, kind),  # a turn's: made with the line after it
            "kind": kind,
            "dims": len(query),
            "limit": limit,
        }
        return [
            (str(sid), float(score)) for sid, score in conn.execute(self._nearest, params).all()
        ]


def enable_pgvector(conn: Connection) -> str | None:
    """Give ``recall_vectors`` its pgvector column where the extension can be had, inside the
    caller's transaction; None when it has it, else why not (for the start-up log).

    Runs under the migration lock: workers starting together add the column once, and none
    changes the schema while another migrates it. ``CREATE EXTENSION`` runs in a savepoint,
    so a database that refuses it (no superuser, no package) is left as it was.
    """
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    if conn.execute(_HAS_COLUMN).scalar():
        return None
    available = conn.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
    ).first()
    if available is None:
        return "this PostgreSQL has no pgvector (its vector extension is not installed)"
    try:
        with conn.begin_nested():
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return (
            f"pgvector is installed but this database could not create it: {reason}; "
            "a superuser can run CREATE EXTENSION vector in it"
        )
    _, schema = conn.execute(_EXTENSION).one()
    vector = f"{conn.dialect.identifier_preparer.quote_identifier(schema)}.vector"
    conn.execute(text(_DECODE.format(vector=vector, max_bytes=4 * MAX_DIMS)))
    conn.execute(text(_ADD_COLUMN.format(vector=vector)))  # fills it for the rows there
    return None


class PostgresVectors:
    """Compares a PostgreSQL database's vectors by pgvector where it has it, else in process.

    Which one is known only once the database is open (:meth:`open`, at start-up); until
    then, and wherever pgvector is missing, :class:`InProcessIndex`, with the same results.
    """

    def __init__(self) -> None:
        self.index: VectorIndex = InProcessIndex()

    def open(self, db: Database) -> str:
        """Enable pgvector in ``db`` if it can be and choose the index; says where vectors
        are compared, and if in process, why."""
        with db.read() as conn:
            found = pgvector_in(conn)
        if found is None:
            with db.write() as conn:
                why_not = enable_pgvector(conn)
            if why_not is not None:
                self.index = InProcessIndex()
                return f"in process ({why_not})"
            with db.read() as conn:
                found = pgvector_in(conn)
            assert found is not None
        self.index = PgVectorIndex(found.schema)
        return f"in PostgreSQL, by pgvector {found.version}"

    def nearest(
        self,
        conn: Connection,
        user_id: str,
        model: str,
        kind: VectorKind,
        query: array[float],
        limit: int,
    ) -> list[tuple[str, float]]:
        return self.index.nearest(conn, user_id, model, kind, query, limit)


def outside_the_models(obj: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
    """Alembic's ``include_object``: False for the pgvector column, which no model declares
    (it is there only where the deployment has pgvector)."""
    table = getattr(getattr(obj, "table", None), "name", None)
    return not (kind == "column" and name == COLUMN and table == "recall_vectors")
