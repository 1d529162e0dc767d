"""Send pacing for a Telegram bot account: per-chat order and Telegram's flood limits.

Kept apart from the channel because it is pure timing (no SDK, no network): a token-bucket
scheduler that a test drives with a fake clock and sleep, and that the channel only asks
"may I send to this chat now?".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Pacer", "Pacing"]


@dataclass(frozen=True, slots=True)
class Pacing:
    """Telegram's flood limits as token buckets: a sustained rate and a short burst.

    The Bot API FAQ: about one message per second in a chat, 20 per minute in a group,
    30 per second overall. Bursts keep a 3-part long reply from taking three seconds.
    """

    chat_rate: float = 1.0
    chat_burst: int = 3
    group_rate: float = 20 / 60
    group_burst: int = 3
    overall_rate: float = 30.0
    overall_burst: int = 30

    def __post_init__(self) -> None:
        if min(self.chat_rate, self.group_rate, self.overall_rate) <= 0:
            raise ValueError("pacing rates are messages per second and must be positive")
        if min(self.chat_burst, self.group_burst, self.overall_burst) < 1:
            raise ValueError("pacing bursts must be at least 1")


class _Bucket:
    """A token bucket that hands out reservations: the caller sleeps the returned delay."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, capacity: int, now: float) -> None:
        self.rate, self.capacity = rate, float(capacity)
        self.tokens, self.stamp = float(capacity), now

    def reserve(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def idle(self, now: float) -> bool:
        return self.tokens + (now - self.stamp) * self.rate >= self.capacity


@dataclass(slots=True)
class _ChatGate:
    lock: asyncio.Lock
    bucket: _Bucket
    users: int = 0


class Pacer:
    """Per-chat order and pacing for one bot account; one instance per channel, no globals.

    ``async with pacer.chat(id):`` serialises sends to that chat (parts stay in order, and a
    429 pause holds that chat only); ``await pacer.wait(id)`` before each request keeps the
    chat, group and overall rates.
    """

    def __init__(
        self,
        pacing: Pacing | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.pacing = pacing or Pacing()
        self._clock = clock
        self._sleep = sleep
        self._overall = _Bucket(self.pacing.overall_rate, self.pacing.overall_burst, clock())
        self._chats: dict[str, _ChatGate] = {}
        # When the latest sends were let through, by this pacer's clock: (chat id, time).
        self.released: deque[tuple[str, float]] = deque(maxlen=256)

    def _gate(self, chat_id: str) -> _ChatGate:
        gate = self._chats.get(chat_id)
        if gate is None:
            p, now = self.pacing, self._clock()
            bucket = (
                _Bucket(p.group_rate, p.group_burst, now)
                if chat_id.startswith("-")  # Telegram group and channel ids are negative
                else _Bucket(p.chat_rate, p.chat_burst, now)
            )
            gate = self._chats[chat_id] = _ChatGate(asyncio.Lock(), bucket)
            if len(self._chats) > 1024:
                self._prune(now)
        return gate

    def _prune(self, now: float) -> None:
        for key in [k for k, g in self._chats.items() if g.users == 0 and g.bucket.idle(now)]:
            del self._chats[key]

    @contextlib.asynccontextmanager
    async def chat(self, chat_id: str) -> AsyncIterator[None]:
        gate = self._gate(chat_id)
        gate.users += 1
        try:
            async with gate.lock:
                yield
        finally:
            gate.users -= 1

    async def wait(self, chat_id: str) -> None:
        delay = self._gate(chat_id).bucket.reserve(self._clock())
        if delay > 0:
            await self._sleep(delay)
        delay = self._overall.reserve(self._clock())
        if delay > 0:
            await self._sleep(delay)
        self.released.append((chat_id, self._clock()))
