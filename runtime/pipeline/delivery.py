"""Delivery: the loop around the runtime that every channel shares.

An adapter only converts: a platform event into an :class:`InboundMessage`, a reply into
platform calls. :class:`Delivery` does the rest the same way for every platform:

1. ``accept``: store the event in the inbox (durable), then the adapter acknowledges the
   platform (webhook 2xx, getUpdates offset, Slack ack);
2. ``process``: run the turn in a background task, send its committed replies in order
   while the conversation is still held (so order holds across worker processes), mark
   them sent; a reply that fails to send gives its claim back and stays pending;
3. on start, ``recover``: answer events stored but never answered, and send replies
   committed but never marked sent and claimed by no live sender (the process stopped in
   between). With several workers, :class:`~mnemobot.runtime.pipeline.recovery.Reclaimer`
   does the same periodically for workers that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.conversations.inbox import InboxEntry, InboxStore
from mnemobot.runtime.conversations.locks import ConversationLocks
from mnemobot.runtime.conversations.outbox import OutboxStore
from mnemobot.runtime.errors import StorageError
from mnemobot.runtime.messages import InboundMessage, OutboundMessage, TurnResult
from mnemobot.runtime.pipeline.turn import Deliver
from mnemobot.runtime.storage.database import Database

__all__ = ["Delivery", "DeliveryServices", "Intake", "ReplySender"]

logger = logging.getLogger(__name__)


class Intake(Protocol):
    """Where delivery hands events: the runtime's :meth:`accept` and :meth:`handle`."""

    async def accept(self, msg: InboundMessage) -> InboxEntry | None: ...

    async def handle(
        self,
        msg: InboundMessage,
        deliver: Deliver | None = None,
        *,
        stored: InboxEntry | None = None,
    ) -> TurnResult: ...


@dataclass(frozen=True, slots=True)
class DeliveryServices:
    """What delivery and the reclaimer use of the runtime.

    Args:
        intake: stores events and runs their turns (the runtime).
        db: the database the stores run on.
        inbox: stored events.
        outbox: committed replies and their send claims.
        locks: the conversation locks (a send holds its conversation).
        clock: the time source.
        recover_lease: seconds a send claim is left to its sender when recovering at start.
    """

    intake: Intake
    db: Database
    inbox: InboxStore
    outbox: OutboxStore
    locks: ConversationLocks
    clock: Clock
    recover_lease: float


class ReplySender(Protocol):
    """What delivery needs of a channel: its name, and a way to put one reply on the platform."""

    name: str

    async def send(self, reply: OutboundMessage) -> None:
        """Deliver one reply; raise when it could not be delivered (it stays pending)."""
        ...


