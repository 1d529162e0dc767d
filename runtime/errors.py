"""Every error mnemobot raises on purpose, in one place.

The hierarchy, so callers can catch as wide or as narrow as they need::

    MnemobotError
    ├── ConfigError            a config.csv / mnemobot.toml value is wrong (names file and row)
    │   ├── UnknownBot         a bot name that no folder under the bots dir defines
    │   └── DialogSyntaxError  a .bas program does not parse (file, line, column, caret)
    ├── StorageError           the database refused or went away; the turn is rolled back
    ├── MemoryError_           memory could not be read or written as asked
    │   ├── MemoryFull         user-memory-max-keys reached; nothing was written
    │   ├── MemoryDisabled     user- or episodic-memory-enabled is false; user-memories forbids
    │   ├── UnknownMemory      no free-text memory of this person has that id
    │   ├── InvalidKey         empty, too long or not a string
    │   └── InvalidValue       not JSON, or larger than the value size cap
    ├── LinkError              /link CODE was wrong, expired, used, or tried too often
    ├── UnknownUser            no user with that id, identity or display name
    ├── InvalidIdentity        an e-mail or channel account (kind:external_id) is malformed
    ├── DialogRuntimeError     a dialog failed while running; the turn is rolled back
    │   ├── DialogValueError   an operator or function got values it cannot work with
    │   └── DialogStateError   a saved dialog state cannot be resumed; start again
    ├── LLMError               the model could not answer (not configured, timed out, refused)
    ├── InvalidAnswer          the model answered, but never with JSON of the asked shape
    ├── LostLease              another worker took a background job over; roll back
    ├── AdminNotFound          the key, fact, episode or identity an operator named is not there
    ├── AdminConflict          an operator's change is refused as it stands
    └── ChannelError           a platform refused or could not be reached; replies stay pending
        └── RateLimited        the platform kept asking us to wait (``retry_after`` seconds)

Each class lives here; a package whose callers look for its errors beside it re-exports them
(``runtime/dialogs/errors.py``, ``runtime/ops/admin``, ``runtime/llm``, ``runtime/episodes/
jobs.py``). An exception used only as control flow inside one package is private (its name
starts with ``_``) and never reaches a caller. tests/test_architecture.py checks both: every
class a ``raise`` names is here or private, and every class here is raised (or is the base of
one that is).

SDK and driver exceptions are translated at the boundary with ``raise ... from exc`` so a
caller never has to import sqlalchemy or litellm to handle a failure.
"""

from __future__ import annotations

__all__ = [
    "AdminConflict",
    "AdminNotFound",
    "ChannelError",
    "ConfigError",
    "DialogRuntimeError",
    "DialogStateError",
    "DialogSyntaxError",
    "DialogValueError",
    "InvalidAnswer",
    "InvalidIdentity",
    "InvalidKey",
    "InvalidValue",
    "LLMError",
    "LinkError",
    "LostLease",
    "MemoryDisabled",
    "MemoryError_",
    "MemoryFull",
    "MnemobotError",
    "RateLimited",
    "StorageError",
    "UnknownBot",
    "UnknownMemory",
    "UnknownUser",
]


class MnemobotError(Exception):
    """Base of every error mnemobot raises deliberately."""


class ConfigError(MnemobotError):
    """A configuration value is missing or wrong; the message names where and what."""


class UnknownBot(ConfigError):
    """A bot name that no folder under the bots directory defines."""


class DialogSyntaxError(ConfigError):
    """A ``.bas`` program does not parse; the message shows the offending line and a caret.

    A syntax error is a configuration problem: the bot cannot load.
    """

    def __init__(
        self, filename: str, line: int, column: int, reason: str, excerpt: str = ""
    ) -> None:
        text = f"{filename}:{line}:{column}: syntax error: {reason}"
        if excerpt:
            text += "\n" + excerpt
        super().__init__(text)
        self.filename = filename
        self.line = line
        self.column = column
        self.reason = reason


class StorageError(MnemobotError):
    """The database failed (unreachable, locked too long, constraint); nothing was committed."""


class MemoryError_(MnemobotError):  # trailing underscore: the builtin MemoryError means RAM
    """Memory could not be read or written as asked."""


class MemoryFull(MemoryError_):
    """A write would create a key past ``user-memory-max-keys``; nothing was written."""

    def __init__(self, limit: int, what: str = "keys") -> None:
        scope = "user memory" if what == "keys" else "user memories"
        super().__init__(
            f"{scope} full: {limit} {what} (user-memory-max-keys); delete {what} or raise the limit"
        )
        self.limit = limit


class MemoryDisabled(MemoryError_):
    """The bot has ``user-memory-enabled,false`` and tried to use user memory, or
    ``episodic-memory-enabled,false`` and asked for a session summary. Or ``user-memories``
    is ``off`` (no free-text memories) or ``agentic`` (only the model writes them)."""


class UnknownMemory(MemoryError_):
    """No free-text memory of this person has the given id; nothing was changed."""


class InvalidKey(MemoryError_):
    """A memory key that is empty, too long or not a string."""


class InvalidValue(MemoryError_):
    """A value that is not JSON (sets, objects, NaN) or exceeds the size cap."""


class LinkError(MnemobotError):
    """Linking accounts failed; the message is safe to show to the person."""


class UnknownUser(MnemobotError):
    """No user matches the given id, identity or display name."""


class InvalidIdentity(MnemobotError):
    """An e-mail or channel account (``kind:external_id``) an operator gave is malformed."""


class DialogRuntimeError(MnemobotError):
    """A dialog failed while running (bad types, unknown function, budget spent, refused URL).

    It ends one turn: the turn handler catches it, logs it and answers with an apology. Code
    that does not know where in the program it runs (the HTTP fetcher, a host, the value
    rules) raises it without a location; the interpreter adds the file, line and column of
    the statement.
    """

    def __init__(
        self,
        cause: str,
        *,
        filename: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.cause = cause
        self.filename = filename
        self.line = line
        self.column = column
        if filename is not None and line is not None:
            text = f"{filename}:{line}:{column or 0}: runtime error: {cause}"
        else:
            text = cause
        super().__init__(text)

    @property
    def located(self) -> bool:
        """Whether the error already names a place in a program."""
        return self.filename is not None and self.line is not None


class DialogValueError(DialogRuntimeError):
    """An operator or function got values it cannot work with; the message says which.

    Raised without a location by the value rules (``runtime/dialogs/values.py``, builtins);
    the interpreter re-raises it as a located :class:`DialogRuntimeError`.
    """


class DialogStateError(DialogRuntimeError):
    """A saved dialog state cannot be resumed: it is malformed or the program has changed.

    The caller should drop the state and start the dialog again from the top.
    """


class LLMError(MnemobotError):
    """The language model could not produce an answer."""


class InvalidAnswer(MnemobotError):
    """The model answered, but never with JSON of the asked shape; the message says why."""


class LostLease(MnemobotError):
    """Another worker took a background job over (our lease ran out); roll back what we did."""


class AdminNotFound(MnemobotError):
    """The key, fact, episode or identity named does not exist (for that person or bot)."""


class AdminConflict(MnemobotError):
    """The change asked for is refused as it stands (e.g. unlinking someone's last account)."""


class ChannelError(MnemobotError):
    """A platform refused a send or could not be reached; the reply stays in the outbox."""


class RateLimited(ChannelError):
    """The platform kept answering HTTP 429 past our retries; the reply stays pending.

    ``retry_after`` is the wait, in seconds, the platform asked for last.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
