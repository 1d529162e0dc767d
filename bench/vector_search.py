"""What a semantic search costs: a person's nearest vectors in process against sqlite-vec.

One SQLite file (through sqlean.py, so sqlite-vec loads), one person with N vectors of 384
dimensions (all-MiniLM-L6-v2's size) among other people's, the statement recall runs for each
query (``VectorIndex.nearest``, the best 200). Both indexes read the same ``recall_vectors``
rows; the bench checks they agree before timing, and alternates them query by query. Prints
figures; asserts nothing.

    .venv/bin/python bench/vector_search.py [--sizes 1000 10000 50000] [--queries 20]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from array import array
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.migrate import upgrade
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()
    driver = sqlite_driver("sqlean")
    search = vector_search_for(True, driver)
    if not isinstance(search.index, SqliteVecIndex):
        sys.exit(f"sqlite-vec is not available: {search.description}")
    rng = random.Random(7)
    print("| a person's vectors | in process p50 | sqlite-vec p50 | in process / sqlite-vec |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        db = Database(url, sqlite_driver=driver, sqlite_extensions=search.extensions)
        db.start()
        upgrade(db)
        populate(db, "someone-else", 5000, rng)  # others' vectors share the table and index
        for size in args.sizes:
            person = f"person-{size}"
            populate(db, person, size, rng)
            queries = [unit(rng) for _ in range(args.queries)]
            with db.read() as conn:
                for query in queries[:2]:
                    a = InProcessIndex().nearest(conn, person, MODEL, "turn", query, NEAREST)
                    b = search.index.nearest(conn, person, MODEL, "turn", query, NEAREST)
                    if len(a) != NEAREST or [i for i, _ in a] != [i for i, _ in b]:
                        sys.exit("the two indexes disagree: nothing timed")
            in_process, in_sqlite = [], []
            for query in queries:
                in_process.append(time_queries(db, InProcessIndex(), person, query))
                in_sqlite.append(time_queries(db, search.index, person, query))
            a, b = statistics.median(in_process), statistics.median(in_sqlite)
            print(f"| {size:,} | {a * 1000:.1f} ms | {b * 1000:.1f} ms | {a / b:.1f}x |")
        db.stop()


if __name__ == "__main__":
    main()
