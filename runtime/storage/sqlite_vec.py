"""sqlite-vec, where the deployment's SQLite can load it: vectors compared in the database.

Semantic recall keeps its vectors in ``recall_vectors`` as float32 bytes (:mod:`.vectors`),
which is sqlite-vec's own format, so with the extension loaded a person's nearest vectors are
one statement (``vec_distance_cosine`` over their rows, in C) instead of every vector read into
Python and scored there: ~12x faster at 20,000 vectors (``bench/vector_search.py``). Nothing
is copied or kept in sync: the rows the triggers of migration 0006 maintain are the only copy,
so forget, retention and a changed text need nothing more here, and a deployment can turn
the extension on or off at any time.

Loading needs a ``sqlite3`` built with extension loading (Debian's and the official Docker
images' Pythons are; pyenv's and some others are not). ``[database] sqlite_driver =
"sqlean"`` opens SQLite through sqlean.py instead, a ``sqlite3`` that always can. Both come
with the ``sqlite-vec`` extra. Where neither works, :func:`vector_search_for` says why and
recall compares vectors in process, with the same results.

PostgreSQL: pgvector is the counterpart (:mod:`.pgvector`), used where the database has it;
which of the two a database gets is known only once it is open (:meth:`VectorSearch.open`).
:func:`vector_search_for` chooses for both.
"""

from __future__ import annotations

import importlib
from array import array
from dataclasses import dataclass
from types import ModuleType

from sqlalchemy import Connection, text

from mnemobot.runtime.errors import ConfigError
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.pgvector import PostgresVectors
from mnemobot.runtime.storage.vectors import (
    InProcessIndex,
    VectorIndex,
    VectorKind,
    pack,
    stored_model,
)

__all__ = [
    "SQLITE_DRIVERS",
    "SqliteVecIndex",
    "VectorSearch",
    "extension_path",
    "sqlite_driver",
    "vector_search_for",
]

SQLITE_DRIVERS = ("sqlite3", "sqlean")  # [database] sqlite_driver: the module SQLite opens with

# Vectors are stored normalised, so 1 - cosine distance is their dot product, as
# InProcessIndex scores them; a zero vector has no cosine (NULL): 0, as its dot product is.
# Ties go to the larger id, as heapq.nlargest over (score, id) gives them.
_NEAREST = text(
    "SELECT source_id, coalesce(1.0 - vec_distance_cosine(vector, :query), 0.0) AS similarity "
    "FROM recall_vectors "
    "WHERE user_id = :user_id AND model = :model AND source_kind = :kind AND dims = :dims "
    "ORDER BY similarity DESC, source_id DESC LIMIT :limit"
)


class SqliteVecIndex:
    """A person's nearest vectors of a model, scored by sqlite-vec in the database.

    Needs every connection to have loaded the extension (:class:`Database`'s
    ``sqlite_extensions``); :func:`vector_search_for` decides that.
    """

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
        params = {
            "query": pack(query),
            "user_id": user_id,
            "model": stored_model(model, kind),  # a turn's: made with the line after it
            "kind": kind,
            "dims": len(query),
            "limit": limit,
        }
        return [(str(sid), float(score)) for sid, score in conn.execute(_NEAREST, params).all()]


def sqlite_driver(name: str) -> ModuleType:
    """The DB-API module ``[database] sqlite_driver`` names, imported.

    ConfigError, saying what to install, when it is sqlean and sqlean.py is missing.
    """
    if name not in SQLITE_DRIVERS:
        raise ConfigError(
            f"database.sqlite_driver must be one of {', '.join(SQLITE_DRIVERS)}, not {name!r}"
        )
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(
            f"[database] sqlite_driver = {name!r} needs the sqlean.py package: "
            "pip install 'mnemobot[sqlite-vec]'"
        ) from exc


def extension_path() -> str | None:
    """Where sqlite-vec's loadable library is; None when the package is not installed."""
    try:
        import sqlite_vec  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return None
    return str(sqlite_vec.loadable_path())


@dataclass(frozen=True)
class VectorSearch:
    """How semantic recall will compare vectors here, and what the database must load."""

    index: VectorIndex
    extensions: tuple[str, ...]  # SQLite loadable libraries, loaded into every connection
    description: str  # SQLite: where vectors are compared, and if in process, why

    def open(self, db: Database) -> str:
        """Where vectors are compared, and if in process, why (for the start-up log); called
        once ``db`` is open and migrated. PostgreSQL's index is chosen here: pgvector is
        enabled in ``db`` if it can be (:class:`PostgresVectors`)."""
        if isinstance(self.index, PostgresVectors):
            return self.index.open(db)
        return self.description


def vector_search_for(sqlite: bool, driver: ModuleType) -> VectorSearch:
    """sqlite-vec when the database is SQLite and ``driver`` can load it; on PostgreSQL,
    pgvector where the database has it (decided by :meth:`VectorSearch.open`); else in process.

    The extension is loaded once here, into a throwaway in-memory connection, so a library
    that cannot load (a wrong build, a sandbox) falls back with the reason instead of
    failing every connection later.
    """
    in_process = InProcessIndex()
    if not sqlite:
        return VectorSearch(
            PostgresVectors(), (), "in PostgreSQL by pgvector where it has it, else in process"
        )
    path = extension_path()
    if path is None:
        return VectorSearch(
            in_process,
            (),
            "in process (for sqlite-vec: pip install 'mnemobot[sqlite-vec]')",
        )
    failed = _probe(driver, path)
    if failed is not None:
        return VectorSearch(in_process, (), f"in process ({failed})")
    return VectorSearch(SqliteVecIndex(), (path,), f"in SQLite, by sqlite-vec ({path})")


def _probe(driver: ModuleType, path: str) -> str | None:
    """Why ``driver`` cannot load sqlite-vec from ``path``; None when it can."""
    if not hasattr(driver.Connection, "enable_load_extension"):
        return (
            f"this Python's {driver.__name__} cannot load SQLite extensions; "
            'set [database] sqlite_driver = "sqlean" to use sqlite-vec'
        )
    conn = driver.connect(":memory:")
    try:
        conn.enable_load_extension(True)
        conn.load_extension(path)
        conn.enable_load_extension(False)
        conn.execute("SELECT vec_version()").fetchone()
    except driver.Error as exc:
        return f"sqlite-vec did not load: {exc}"
    finally:
        conn.close()
    return None
