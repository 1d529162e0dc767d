"""What every ``mnemobot`` command shares: its options, its runtime, and how it fails.

The commands live in :mod:`runtime.cli` and, for ``mnemobot memory ...``, in
:mod:`runtime.cli_memory`; both import from here rather than from each other, so neither has
to import the other (``python -m runtime.cli`` would otherwise load :mod:`runtime.cli` twice).
Like them it imports nothing heavy at module level: the runtime is built inside
:func:`runtime_for`, when a command runs, not when ``mnemobot --help`` starts.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from mnemobot.runtime.errors import MnemobotError
from mnemobot.runtime.settings import Settings, load_settings

__all__ = ["ConfigOption", "fail", "guard", "runtime_for", "settings_for"]

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="mnemobot.toml to use (default: config/mnemobot.toml)."),
]


def fail(message: str) -> None:
    """Print ``error: message`` on stderr and exit with status 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def settings_for(config: Path | None) -> Settings:
    """The settings from ``config``, or a one-line error and exit status 1."""
    try:
        return load_settings(config)
    except MnemobotError as exc:
        fail(str(exc))
        raise  # unreachable


@contextmanager
def runtime_for(config: Path | None, *, require_bots: bool = True) -> Iterator[Any]:
    """A started runtime for one command, stopped whatever happens."""
    from mnemobot.runtime.app.build import build_runtime

    runtime = build_runtime(settings_for(config), require_bots=require_bots)
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()


def guard(fn: Any) -> Any:
    """Turn mnemobot's own errors into one clear line and exit status 1.

    Typer reads the command's name, help, parameters and type hints through the wrapper, so
    all of them are the command's own (``functools.wraps``): the wrapper's hints would
    otherwise be resolved in the command's module, which need not import ``Any``.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MnemobotError as exc:
            fail(str(exc))

    return wrapper
