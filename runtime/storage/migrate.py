"""Schema migrations through Alembic, applied at start-up and by ``mnemobot db upgrade``.

Start-up first asks the database for its revision and only loads Alembic when it is behind:
loading the migration scripts costs a third of a second on every CLI command otherwise.
``HEAD`` must name the newest revision; a test checks it against Alembic's own view.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnemobot.runtime.storage.database import Database
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

__all__ = ["HEAD", "current_revision", "ensure_schema", "make_revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
HEAD = "0005"


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
    """Bring the schema to ``revision`` with Alembic; a no-op when it is already there."""
    from alembic import command

    cfg = _config()
    with db.errors(), db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def ensure_schema(db: Database) -> None:
    """Upgrade only when the database is behind ``HEAD`` (the cheap check at start-up)."""
    if current_revision(db) != HEAD:
        upgrade(db)


def make_revision(db: Database, message: str) -> None:
    """Autogenerate a new migration from the tables (a developer tool)."""
    from alembic import command

    cfg = _config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)


def script_head() -> str | None:
    """Alembic's own idea of the newest revision (loads every script; for tests)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()
