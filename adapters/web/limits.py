"""How much one browser, and one address, may ask of the web chat: token buckets and stream caps.

Kept apart from the channel because it is a policy with its own state and no I/O: whether a
message or an event stream is taken, and if not, how long to wait. Probing found one visitor
sending 300 messages in 1.1 s, 200 cookie-less POSTs making 200 people, and one visitor
holding 180 event streams (each polls the outbox). So:

* **messages** take a token from the visitor's bucket and from the address's bucket;
* a visitor the limiter has not seen (a new cookie, or none) also takes one from its
  address's **new visitors** bucket, so no one mints people faster than a person could;
* **event streams** are capped per visitor (all bots together) and per address.

The check comes before anything is stored: a refused message creates no person and no inbox
row, and the browser gets 429 with ``Retry-After``. Time is the runtime's clock, so tests move
it instead of sleeping. Behind a reverse proxy the address is what uvicorn reports (it honours
``X-Forwarded-For`` from ``forwarded_allow_ips``, 127.0.0.1 by default).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.errors import ConfigError

__all__ = ["RateLimiter", "Refusal", "WebLimits"]


@dataclass(frozen=True)
class WebLimits:
    """The web channel's ``[channels.limits]`` table; every field has a default.

    Rates are per minute and refill continuously; a burst is how many may come at once.
    """

    messages_per_minute: float = 20.0  # per visitor
    message_burst: int = 10
    address_messages_per_minute: float = 120.0  # per address, all its visitors together
    address_message_burst: int = 60
    new_visitors_per_minute: float = 6.0  # per address: people who start writing
    new_visitor_burst: int = 20
    max_streams: int = 6  # open event streams per visitor, all bots together
    max_address_streams: int = 60  # open event streams per address

    @classmethod
    def from_settings(cls, channel: str, table: object) -> WebLimits:
        """Read ``limits`` from a ``[[channels]]`` entry; ConfigError names a bad key or value."""
        if table is None:
            return cls()
        if not isinstance(table, Mapping):
            raise ConfigError(f"channel {channel!r}: limits must be a table of numbers")
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean `{close[0]}`?)" if close else ""
                raise ConfigError(f"channel {channel!r}: unknown limit `{key}`{hint}")
            whole = known[key].type == "int"
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or value <= 0 or (whole and value != int(value)):
                kind = "a whole number" if whole else "a number"
                raise ConfigError(
                    f"channel {channel!r}: limits.{key} must be {kind} above 0, got {value!r}"
                )
            values[key] = int(value) if whole else float(value)
        return cls(**values)


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused, and after how many whole seconds to try again."""

    message: str
    retry_after: int


class _Bucket:
    __slots__ = ("capacity", "per_second", "tokens", "updated")

    def __init__(self, capacity: int, per_minute: float, now: float) -> None:
        self.capacity = float(capacity)
        self.per_second = per_minute / 60.0
        self.tokens = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.per_second)
        self.updated = now

    def wait(self) -> float:
        """Seconds until one token is there (0 when one is)."""
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.per_second


class RateLimiter:
    """Token buckets keyed by visitor and by address, plus open-stream counts.

    Buckets that have refilled completely are forgotten (they hold nothing a new bucket
    would not), so memory stays bounded by the visitors active in the last few minutes.
    """

    def __init__(self, limits: WebLimits, clock: Clock) -> None:
        self.limits = limits
        self._clock = clock
        self._visitors: dict[str, _Bucket] = {}
        self._addresses: dict[str, _Bucket] = {}
        self._newcomers: dict[str, _Bucket] = {}
        self._streams: dict[str, int] = {}  # address -> open streams
        self._taken = 0

    def __repr__(self) -> str:
        return f"RateLimiter({self.limits!r})"

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def take_message(self, visitor: str, address: str) -> Refusal | None:
        """Take a token for one message, or say why not; nothing is taken when refused."""
        now = self._now()
        lim = self.limits
        new = visitor not in self._visitors
        checks = [
            (
                self._bucket(
                    self._visitors, visitor, lim.message_burst, lim.messages_per_minute, now
                ),
                "you are sending messages too fast",
            ),
            (
                self._bucket(
                    self._addresses,
                    address,
                    lim.address_message_burst,
                    lim.address_messages_per_minute,
                    now,
                ),
                "too many messages from your network",
            ),
        ]
        if new:
            newcomers = self._bucket(
                self._newcomers, address, lim.new_visitor_burst, lim.new_visitors_per_minute, now
            )
            checks.append((newcomers, "too many new visitors from your network"))
        for bucket, _ in checks:
            bucket.refill(now)
        for bucket, why in checks:
            if bucket.tokens < 1:
                if new:  # not admitted: forget the visitor's fresh bucket
                    self._visitors.pop(visitor, None)
                wait = max(1, math.ceil(bucket.wait()))
                return Refusal(f"{why}: please wait {wait} s and send it again", wait)
        for bucket, _ in checks:
            bucket.tokens -= 1
        self._taken += 1
        if self._taken % 1000 == 0:
            self._forget_idle(now)
        return None

    def open_stream(self, address: str, visitor_streams: int) -> Refusal | None:
        """Count one more open stream for ``address``, or refuse it (the visitor already has
        ``visitor_streams`` open); pair every success with :meth:`close_stream`."""
        if visitor_streams >= self.limits.max_streams:
            return Refusal(f"too many open chat pages ({visitor_streams}); close one and reload", 5)
        if self._streams.get(address, 0) >= self.limits.max_address_streams:
            return Refusal("too many open chat pages from your network; try again later", 30)
        self._streams[address] = self._streams.get(address, 0) + 1
        return None

    def close_stream(self, address: str) -> None:
        left = self._streams.get(address, 0) - 1
        if left > 0:
            self._streams[address] = left
        else:
            self._streams.pop(address, None)

    @staticmethod
    def _bucket(
        table: dict[str, _Bucket], key: str, burst: int, per_minute: float, now: float
    ) -> _Bucket:
        bucket = table.get(key)
        if bucket is None:
            bucket = table[key] = _Bucket(burst, per_minute, now)
        return bucket

    def _forget_idle(self, now: float) -> None:
        for table in (self._visitors, self._addresses, self._newcomers):
            idle = []
            for key, bucket in table.items():
                bucket.refill(now)
                if bucket.tokens >= bucket.capacity:
                    idle.append(key)
            for key in idle:
                del table[key]
