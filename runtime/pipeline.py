"""The path of one message: :meth:`Runtime.handle`.

Each cross-cutting step is a small function the turn passes through (dedupe, identity,
lock, session, commands, bot), in the manner of slack-bolt's middleware: a step may answer
and stop, or call ``proceed()``. The last step runs the active bot and commits its memory
writes, the turn log, the replies to send and the inbox row in one transaction, before any
reply leaves. A bot that fails has its writes dropped; the person gets a short apology.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import bindparam, insert

from runtime.answers import EPISODES_CONSIDERED, assemble_prompt
from runtime.bots import Bot, BotRegistry
from runtime.clock import Clock, SystemClock
from runtime.commands import run_command
from runtime.context import BotContext, BotView, FactsView, SessionView, TurnState, UserView
from runtime.episode_worker import EpisodeWorker
from runtime.episodes import EpisodeReader
from runtime.errors import LLMError, MemoryFull, MnemobotError, StorageError, UnknownBot
from runtime.identity import IdentityStore, ResolvedUser
from runtime.inbox import InboxEntry, InboxStore
from runtime.janitor import Janitor
from runtime.linking import LinkService
from runtime.llm import LLM, NO_MODEL_HELP, Usage
from runtime.locks import ConversationLocks, LocalLocks, PgAdvisoryLocks, locks_for
from runtime.logs import log_turn
from runtime.memory.policy import UserMemoryPolicy
from runtime.memory.store import MemoryScope, MemoryStore, PendingWrites
from runtime.messages import InboundMessage, OutboundMessage, TurnResult
from runtime.metrics import Metrics
from runtime.outbox import OutboxStore
from runtime.privacy import forget_user
from runtime.sessions import SessionInfo, SessionStore
from runtime.settings import Settings
from runtime.storage.database import Database
from runtime.storage.prepared import Prepared
from runtime.storage.tables import TURNS, new_id
from runtime.usage import UsageStore

__all__ = ["APOLOGY", "Runtime"]

logger = logging.getLogger(__name__)
_TURN_LOG = logging.getLogger("mnemobot.turns")

APOLOGY = (
    "Sorry, something went wrong on my side and nothing from that message was saved. "
    "Please try again."
)
MEMORY_FULL_APOLOGY = (
    "Sorry, I can't remember anything more about you right now (my memory of you is full), "
    "so nothing from that message was saved."
)
LLM_DOWN_APOLOGY = (
    "Sorry, my language model didn't answer just now, so nothing from that message was saved. "
    "Please try again."
)
MAX_TRANSFERS_PER_TURN = 5

_INSERT_TURN = Prepared(
    insert(TURNS).values({c.name: bindparam(c.name, type_=c.type) for c in TURNS.c})
)

DialogRunner = Callable[[BotContext, Bot, str | None, Clock], Awaitable[None]]
Deliver = Callable[[list[OutboundMessage]], Awaitable[None]]


@dataclass
class _Turn:
    msg: InboundMessage
    inbox: InboxEntry | None = None
    user: ResolvedUser | None = None
    session: SessionInfo | None = None
    writes: PendingWrites = field(default_factory=PendingWrites)
    state: TurnState = field(default_factory=TurnState)
    result: TurnResult | None = None
    addressed_bot: str = ""
    logged_text: str | None = None  # what the turn log keeps, when not the whole text
    deliver: Deliver | None = None  # sends committed replies while the conversation is held


Step = Callable[[_Turn, Callable[[], Awaitable[None]]], Awaitable[None]]


def _apology_for(failure: BaseException, *, no_model: bool) -> str:
    """What the person is told when their turn failed (nothing of it was saved)."""
    if isinstance(failure, MemoryFull):
        return MEMORY_FULL_APOLOGY
    if isinstance(failure, LLMError) and no_model:
        return NO_MODEL_HELP
    if isinstance(failure, LLMError):
        return LLM_DOWN_APOLOGY
    return APOLOGY


class Runtime:
    """Hosts the bots: takes inbound messages, runs the active bot, commits, returns replies.

    Args:
        settings: the deployment configuration.
        bots: the loaded bots.
        db: the database (started and migrated by :meth:`start`).
        llm: the model client; None means no model is configured.
        clock: the time source (tests pass a ManualClock).
        locks: how turns of one conversation are serialised; by default chosen at
            :meth:`start` for the database: advisory locks on PostgreSQL (several worker
            processes), in-process locks on SQLite (one process).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        bots: BotRegistry,
        db: Database,
        llm: LLM | None = None,
        clock: Clock | None = None,
        locks: ConversationLocks | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.bots = bots
        self.db = db
        self.llm = llm
        self.clock: Clock = clock or SystemClock()
        self.locks: ConversationLocks = locks or LocalLocks()
        self._locks_given = locks is not None
        self._channels: dict[str, str] = {}
        self._steps: list[Step] = [
            self._dedupe,
            self._identify,
            self._serialise,
            self._open_session,
            self._refuse_oversized,
            self._commands,
            self._run_bot,
        ]
        # An earlier event caught up with while its conversation is held: no dedupe, no lock.
        self._held_steps: list[Step] = [
            self._identify,
            *self._steps[self._steps.index(self._serialise) + 1 :],
        ]
        self.dialog_runner: DialogRunner | None = None
        self.memory: MemoryStore
        self.identity: IdentityStore
        self.sessions: SessionStore
        self.inbox: InboxStore
        self.outbox: OutboxStore
        self.linking: LinkService
        self.episodes: EpisodeReader
        self.janitor: Janitor
        self.episode_worker: EpisodeWorker
        self.usage: UsageStore

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Open the database, apply migrations and build the stores."""
        from runtime.storage.migrate import ensure_schema

        self.db.start()
        ensure_schema(self.db)
        if not self._locks_given:
            self.locks = locks_for(self.db, max_held=self.settings.workers.max_turns)
        clock = self.clock
        self.memory = MemoryStore(
            self.db, clock, max_value_bytes=self.settings.memory.max_value_bytes
        )
        self.identity = IdentityStore(self.db, clock)
        self.sessions = SessionStore(self.db, clock, timeout=self.settings.sessions.timeout)
        self.inbox = InboxStore(self.db, clock)
        self.outbox = OutboxStore(self.db, clock)
        self.linking = LinkService(
            self.db,
            clock,
            code_ttl=self.settings.link.code_ttl,
            max_attempts=self.settings.link.max_attempts,
        )
        self.episodes = EpisodeReader(self.db)
        self.usage = UsageStore(self.db, clock)
        self.episode_worker = EpisodeWorker(
            self.db, clock, self.bots, self.llm, policy_for=self.user_policy
        )
        self.janitor = Janitor(
            self.db,
            clock,
            self.sessions,
            retention_days={b.name: b.options.episodic_memory_retention_days for b in self.bots},
            link_window=self.settings.link.code_ttl,
            batch=self.settings.janitor.batch,
        )
        self.janitor.metrics = self.episode_worker.metrics = self.metrics
        if any(bot.dialog is not None for bot in self.bots):
            from runtime.dialog_host import run_bot_dialog

            self.dialog_runner = run_bot_dialog

    def stop(self) -> None:
        if isinstance(self.locks, PgAdvisoryLocks):
            self.locks.close()
        self.db.stop()

    def bind_channel(self, name: str, *, bot: str) -> None:
        """Declare a channel instance and its entry bot (the bot a new session starts with)."""
        self.bots.get(bot)
        self._channels[name] = bot

    def channel_bot(self, name: str) -> str:
        """The entry bot of a bound channel instance."""
        return self._channels[name]

    def user_policy(self, bot: Bot) -> UserMemoryPolicy:
        opts = bot.options
        return UserMemoryPolicy(
            enabled=opts.user_memory_enabled,
            max_keys=opts.user_memory_max_keys,
            default_ttl=opts.user_memory_default_ttl,
            max_value_bytes=self.settings.memory.max_value_bytes,
            retention=self.settings.memory.retention,
        )

    # -- the path of one message ----------------------------------------------------------

    async def handle(
        self,
        msg: InboundMessage,
        deliver: Deliver | None = None,
        *,
        stored: InboxEntry | None = None,
    ) -> TurnResult:
        """Handle one inbound message; returns the committed replies to send.

        Holding the conversation, the turn first answers the conversation's earlier events
        still unanswered (stored in another worker, whose turn has not reached the lock yet,
        or left by a worker that died), so answers keep the order messages arrived in.

        Args:
            msg: the message (already stored by :meth:`accept`, or stored here).
            deliver: sends committed replies; called for each turn while the conversation
                is still held, so replies of one conversation leave in order even when its
                turns run in different workers. Without it, the replies of caught-up turns
                come first in the result, and the caller sends them all.
            stored: what :meth:`accept` returned for ``msg``, so it is not stored twice.

        Raises StorageError when the database cannot be reached: nothing was committed and
        the adapter must not acknowledge the event, so the platform delivers it again.
        """
        if msg.channel not in self._channels:
            raise UnknownBot(f"channel {msg.channel!r} is not bound to a bot")
        started = time.perf_counter()
        turn = _Turn(msg, inbox=stored, deliver=deliver)
        try:
            await self._run_steps(turn, 0)
        except Exception as exc:  # StorageError and the like: the adapter must not ack
            self._account(turn, time.perf_counter() - started, outcome="error", error=exc)
            raise
        assert turn.result is not None
        result = turn.result
        outcome = "duplicate" if result.duplicate else ("failed" if result.failed else "ok")
        self._account(turn, time.perf_counter() - started, outcome=outcome)
        return result

    def _account(
        self, turn: _Turn, seconds: float, *, outcome: str, error: BaseException | None = None
    ) -> None:
        """Metrics and the one log line of a turn (never its text unless debugging)."""
        msg, result = turn.msg, turn.result
        bot = (
            (result.bot if result else None) or turn.state.active_bot or self._channels[msg.channel]
        )
        if error is not None:
            self.metrics.error(error, where="turn")
        elif outcome == "duplicate":
            self.metrics.dedupe_hit(msg.channel)
        elif result is not None:
            self.metrics.message_received(msg.channel, turn.addressed_bot or bot)
            self.metrics.replies_committed(msg.channel, Counter(r.bot for r in result.replies))
        self.metrics.turn_finished(bot, seconds, outcome=outcome)
        user_id = result.user_id if result else (turn.user.user_id if turn.user else None)
        log_turn(
            bot=bot,
            channel=msg.channel,
            user_id=user_id,
            outcome=outcome,
            seconds=seconds,
            replies=len(result.replies) if result else 0,
            text=msg.text,
            debug=_TURN_LOG.isEnabledFor(logging.DEBUG),
            logger=_TURN_LOG,
        )

    async def accept(self, msg: InboundMessage) -> InboxEntry | None:
        """Store ``msg`` durably, before the platform is acknowledged.

        Returns None when this event was already handled (a redelivery): acknowledge it and
        do nothing. Otherwise it is stored and waits for :meth:`handle` (pass it the entry
        returned here), which may run after the acknowledgement, in another task, or after
        a restart.
        """
        if msg.channel not in self._channels:
            raise UnknownBot(f"channel {msg.channel!r} is not bound to a bot")
        entry = await self.db.run_intake(self.inbox.receive, msg)
        if entry.is_new or entry.status == "received":
            return entry
        self.metrics.dedupe_hit(msg.channel)
        return None

    async def _run_steps(
        self, turn: _Turn, index: int, steps: Sequence[Step] | None = None
    ) -> None:
        chain = self._steps if steps is None else steps
        if index < len(chain):
            await chain[index](turn, lambda: self._run_steps(turn, index + 1, chain))

    async def _dedupe(self, turn: _Turn, proceed: Callable[[], Awaitable[None]]) -> None:
        if turn.inbox is None:  # not stored by accept() first: store it now
            turn.inbox = await self.db.run(self.inbox.receive, turn.msg)
        if not turn.inbox.is_new and turn.inbox.status != "received":
            turn.result = TurnResult([], duplicate=True)
            return
        await proceed()

    async def _identify(self, turn: _Turn, proceed: Callable[[], Awaitable[None]]) -> None:
        msg = turn.msg
        turn.user = await self.db.run(
            self.identity.resolve,
            msg.channel_kind,
            msg.external_user_id,
            msg.display_name,
            language=msg.language,
            email=msg.email,
            link_by_email=self.settings.link.by_email,
        )
        await proceed()

    async def _serialise(self, turn: _Turn, proceed: Callable[[], Awaitable[None]]) -> None:
        waiting = time.perf_counter()
        async with self.locks.hold(turn.msg.conversation):
            self.metrics.lock_waited(time.perf_counter() - waiting)
            assert turn.inbox is not None
            backlog = await self.db.run(self.inbox.backlog, turn.msg.conversation, turn.inbox)
            if backlog.own_status != "received":  # answered meanwhile (a redelivery, or
                turn.result = TurnResult([], duplicate=True)  # a turn in another worker)
                return
            earlier: list[OutboundMessage] = []
            for entry, msg in backlog.earlier:
                earlier += await self._catch_up(entry, msg, turn.deliver)
            await proceed()
            assert turn.result is not None
            if turn.deliver is not None:
                if turn.result.replies:
                    await turn.deliver(turn.result.replies)
            elif earlier:
                turn.result = replace(turn.result, replies=earlier + turn.result.replies)

    async def _catch_up(
        self, entry: InboxEntry, msg: InboundMessage, deliver: Deliver | None
    ) -> list[OutboundMessage]:
        """Run an earlier unanswered event of the held conversation; its replies if unsent.

        One that fails here for a reason other than the database is marked failed, so it
        cannot hold up every later message of its conversation.
        """
        logger.info("answering earlier event %s of %s first", msg.event_id, msg.channel)
        turn = _Turn(msg, inbox=entry, deliver=deliver)
        try:
            await self._run_steps(turn, 0, self._held_steps)
        except StorageError:
            raise
        except Exception as exc:
            logger.exception("earlier event %s on %s failed", msg.event_id, msg.channel)
            await self.db.run(self._give_up, entry.id, f"{type(exc).__name__}: {exc}")
            return []
        assert turn.result is not None
        if deliver is None:
            return turn.result.replies
        if turn.result.replies:
            await deliver(turn.result.replies)
        return []

    def _give_up(self, inbox_id: str, error: str) -> None:
        with self.db.write() as conn:
            self.inbox.finish_in(conn, inbox_id, user_id=None, error=error)

    async def _open_session(self, turn: _Turn, proceed: Callable[[], Awaitable[None]]) -> None:
        assert turn.user is not None
        msg = turn.msg
        entry_bot = self._channels[msg.channel]
        user_id = turn.user.user_id
        session = await self.db.run(
            lambda: self.sessions.begin(
                conversation=msg.conversation,
                channel=msg.channel,
                chat_id=msg.chat_id,
                user_id=user_id,
                entry_bot=entry_bot,
            )
        )
        turn.session = session
        active = session.active_bot if session.active_bot in self.bots else entry_bot
        turn.state.active_bot = turn.addressed_bot = active
        turn.state.dialog_state = session.dialog_state
        await proceed()

    async def _refuse_oversized(self, turn: _Turn, proceed: Callable[[], Awaitable[None]]) -> None:
        limit = self.settings.messages.max_chars
        size = len(turn.msg.text)
        if size <= limit:
            await proceed()
            return
        turn.logged_text = turn.msg.text[:limit] + f" [... {size - limit} more characters]"
        turn.state.replies.append(
            (
                turn.state.active_bot,
                f"Sorry, that message is too long for me ({size} characters; the limit is "
                f"{limit}). Please send it in shorter parts.",
            )
        )
        await self._commit(turn, error=f"message too long: {size} characters (limit {limit})")

    async def _commands(self, turn: _Turn, proceed: Callable[[], Awaitable[None]]) -> None:
        assert turn.user is not None and turn.session is not None
        user_id = turn.user.user_id
        runtime_memory = MemoryScope(
            self.memory, self.memory.session_ref(turn.session.id, user_id, "runtime"), turn.writes
        )
        outcome = await run_command(
            turn.msg.text.strip().split(),
            user_id=user_id,
            linking=self.linking,
            run_db=self.db.run,
            runtime_memory=runtime_memory,
            now=self.clock.now(),
            code_ttl=self.settings.link.code_ttl,
        )
        if outcome is None:
            await proceed()
            return
        turn.state.replies.append((turn.state.active_bot, outcome.reply))
        if outcome.merged_into is not None:
            turn.user = ResolvedUser(outcome.merged_into, turn.user.display_name, False)
        if outcome.forget:
            await self.db.run(self._forget_sync, turn)
            return
        turn.state.end_session = outcome.end_session
        await self._commit(turn, error=None)

    def _forget_sync(self, turn: _Turn) -> None:
        """Delete the person, then commit only what is not theirs: the reply and the inbox row."""
        assert turn.user is not None and turn.inbox is not None
        forget_user(self.db, turn.user.user_id)
        replies = self._outbound(turn)
        with self.db.write() as conn:
            self.outbox.add_in(conn, replies, inbox_id=turn.inbox.id, user_id=None)
            self.inbox.finish_in(conn, turn.inbox.id, user_id=None)
        turn.result = TurnResult(replies, user_id=None, bot=turn.state.active_bot)

    async def _run_bot(self, turn: _Turn, _proceed: Callable[[], Awaitable[None]]) -> None:
        bot_name = turn.state.active_bot
        try:
            await self._run_active(turn)
            await self._commit(turn, error=None)
            return
        except StorageError:
            raise
        except Exception as exc:
            failure: BaseException = exc
            self.metrics.error(failure, where="bot")
            bot_name = turn.state.active_bot or bot_name
        logger.error(
            "bot turn failed: bot=%s channel=%s cause=%s: %s",
            bot_name,
            turn.msg.channel,
            type(failure).__name__,
            failure,
            exc_info=failure,
        )
        turn.writes.clear()
        session = turn.session
        assert session is not None
        turn.state = TurnState(active_bot=session.active_bot, dialog_state=session.dialog_state)
        apology = _apology_for(failure, no_model=self.llm is None)
        turn.state.replies.append((bot_name, apology))
        await self._commit(turn, error=f"{type(failure).__name__}: {failure}")
        assert turn.result is not None
        turn.result = TurnResult(
            turn.result.replies, failed=True, user_id=turn.result.user_id, bot=bot_name
        )

    # -- running bots -------------------------------------------------------------------

    def context(self, turn: _Turn, bot: Bot) -> BotContext:
        assert turn.user is not None and turn.session is not None
        user_id = turn.user.user_id
        user_memory = MemoryScope(
            self.memory, self.memory.user_ref(user_id, self.user_policy(bot)), turn.writes
        )
        session = turn.session
        return BotContext(
            message=turn.msg,
            user=UserView(
                id=user_id,
                display_name=turn.user.display_name,
                memory=user_memory,
                facts=FactsView(user_memory),
                episodes=self._episodes_of(user_id, bot.options.episodic_memory_history),
            ),
            bot=BotView(
                bot.name,
                bot.options,
                MemoryScope(self.memory, self.memory.bot_ref(bot.name), turn.writes),
            ),
            session=SessionView(
                session.id,
                session.opened_now,
                MemoryScope(self.memory, self.memory.session_ref(session.id, user_id), turn.writes),
                MemoryScope(
                    self.memory,
                    self.memory.session_ref(session.id, user_id, "context"),
                    turn.writes,
                ),
            ),
            turn=turn.state,
            llm=self._ask_llm,
        )

    def _episodes_of(
        self, user_id: str, default_limit: int
    ) -> Callable[[int], Awaitable[list[dict[str, Any]]]]:
        async def recent(limit: int = default_limit) -> list[dict[str, Any]]:
            return await self.db.run(self.episodes.recent, user_id, limit)

        return recent

    async def _run_active(self, turn: _Turn) -> None:
        assert turn.session is not None
        bot = self.bots.get(turn.state.active_bot)
        ctx = self.context(turn, bot)
        dialog_turn = bot.dialog is not None and (
            turn.session.opened_now or turn.state.dialog_state is not None
        )
        if dialog_turn:
            await self._dialog(ctx, bot, None if turn.session.opened_now else turn.msg.text)
        elif bot.on_message is not None:
            await bot.on_message(ctx)
        else:
            await self._llm_answer(ctx)
        hops = 0
        while turn.state.transfer_to is not None:
            hops += 1
            if hops > MAX_TRANSFERS_PER_TURN:
                raise MnemobotError(f"more than {MAX_TRANSFERS_PER_TURN} transfers in one turn")
            target = self.bots.get(turn.state.transfer_to)
            turn.state.transfer_to = None
            turn.state.active_bot = target.name
            turn.state.dialog_state = None
            ctx = self.context(turn, target)
            if target.dialog is not None:
                await self._dialog(ctx, target, None)
            elif target.on_transfer is not None:
                await target.on_transfer(ctx)
            elif target.on_message is not None:
                await target.on_message(ctx)
            else:
                await self._llm_answer(ctx)

    async def _dialog(self, ctx: BotContext, bot: Bot, message: str | None) -> None:
        if self.dialog_runner is None:
            raise MnemobotError(f"bot {bot.name!r} has a dialog but no dialog runner is set")
        await self.dialog_runner(ctx, bot, message, self.clock)

    async def _ask_llm(self, ctx: BotContext, question: str) -> str:
        if self.llm is None:
            raise LLMError(NO_MODEL_HELP)
        bot = self.bots.get(ctx.bot.name)
        built = await assemble_prompt(
            db=self.db,
            llm=self.llm,
            llm_settings=self.settings.llm,
            bot=bot,
            user_memory=ctx.user.memory,
            context=ctx.session.context,
            session_id=ctx.session.id,
            episodes=await self.db.run(self.episodes.recent, ctx.user.id, EPISODES_CONSIDERED),
            question=question,
        )
        return await self.llm.complete(
            built.messages, model=bot.options.model, bot=bot.name, user_id=ctx.user.id
        )

    async def record_usage(self, usage: Usage) -> None:
        """Store one model call's tokens and cost (LiteLLM's ``on_usage``)."""
        self.metrics.llm_call(usage)
        if usage.user_id is not None and not await self.db.run(self.identity.exists, usage.user_id):
            usage = replace(usage, user_id=None)  # forgotten meanwhile: keep only the totals
        await self.db.run(self.usage.record, usage)

    async def _llm_answer(self, ctx: BotContext) -> None:
        try:
            answer = await ctx.llm(ctx.text)
        except LLMError as exc:
            if self.llm is not None:
                raise
            answer = str(exc)
        await ctx.say(answer)

    # -- commit ------------------------------------------------------------------------

    def _outbound(self, turn: _Turn) -> list[OutboundMessage]:
        return [
            OutboundMessage(new_id(), turn.msg.channel, turn.msg.chat_id, bot, text, seq)
            for seq, (bot, text) in enumerate(turn.state.replies)
        ]

    async def _commit(self, turn: _Turn, *, error: str | None) -> None:
        replies = self._outbound(turn)
        await self.db.run(self._commit_sync, turn, replies, error)
        assert turn.user is not None
        turn.result = TurnResult(replies, user_id=turn.user.user_id, bot=turn.state.active_bot)

    def _commit_sync(self, turn: _Turn, replies: list[OutboundMessage], error: str | None) -> None:
        assert turn.user is not None and turn.session is not None and turn.inbox is not None
        now = self.clock.now()
        user_id = turn.user.user_id
        session = turn.session
        rows: list[dict[str, Any]] = [
            {
                "id": new_id(),
                "session_id": session.id,
                "user_id": user_id,
                "bot": turn.addressed_bot,
                "role": "user",
                "seq": 0,
                "text": turn.msg.text if turn.logged_text is None else turn.logged_text,
                "event_id": turn.msg.event_id,
                "created_at": now,
            }
        ]
        rows += [
            {
                "id": new_id(),
                "session_id": session.id,
                "user_id": user_id,
                "bot": r.bot,
                "role": "bot",
                "seq": r.seq + 1,
                "text": r.text,
                "event_id": None,
                "created_at": now,
            }
            for r in replies
        ]
        with self.db.write() as conn:
            if error is None:
                self.memory.apply(conn, turn.writes, now)
            _INSERT_TURN.execute_many(conn, rows)
            self.outbox.add_in(conn, replies, inbox_id=turn.inbox.id, user_id=user_id)
            self.sessions.touch(
                conn,
                session.id,
                active_bot=turn.state.active_bot,
                dialog_state=turn.state.dialog_state,
                user_messages=session.user_messages + 1,
            )
            if turn.state.end_session:
                self.sessions.end_in(conn, session.id, "explicit", now)
            self.inbox.finish_in(conn, turn.inbox.id, user_id=user_id, error=error)

    async def mark_sent(self, result: TurnResult) -> None:
        """Record that the adapter delivered ``result``'s replies."""
        await self.db.run(self.outbox.mark_sent, [r.id for r in result.replies])
