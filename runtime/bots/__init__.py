"""Bots: the folders loaded and checked, their ``config.csv`` options, and running the active one.

A turn's bot sees the world through :class:`BotContext` (``ctx``); a dialog bot runs its
``start.bas`` through :class:`ContextDialogHost`.
"""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.bots.context import BotContext
    from mnemobot.runtime.bots.options import OPTIONS, BotOptions, load_options
    from mnemobot.runtime.bots.registry import Bot, BotRegistry, load_bot, load_bots
    from mnemobot.runtime.bots.runner import run_active_bot

__all__ = [
    "OPTIONS",
    "Bot",
    "BotContext",
    "BotOptions",
    "BotRegistry",
    "load_bot",
    "load_bots",
    "load_options",
    "run_active_bot",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "BotContext": "context",
        "OPTIONS": "options",
        "BotOptions": "options",
        "load_options": "options",
        "Bot": "registry",
        "BotRegistry": "registry",
        "load_bot": "registry",
        "load_bots": "registry",
        "run_active_bot": "runner",
    },
)
