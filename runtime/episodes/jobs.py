"""The episode worker's jobs: claimed under a lease, finished once, retried with backoff.

Kept apart from :mod:`runtime.episode_worker` because it is the part that makes several
workers safe, and it knows nothing about models, bots or episodes: only the ``jobs`` table.

Claiming marks jobs ``running`` with a lease (``run_after`` = now + lease) in the claiming
transaction; on PostgreSQL with ``FOR UPDATE SKIP LOCKED`` so several workers share the
queue. A job whose worker died is claimed again once its lease has passed. Finishing a job
checks the lease is still this worker's, in the same transaction as the episode or facts
(:meth:`EpisodeJobs.finish_in` takes the caller's connection), so a job is applied once even
when a slow worker's lease was taken over: the loser gets :class:`LostLease` and its
transaction rolls back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import Connection, and_, bindparam, case, insert, select, update

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.errors import LostLease
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import JOBS, new_id

__all__ = [
    "EMBED_JOB",
    "EPISODE_JOB",
    "FACTS_JOB",
    "MEMORIES_JOB",
    "SUMMARY_REQUESTED",
    "EpisodeJobs",
    "Job",
    "JobEnd",
    "JobKind",
    "JobStatus",
    "LostLease",
]

logger = logging.getLogger(__name__)

JobKind = Literal["session_ended", "extract_facts", "embed_session", "edit_memories"]
JobStatus = Literal["pending", "running", "done", "skipped", "failed"]
JobEnd = Literal["done", "skipped", "failed"]  # the statuses a job is finished with

EPISODE_JOB: JobKind = "session_ended"
FACTS_JOB: JobKind = "extract_facts"
EMBED_JOB: JobKind = "embed_session"  # a session's vectors, its person's facts ([memory] embedding)
MEMORIES_JOB: JobKind = "edit_memories"  # the model edits free-text memories (user-memories)
# A session's runtime mark (session_memory kind "runtime") that a bot asked for its summary
# (``ctx.session.summarize()``, ``SUMMARIZE SESSION``); its ending job then carries
# ``"requested": true`` and is summarised even with episodic-memory-auto-summarize false.
SUMMARY_REQUESTED = "summary_requested"
_j = JOBS.c


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job; ``lease`` is what finishing checks to know the job is still ours."""

    id: str
    kind: JobKind
    user_id: str | None
    payload: dict[str, Any]
    attempts: int
    lease: datetime  # run_after as claimed: finishing checks it is still ours

    @property
    def session_id(self) -> str:
        return str(self.payload.get("session_id", ""))

    @property
    def bot(self) -> str:
        return str(self.payload.get("bot", ""))

    @property
    def requested(self) -> bool:
        """A bot asked for this session's summary (see SUMMARY_REQUESTED)."""
        return self.payload.get("requested") is True


