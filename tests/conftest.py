"""Shared fixtures: a database per test on SQLite and on PostgreSQL, a runtime, a chat.

PostgreSQL tests always run: if the server is not reachable the PostgreSQL half of the
suite fails with a message saying how to start it. Each test run creates its own database
(``mnemobot_test_<random>``), migrates it once, empties it before every test that uses it,
and drops it at the end.
"""

from __future__ import annotations

import importlib
import os
import secrets
import shutil
import socket
import tempfile
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import make_url, text
from sqlmodel import SQLModel

from mnemobot.runtime.app.build import build_runtime
from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.pipeline.runtime import Runtime
from mnemobot.runtime.settings import load_settings
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.migrate import upgrade

PG_ADMIN_URL = os.environ.get("MNEMOBOT_TEST_POSTGRES", "postgresql://127.0.0.1:5432/postgres")
REPO = Path(__file__).resolve().parent.parent

_real_connect = socket.socket.connect
_LOOPBACK = ("127.", "::1", "localhost")


def pytest_configure(config: pytest.Config) -> None:
    """The CLI's subprocesses start with their bytecode cached, as an installed package does.

    Under ``PYTHONDONTWRITEBYTECODE`` (set on some machines, this one among them) every
    ``mnemobot`` a test starts compiled mnemobot and its libraries again, ~0.3 s a command,
    minutes of a run. One cache folder outside the checkout serves every worker and run.
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.setdefault(
        "PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "mnemobot-tests-pycache")
    )


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else address
    inet = self.family in (socket.AF_INET, socket.AF_INET6)
    if inet and isinstance(host, str) and not host.startswith(_LOOPBACK):
        raise RuntimeError(f"test tried to reach {host!r}: only loopback is allowed")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches past loopback, and no real token or proxy leaks in."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    for name in list(os.environ):
        upper = name.upper()
        if upper.endswith(("_TOKEN", "_SECRET", "_API_KEY")) or upper in (
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
        ):
            monkeypatch.delenv(name, raising=False)
        if upper.startswith("MNEMOBOT_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


# .ci/run sets CI=true: there, what the machine is meant to have (the dev extra, the local
# embeddings extra, PostgreSQL's contrib) is required, and its tests fail instead of skipping.
IN_CI = os.environ.get("CI") == "true"


def required_module(name: str, reason: str) -> Any:
    """The module ``name``; without it, its tests skip saying ``reason`` (on CI, they fail)."""
    if IN_CI:
        return importlib.import_module(name)
    return pytest.importorskip(name, reason=reason)


def skip_unless_ci(reason: str, *, module: bool = False) -> None:
    """Skip saying ``reason``; on CI, fail with it: nothing CI should cover skips there."""
    if IN_CI:
        pytest.fail(f"on CI: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=module)


def _pg_url(database: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{database}".replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated; dropped afterwards."""
    name = f"mnemobot_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc}). Start it "
            "(.ci/run shows how) or point MNEMOBOT_TEST_POSTGRES at a server.",
            pytrace=False,
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _pg_url(name)
    db = Database(url)
    db.start()
    upgrade(db)
    # Statistics only when a test gathers them (ANALYZE): recall reads which words are common
    # from them, and autovacuum would gather them at moments no test chooses.
    with db.write() as conn:
        for table in SQLModel.metadata.sorted_tables:
            conn.execute(text(f"ALTER TABLE {table.name} SET (autovacuum_enabled = false)"))
    db.stop()
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pgvector_server() -> Iterator[str]:
    """A PostgreSQL 16 with pgvector's ``vector`` extension, from the pgserver wheel (the dev
    extra): its admin URL. One server for the run, shared by the xdist workers (pgserver
    counts the processes using a data directory and the last one stops it and deletes it);
    ``get_server`` returns once the server is ready. Skips, saying why, without pgserver
    (fails on CI).

    Its data lives outside pytest's numbered temporary folders: another pytest run started
    meanwhile on the machine deletes all but the newest three of those, and PostgreSQL shuts
    down once its data folder is gone (seen: every later pgvector test of the run failed).
    """
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is not set
        warnings.simplefilter("ignore")
        pgserver = required_module(
            "pgserver", reason="pgserver (PostgreSQL with pgvector) is in the dev extra"
        )
        run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or secrets.token_hex(8)  # xdist: shared
        data = Path(tempfile.gettempdir()) / f"mnemobot-pgvector-{run}"
        data.mkdir(exist_ok=True)  # get_server's own mkdir fails for the second worker
        server = pgserver.get_server(data, cleanup_mode="delete")
    yield str(server.get_uri())
    server.cleanup()


