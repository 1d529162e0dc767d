"""Time as a dependency, so tests can move it instead of sleeping.

Every timestamp mnemobot handles is an aware UTC ``datetime``: PostgreSQL stores it as
``timestamptz``, SQLite as UTC text, and sqlmodel refuses naive values at the boundary.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock", "utcnow"]


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class Clock(Protocol):
    """Anything that can say what time it is."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock (UTC)."""

    def now(self) -> datetime:
        return utcnow()


class ManualClock:
    """A clock that only moves when told to; the tests' way to expire sessions and TTLs."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float = 0, **kwargs: float) -> None:
        """Move forward by ``seconds`` plus any ``timedelta`` keyword (minutes=, days=...)."""
        self._now += timedelta(seconds=seconds, **kwargs)
