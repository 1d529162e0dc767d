"""The ``mnemobot`` command line (typer): each command imports what it needs when it runs."""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.cli.commands import app, main

__all__ = ["app", "main"]

__getattr__ = lazy_exports(
    __name__,
    {
        "app": "commands",
        "main": "commands",
    },
)
