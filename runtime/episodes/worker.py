"""The episode worker: turns finished sessions into episodes, and (opt-in) into facts.

Ending a session records a durable ``session_ended`` job in the same transaction
(:mod:`runtime.sessions`). The worker claims due jobs, and for each:

* skips it, with the reason in ``last_error``, when the bot is unknown, has
  ``episodic-memory-enabled`` or ``episodic-memory-auto-summarize`` false, or the session had
  fewer than ``episodic-memory-threshold`` user messages (commands such as ``/end`` do not
  count); a session whose bot asked for its summary (``ctx.session.summarize()``, BASIC
  ``SUMMARIZE SESSION``) is summarised whatever auto-summarize and the threshold say, as
  long as the person said something;
* otherwise asks the bot's ``episodic-memory-model`` for a JSON summary of the transcript
  (quoted as data), validates it, retries an invalid answer telling the model what was wrong,
  and stores the episode and marks the job done in one transaction. Answers that stay
  invalid mark the job ``failed`` with the reason: never silently dropped;
* when the model is down (LLMError) puts the job back with an exponential backoff: the
  episode is delayed, not lost; after ``max_attempts`` it is ``failed`` with the reason;
* with no model configured at all leaves the job pending, to be summarised once one is.

After an episode is stored, ``episodic-memory-max-episodes`` is enforced for that person and
bot by rolling the oldest episodes up into one summary episode (``details.rolled_up`` counts
the conversations inside), never by dropping them; if the model fails the episodes stay and
the roll-up is tried again after the next episode.

When the bot has ``user-memory-agentic,true``, finishing a ``session_ended`` job also queues
an ``extract_facts`` job for the same session (see :mod:`runtime.facts`). It is a job of its
own so that its retries, failures and backoff never hold up or repeat the episode, and so an
extraction can run even for a bot that keeps no episodes.

When the bot has ``user-memories,agentic``, finishing a ``session_ended`` job also queues an
``edit_memories`` job: one model call that sees the person's free-text memories and the
session and answers additions, updates and deletions (:mod:`runtime.episodes.memories`), so a
refined memory replaces its older wording instead of piling up beside it.

With ``[memory] embedding`` set, finishing a ``session_ended`` job (done, skipped or failed)
also queues an ``embed_session`` job: the vectors of that session's turns and episode, and of
the person's facts, earlier fact values and free-text memories that have none, for semantic
recall, computed here and never on the turn path. A model that is down delays it with the
same backoff. Each pass also catches up, a batch at a time, on rows that have no vector yet
(history from before embeddings were on, jobs that gave up), facts and memories first; the
turns of a session still open are left to its own job, which embeds each with its reply.

Facts and memories that an ``extract_facts`` or ``edit_memories`` job writes are embedded
by that job as soon as they are applied. A fact or memory written mid-session (by the bot's
code, an operator, the command line) waits for no session to end: the next catch-up pass
embeds it, ``catch_up_every`` seconds apart at most (5 minutes by default). Until then
recall finds it by its words, as it finds everything with embeddings off. One pass in a few
minutes, not a job per write, since a write happens inside a turn's transaction and a fact
may change several times in a session; a changed value loses its vector at once (migration
0009's triggers), so the stale text is never found by meaning meanwhile.

Claiming under a lease, finishing once and retrying with backoff live in
:mod:`runtime.episode_jobs`; what the model is asked, and the shape of its answer, in
:mod:`runtime.episode_prompts`; the roll-up of the oldest episodes in
:mod:`runtime.episode_rollup`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy import insert, select

from mnemobot.runtime.bots.registry import Bot, BotRegistry
from mnemobot.runtime.clock import Clock
from mnemobot.runtime.episodes.bell import JobBell
from mnemobot.runtime.episodes.facts.extraction import Provenance, apply_fact_changes, known_facts
from mnemobot.runtime.episodes.facts.prompts import FactProposal, KnownFact, extraction_messages
from mnemobot.runtime.episodes.jobs import (
    EMBED_JOB,
    FACTS_JOB,
    MEMORIES_JOB,
    EpisodeJobs,
    Job,
    LostLease,
)
from mnemobot.runtime.episodes.memories.editing import apply_memory_edits, shown_memories
from mnemobot.runtime.episodes.memories.prompts import MemoryEdits, ShownMemory, editing_messages
from mnemobot.runtime.episodes.prompts import (
    SUMMARY_RULES,
    EpisodeSummary,
    quoted,
    said_by_user,
    transcript,
)
from mnemobot.runtime.episodes.rollup import EpisodeRollup
from mnemobot.runtime.errors import LLMError
from mnemobot.runtime.llm.client import LLM
from mnemobot.runtime.llm.prompt import TurnLine
from mnemobot.runtime.llm.structured import InvalidAnswer, ask_for_json
from mnemobot.runtime.memories.record import Origin
from mnemobot.runtime.memories.store import MemoriesStore
from mnemobot.runtime.memory.policy import UserMemoryPolicy
from mnemobot.runtime.memory.sql import KeyValueSQL
from mnemobot.runtime.ops.metrics import Metrics
from mnemobot.runtime.recall.embedding import VectorFiller
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import EPISODES, TURNS, USER_MEMORY, new_id

Shown = TypeVar("Shown")  # what the model is shown of the person (facts, memories)
Answer = TypeVar("Answer", bound=BaseModel)  # the edits it answers with

__all__ = ["EpisodeWorker"]

logger = logging.getLogger(__name__)

CATCH_UP_BATCH = 500  # rows without a vector embedded per catch-up pass

_t = TURNS.c


def _default_policy(bot: Bot) -> UserMemoryPolicy:
    opts = bot.options
    return UserMemoryPolicy(
        enabled=opts.user_memory_enabled,
        max_keys=opts.user_memory_max_keys,
        default_ttl=opts.user_memory_default_ttl,
    )


class EpisodeWorker:
    """Summarises finished sessions into episodes and runs opt-in fact extraction.

    Args:
        db: the database.
        clock: the time source (tests move a ManualClock past ``run_after``).
        bots: the loaded bots; a job names its bot.
        llm: the model client, or None when no model is configured (jobs then wait).
        max_attempts: tries of a job while the model is down before it is marked failed.
        batch: jobs claimed per :meth:`run_once`.
        answer_tries: answers asked for per job when they are not valid JSON.
        retry_base: seconds before the first retry when the model is down; doubles each time.
        retry_cap: the longest wait between retries, in seconds.
        lease: seconds a claimed job is this worker's before another may take it over.
        no_model_delay: seconds a job waits before being looked at again with no model.
        policy_for: the user-memory rules of a bot (``Runtime.user_policy``), for facts.
        vectors: fills in recall vectors (``[memory] embedding``); None when it is off.
        catch_up_every: seconds between passes over rows that still lack a vector (the first
            pass is at once); None: no such passes, only the jobs.
        memories: free-text memories' store, edited in ``user-memories,agentic`` mode.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        bots: BotRegistry,
        llm: LLM | None,
        *,
        max_attempts: int = 5,
        batch: int = 20,
        answer_tries: int = 3,
        retry_base: float = 60.0,
        retry_cap: float = 3600.0,
        lease: float = 900.0,
        no_model_delay: float = 300.0,
        policy_for: Callable[[Bot], UserMemoryPolicy] | None = None,
        metrics: Metrics | None = None,
        bell: JobBell | None = None,
        vectors: VectorFiller | None = None,
        catch_up_every: float | None = 300.0,
        memories: MemoriesStore | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.bots = bots
        self.llm = llm
        self.bell = bell or JobBell()  # rung when a session ends: no wait for the next poll
        self.jobs = EpisodeJobs(
            db,
            clock,
            max_attempts=max_attempts,
            retry_base=retry_base,
            retry_cap=retry_cap,
            lease=lease,
        )
        self.batch = batch
        self.metrics = metrics
        self.answer_tries = answer_tries
        self.no_model_delay = no_model_delay
        self.rollup = EpisodeRollup(db, self._ask)
        self.policy_for = policy_for or _default_policy
        self._warned_no_model = False
        self._user_sql: KeyValueSQL | None = None
        self.vectors = vectors
        self.catch_up_every = catch_up_every
        self._next_catch_up = clock.now()
        self.memories = memories or MemoriesStore(db, clock)

    # -- the loop -----------------------------------------------------------------------

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Handle due jobs every ``interval`` seconds, at once when the bell rings (a session
        ended here) and while a batch comes back full."""
        while not stop.is_set():
            full = False
            try:
                counts = await self.run_once()
                if self.metrics is not None:
                    self.metrics.episode_jobs_ran(counts)
                full = counts["claimed"] >= self.batch
                if counts["claimed"]:
                    logger.info("episode worker: %s", counts)
            except Exception:
                logger.exception("episode worker pass failed; will retry")
            if full:
                await asyncio.sleep(0)
                continue
            await self.bell.wait(interval, stop)

    async def run_once(self) -> dict[str, int]:
        """Claim one batch of due jobs and handle each; returns how many ended how."""
        jobs = await self.db.run(self.jobs.claim, self.batch)
        counts = dict.fromkeys(("claimed", "done", "skipped", "failed", "delayed", "lost"), 0)
        counts["claimed"] = len(jobs)
        for job in jobs:
            outcome = await self._handle_safely(job)
            counts[outcome] = counts.get(outcome, 0) + 1
        await self._catch_up()
        return counts

    async def _handle_safely(self, job: Job) -> str:
        """Handle one job; a storage error or a bug delays it (then fails it), never loses it."""
        try:
            try:
                return await self._handle(job)
            except LostLease:
                raise
            except Exception as exc:
                logger.exception("job %s (%s) failed unexpectedly", job.id, job.kind)
                return await self.jobs.retry_later(job, f"{type(exc).__name__}: {exc}")
        except LostLease:
            logger.warning("job %s was taken over or removed meanwhile; left as it is", job.id)
            return "lost"
        except Exception:  # even releasing failed (database down): the lease will lapse
            logger.exception("could not release job %s; it is retried when its lease ends", job.id)
            return "lost"

    async def run_until_idle(self, max_passes: int = 100) -> dict[str, int]:
        """Run passes until nothing is due (for the CLI and tests); bounded."""
        total: dict[str, int] = {}
        for _ in range(max_passes):
            counts = await self.run_once()
            for key, value in counts.items():
                total[key] = total.get(key, 0) + value
            if not counts["claimed"]:
                break
        return total

    # -- no model configured --------------------------------------------------------------

    async def _wait_for_model(self, job: Job) -> str:
        if not self._warned_no_model:
            logger.warning(
                "no language model is configured: episodes and fact extraction wait until one "
                "is ([llm] default/fast in config/mnemobot.toml)"
            )
            self._warned_no_model = True
        await self.db.run(
            lambda: self.jobs.release(
                job, delay=self.no_model_delay, attempts=job.attempts, reason="no model configured"
            )
        )
        return "delayed"

    # -- handling ---------------------------------------------------------------------------

    async def _handle(self, job: Job) -> str:
        if job.attempts >= self.jobs.max_attempts:
            await self.db.run(
                self.jobs.finish, job, "failed", f"gave up after {job.attempts} attempts"
            )
            return "failed"
        if job.kind == FACTS_JOB:
            return await self._extract_facts(job)
        if job.kind == MEMORIES_JOB:
            return await self._edit_memories(job)
        if job.kind == EMBED_JOB:
            return await self._embed(job)
        return await self._summarise(job)

    def _bot(self, name: str) -> Bot | None:
        return self.bots.get(name) if name in self.bots else None

    @staticmethod
    def _wants_facts(bot: Bot | None, user_messages: int) -> bool:
        return (
            bot is not None
            and bot.options.user_memory_agentic
            and bot.options.user_memory_enabled
            and user_messages > 0
        )

    @staticmethod
    def _wants_memories(bot: Bot | None, user_messages: int) -> bool:
        return (
            bot is not None
            and bot.options.user_memories == "agentic"
            and bot.options.user_memory_enabled
            and user_messages > 0
        )

    def _skip_reason(self, job: Job, bot: Bot | None, user_messages: int) -> str | None:
        if bot is None:
            return f"unknown bot {job.bot!r}"
        opts = bot.options
        if not opts.episodic_memory_enabled:
            return "episodic-memory-enabled is false"
        if job.requested:  # the bot asked for it: neither auto-summarize nor the threshold hold
            return None if user_messages else "requested, but the person said nothing"
        if not opts.episodic_memory_auto_summarize:
            return "episodic-memory-auto-summarize is false"
        if user_messages < opts.episodic_memory_threshold:
            return (
                f"below threshold: {user_messages} user messages, "
                f"episodic-memory-threshold is {opts.episodic_memory_threshold}"
            )
        return None

    async def _summarise(self, job: Job) -> str:
        bot = self._bot(job.bot)
        turns = await self.db.run(self._turns, job.session_id)
        user_messages = said_by_user(turns)
        follow_up = self._wants_facts(bot, user_messages)
        memories = self._wants_memories(bot, user_messages)
        reason = self._skip_reason(job, bot, user_messages)
        if reason is not None:
            await self.db.run(
                lambda: self.jobs.finish(
                    job,
                    "skipped",
                    reason,
                    follow_up,
                    embed=self._embeds,
                    edit_memories=memories,
                )
            )
            return "skipped"
        assert bot is not None
        if self.llm is None:
            return await self._wait_for_model(job)
        messages = [
            {"role": "system", "content": SUMMARY_RULES.replace("{bot}", bot.name)},
            {"role": "user", "content": quoted("transcript", transcript(turns))},
        ]
        try:
            summary = await self._ask(bot, job.user_id, messages)
        except LLMError as exc:
            return await self.jobs.retry_later(job, f"model unavailable: {exc}")
        except InvalidAnswer as exc:
            failure = str(exc)
            await self.db.run(
                lambda: self.jobs.finish(
                    job,
                    "failed",
                    failure,
                    follow_up,
                    embed=self._embeds,
                    edit_memories=memories,
                )
            )
            logger.error("episode for session %s failed: %s", job.session_id, exc)
            return "failed"
        await self.db.run(
            self._store_episode, job, bot, summary.redacted(), user_messages, follow_up, memories
        )
        if job.user_id is not None:
            await self.rollup.enforce_max_episodes(job.user_id, bot)
        return "done"

    async def _ask(
        self, bot: Bot, user_id: str | None, messages: list[dict[str, str]]
    ) -> EpisodeSummary:
        """A summary from the bot's episodic-memory model; also the roll-up's ``ask``."""
        assert self.llm is not None
        return await ask_for_json(
            self.llm,
            messages,
            EpisodeSummary,
            model=bot.options.episodic_memory_model,
            bot=bot.name,
            user_id=user_id,
            purpose="episode",
            tries=self.answer_tries,
        )

    def _turns(self, session_id: str) -> list[TurnLine]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(_t.role, _t.bot, _t.text)
                .where(_t.session_id == session_id)
                # A turn's message and its replies share a timestamp; its place in the
                # session (0011) orders them, and turns said within one tick of the clock too
                .order_by(_t.created_at, _t.line, _t.seq)
            ).all()
        return [TurnLine(role=r.role, text=r.text, bot=r.bot) for r in rows]

    def _store_episode(
        self,
        job: Job,
        bot: Bot,
        summary: EpisodeSummary,
        user_messages: int,
        follow_up: bool,
        memories: bool = False,
    ) -> None:
        details = {
            "decisions": summary.decisions,
            "action_items": summary.action_items,
            "user_messages": user_messages,
            "model": bot.options.episodic_memory_model,
        }
        with self.db.write() as conn:
            conn.execute(
                insert(EPISODES).values(
                    id=new_id(),
                    user_id=job.user_id,
                    conversation_id=job.session_id,
                    bot=bot.name,
                    summary=summary.summary,
                    topics=summary.topics,
                    sentiment=summary.sentiment,
                    resolution=summary.resolution,
                    details=details,
                    created_at=self.clock.now(),
                )
            )
            self.jobs.finish_in(
                conn,
                job,
                "done",
                None,
                extract_facts=follow_up,
                embed=self._embeds,
                edit_memories=memories,
            )

    # -- recall vectors ---------------------------------------------------------------------

    @property
    def _embeds(self) -> bool:
        return self.vectors is not None

    async def _embed(self, job: Job) -> str:
        """Vectors for the session's turns and episode and the person's facts and memories;
        a model that is down delays the job."""
        if self.vectors is None:
            await self.db.run(self.jobs.finish, job, "skipped", "memory.embedding is not set")
            return "skipped"
        try:
            await self._fill(session_id=job.session_id)
            if job.user_id is not None:
                await self._fill(user_id=job.user_id)
        except LLMError as exc:
            return await self.jobs.retry_later(job, f"embedding model unavailable: {exc}")
        await self.db.run(self.jobs.finish, job, "done", None)
        return "done"

    async def _fill(self, *, session_id: str | None = None, user_id: str | None = None) -> None:
        """Embed every row of one session or person that has no vector (VectorFiller.fill)."""
        assert self.vectors is not None
        while await self.vectors.fill(session_id=session_id, user_id=user_id) > 0:
            pass

    async def _embed_edits(self, user_id: str) -> None:
        """Vectors for the facts and memories a job after the session just wrote.

        The session's ``embed_session`` job often runs before the extraction or editing job
        that writes them, and the catch-up pass may be minutes away: without this, what a
        person said in their last conversation would be found only by its words until then.
        The edit is applied either way; a model that is down leaves them to the catch-up.
        """
        if self.vectors is None:
            return
        try:
            await self._fill(user_id=user_id)
        except Exception as exc:  # the model is down, or another worker stored the same rows
            logger.warning("recall vectors of new facts and memories wait for a catch-up: %s", exc)

    async def _catch_up(self) -> None:
        """Embed one batch of rows that lack a vector, when due; a failure waits for the next."""
        now = self.clock.now()
        every = self.catch_up_every
        if self.vectors is None or every is None or now < self._next_catch_up:
            return
        try:
            stored = await self.vectors.fill(limit=CATCH_UP_BATCH)
        except Exception as exc:  # the model is down, or another worker stored the same rows
            stored = 0
            logger.warning("recall vectors: catching up failed, tried again later: %s", exc)
        if stored:
            logger.info("recall vectors: %d rows embedded", stored)
        # a full batch: more are waiting, so the next pass goes on at once
        wait = 0.0 if stored >= CATCH_UP_BATCH else every
        self._next_catch_up = now + timedelta(seconds=wait)

    # -- fact extraction -------------------------------------------------------------------

    async def _extract_facts(self, job: Job) -> str:
        return await self._edit_after_session(
            job,
            wants=self._wants_facts,
            skipped="user-memory-agentic is off, or nothing the user said to read",
            shown_for=self._known_facts,
            messages=extraction_messages,
            answer=FactProposal,
            purpose="facts",
            apply=self._apply_facts,
        )

    async def _edit_after_session(
        self,
        job: Job,
        *,
        wants: Callable[[Bot | None, int], bool],
        skipped: str,
        shown_for: Callable[[str], list[Shown]],
        messages: Callable[[list[Shown], list[dict[str, str]]], list[dict[str, str]]],
        answer: type[Answer],
        purpose: str,
        apply: Callable[[Job, Bot, list[Shown], Answer], None],
    ) -> str:
        """What fact extraction and memory editing share: one structured call after a session.

        The model sees what the person has (numbered, so its answer can name an entry) and
        the session's transcript; its answer is applied in one transaction with the job's
        end, so an edit is never applied twice. A model that is down retries later; an
        answer that never fits the schema fails the job.
        """
        bot = self._bot(job.bot)
        turns = await self.db.run(self._turns, job.session_id)
        if not wants(bot, said_by_user(turns)) or job.user_id is None:
            await self.db.run(self.jobs.finish, job, "skipped", skipped)
            return "skipped"
        assert bot is not None
        if self.llm is None:
            return await self._wait_for_model(job)
        user_id = job.user_id
        shown = await self.db.run(shown_for, user_id)
        try:
            proposal = await ask_for_json(
                self.llm,
                messages(shown, transcript(turns)),
                answer,
                model=bot.options.episodic_memory_model,
                bot=bot.name,
                user_id=user_id,
                purpose=purpose,
                tries=self.answer_tries,
            )
        except LLMError as exc:
            return await self.jobs.retry_later(job, f"model unavailable: {exc}")
        except InvalidAnswer as exc:
            await self.db.run(self.jobs.finish, job, "failed", str(exc))
            return "failed"
        await self.db.run(apply, job, bot, shown, proposal)
        await self._embed_edits(user_id)
        return "done"

    def _known_facts(self, user_id: str) -> list[KnownFact]:
        with self.db.read() as conn:
            return known_facts(conn, user_id, self.clock.now())

    def _apply_facts(
        self, job: Job, bot: Bot, shown: list[KnownFact], proposal: FactProposal
    ) -> None:
        assert job.user_id is not None
        if self._user_sql is None:
            self._user_sql = KeyValueSQL(USER_MEMORY, ("user_id",), self.db.dialect)
        provenance = Provenance(job.session_id, bot.name, self._model_name(bot))
        with self.db.write() as conn:
            changes = apply_fact_changes(
                conn,
                self._user_sql,
                self.policy_for(bot),
                user_id=job.user_id,
                shown=shown,
                proposal=proposal,
                provenance=provenance,
                now=self.clock.now(),
            )
            note = "; ".join(changes.rejected)[:2000] or None
            self.jobs.finish_in(conn, job, "done", note)
        logger.info(
            "facts from session %s (bot %s): %s", job.session_id, bot.name, changes.counts()
        )
        for refusal in changes.rejected:
            logger.info("fact refused for user %s: %s", job.user_id, refusal)

    def _model_name(self, bot: Bot) -> str:
        """The model string behind the bot's alias, for provenance (the alias if unknown)."""
        alias = bot.options.episodic_memory_model
        resolve = getattr(self.llm, "resolve", None)
        route = resolve(alias) if callable(resolve) else None
        return str(getattr(route, "model", alias))

    # -- agentic free-text memories ----------------------------------------------------------

    async def _edit_memories(self, job: Job) -> str:
        """One model call that sees the person's memories and the session, and edits them."""
        return await self._edit_after_session(
            job,
            wants=self._wants_memories,
            skipped="user-memories is not agentic, or nothing the user said to read",
            shown_for=self._shown_memories,
            messages=editing_messages,
            answer=MemoryEdits,
            purpose="memories",
            apply=self._apply_memories,
        )

    def _shown_memories(self, user_id: str) -> list[ShownMemory]:
        with self.db.read() as conn:
            return shown_memories(conn, user_id)

    def _apply_memories(
        self, job: Job, bot: Bot, shown: list[ShownMemory], edits: MemoryEdits
    ) -> None:
        assert job.user_id is not None
        with self.db.write() as conn:
            changes = apply_memory_edits(
                conn,
                self.memories,
                user_id=job.user_id,
                shown=shown,
                edits=edits,
                origin=Origin("agentic", bot.name, job.session_id),
                limit=bot.options.user_memory_max_keys,
                now=self.clock.now(),
            )
            note = "; ".join(changes.rejected)[:2000] or None
            self.jobs.finish_in(conn, job, "done", note)
        logger.info(
            "memories from session %s (bot %s): %s", job.session_id, bot.name, changes.counts()
        )