class Delivery:
    """Runs turns for one channel and sends their replies, each once, in order.

    Args:
        services: the runtime's intake and conversation stores (``runtime.delivery_services``).
        channel: the channel whose replies this sends.
    """

    def __init__(self, services: DeliveryServices, channel: ReplySender) -> None:
        self.services = services
        self.channel = channel
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: dict[str, asyncio.Task[None]] = {}  # per conversation: its newest turn

    async def accept(self, msg: InboundMessage) -> InboxEntry | None:
        """Store ``msg``; None for an event already handled. Raises StorageError if not stored.

        Pass what it returns to :meth:`process_later`, so the turn does not store it again.
        """
        return await self.services.intake.accept(msg)

    def process_later(self, msg: InboundMessage, stored: InboxEntry | None = None) -> None:
        """Handle an accepted message in the background, after its conversation's earlier ones.

        The conversation lock alone does not keep order: on PostgreSQL each turn's first
        database call runs in a thread, so a second message could reach the lock first.
        """
        key = msg.conversation
        before = self._last.get(key)
        task = asyncio.create_task(
            self._after(before, msg, stored), name=f"turn:{self.channel.name}"
        )
        self._last[key] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda done: self._forget_last(key, done))

    def _forget_last(self, key: str, done: asyncio.Task[None]) -> None:
        if self._last.get(key) is done:
            del self._last[key]

    async def _after(
        self, before: asyncio.Task[None] | None, msg: InboundMessage, stored: InboxEntry | None
    ) -> None:
        if before is not None:
            await asyncio.wait({before})
        await self.process(msg, stored)

    async def receive(self, msg: InboundMessage) -> bool:
        """Accept, then process in the background; the caller acknowledges after this.

        False for an event already handled."""
        stored = await self.accept(msg)
        if stored is not None:
            self.process_later(msg, stored)
        return stored is not None

    async def process(self, msg: InboundMessage, stored: InboxEntry | None = None) -> None:
        """Run the turn and send its replies; failures stay recorded for recovery."""
        try:
            await self.services.intake.handle(msg, deliver=self.send_all, stored=stored)
        except StorageError:
            logger.exception("turn not committed (database); event %s stays stored", msg.event_id)
            return
        except Exception:
            logger.exception("turn of event %s on %s failed", msg.event_id, self.channel.name)

    async def send_all(self, replies: list[OutboundMessage]) -> None:
        """Send in order per chat; a failure stops that chat only (its rest stay pending)."""
        failed: set[str] = set()
        unsent: list[str] = []
        for reply in replies:
            if reply.chat_id in failed:
                unsent.append(reply.id)
                continue
            try:
                await self.channel.send(reply)
            except Exception:
                logger.exception(
                    "reply %s on %s not delivered; it stays pending", reply.id, self.channel.name
                )
                failed.add(reply.chat_id)
                unsent.append(reply.id)
                continue
            await self.services.db.run(self.services.outbox.mark_sent, [reply.id])
        if unsent:  # free to be taken again (at the next start or reclaimer pass)
            await self.services.db.run(self.services.outbox.release, unsent)

    async def leave_pending(self, replies: list[OutboundMessage]) -> None:
        """Give back the send claim on ``replies``: they wait in the outbox, unsent."""
        await self.services.db.run(self.services.outbox.release, [r.id for r in replies])

    async def pending_replies(self, instance: str, chat_id: str) -> list[OutboundMessage]:
        """Replies committed for ``chat_id`` on channel instance ``instance``, not yet sent."""
        pending = await self.services.db.run(self.services.outbox.pending, instance)
        return [reply for reply in pending if reply.chat_id == chat_id]

    async def mark_sent(self, replies: list[OutboundMessage]) -> None:
        """Record that ``replies`` reached the person (a channel that sent them itself)."""
        await self.services.db.run(self.services.outbox.mark_sent, [r.id for r in replies])

    async def send_claimed(self, replies: list[OutboundMessage]) -> None:
        """Send replies claimed from the outbox (left unsent by a crash or a failed send).

        A claim expires after ``send_lease`` whether or not its sender is alive, and a live
        one may just be slow (rate limits, a backlog behind the chat's pacing). Senders hold
        the reply's conversation while they send, so these are sent holding it too, and only
        those still unsent once it is held: a reply is never sent twice by two live workers.
        """
        if not replies:
            return
        services = self.services
        conversations = await services.db.run(
            services.outbox.pending_conversations, [r.id for r in replies]
        )
        groups: dict[str | None, list[OutboundMessage]] = {}
        for reply in replies:
            if reply.id in conversations:
                groups.setdefault(conversations[reply.id], []).append(reply)
        await asyncio.gather(
            *(self._send_held(conversation, group) for conversation, group in groups.items())
        )

    async def _send_held(self, conversation: str | None, replies: list[OutboundMessage]) -> None:
        services = self.services
        held = services.locks.hold(conversation) if conversation else contextlib.nullcontext()
        async with held:
            unsent = await services.db.run(
                services.outbox.pending_conversations, [r.id for r in replies]
            )
            await self.send_all([r for r in replies if r.id in unsent])

    async def recover(self) -> None:
        """Finish what a previous run left: unanswered events, then unsent replies."""
        await self.answer_unfinished(self.channel.name)
        services = self.services
        # Another worker may be sending some right now: only what no live sender claims.
        pending = await services.db.run(
            services.outbox.claim_unsent,
            self.channel.name,
            claimed_before=services.clock.now() - timedelta(seconds=services.recover_lease),
        )
        if pending:
            logger.info("sending %d replies committed before a restart", len(pending))
            await self.send_claimed(pending)

    async def answer_unfinished(self, instance: str) -> None:
        """Answer the events of channel instance ``instance`` stored but never answered."""
        for msg in await self.services.db.run(self.services.inbox.unfinished, instance):
            logger.info("answering event %s stored before a restart", msg.event_id)
            await self.process(msg)

    async def drain(self, grace: float = 30.0) -> None:
        """Wait for turns in flight (at shutdown); what is left is recovered next start."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
