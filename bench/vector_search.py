"""What a semantic search costs: a person's nearest vectors in process against the database's
extension: sqlite-vec on SQLite, pgvector on PostgreSQL.

One database, one person with N vectors of 384 dimensions (all-MiniLM-L6-v2's size) among
other people's, the statement recall runs for each query (``VectorIndex.nearest``, the best
200). SQLite is a file opened through sqlean.py, so sqlite-vec loads; PostgreSQL is a
PostgreSQL 16 with pgvector from the pgserver wheel (the dev extra), started in a temporary
folder, with pgvector enabled as a runtime's start does it (skipped without pgserver). Both
indexes read the same ``recall_vectors`` rows; the bench checks they agree before timing, and
alternates them query by query. Prints figures; asserts nothing.

    .venv/bin/python bench/vector_search.py [--sizes 1000 10000 50000] [--queries 20]
        [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import warnings
from array import array
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.migrate import upgrade
from mnemobot.runtime.storage.pgvector import PgVectorIndex, PostgresVectors
from mnemobot.runtime.storage.sqlite_vec import SqliteVecIndex, sqlite_driver, vector_search_for
from mnemobot.runtime.storage.tables import RECALL_VECTORS, USERS
from mnemobot.runtime.storage.vectors import (
    InProcessIndex,
    VectorIndex,
    normalised,
    pack,
    stored_model,
)

DIMS = 384
MODEL = "bench/model"
NEAREST = 200
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def unit(rng: random.Random) -> array[float]:
    return normalised([rng.gauss(0, 1) for _ in range(DIMS)])


def populate(db: Database, person: str, count: int, rng: random.Random) -> None:
    """``count`` vectors of ``person``, as ``recall_vectors`` rows (no turns behind them: the
    search reads only this table)."""
    with db.write() as conn:
        conn.execute(insert(USERS).values(id=person, display_name=person, created_at=T0))
    for start in range(0, count, 2000):
        rows = [
            {
                "source_kind": "turn",
                "source_id": f"{person}-{n}",
                "model": stored_model(MODEL, "turn"),  # as the worker stores a turn's
                "user_id": person,
                "dims": DIMS,
                "vector": pack(unit(rng)),
                "created_at": T0,
            }
            for n in range(start, min(count, start + 2000))
        ]
        with db.write() as conn:
            conn.execute(insert(RECALL_VECTORS), rows)


def time_queries(db: Database, index: VectorIndex, person: str, query: array[float]) -> float:
    with db.read() as conn:
        started = time.perf_counter()
        index.nearest(conn, person, MODEL, "turn", query, NEAREST)
        return time.perf_counter() - started


def compare(db: Database, index: VectorIndex, name: str, sizes: list[int], queries: int) -> None:
    """Print one table: ``index`` against InProcessIndex on ``db``, a row a size."""
    rng = random.Random(7)
    print(f"| a person's vectors | in process p50 | {name} p50 | in process / {name} |")
    print("|---|---|---|---|")
    populate(db, "someone-else", 5000, rng)  # others' vectors share the table and index
    for size in sizes:
        person = f"person-{size}"
        populate(db, person, size, rng)
        asked = [unit(rng) for _ in range(queries)]
        with db.read() as conn:
            for query in asked[:2]:
                a = InProcessIndex().nearest(conn, person, MODEL, "turn", query, NEAREST)
                b = index.nearest(conn, person, MODEL, "turn", query, NEAREST)
                if len(a) != NEAREST or [i for i, _ in a] != [i for i, _ in b]:
                    sys.exit("the two indexes disagree: nothing timed")
        in_process, in_database = [], []
        for query in asked:
            in_process.append(time_queries(db, InProcessIndex(), person, query))
            in_database.append(time_queries(db, index, person, query))
        a, b = statistics.median(in_process), statistics.median(in_database)
        print(f"| {size:,} | {a * 1000:.1f} ms | {b * 1000:.1f} ms | {a / b:.1f}x |")


def on_sqlite(sizes: list[int], queries: int) -> None:
    driver = sqlite_driver("sqlean")
    search = vector_search_for(True, driver)
    if not isinstance(search.index, SqliteVecIndex):
        sys.exit(f"sqlite-vec is not available: {search.description}")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        db = Database(url, sqlite_driver=driver, sqlite_extensions=search.extensions)
        db.start()
        upgrade(db)
        compare(db, search.index, "sqlite-vec", sizes, queries)
        db.stop()


def on_postgresql(sizes: list[int], queries: int) -> None:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is not set
        warnings.simplefilter("ignore")
        try:
            import pgserver  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            print("PostgreSQL: skipped (pip install pgserver==0.1.4, as the dev extra does)")
            return
    with tempfile.TemporaryDirectory() as folder:
        server = pgserver.get_server(Path(folder) / "pgdata", cleanup_mode="stop")
        try:
            url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
            db = Database(url)
            db.start()
            upgrade(db)
            search = PostgresVectors()
            print(f"PostgreSQL: vectors compared {search.open(db)}")
            if not isinstance(search.index, PgVectorIndex):
                sys.exit("pgvector is not available")
            compare(db, search.index, "pgvector", sizes, queries)
            db.stop()
        finally:
            server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    if args.only != "postgresql":
        on_sqlite(args.sizes, args.queries)
    if args.only != "sqlite":
        on_postgresql(args.sizes, args.queries)


if __name__ == "__main__":
    main()
