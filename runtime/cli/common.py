"""What every ``mnemobot`` command shares: its options, its runtime, and how it fails.

The commands live in :mod:`mnemobot.runtime.cli.commands` and, for ``mnemobot memory ...``, in
:mod:`mnemobot.runtime.cli.memory`; both import from here rather than from each other. Like
them it imports nothing of the runtime at module level (not even the settings, which bring
pydantic, nor the errors, which ``--help`` never needs): the runtime is built inside
:func:`runtime_for`, when a command runs, not when ``mnemobot --help`` starts.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer

if TYPE_CHECKING:
    from mnemobot.runtime.bots.registry import BotRegistry
    from mnemobot.runtime.settings import Settings

__all__ = [
    "ConfigOption",
    "NeedsBots",
    "fail",
    "guard",
    "load_bots_for",
    "person_for_writing",
    "runtime_for",
    "settings_for",
    "warn",
]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="PATH",
        help="mnemobot.toml to use (default: config/mnemobot.toml).",
    ),
]

NeedsBots = Literal["all", "loadable", "optional"]
"""How much of the bots folder a command needs.

``all``: every bot loads, or the command refuses (``mnemobot run``); ``loadable``: the bots
that load, the broken ones named in a warning (``chat``, ``prompt``, ``run --skip-broken``);
``optional``: operator commands that run no bot (``memory``, ``forget``, ``export``) work with
a broken bot or no bots folder at all, and say nothing about it.
"""


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr and carry on."""
    typer.echo(f"warning: {message}", err=True)


def person_for_writing(runtime: Any, user: str) -> str:
    """The user id a memory write names, creating the person when nobody has it yet.

    Says so on stderr: the operator sees a typo become a new person instead of finding out
    later that the memory went nowhere anyone will read it.
    """
    user_id, created = runtime.identity.find_or_add(user)
    if created:
        typer.echo(
            f"created user {user_id} for {user!r}: nobody had written from it yet; their first "
            "message will be theirs",
            err=True,
        )
    return str(user_id)


def settings_for(config: Path | None) -> Settings:
    """The settings from ``config``, or a one-line error and exit status 1."""
    from mnemobot.runtime.errors import MnemobotError
    from mnemobot.runtime.settings import load_settings

    try:
        return load_settings(config)
    except MnemobotError as exc:
        fail(str(exc))
        raise  # unreachable


def load_bots_for(settings: Settings, needs: NeedsBots) -> BotRegistry:
    """The bots a command runs with, loaded as strictly as ``needs`` says."""
    from mnemobot.runtime.bots.registry import BotRegistry, load_bots

    directory = settings.bots.dir
    if needs == "optional" and not directory.is_dir():
        return BotRegistry({})
    bots = load_bots(directory, strict=needs == "all")
    if needs == "loadable":
        for name, error in bots.broken.items():
            warn(f"bot {name} is broken and skipped: {error}")
    return bots


@contextmanager
def runtime_for(config: Path | None, *, bots: NeedsBots = "loadable") -> Iterator[Any]:
    """A started runtime for one command, stopped whatever happens."""
    import asyncio

    from mnemobot.runtime.app.build import build_runtime

    settings = settings_for(config)
    runtime = build_runtime(settings, bots=load_bots_for(settings, bots))
    asyncio.run(runtime.start())  # Runtime.start/stop are async; a command runs its own loops
    try:
        yield runtime
    finally:
        asyncio.run(runtime.stop())


def guard(fn: Any) -> Any:
    """Turn mnemobot's own errors into one clear line and exit status 1.

    Typer reads the command's name, help, parameters and type hints through the wrapper, so
    all of them are the command's own (``functools.wraps``): the wrapper's hints would
    otherwise be resolved in the command's module, which need not import ``Any``.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from mnemobot.runtime.errors import MnemobotError

        try:
            return fn(*args, **kwargs)
        except MnemobotError as exc:
            fail(str(exc))

    return wrapper
