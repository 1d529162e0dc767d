"""The worker-process tests run one at a time across the suite's xdist processes.

Each worker process may open ~30 PostgreSQL connections (its statement and intake threads'
pool, and one for each conversation whose turn it holds), so two of these tests' deployments
at once, one in each xdist process, can pass the server's 100: seen as "too many clients",
events answered 500 that the test never posts again, and a load test waiting for replies
that cannot come (as it once did in CI). ``xdist_group`` would keep them on one xdist process,
but pytest-xdist 3.8 no longer groups under pytest 9.2 (it renames ``item._nodeid``, which
pytest 9 no longer reads), so a lock file held for each test's whole run does it instead.
"""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

LOCK_FILE = Path(tempfile.gettempdir()) / "mnemobot-tests-worker-processes.lock"


@pytest.fixture(autouse=True)
def one_deployment_at_a_time() -> Iterator[None]:
    """Held from before a test's deployment starts until after it stops; the other xdist
    process waits for it (an flock: released by the kernel if the holder dies)."""
    with LOCK_FILE.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
