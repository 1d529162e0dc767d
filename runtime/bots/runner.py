"""Running a turn's active bot: its context, then its dialog, handler or model, then transfers.

Kept apart from :mod:`runtime.pipeline` because it is the "run the bot" box of the path of
one message (DESIGN.md) and the only part that knows what a bot is made of (``start.bas``,
``on_message``, ``on_transfer``, or the model alone); the steps around it only know that it
may fail. Every read and write a bot makes goes to the turn's pending writes, committed by
:mod:`runtime.turn_commit` or dropped.

These functions take :class:`BotServices`, the few parts of the runtime that running a bot
uses (bots, memory, episodes, the model, the dialog runner), never the runtime itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from mnemobot.runtime.bots.context import BotContext, BotView, FactsView, SessionView, UserView
from mnemobot.runtime.bots.registry import Bot, BotRegistry
from mnemobot.runtime.clock import Clock
from mnemobot.runtime.episodes.reader import EpisodeReader
from mnemobot.runtime.errors import LLMError, MnemobotError
from mnemobot.runtime.llm.answers import assemble_prompt, latest_session
from mnemobot.runtime.llm.client import LLM, NO_MODEL_HELP
from mnemobot.runtime.llm.prompt import BuiltPrompt
from mnemobot.runtime.memories.record import MemoriesMode, Origin
from mnemobot.runtime.memories.store import MemoriesStore
from mnemobot.runtime.memories.view import MemoriesView
from mnemobot.runtime.memory.policy import UserMemoryPolicy
from mnemobot.runtime.memory.store import MemoryScope, MemoryStore, PendingWrites
from mnemobot.runtime.pipeline.turn import Turn
from mnemobot.runtime.recall.search import Recall
from mnemobot.runtime.settings import LLMSettings
from mnemobot.runtime.storage.database import Database

__all__ = [
    "MAX_TRANSFERS_PER_TURN",
    "BotServices",
    "DialogRunner",
    "bot_context",
    "preview_prompt",
    "run_active_bot",
]

MAX_TRANSFERS_PER_TURN = 5

DialogRunner = Callable[[BotContext, Bot, str | None, Clock], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class BotServices:
    """What running a bot uses of the runtime, and nothing more.

    Args:
        bots: the loaded bots (a transfer names one).
        db: the database the stores read through.
        memory: every memory scope's store.
        memories: free-text memories' store (``ctx.user.memories``).
        episodes: the person's recent episodes, for the prompt.
        clock: the time source (dialogs read it).
        llm: the model client; None when no model is configured.
        llm_settings: the ``[llm]`` section (prompt budgets).
        user_policy: a bot's user-memory rules.
        dialog_runner: runs ``start.bas`` dialogs; None when no bot has one.
        recall: searches the person's memory for the prompt.
        recall_budget: prompt tokens for what recall finds (``[memory] recall_budget``).
    """

    bots: BotRegistry
    db: Database
    memory: MemoryStore
    memories: MemoriesStore
    episodes: EpisodeReader
    clock: Clock
    llm: LLM | None
    llm_settings: LLMSettings
    user_policy: Callable[[Bot], UserMemoryPolicy]
    dialog_runner: DialogRunner | None = None
    recall: Recall | None = None
    recall_budget: int = 1500


def bot_context(services: BotServices, turn: Turn, bot: Bot) -> BotContext:
    """What ``bot`` sees of ``turn``: every memory scope over the turn's pending writes."""
    assert turn.user is not None and turn.session is not None
    user_id = turn.user.user_id
    user_memory = MemoryScope(
        services.memory, services.memory.user_ref(user_id, services.user_policy(bot)), turn.writes
    )
    session = turn.session
    return BotContext(
        message=turn.msg,
        user=UserView(
            id=user_id,
            display_name=turn.user.display_name,
            memory=user_memory,
            facts=FactsView(user_memory),
            episodes=_episodes_of(services, user_id, bot.options.episodic_memory_history),
            recall=_recall_of(services, user_id),
            memories=memories_view(services, user_id, bot, session.id, turn.writes),
        ),
        bot=BotView(
            bot.name,
            bot.options,
            MemoryScope(services.memory, services.memory.bot_ref(bot.name), turn.writes),
        ),
        session=SessionView(
            session.id,
            session.opened_now,
            MemoryScope(
                services.memory, services.memory.session_ref(session.id, user_id), turn.writes
            ),
            MemoryScope(
                services.memory,
                services.memory.session_ref(session.id, user_id, "context"),
                turn.writes,
            ),
            MemoryScope(
                services.memory,
                services.memory.session_ref(session.id, user_id, "runtime"),
                turn.writes,
            ),
            episodes_enabled=bot.options.episodic_memory_enabled,
        ),
        temp=MemoryScope(
            services.memory, services.memory.session_ref(session.id, user_id, "temp"), turn.writes
        ),
        turn=turn.state,
        llm=partial(_ask_llm, services),
    )


def memories_mode(bot: Bot) -> MemoriesMode:
    """The bot's ``user-memories`` option, ``off`` when its user memory is disabled."""
    options = bot.options
    if not options.user_memory_enabled:
        return "off"
    return cast(MemoriesMode, options.user_memories)  # one of CHOICES: load_options checks


def memories_view(
    services: BotServices,
    user_id: str,
    bot: Bot,
    session_id: str | None,
    writes: PendingWrites | None,
) -> MemoriesView:
    """``ctx.user.memories`` for ``bot``: in the turn's ``writes``, or (None) committed at once."""
    return MemoriesView(
        services.memories,
        services.clock,
        user_id=user_id,
        mode=memories_mode(bot),
        limit=bot.options.user_memory_max_keys,
        origin=Origin("bot", bot.name, session_id),
        writes=writes,
    )


