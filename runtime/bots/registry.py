"""Bots: one folder each under the bots directory, loaded and checked at start-up.

A folder holds ``config.csv`` (options, see :mod:`runtime.botconfig`) and ``bot.py`` with
async handlers, ``start.bas`` with a dialog, both, or neither (then the LLM answers with
the bot's ``prompt`` as persona). Handlers in ``bot.py``:

* ``async def on_message(ctx)``: every message while no dialog is waiting;
* ``async def on_transfer(ctx)``: optional, when another bot hands the conversation over.

Any problem (bad option, syntax error in bot.py or start.bas, a handler that is not async, a
handler name one typo away from ``on_message``) makes that bot broken, with a message naming
the file: a bot that half-loads would fail on a user. A broken bot never runs; whether it
stops the others is the caller's choice (:func:`load_bots`' ``strict``): ``mnemobot run``
refuses to start, ``mnemobot chat --bot good`` and the operator commands carry on.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from mnemobot.runtime.bots.options import BotOptions, load_options
from mnemobot.runtime.errors import ConfigError, UnknownBot
from mnemobot.runtime.memory.sensitive import SensitiveRule

__all__ = ["Bot", "BotRegistry", "load_bot", "load_bots"]

Handler = Callable[[Any], Awaitable[None]]
HANDLERS = ("on_message", "on_transfer")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Bot:
    """A loaded bot."""

    name: str
    folder: Path
    options: BotOptions
    on_message: Handler | None = None
    on_transfer: Handler | None = None
    dialog: Any = None  # a parsed start.bas (runtime.dialogs), when present


def _import_module(bot_name: str, path: Path) -> ModuleType:
    module_name = f"mnemobot_bots.{bot_name.replace('-', '_').replace('.', '_')}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ConfigError(f"{path} line {exc.lineno}: syntax error: {exc.msg}") from exc
    except Exception as exc:
        raise ConfigError(f"{path}: failed to import: {type(exc).__name__}: {exc}") from exc
    sys.modules[module_name] = module
    return module


def _handler(module: ModuleType, name: str, path: Path) -> Handler | None:
    fn = getattr(module, name, None)
    if fn is None:
        return None
    if not inspect.iscoroutinefunction(fn):
        raise ConfigError(f"{path}: {name} must be defined with 'async def {name}(ctx)'")
    return fn  # type: ignore[no-any-return]


def _misspelt_handlers(module: ModuleType, path: Path) -> None:
    """Refuse a function named one typo away from a handler (``on_mesage``): it would never run."""
    for name, value in vars(module).items():
        if name in HANDLERS or name.startswith("_") or not inspect.isfunction(value):
            continue
        if value.__module__ != module.__name__:
            continue  # imported from elsewhere, not the bot's own
        close = difflib.get_close_matches(name, HANDLERS, n=1, cutoff=0.8)
        if close:
            raise ConfigError(
                f"{path}: {name} is not a handler name and would never run; "
                f"did you mean {close[0]}?"
            )


def _load_dialog(path: Path) -> Any:
    from mnemobot.runtime.dialogs.parser import load_dialog

    return load_dialog(path)


def load_bot(folder: Path) -> Bot:
    """Load and check one bot folder."""
    name = folder.name
    if not _NAME.match(name):
        raise ConfigError(f"{folder}: bot folder names use letters, digits, '-', '_' and '.'")
    options = load_options(folder / "config.csv", name)
    on_message = on_transfer = None
    py = folder / "bot.py"
    if py.is_file():
        module = _import_module(name, py)
        _misspelt_handlers(module, py)
        on_message = _handler(module, "on_message", py)
        on_transfer = _handler(module, "on_transfer", py)
        if on_message is None and on_transfer is None:
            raise ConfigError(f"{py}: defines neither on_message(ctx) nor on_transfer(ctx)")
    bas = folder / "start.bas"
    dialog = _load_dialog(bas) if bas.is_file() else None
    return Bot(name, folder, options, on_message, on_transfer, dialog)


def _is_bot_folder(path: Path) -> bool:
    return path.is_dir() and any(
        (path / f).is_file() for f in ("config.csv", "bot.py", "start.bas")
    )


def load_bots(directory: Path, *, strict: bool = True) -> BotRegistry:
    """Every bot under ``directory``.

    Args:
        directory: the bots folder, one sub-folder per bot.
        strict: raise ConfigError on the first broken bot (what a deployment wants: a bot
            that fails on a user is worse than a start that fails on the operator). With
            ``strict=False`` the broken bots are kept aside in :attr:`BotRegistry.broken`,
            each with its error, and the others load.

    A missing or empty directory is an error either way.
    """
    if not directory.is_dir():
        raise ConfigError(
            f"bots directory not found: {directory} (set [bots] dir or MNEMOBOT_BOTS_DIR)"
        )
    bots: dict[str, Bot] = {}
    broken: dict[str, ConfigError] = {}
    for folder in sorted(directory.iterdir()):
        if not _is_bot_folder(folder):
            continue
        try:
            bots[folder.name] = load_bot(folder)
        except ConfigError as exc:
            if strict:
                raise
            broken[folder.name] = exc
    if not bots and not broken:
        raise ConfigError(f"no bots in {directory}: add a folder with config.csv or bot.py")
    return BotRegistry(bots, broken=broken)


class BotRegistry:
    """The loaded bots by name, and the broken ones with what is wrong with each.

    Iteration, ``in`` and :meth:`names` see only the bots that loaded; :meth:`get` of a
    broken bot raises its own error, so asking for it says what to fix.
    """

    def __init__(
        self, bots: dict[str, Bot], *, broken: dict[str, ConfigError] | None = None
    ) -> None:
        self._bots = dict(bots)
        self.broken: dict[str, ConfigError] = dict(broken or {})

    def __contains__(self, name: object) -> bool:
        return name in self._bots

    def __iter__(self) -> Any:
        return iter(self._bots.values())

    def names(self) -> list[str]:
        return sorted(self._bots)

    @cached_property
    def sensitive(self) -> SensitiveRule:
        """Every loaded bot's sensitive-keys and sensitive-values together: user memory is
        shared, so what one bot declares sensitive stays out of every prompt. The bots do not
        change once loaded, so it is worked out once, not in every turn that asks."""
        return SensitiveRule.union(bot.options.sensitive for bot in self._bots.values())

    def get(self, name: str) -> Bot:
        try:
            return self._bots[name]
        except KeyError:
            if name in self.broken:
                raise ConfigError(str(self.broken[name])) from self.broken[name]
            known = ", ".join(self.names()) or "none"
            close = difflib.get_close_matches(name, [*self._bots, *self.broken], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UnknownBot(f"unknown bot {name!r}{hint}; bots here: {known}") from None
