"""Bots: one folder each under the bots directory, loaded and checked at start-up.

A folder holds ``config.csv`` (options, see :mod:`runtime.botconfig`) and ``bot.py`` with
async handlers, ``start.bas`` with a dialog, both, or neither (then the LLM answers with
the bot's ``prompt`` as persona). Handlers in ``bot.py``:

* ``async def on_message(ctx)``: every message while no dialog is waiting;
* ``async def on_transfer(ctx)``: optional, when another bot hands the conversation over.

Any problem (bad option, syntax error in bot.py or start.bas, a handler that is not async)
stops loading with a message naming the file: a bot that half-loads would fail on a user.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mnemobot.runtime.bots.options import BotOptions, load_options
from mnemobot.runtime.errors import ConfigError, UnknownBot

__all__ = ["Bot", "BotRegistry", "load_bot", "load_bots"]

Handler = Callable[[Any], Awaitable[None]]
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


def _load_dialog(path: Path) -> Any:
    try:
        from mnemobot.runtime.dialogs import load_dialog  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        raise ConfigError(f"{path}: BASIC dialogs are not available in this build") from exc
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


def load_bots(directory: Path) -> BotRegistry:
    """Every bot under ``directory``; raises ConfigError on the first bad one."""
    if not directory.is_dir():
        raise ConfigError(
            f"bots directory not found: {directory} (set [bots] dir or MNEMOBOT_BOTS_DIR)"
        )
    bots = {p.name: load_bot(p) for p in sorted(directory.iterdir()) if _is_bot_folder(p)}
    if not bots:
        raise ConfigError(f"no bots in {directory}: add a folder with config.csv or bot.py")
    return BotRegistry(bots)


class BotRegistry:
    """The loaded bots by name."""

    def __init__(self, bots: dict[str, Bot]) -> None:
        self._bots = dict(bots)

    def __contains__(self, name: object) -> bool:
        return name in self._bots

    def __iter__(self) -> Any:
        return iter(self._bots.values())

    def names(self) -> list[str]:
        return sorted(self._bots)

    def get(self, name: str) -> Bot:
        try:
            return self._bots[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UnknownBot(f"unknown bot {name!r}; bots here: {known}") from None
