"""The web chat's visitor cookie: who a browser is, signed so that no one can claim another.

Kept apart from the channel because it is the security boundary of the web chat, with no
state but the server secret: a visitor id is the person's account (``("web", visitor id)``),
so a forged or tampered cookie must never pass. It is small and easy to test alone, and
the one place to read when asking "can someone impersonate a visitor?".
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from mnemobot.runtime.errors import ConfigError

__all__ = ["COOKIE_MAX_AGE", "COOKIE_NAME", "VisitorCookies"]

COOKIE_NAME = "mnemobot_visitor"
COOKIE_MAX_AGE = 400 * 24 * 3600  # browsers cap cookie lifetimes at 400 days
_VISITOR = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class VisitorCookies:
    """Signs and checks ``<visitor id>.<hex HMAC-SHA256>`` cookie values.

    Args:
        secret: the server secret (bytes); whoever holds it can impersonate any visitor.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ConfigError("the web chat cookie secret must be at least 16 bytes long")
        self._secret = secret

    def __repr__(self) -> str:
        return "VisitorCookies(secret=<hidden>)"

    def _mac(self, visitor: str) -> str:
        return hmac.new(self._secret, visitor.encode("ascii"), hashlib.sha256).hexdigest()

    def sign(self, visitor: str) -> str:
        return f"{visitor}.{self._mac(visitor)}"

    def verify(self, value: str | None) -> str | None:
        """The visitor id in a cookie value, or None when it is missing, unsigned or tampered."""
        if not value:
            return None
        visitor, _, mac = value.rpartition(".")
        if not _VISITOR.match(visitor):
            return None
        return visitor if hmac.compare_digest(mac, self._mac(visitor)) else None

    @staticmethod
    def new_visitor() -> str:
        return secrets.token_urlsafe(18)
