"""Running a turn's active bot: its context, then its dialog, handler or model, then transfers.

Kept apart from :mod:`runtime.pipeline` because it is the "run the bot" box of the path of
one message (DESIGN.md) and the only part that knows what a bot is made of (``start.bas``,
``on_message``, ``on_transfer``, or the model alone); the steps around it only know that it
may fail. Every read and write a bot makes goes to the turn's pending writes, committed by
:mod:`runtime.turn_commit` or dropped.

These functions take the started :class:`~runtime.pipeline.Runtime` and read its public
parts (bots, memory, episodes, the model, the dialog runner) when they use them, never its
private state; the model is looked up at each call, as before, so one swapped on a running
runtime (``bench/pipeline.py`` does) is the one asked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from mnemobot.runtime.bots.context import BotContext, BotView, FactsView, SessionView, UserView
from mnemobot.runtime.bots.registry import Bot
from mnemobot.runtime.clock import Clock
from mnemobot.runtime.errors import LLMError, MnemobotError
from mnemobot.runtime.llm.answers import EPISODES_CONSIDERED, assemble_prompt
from mnemobot.runtime.llm.client import NO_MODEL_HELP
from mnemobot.runtime.memory.store import MemoryScope
from mnemobot.runtime.pipeline.turn import Turn

if TYPE_CHECKING:
    from mnemobot.runtime.pipeline.runtime import Runtime

__all__ = ["MAX_TRANSFERS_PER_TURN", "DialogRunner", "bot_context", "run_active_bot"]

MAX_TRANSFERS_PER_TURN = 5

DialogRunner = Callable[[BotContext, Bot, str | None, Clock], Awaitable[None]]


def bot_context(runtime: Runtime, turn: Turn, bot: Bot) -> BotContext:
    """What ``bot`` sees of ``turn``: every memory scope over the turn's pending writes."""
    assert turn.user is not None and turn.session is not None
    user_id = turn.user.user_id
    user_memory = MemoryScope(
        runtime.memory, runtime.memory.user_ref(user_id, runtime.user_policy(bot)), turn.writes
    )
    session = turn.session
    return BotContext(
        message=turn.msg,
        user=UserView(
            id=user_id,
            display_name=turn.user.display_name,
            memory=user_memory,
            facts=FactsView(user_memory),
            episodes=_episodes_of(runtime, user_id, bot.options.episodic_memory_history),
        ),
        bot=BotView(
            bot.name,
            bot.options,
            MemoryScope(runtime.memory, runtime.memory.bot_ref(bot.name), turn.writes),
        ),
        session=SessionView(
            session.id,
            session.opened_now,
            MemoryScope(
                runtime.memory, runtime.memory.session_ref(session.id, user_id), turn.writes
            ),
            MemoryScope(
                runtime.memory,
                runtime.memory.session_ref(session.id, user_id, "context"),
                turn.writes,
            ),
        ),
        turn=turn.state,
        llm=partial(_ask_llm, runtime),
    )


def _episodes_of(
    runtime: Runtime, user_id: str, default_limit: int
) -> Callable[[int], Awaitable[list[dict[str, Any]]]]:
    async def recent(limit: int = default_limit) -> list[dict[str, Any]]:
        return await runtime.db.run(runtime.episodes.recent, user_id, limit)

    return recent


async def run_active_bot(runtime: Runtime, turn: Turn) -> None:
    """Run the conversation's active bot on ``turn``, then each bot it transfers to.

    Raises whatever the bot raises (its writes are then the caller's to drop), and
    MnemobotError after more than MAX_TRANSFERS_PER_TURN transfers in one turn.
    """
    assert turn.session is not None
    bot = runtime.bots.get(turn.state.active_bot)
    ctx = bot_context(runtime, turn, bot)
    dialog_turn = bot.dialog is not None and (
        turn.session.opened_now or turn.state.dialog_state is not None
    )
    if dialog_turn:
        await _dialog(runtime, ctx, bot, None if turn.session.opened_now else turn.msg.text)
    elif bot.on_message is not None:
        await bot.on_message(ctx)
    else:
        await _llm_answer(runtime, ctx)
    hops = 0
    while turn.state.transfer_to is not None:
        hops += 1
        if hops > MAX_TRANSFERS_PER_TURN:
            raise MnemobotError(f"more than {MAX_TRANSFERS_PER_TURN} transfers in one turn")
        target = runtime.bots.get(turn.state.transfer_to)
        turn.state.transfer_to = None
        turn.state.active_bot = target.name
        turn.state.dialog_state = None
        ctx = bot_context(runtime, turn, target)
        if target.dialog is not None:
            await _dialog(runtime, ctx, target, None)
        elif target.on_transfer is not None:
            await target.on_transfer(ctx)
        elif target.on_message is not None:
            await target.on_message(ctx)
        else:
            await _llm_answer(runtime, ctx)


async def _dialog(runtime: Runtime, ctx: BotContext, bot: Bot, message: str | None) -> None:
    if runtime.dialog_runner is None:
        raise MnemobotError(f"bot {bot.name!r} has a dialog but no dialog runner is set")
    await runtime.dialog_runner(ctx, bot, message, runtime.clock)


async def _ask_llm(runtime: Runtime, ctx: BotContext, question: str) -> str:
    if runtime.llm is None:
        raise LLMError(NO_MODEL_HELP)
    bot = runtime.bots.get(ctx.bot.name)
    built = await assemble_prompt(
        db=runtime.db,
        llm=runtime.llm,
        llm_settings=runtime.settings.llm,
        bot=bot,
        user_memory=ctx.user.memory,
        context=ctx.session.context,
        session_id=ctx.session.id,
        episodes=await runtime.db.run(runtime.episodes.recent, ctx.user.id, EPISODES_CONSIDERED),
        question=question,
    )
    return await runtime.llm.complete(
        built.messages, model=bot.options.model, bot=bot.name, user_id=ctx.user.id
    )


async def _llm_answer(runtime: Runtime, ctx: BotContext) -> None:
    try:
        answer = await ctx.llm(ctx.text)
    except LLMError as exc:
        if runtime.llm is not None:
            raise
        answer = str(exc)
    await ctx.say(answer)