def _recall_of(
    services: BotServices, user_id: str
) -> Callable[..., Awaitable[list[dict[str, Any]]]]:
    async def recall(query: str, limit: int = 5) -> list[dict[str, Any]]:
        if services.recall is None or limit < 1:
            return []
        vector = await services.recall.query_vector(str(query), user_id)  # by meaning, when on
        found = await services.db.run_search(
            services.recall.search, user_id, str(query), limit=limit, query_vector=vector
        )
        return [hit.as_dict() for hit in found]

    return recall


def _episodes_of(
    services: BotServices, user_id: str, default_limit: int
) -> Callable[[int], Awaitable[list[dict[str, Any]]]]:
    async def recent(limit: int = default_limit) -> list[dict[str, Any]]:
        found = await services.db.run(services.episodes.recent, user_id, limit)
        return [episode.as_dict() for episode in found]  # bots see the seed's dicts

    return recent


async def run_active_bot(services: BotServices, turn: Turn) -> None:
    """Run the conversation's active bot on ``turn``, then each bot it transfers to.

    Raises whatever the bot raises (its writes are then the caller's to drop), and
    MnemobotError after more than MAX_TRANSFERS_PER_TURN transfers in one turn.
    """
    assert turn.session is not None
    bot = services.bots.get(turn.state.active_bot)
    ctx = bot_context(services, turn, bot)
    dialog_turn = bot.dialog is not None and (
        turn.session.opened_now or turn.state.dialog_state is not None
    )
    if dialog_turn:
        await _dialog(services, ctx, bot, None if turn.session.opened_now else turn.msg.text)
    elif bot.on_message is not None:
        await bot.on_message(ctx)
    else:
        await _llm_answer(services, ctx)
    hops = 0
    while turn.state.transfer_to is not None:
        hops += 1
        if hops > MAX_TRANSFERS_PER_TURN:
            raise MnemobotError(f"more than {MAX_TRANSFERS_PER_TURN} transfers in one turn")
        target = services.bots.get(turn.state.transfer_to)
        await ctx.temp.clear()  # a transfer ends the flow: the next bot starts without temp
        turn.state.transfer_to = None
        turn.state.active_bot = target.name
        turn.state.dialog_state = None
        ctx = bot_context(services, turn, target)
        if target.dialog is not None:
            await _dialog(services, ctx, target, None)
        elif target.on_transfer is not None:
            await target.on_transfer(ctx)
        elif target.on_message is not None:
            await target.on_message(ctx)
        else:
            await _llm_answer(services, ctx)
    # Sensitive values this turn wrote are masked where its log repeats them (the person's
    # answer to "your password?", a reply that echoes it): see runtime/memory/sensitive.py.
    turn.hidden_texts = services.bots.sensitive.hidden_texts(
        (op.key, op.value) for _, op in turn.writes.ops if op.kind in ("set", "append")
    )


async def _dialog(services: BotServices, ctx: BotContext, bot: Bot, message: str | None) -> None:
    if services.dialog_runner is None:
        raise MnemobotError(f"bot {bot.name!r} has a dialog but no dialog runner is set")
    await services.dialog_runner(ctx, bot, message, services.clock)


async def _ask_llm(services: BotServices, ctx: BotContext, question: str) -> str:
    if services.llm is None:
        raise LLMError(NO_MODEL_HELP)
    bot = services.bots.get(ctx.bot.name)
    built = await assemble_prompt(
        db=services.db,
        llm=services.llm,
        llm_settings=services.llm_settings,
        bot=bot,
        user_memory=ctx.user.memory,
        memories=ctx.user.memories,
        sensitive=services.bots.sensitive,
        context=ctx.session.context,
        session_id=ctx.session.id,
        recall=services.recall,  # assemble_prompt leaves it out when user memory is off
        user_id=ctx.user.id,
        memory_budget=services.recall_budget,
        question=question,
    )
    return await services.llm.complete(
        built.messages, model=bot.options.model, bot=bot.name, user_id=ctx.user.id
    )


async def preview_prompt(
    services: BotServices, bot: Bot, user_id: str, message: str
) -> tuple[BuiltPrompt, str | None]:
    """The prompt ``bot`` would send for ``message`` from ``user_id`` now, outside any turn
    (``mnemobot prompt``, the admin preview), with the id of the person's open session with
    that bot, whose context it includes. Reads only."""
    session_id = await services.db.run(latest_session, services.db, user_id, bot.name)
    memory = services.memory
    built = await assemble_prompt(
        db=services.db,
        llm=services.llm,
        llm_settings=services.llm_settings,
        bot=bot,
        user_memory=MemoryScope(memory, memory.user_ref(user_id, services.user_policy(bot))),
        memories=memories_view(services, user_id, bot, session_id, None),
        sensitive=services.bots.sensitive,
        context=(
            MemoryScope(memory, memory.session_ref(session_id, user_id, "context"))
            if session_id
            else None
        ),
        session_id=session_id,
        recall=services.recall,
        user_id=user_id,
        memory_budget=services.recall_budget,
        question=message,
    )
    return built, session_id


async def _llm_answer(services: BotServices, ctx: BotContext) -> None:
    try:
        answer = await ctx.llm(ctx.text)
    except LLMError as exc:
        if services.llm is not None:
            raise
        answer = str(exc)
    await ctx.say(answer)
