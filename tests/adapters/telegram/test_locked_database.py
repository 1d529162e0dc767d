"""A webhook is acknowledged while another process holds the database's write lock.

``mnemobot memory set`` in a second process holds SQLite's write lock for as long as it
writes. An update that must be stored waits for it, but off the event loop: every other
request of the worker is still answered (Slack gives 3 s, and Telegram retries).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import make_url

from .support import ECHO, inbox_rows, turn_finished
from .test_webhook import WEBHOOK, client, post

READY_WITHIN = 0.1  # seconds: the acknowledgement of a request that needs no write


@contextmanager
def write_lock_held_elsewhere(url: str) -> Iterator[None]:
    """Another connection, as another process, holds the write lock until the block ends."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database
        other = sqlite3.connect(parsed.database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.rollback()
            other.close()
        return
    plain = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as other:
        other.execute("LOCK TABLE inbox IN EXCLUSIVE MODE")  # writers wait, readers do not
        try:
            yield
        finally:
            other.rollback()


async def test_a_webhook_is_acknowledged_while_another_process_holds_the_write_lock(
    deploy, echo_bots
):
    deployment = await deploy(WEBHOOK, bots_dir=echo_bots)
    runtime = deployment.runtime
    stored = deployment.tg.push_message(ECHO, 777, 777, "waits for the lock")
    ignored = {"update_id": stored["update_id"] + 1, "edited_message": stored["message"]}
    async with client(deployment) as http:
        with write_lock_held_elsewhere(runtime.db.url):
            storing = asyncio.create_task(post(http, stored))
            await asyncio.sleep(0)  # its request starts, and reaches the store
            status = await asyncio.wait_for(post(http, ignored), timeout=READY_WITHIN)
            # answered while the first update still waits for the lock, which is still held
            assert status == 200
            assert not storing.done()
        assert await storing == 200  # stored once the lock is gone, then acknowledged
        await turn_finished(runtime, "echo-telegram", str(stored["update_id"]))
    assert [r.event_id for r in inbox_rows(runtime)] == [str(stored["update_id"])]
    assert [m.text for m in deployment.tg.sent_messages(ECHO)] == ["echo: waits for the lock"]
