"""The rules a user-memory write obeys: enabled, size, key count, expiry.

Expiry precedence, first that applies: a TTL given with the write, a retention policy for the
key (``[memory.retention]`` in mnemobot.toml, the clock restarting at each write), the bot's
``user-memory-default-ttl``; 0 or nothing means the key never expires.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mnemobot.runtime.bots.registry import Bot

__all__ = ["UserMemoryPolicy", "UserPolicies"]


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


@dataclass(frozen=True)
class UserPolicies:
    """Each bot's user-memory rules: its ``config.csv`` options within the deployment's limits.

    Called with a bot, it gives that bot's :class:`UserMemoryPolicy`.
    """

    max_value_bytes: int = 65536
    retention: Mapping[str, int] = field(default_factory=dict)

    def __call__(self, bot: Bot) -> UserMemoryPolicy:
        opts = bot.options
        return UserMemoryPolicy(
            enabled=opts.user_memory_enabled,
            max_keys=opts.user_memory_max_keys,
            default_ttl=opts.user_memory_default_ttl,
            max_value_bytes=self.max_value_bytes,
            retention=self.retention,
        )
