"""The errors a dialog raises, each naming the file, line and column it is about.

A syntax error is a configuration problem (the bot cannot load), so it is a ``ConfigError``;
a runtime error ends one turn, so it is a plain ``MnemobotError`` the turn handler catches,
logs and answers with an apology. The classes live in ``runtime/errors.py`` with the rest of
the hierarchy; this module re-exports them for the dialog code and its callers.
"""

from __future__ import annotations

from mnemobot.runtime.errors import (
    DialogRuntimeError,
    DialogStateError,
    DialogSyntaxError,
    DialogValueError,
)

__all__ = ["DialogRuntimeError", "DialogStateError", "DialogSyntaxError", "DialogValueError"]
