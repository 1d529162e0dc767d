"""A per-user cache of Slack profiles (``users.info`` answers) for one channel.

Kept apart from the channel because it is plain bookkeeping (no SDK, no network): the
channel asks Slack once per person and ``ttl`` and keeps the answer here, bounded, so a busy
workspace neither calls ``users.info`` for every message nor grows the cache without end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["Profile", "ProfileCache"]


@dataclass(frozen=True, slots=True)
class Profile:
    """What the channel keeps of a ``users.info`` answer: what an InboundMessage lacks."""

    name: str
    email: str | None
    locale: str | None


class ProfileCache:
    """``users.info`` answers, kept ``ttl`` seconds per user; bounded, oldest dropped first."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Profile]] = {}

    def get(self, key: str) -> Profile | None:
        hit = self._entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: str, profile: Profile) -> None:
        self._entries.pop(key, None)
        while len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (time.monotonic() + self.ttl, profile)
