"""Schema migrations through Alembic, applied at start-up and by ``mnemobot db upgrade``.

Start-up first asks the database for its revision and only loads Alembic when it is behind:
loading the migration scripts costs a third of a second on every CLI command otherwise.
``HEAD`` must name the newest revision; a test checks it against Alembic's own view.

Several workers may start at once on one empty PostgreSQL database: each would create the same
tables and types, and all but one would fail on PostgreSQL's catalogue constraints. So an
upgrade runs under a transaction-level advisory lock (:data:`MIGRATION_LOCK`), and reads the
revision again once it holds it: the first worker migrates, the others wait and find the
schema at ``HEAD``. On SQLite the upgrade is one ``BEGIN IMMEDIATE`` write transaction, which
queues the other writers the same way.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import DBAPIError, SAWarning

from mnemobot.runtime.storage.database import Database

__all__ = [
    "HEAD",
    "current_revision",
    "ensure_schema",
    "make_revision",
    "outside_the_models",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
HEAD = "0015"  # Thai, Lao, Khmer and Burmese characters indexed one by one too
# pg_advisory_xact_lock key: the 64-bit integer of the ASCII "mnemomig"
MIGRATION_LOCK = int.from_bytes(b"mnemomig", "big") - 2**63


def _config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def current_revision(db: Database) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with db.errors(), db.engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError:
            return None


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic; a no-op when it is already there.

    Safe to run from several processes at once: on PostgreSQL the upgrade holds an advisory
    lock for its transaction, so one process migrates while the others wait for it.
    """
    _upgrade(db, revision, unless_at=None)


def _upgrade(db: Database, revision: str, *, unless_at: str | None) -> None:
    from alembic import command

    cfg = _config()
    with db.errors(), db.write() as conn:
        if db.dialect.advisory_locks:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        if unless_at is not None and _revision_in(conn) == unless_at:
            return  # another process migrated while this one waited for the lock
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _revision_in(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    revision: str | None = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return revision


def ensure_schema(db: Database) -> None:
    """Upgrade only when the database is behind ``HEAD`` (the cheap check at start-up).

    Several workers starting at once on an empty database each call this; the advisory lock
    in the upgrade lets one migrate and the rest find the schema done.
    """
    if current_revision(db) != HEAD:
        _upgrade(db, "head", unless_at=HEAD)


def outside_the_models(obj: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
    """Alembic's ``include_object``: False for what the database has that no model declares,
    so comparing the models with it sees no difference: the recall index (its form differs
    by dialect) and the pgvector column (there only where the deployment has pgvector)."""
    from mnemobot.runtime.storage import fulltext, pgvector  # pgvector imports this module

    return all(
        module.outside_the_models(obj, name, kind, reflected, other)
        for module in (fulltext, pgvector)
    )


def make_revision(db: Database, message: str) -> None:
    """Autogenerate a new migration from the tables (a developer tool)."""
    from alembic import command

    cfg = _config()
    with db.engine.begin() as conn, warnings.catch_warnings():
        # the pgvector column's type is unknown to SQLAlchemy; include_object leaves it out
        warnings.filterwarnings("ignore", "Did not recognize type 'vector'", SAWarning)
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)


def script_head() -> str | None:
    """Alembic's own idea of the newest revision (loads every script; for tests)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()
