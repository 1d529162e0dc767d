"""One turn at a time per conversation.

:class:`LocalLocks` serialises turns inside one process. Several processes on PostgreSQL need
a transaction-level advisory lock instead; that implementation plugs in here through the
same :class:`ConversationLocks` protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

__all__ = ["ConversationLocks", "LocalLocks"]


class ConversationLocks(Protocol):
    def hold(self, conversation: str) -> AbstractAsyncContextManager[None]:
        """Held while one turn of ``conversation`` runs."""
        ...


class LocalLocks:
    """asyncio locks keyed by conversation, dropped when nobody waits on them."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, conversation: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(conversation, (asyncio.Lock(), 0))
        self._locks[conversation] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[conversation]
            if users <= 1:
                del self._locks[conversation]
            else:
                self._locks[conversation] = (lock, users - 1)
