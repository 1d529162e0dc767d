"""What the benches share: no traffic past loopback, the in-process model, and scratch
PostgreSQL databases.

Why a module: ``pipeline.py``, ``_scaling.py`` and ``_slack_ack.py`` each guard sockets and
(two of them) answer turns with the same model, and one definition keeps the figures
comparable across sections. The model is the runtime's own in-process fake,
:class:`~mnemobot.runtime.llm.scripted.ScriptedLLM`, beside the ``LLM`` protocol it
implements (as httpx ships ``MockTransport`` beside its transports): benches and tests use the
seam the product uses.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mnemobot.runtime.llm.scripted import ScriptedLLM

__all__ = ["PG_ADMIN_URL", "REPLY", "_loopback_only", "fixed_model", "scratch_postgres"]

REPLY = "Noted, thank you."
PG_ADMIN_URL = os.environ.get("MNEMOBOT_BENCH_POSTGRES", "postgresql://127.0.0.1:5432/postgres")

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    """Refuse any connection that is not to this machine (telemetry, cost maps, providers)."""
    host = address[0] if isinstance(address, tuple) else address
    inet = self.family in (socket.AF_INET, socket.AF_INET6)
    if inet and isinstance(host, str) and not host.startswith(("127.", "::1", "localhost")):
        raise ConnectionRefusedError(f"bench: refusing to reach {host!r} (loopback only)")
    return _real_connect(self, address)


def fixed_model(reply: str = REPLY, *, delay: float = 0.0) -> ScriptedLLM:
    """The in-process model every bench turn is answered by: ``reply`` to every request,
    tokens estimated, after ``delay`` seconds waited without using the CPU.

    It keeps the requests it was sent (``.requests``), so a bench can check the prompt really
    held the memories; a long run clears them now and then (``requests.clear()``).
    """
    return ScriptedLLM(lambda _request: reply, delay=delay)


@contextmanager
def scratch_postgres(admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """A database created for this run (``mnemobot_bench_<hex>``), dropped at the end."""
    name = f"mnemobot_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