class EpisodeJobs:
    """The ``session_ended``, ``extract_facts`` and ``embed_session`` rows of the jobs table, as
    a leased queue.

    Args:
        db: the database.
        clock: the time source (tests move a ManualClock past ``run_after``).
        max_attempts: tries of a job while the model is down before it is marked failed.
        retry_base: seconds before the first retry when the model is down; doubles each time.
        retry_cap: the longest wait between retries, in seconds.
        lease: seconds a claimed job is this worker's before another may take it over.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        max_attempts: int,
        retry_base: float,
        retry_cap: float,
        lease: float,
    ) -> None:
        self.db = db
        self.clock = clock
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.lease = lease

    def claim(self, batch: int) -> list[Job]:
        """Mark up to ``batch`` due jobs running under a fresh lease, and return them.

        The UPDATE re-checks that each job is still due, so a job claimed meanwhile by
        another worker is left out even where no row lock was taken (SQLite, or a row that
        PostgreSQL's SKIP LOCKED did not cover).
        """
        now = self.clock.now()
        lease = now + timedelta(seconds=self.lease)
        due = and_(
            _j.kind.in_((EPISODE_JOB, FACTS_JOB, EMBED_JOB, MEMORIES_JOB)),
            _j.status.in_(("pending", "running")),
            _j.run_after <= now,
        )
        query = self.db.dialect.lock_rows(
            select(_j.id).where(due).order_by(_j.run_after).limit(batch), skip_locked=True
        )
        claim = (
            update(JOBS)
            .where(due, _j.id.in_(bindparam("ids", expanding=True)))
            .values(
                status="running",
                run_after=lease,
                # A job still "running" past its lease lost its worker: that was an attempt.
                attempts=case((_j.status == "running", _j.attempts + 1), else_=_j.attempts),
            )
            .returning(_j.id, _j.kind, _j.user_id, _j.payload, _j.attempts)
        )
        with self.db.write() as conn:
            ids = list(conn.execute(query).scalars())
            rows = conn.execute(claim, {"ids": ids}).all() if ids else []
        order = {job_id: n for n, job_id in enumerate(ids)}
        return [
            Job(r.id, cast(JobKind, r.kind), r.user_id, dict(r.payload or {}), r.attempts, lease)
            for r in sorted(rows, key=lambda r: order[r.id])
        ]

    def finish_in(
        self,
        conn: Connection,
        job: Job,
        status: JobEnd,
        reason: str | None,
        *,
        extract_facts: bool = False,
        embed: bool = False,
        edit_memories: bool = False,
    ) -> None:
        """Mark ``job`` ended on ``conn``; raises LostLease (rolling back) if it is not ours.

        ``extract_facts``, ``embed`` and ``edit_memories`` queue those jobs for the same
        session.
        """
        now = self.clock.now()
        ended = conn.execute(
            update(JOBS)
            .where(_j.id == job.id, _j.status == "running", _j.run_after == job.lease)
            .values(status=status, last_error=reason, run_after=now)
        ).rowcount
        if ended != 1:
            raise LostLease(job.id)
        follow_ups = ((FACTS_JOB, extract_facts), (EMBED_JOB, embed), (MEMORIES_JOB, edit_memories))
        for kind in (kind for kind, wanted in follow_ups if wanted):
            conn.execute(
                insert(JOBS).values(
                    id=new_id(),
                    kind=kind,
                    user_id=job.user_id,
                    payload=job.payload,
                    status="pending",
                    attempts=0,
                    run_after=now,
                    created_at=now,
                )
            )

    def finish(
        self,
        job: Job,
        status: JobEnd,
        reason: str | None,
        extract: bool = False,
        *,
        embed: bool = False,
        edit_memories: bool = False,
    ) -> None:
        """:meth:`finish_in` in a transaction of its own (nothing else to write with it)."""
        with self.db.write() as conn:
            self.finish_in(
                conn,
                job,
                status,
                reason,
                extract_facts=extract,
                embed=embed,
                edit_memories=edit_memories,
            )

    def release(self, job: Job, *, delay: float, attempts: int, reason: str | None) -> None:
        """Put ``job`` back to pending, due in ``delay`` seconds; LostLease if not ours."""
        with self.db.write() as conn:
            released = conn.execute(
                update(JOBS)
                .where(_j.id == job.id, _j.status == "running", _j.run_after == job.lease)
                .values(
                    status="pending",
                    attempts=attempts,
                    last_error=reason,
                    run_after=self.clock.now() + timedelta(seconds=delay),
                )
            ).rowcount
        if released != 1:
            raise LostLease(job.id)

    async def retry_later(self, job: Job, reason: str) -> Literal["failed", "delayed"]:
        """Back to pending with exponential backoff, or failed once attempts run out."""
        attempts = job.attempts + 1
        if attempts >= self.max_attempts:
            await self.db.run(
                self.finish, job, "failed", f"gave up after {attempts} attempts: {reason}"
            )
            logger.error("job %s (%s) failed for good: %s", job.id, job.kind, reason)
            return "failed"
        delay = min(self.retry_base * 2 ** (attempts - 1), self.retry_cap)
        await self.db.run(lambda: self.release(job, delay=delay, attempts=attempts, reason=reason))
        logger.warning(
            "job %s (%s) delayed %.0fs (attempt %d of %d): %s",
            job.id,
            job.kind,
            delay,
            attempts,
            self.max_attempts,
            reason,
        )
        return "delayed"
