"""The path of one message: :meth:`Runtime.handle`.

Each cross-cutting step is a small function the turn passes through (dedupe, identity,
lock, session, commands, bot), in the manner of slack-bolt's middleware: a step may answer
and stop, or call ``proceed()``. The last step runs the active bot and commits its memory
writes, the turn log, the replies to send and the inbox row in one transaction, before any
reply leaves. A bot that fails has its writes dropped; the person gets a short apology.

What a turn carries through the steps is :class:`runtime.turn.Turn`; running the active
bot (its context, dialog, handler or model, and transfers) lives in
:mod:`runtime.active_bot`, and writing the turn in one transaction in
:mod:`runtime.turn_commit`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from mnemobot.runtime.bots.context import TurnState
from mnemobot.runtime.bots.registry import Bot, BotRegistry
from mnemobot.runtime.bots.runner import BotServices, DialogRunner, run_active_bot
from mnemobot.runtime.clock import Clock
from mnemobot.runtime.conversations.inbox import InboxEntry, InboxStore
from mnemobot.runtime.conversations.locks import (
    ConversationLocks,
    DeploymentLock,
    PgAdvisoryLocks,
)
from mnemobot.runtime.conversations.outbox import OutboxStore
from mnemobot.runtime.conversations.sessions import SessionStore
from mnemobot.runtime.conversations.transcript import OpenSession, open_session
from mnemobot.runtime.episodes.reader import EpisodeReader
from mnemobot.runtime.episodes.worker import EpisodeWorker
from mnemobot.runtime.errors import (
    LLMError,
    MemoryFull,
    MnemobotError,
    StorageError,
    UnknownBot,
)
from mnemobot.runtime.llm.client import LLM, NO_MODEL_HELP
from mnemobot.runtime.llm.usage import UsageRecorder, UsageStore
from mnemobot.runtime.memories.store import MemoriesStore
from mnemobot.runtime.memory.janitor import Janitor
from mnemobot.runtime.memory.policy import UserMemoryPolicy
from mnemobot.runtime.memory.store import MemoryScope, MemoryStore
from mnemobot.runtime.messages import InboundMessage, OutboundMessage, TurnResult
from mnemobot.runtime.ops.audit import AuditLog
from mnemobot.runtime.ops.logs import log_turn
from mnemobot.runtime.ops.metrics import Metrics
from mnemobot.runtime.people.identity import IdentityStore, ResolvedUser
from mnemobot.runtime.people.linking import LinkService
from mnemobot.runtime.pipeline.commands import run_command
from mnemobot.runtime.pipeline.commit import TurnCommitter
from mnemobot.runtime.pipeline.delivery import DeliveryServices
from mnemobot.runtime.pipeline.turn import Deliver, Turn
from mnemobot.runtime.recall.search import Recall
from mnemobot.runtime.settings import Settings
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.sqlite_vec import VectorSearch

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

Step = Callable[[Turn, Callable[[], Awaitable[None]]], Awaitable[None]]


def _causes(failure: BaseException) -> list[BaseException]:
    """``failure`` and what it was raised from (a BASIC error wraps the host's error)."""
    chain: list[BaseException] = []
    cause: BaseException | None = failure
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__
    return chain


def _apology_for(failure: BaseException, *, no_model: bool) -> str:
    """What the person is told when their turn failed (nothing of it was saved).

    The same for a Python bot and a BASIC one: a dialog's runtime error carries the host's
    MemoryFull or LLMError as its cause.
    """
    for cause in _causes(failure):
        if isinstance(cause, MemoryFull):
            return MEMORY_FULL_APOLOGY
        if isinstance(cause, LLMError):
            return NO_MODEL_HELP if no_model else LLM_DOWN_APOLOGY
    return APOLOGY


def _log_failure(bot: str, channel: str, failure: BaseException) -> None:
    """One line for a failure that says its cause (a BASIC error names file:line:col, the
    model's names the model and why); a traceback only for a bug, where it is the story.
    A deliberate failure's traceback is kept at debug level."""
    deliberate = isinstance(failure, MnemobotError)
    logger.error(
        "bot turn failed: bot=%s channel=%s cause=%s: %s",
        bot,
        channel,
        type(failure).__name__,
        failure,
        exc_info=None if deliberate else failure,
    )
    if deliberate and logger.isEnabledFor(logging.DEBUG):
        logger.debug("traceback of the failed turn of bot %s", bot, exc_info=failure)


class Runtime:
    """Hosts the bots: takes inbound messages, runs the active bot, commits, returns replies.

    Every collaborator comes in through the constructor, chosen in one place
    (:func:`mnemobot.runtime.app.build.build_runtime`), the way python-telegram-bot's
    ``ApplicationBuilder`` builds an ``Application``; nothing is connected until
    :meth:`start`. Use it as ``async with build_runtime(settings) as runtime:``.

    Args:
        settings: the deployment configuration.
        bots: the loaded bots.
        db: the database (opened and migrated by :meth:`start`, closed by :meth:`stop`).
        clock: the time source (tests pass a ManualClock).
        metrics: where turns, errors and model calls are counted.
        locks: how turns of one conversation are serialised (closed by :meth:`stop`).
        memory, memories, identity, sessions, inbox, outbox, linking, episodes, usage: the
            stores.
        usage_recorder: where the model client reports its calls (already given to ``llm``).
        janitor, episode_worker: the periodic jobs a deployment runs.
        llm: the model client; None means no model is configured.
        user_policy: a bot's user-memory rules.
        dialog_runner: runs ``start.bas`` dialogs; None when no bot has one.
        recall: searches a person's memory (for prompts and ``ctx.user.recall``).
        recover_lease: seconds a send claim is left to its sender when recovering at start.
        vector_search: how semantic recall compares vectors (``recall``'s index), told the
            database once it is open; None when recall is lexical only.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        bots: BotRegistry,
        db: Database,
        clock: Clock,
        metrics: Metrics,
        locks: ConversationLocks,
        memory: MemoryStore,
        memories: MemoriesStore,
        identity: IdentityStore,
        sessions: SessionStore,
        inbox: InboxStore,
        outbox: OutboxStore,
        linking: LinkService,
        episodes: EpisodeReader,
        usage: UsageStore,
        usage_recorder: UsageRecorder,
        janitor: Janitor,
        episode_worker: EpisodeWorker,
        llm: LLM | None,
        user_policy: Callable[[Bot], UserMemoryPolicy],
        dialog_runner: DialogRunner | None,
        recall: Recall,
        audit: AuditLog,
        recover_lease: float,
        vector_search: VectorSearch | None = None,
    ) -> None:
        self.settings = settings
        self.bots = bots
        self.db = db
        self.clock = clock
        self.metrics = metrics
        self.locks = locks
        self.memory = memory
        self.memories = memories  # free-text memories (ctx.user.memories, CLI, admin)
        self.identity = identity
        self.sessions = sessions
        self.inbox = inbox
        self.outbox = outbox
        self.linking = linking
        self.episodes = episodes
        self.usage = usage
        self.usage_recorder = usage_recorder
        self.janitor = janitor
        self.episode_worker = episode_worker
        self.llm = llm
        self.user_policy = user_policy
        self.dialog_runner = dialog_runner
        self.recall = recall
        self.audit = audit  # operators' writes (the admin API records each one here)
        self.vector_search = vector_search
        self.bot_services = BotServices(
            bots=bots,
            db=db,
            memory=memory,
            memories=memories,
            episodes=episodes,
            clock=clock,
            llm=llm,
            llm_settings=settings.llm,
            user_policy=user_policy,
            dialog_runner=dialog_runner,
            recall=recall,
            recall_budget=settings.memory.recall_budget,
        )
        self.delivery_services = DeliveryServices(
            intake=self,
            db=db,
            inbox=inbox,
            outbox=outbox,
            locks=locks,
            clock=clock,
            recover_lease=recover_lease,
        )
        self._committer = TurnCommitter(
            db, clock, memory=memory, sessions=sessions, inbox=inbox, outbox=outbox
        )
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

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the database and apply migrations (StorageError when it cannot be reached)."""
        from mnemobot.runtime.storage.migrate import ensure_schema

        self.db.start()
        ensure_schema(self.db)
        if self.vector_search is not None:  # PostgreSQL: pgvector, where the database has it
            where = await self.db.run(self.vector_search.open, self.db)
            logger.info("semantic recall compares vectors %s", where)

    async def stop(self) -> None:
        """Let the lock threads go and close the database."""
        if isinstance(self.locks, PgAdvisoryLocks):
            self.locks.close()
        self.db.stop()

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    def deployment_lock(self, role: str) -> DeploymentLock:
        """A role only one process of the deployment may play (e.g. polling one token).

        ``role`` is never a secret: hash a token before naming a role after it.
        """
        return DeploymentLock(self.db, role)

    def bind_channel(self, name: str, *, bot: str) -> None:
        """Declare a channel instance and its entry bot (the bot a new session starts with)."""
        self.bots.get(bot)
        self._channels[name] = bot

    def channel_bot(self, name: str) -> str:
        """The entry bot of a bound channel instance."""
        return self._channels[name]

    async def open_session(self, msg: InboundMessage) -> OpenSession | None:
        """The open session of ``msg``'s conversation (its answering bot and turns), or None.

        For a chat page that opens: ``msg`` names the conversation (channel, chat, person);
        its text is not used.
        """
        timeout = self.settings.sessions.timeout
        return await self.db.run(open_session, self.db, self.clock, timeout, msg.conversation)

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
        turn = Turn(msg, inbox=stored, deliver=deliver)
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
        self, turn: Turn, seconds: float, *, outcome: str, error: BaseException | None = None
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

    async def _run_steps(self, turn: Turn, index: int, steps: Sequence[Step] | None = None) -> None:
        chain = self._steps if steps is None else steps
        if index < len(chain):
            await chain[index](turn, lambda: self._run_steps(turn, index + 1, chain))

    async def _dedupe(self, turn: Turn, proceed: Callable[[], Awaitable[None]]) -> None:
        if turn.inbox is None:  # not stored by accept() first: store it now
            turn.inbox = await self.db.run(self.inbox.receive, turn.msg)
        if not turn.inbox.is_new and turn.inbox.status != "received":
            turn.result = TurnResult([], duplicate=True)
            return
        await proceed()

    async def _identify(self, turn: Turn, proceed: Callable[[], Awaitable[None]]) -> None:
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

    async def _serialise(self, turn: Turn, proceed: Callable[[], Awaitable[None]]) -> None:
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
        turn = Turn(msg, inbox=entry, deliver=deliver)
        try:
            await self._run_steps(turn, 0, self._held_steps)
        except StorageError:
            raise
        except Exception as exc:
            logger.exception("earlier event %s on %s failed", msg.event_id, msg.channel)
            await self.db.run(self._committer.give_up, entry.id, f"{type(exc).__name__}: {exc}")
            return []
        assert turn.result is not None
        if deliver is None:
            return turn.result.replies
        if turn.result.replies:
            await deliver(turn.result.replies)
        return []

    async def _open_session(self, turn: Turn, proceed: Callable[[], Awaitable[None]]) -> None:
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

    async def _refuse_oversized(self, turn: Turn, proceed: Callable[[], Awaitable[None]]) -> None:
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
        await self._committer.commit(
            turn, error=f"message too long: {size} characters (limit {limit})"
        )

    async def _commands(self, turn: Turn, proceed: Callable[[], Awaitable[None]]) -> None:
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
            language=lambda: self._language(turn),
        )
        if outcome is None:
            await proceed()
            return
        turn.state.replies.append((turn.state.active_bot, outcome.reply))
        if outcome.merged_into is not None:
            turn.user = ResolvedUser(outcome.merged_into, turn.user.display_name, False)
        if outcome.forget:
            await self.db.run(self._committer.forget_sync, turn)
            return
        turn.state.end_session = outcome.end_session
        await self._committer.commit(turn, error=None)

    async def _language(self, turn: Turn) -> object:
        """The person's language: user memory ``language``, else the platform's hint."""
        assert turn.user is not None
        policy = self.user_policy(self.bots.get(turn.state.active_bot))
        ref = self.memory.user_ref(turn.user.user_id, policy)
        return await MemoryScope(self.memory, ref, turn.writes).get("language") or turn.msg.language

    async def _run_bot(self, turn: Turn, _proceed: Callable[[], Awaitable[None]]) -> None:
        bot_name = turn.state.active_bot
        try:
            await run_active_bot(self.bot_services, turn)
            await self._committer.commit(turn, error=None)
            return
        except StorageError:
            raise
        except Exception as exc:
            failure: BaseException = exc
            self.metrics.error(failure, where="bot")
            bot_name = turn.state.active_bot or bot_name
        _log_failure(bot_name, turn.msg.channel, failure)
        turn.writes.clear()
        session = turn.session
        assert session is not None
        turn.state = TurnState(active_bot=session.active_bot, dialog_state=session.dialog_state)
        apology = _apology_for(failure, no_model=self.llm is None)
        turn.state.replies.append((bot_name, apology))
        await self._committer.commit(turn, error=f"{type(failure).__name__}: {failure}")
        assert turn.result is not None
        turn.result = TurnResult(
            turn.result.replies, failed=True, user_id=turn.result.user_id, bot=bot_name
        )

    # -- after the turn -------------------------------------------------------------------

    async def mark_sent(self, result: TurnResult) -> None:
        """Record that the adapter delivered ``result``'s replies."""
        await self.db.run(self.outbox.mark_sent, [r.id for r in result.replies])
