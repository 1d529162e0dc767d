"""The reclaimer: what a dead worker left half done, finished by a live one.

A worker killed mid-turn leaves its event ``received`` in the inbox (its turn committed
nothing: memory, turn log, replies and the inbox row commit together), and a worker killed
between commit and send leaves replies unsent under an old claim. Every worker runs a
reclaimer; each pass claims, per channel, events unanswered for longer than
``reclaim_after`` and replies whose send claim is older than ``send_lease``, and hands
them to that channel's delivery. Claims use ``FOR UPDATE SKIP LOCKED`` and a claim time, so
two reclaimers do not take the same rows. An event whose conversation a live turn holds,
in this process or another, is not taken (a long turn is not a dead worker); a later pass
looks again. Taking over an event or a reply whose first worker is in fact still busy with
it otherwise stays harmless: the turn, or the send, waits for the conversation lock and then
finds the event answered, or the reply sent.

Events are taken oldest first and a turn answers its conversation's earlier events first,
so a conversation's order holds through a crash as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Protocol

from mnemobot.runtime.messages import InboundMessage, OutboundMessage
from mnemobot.runtime.pipeline.delivery import DeliveryServices

__all__ = ["Reclaimer", "Recoverable"]

logger = logging.getLogger(__name__)


class Recoverable(Protocol):
    """What the reclaimer needs of a channel's delivery (:class:`.delivery.Delivery`)."""

    async def process(self, msg: InboundMessage) -> None:
        """Run the turn of a stored event and send its replies."""
        ...

    async def send_claimed(self, replies: list[OutboundMessage]) -> None:
        """Send claimed replies in order, each once, and mark them sent."""
        ...


class Reclaimer:
    """Periodically finishes events and sends replies that dead workers left behind.

    Args:
        services: the runtime's inbox, outbox, locks, clock and database.
        deliveries: per channel name, the delivery that runs turns and sends replies.
        reclaim_after: seconds an event may stay unanswered before another worker takes it.
        send_lease: seconds a claimed reply may stay unsent before another worker sends it.
        batch: rows claimed per channel and kind in one pass.
    """

    def __init__(
        self,
        services: DeliveryServices,
        deliveries: Mapping[str, Recoverable],
        *,
        reclaim_after: float,
        send_lease: float,
        batch: int = 100,
    ) -> None:
        self.services = services
        self.deliveries = dict(deliveries)
        self.reclaim_after = timedelta(seconds=reclaim_after)
        self.send_lease = timedelta(seconds=send_lease)
        self.batch = batch

    async def run_once(self) -> dict[str, int]:
        """One pass over every channel; returns how many events and replies were taken."""
        services = self.services
        counts = {"events": 0, "replies": 0}
        for name, delivery in self.deliveries.items():
            now = services.clock.now()
            claimed = await services.db.run(
                services.inbox.claim_stale,
                name,
                older_than=now - self.reclaim_after,
                limit=self.batch,
            )
            events = [msg for msg in claimed if not await services.locks.busy(msg.conversation)]
            if events:
                logger.warning(
                    "taking over %d unanswered event(s) on %s (a worker stopped mid-turn?)",
                    len(events),
                    name,
                )
                counts["events"] += len(events)
                # Concurrently: one conversation stuck behind a long turn must not hold the
                # rest; within a conversation the turns keep their order themselves.
                await asyncio.gather(*(delivery.process(msg) for msg in events))
            replies = await services.db.run(
                services.outbox.claim_unsent,
                name,
                claimed_before=services.clock.now() - self.send_lease,
                limit=self.batch,
            )
            if replies:
                logger.warning("sending %d unsent reply(ies) on %s", len(replies), name)
                counts["replies"] += len(replies)
                await delivery.send_claimed(replies)
        return counts

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """A pass every ``interval`` seconds until ``stop`` is set; failures are retried."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            if stop.is_set():
                break
            try:
                await self.run_once()
            except Exception:
                logger.exception("reclaimer pass failed; will retry")
