"""Every error mnemobot raises on purpose, in one place.

The hierarchy, so callers can catch as wide or as narrow as they need::

    MnemobotError
    ├── ConfigError            a config.csv / mnemobot.toml value is wrong (names file and row)
    │   └── UnknownBot         a bot name that no folder under the bots dir defines
    ├── StorageError           the database refused or went away; the turn is rolled back
    ├── MemoryError_           memory could not be read or written as asked
    │   ├── MemoryFull         user-memory-max-keys reached; nothing was written
    │   ├── MemoryDisabled     user-memory-enabled is false for this bot
    │   ├── InvalidKey         empty, too long or not a string
    │   └── InvalidValue       not JSON, or larger than the value size cap
    ├── LinkError              /link CODE was wrong, expired, used, or tried too often
    ├── UnknownUser            no user with that id, identity or display name
    ├── BotError               a bot's own code failed during a turn (wraps the cause)
    ├── LLMError               the model could not answer (not configured, timed out, refused)
    └── ChannelError           a platform refused or could not be reached; replies stay pending
        └── RateLimited        the platform asked us to wait (``retry_after`` seconds)

SDK and driver exceptions are translated at the boundary with ``raise ... from exc`` so a
caller never has to import sqlalchemy or litellm to handle a failure.
"""

from __future__ import annotations

__all__ = [
    "BotError",
    "ChannelError",
    "ConfigError",
    "InvalidKey",
    "InvalidValue",
    "LLMError",
    "LinkError",
    "MemoryDisabled",
    "MemoryError_",
    "MemoryFull",
    "MnemobotError",
    "RateLimited",
    "StorageError",
    "UnknownBot",
    "UnknownUser",
]


class MnemobotError(Exception):
    """Base of every error mnemobot raises deliberately."""


class ConfigError(MnemobotError):
    """A configuration value is missing or wrong; the message names where and what."""


class UnknownBot(ConfigError):
    """A bot name that no folder under the bots directory defines."""


class StorageError(MnemobotError):
    """The database failed (unreachable, locked too long, constraint); nothing was committed."""


class MemoryError_(MnemobotError):  # trailing underscore: the builtin MemoryError means RAM
    """Memory could not be read or written as asked."""


class MemoryFull(MemoryError_):
    """A write would create a key past ``user-memory-max-keys``; nothing was written."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"user memory full: {limit} keys (user-memory-max-keys); delete keys or raise the limit"
        )
        self.limit = limit


class MemoryDisabled(MemoryError_):
    """The bot has ``user-memory-enabled,false`` and tried to use user memory."""


class InvalidKey(MemoryError_):
    """A memory key that is empty, too long or not a string."""


class InvalidValue(MemoryError_):
    """A value that is not JSON (sets, objects, NaN) or exceeds the size cap."""


class LinkError(MnemobotError):
    """Linking accounts failed; the message is safe to show to the person."""


class UnknownUser(MnemobotError):
    """No user matches the given id, identity or display name."""


class BotError(MnemobotError):
    """A bot's handler raised; ``__cause__`` holds the original exception."""

    def __init__(self, bot: str, cause: BaseException) -> None:
        super().__init__(f"bot {bot!r} failed: {type(cause).__name__}: {cause}")
        self.bot = bot


class LLMError(MnemobotError):
    """The language model could not produce an answer."""


class ChannelError(MnemobotError):
    """A platform refused a send or could not be reached; the reply stays in the outbox."""


class RateLimited(ChannelError):
    """The platform asked us to wait before sending again (HTTP 429)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
