"""The rules a user-memory write obeys: enabled, size, key count, expiry.

Expiry precedence, first that applies: a TTL given with the write, a retention policy for the
key (``[memory.retention]`` in mnemobot.toml, the clock restarting at each write), the bot's
``user-memory-default-ttl``; 0 or nothing means the key never expires.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["UserMemoryPolicy"]


@dataclass(frozen=True)
class UserMemoryPolicy:
    """What one bot may do with user memory (from its config.csv and the deployment)."""

    enabled: bool = True
    max_keys: int = 1000
    default_ttl: int = 0
    max_value_bytes: int = 65536
    retention: Mapping[str, int] = field(default_factory=dict)

    def expiry(self, key: str, ttl: float | None, now: datetime) -> datetime | None:
        """When a value written now under ``key`` stops being readable, or None for never."""
        seconds: float | None = ttl
        if seconds is None:
            seconds = self.retention.get(key)
        if seconds is None:
            seconds = self.default_ttl
        if not seconds or seconds <= 0:
            return None
        return now + timedelta(seconds=seconds)