def pgvector_url_of(admin_url: str, database: str) -> str:
    """A SQLAlchemy URL of ``database`` on the server of ``admin_url`` (a pgserver URI)."""
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=database)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pgvector_template(pgvector_server: str) -> Iterator[str]:
    """A migrated database on the pgvector server, copied for each test (pgvector not yet
    enabled in it: the runtime does that at start)."""
    name = f"mnemobot_template_{secrets.token_hex(4)}"
    with psycopg.connect(pgvector_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    db = Database(pgvector_url_of(pgvector_server, name))
    db.start()
    upgrade(db)
    db.stop()
    yield name
    with psycopg.connect(pgvector_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pgvector_url(pgvector_server: str, pgvector_template: str) -> Iterator[str]:
    """A database of its own on the pgvector server, migrated, empty; dropped afterwards."""
    name = f"mnemobot_test_{secrets.token_hex(4)}"
    with psycopg.connect(pgvector_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pgvector_template}"')
    yield pgvector_url_of(pgvector_server, name)
    with psycopg.connect(pgvector_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _empty(db: Database) -> None:
    # DELETE beats TRUNCATE on tables this small (TRUNCATE rewrites files and syncs). The
    # transcript's statistics go too: an earlier test's ANALYZE would otherwise tell recall
    # which words are common in lines that are gone.
    with db.write() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(text(f"DELETE FROM {table.name}"))
    with db.write() as conn:
        conn.execute(text("ANALYZE turns"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test instead of migrating each time."""
    path = tmp_path_factory.mktemp("template") / "mnemobot.db"
    db = Database(f"sqlite:///{path}")
    db.start()
    upgrade(db)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.stop()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL, once per backend; the database is migrated and empty."""
    return database_url(request, tmp_path)


def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """``db_url``'s database for ``request.param``: "sqlite", "postgresql", or "pgvector" (a
    PostgreSQL with pgvector, for a module whose own ``db_url`` adds it to the two)."""
    if request.param == "pgvector":
        return str(request.getfixturevalue("pgvector_url"))
    if request.param == "sqlite":
        target = tmp_path / "mnemobot.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    url = str(request.getfixturevalue("postgres_database"))
    db = Database(url)
    db.start()
    _empty(db)
    db.stop()
    return url


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    db.start()
    yield db
    db.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def make_runtime(db_url: str, clock: ManualClock) -> AsyncIterator[Callable[..., Any]]:
    """Build and start runtimes on this test's database; all are stopped at the end.

    ``await make_runtime(bots_dir=..., llm=..., make_llm=..., **settings_sections)``; the bots
    default to the example bots shipped in ``bots/``. ``make_llm`` makes a model client given
    the runtime's usage sink (see :func:`build_runtime`).
    """
    started: list[Runtime] = []

    async def factory(
        bots_dir: Path | None = None, llm: Any = None, make_llm: Any = None, **sections: Any
    ) -> Runtime:
        settings = load_settings(
            None,
            database={"url": db_url},
            bots={"dir": str(bots_dir or REPO / "bots")},
            **sections,
        )
        runtime = build_runtime(settings, clock=clock, llm=llm, make_llm=make_llm)
        await runtime.start()
        started.append(runtime)
        return runtime

    yield factory
    for runtime in started:
        await runtime.stop()
