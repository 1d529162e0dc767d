"""Builds a :class:`Runtime` from settings: the one place every dependency is chosen.

Tests build their own runtime with a ManualClock, a test database and a fake model; the
CLI builds this one. Nothing here opens a connection: :meth:`Runtime.start` does.
"""

from __future__ import annotations

from mnemobot.runtime.bots.registry import BotRegistry, load_bots
from mnemobot.runtime.clock import Clock
from mnemobot.runtime.llm.client import LLM, LiteLLM
from mnemobot.runtime.pipeline.runtime import Runtime
from mnemobot.runtime.settings import Settings
from mnemobot.runtime.storage.database import Database

__all__ = ["build_runtime"]


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    llm: LLM | None = None,
    bots: BotRegistry | None = None,
    require_bots: bool = True,
) -> Runtime:
    """A runtime for ``settings``: its bots loaded and checked, its database not yet opened.

    ``require_bots=False`` is for tools that only read and change memory (``mnemobot memory``,
    ``forget``, ``export``): they work from any directory, with or without a bots folder.
    ``bots`` hands in bots loaded already (the CLI loads them leniently where one broken bot
    must not stop the others).
    """
    if bots is None:
        load = require_bots or settings.bots.dir.is_dir()
        bots = load_bots(settings.bots.dir) if load else BotRegistry({})
    if llm is None and settings.llm.default:
        llm = LiteLLM(settings.llm)
    db = Database(
        settings.database.url,
        echo=settings.database.echo,
        held_connections=settings.workers.max_turns,  # each turn in flight holds its lock's
    )
    runtime = Runtime(settings=settings, bots=bots, db=db, llm=llm, clock=clock)
    if isinstance(llm, LiteLLM) and llm.on_usage is None:
        llm.on_usage = runtime.record_usage
    return runtime
