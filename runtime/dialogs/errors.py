"""The errors a dialog raises, each naming the file, line and column it is about.

A syntax error is a configuration problem (the bot cannot load), so it is a ``ConfigError``;
a runtime error ends one turn, so it is a plain ``MnemobotError`` the turn handler catches,
logs and answers with an apology.
"""

from __future__ import annotations

from mnemobot.runtime.errors import ConfigError, MnemobotError

__all__ = ["DialogRuntimeError", "DialogStateError", "DialogSyntaxError"]


class DialogSyntaxError(ConfigError):
    """A ``.bas`` program does not parse; the message shows the offending line and a caret."""

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


class DialogRuntimeError(MnemobotError):
    """A dialog failed while running (bad types, unknown function, budget spent, refused URL).

    Code that does not know where in the program it runs (the HTTP fetcher, a host) raises it
    without a location; the interpreter adds the file, line and column of the statement.
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


class DialogStateError(DialogRuntimeError):
    """A saved dialog state cannot be resumed: it is malformed or the program has changed.

    The caller should drop the state and start the dialog again from the top.
    """
