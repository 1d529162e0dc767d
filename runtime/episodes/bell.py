"""The episode worker's doorbell: a session just ended, so its summary need not wait for a poll.

A session ends in a database transaction (``/end``, a timeout seen by the next message or by
the janitor); its ``session_ended`` job is durable from that commit on, and the worker polls
for due jobs every ``[janitor] interval`` anyway. Ringing after the commit only makes the
local worker look at once, so a person's last conversation is summarised, and searchable by
recall, within seconds. Workers of other processes still find the job at their next poll.

Rung from the event loop or from a database thread (``Database.run``), so it is thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

__all__ = ["JobBell"]


class JobBell:
    """Rung when jobs were committed; :meth:`wait` returns at the ring or after a timeout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._rung = False

    def ring(self) -> None:
        with self._lock:
            self._rung = True
            loop, event = self._loop, self._event
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(event.set)

    async def wait(self, seconds: float, stop: asyncio.Event) -> None:
        """Until a ring (also one since the last wait), ``stop``, or ``seconds`` pass."""
        with self._lock:
            if self._rung:
                self._rung = False
                return
            self._loop = asyncio.get_running_loop()
            self._event = event = asyncio.Event()
        waiters = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())}
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            with self._lock:
                self._rung = False
                self._event = None
