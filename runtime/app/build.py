"""Builds a :class:`Runtime` from settings: the one place every collaborator is chosen.

Like python-telegram-bot's ``ApplicationBuilder``, this makes the database, the stores, the
locks, the jobs, the usage recorder and the model client, and hands each to the runtime's
constructor; nothing is wired afterwards (the model client gets its usage sink when it is
made). Tests and the bench pass their own clock and model; the CLI passes neither. Nothing
here opens a connection: :meth:`Runtime.start` does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mnemobot.runtime.bots.registry import BotRegistry, load_bots
from mnemobot.runtime.clock import Clock, SystemClock
from mnemobot.runtime.conversations.inbox import InboxStore
from mnemobot.runtime.conversations.locks import locks_for
from mnemobot.runtime.conversations.outbox import OutboxStore
from mnemobot.runtime.conversations.sessions import SessionStore
from mnemobot.runtime.episodes.bell import JobBell
from mnemobot.runtime.episodes.reader import EpisodeReader
from mnemobot.runtime.episodes.worker import EpisodeWorker
from mnemobot.runtime.llm.client import LLM, LiteLLM, Usage
from mnemobot.runtime.llm.usage import UsageRecorder, UsageStore
from mnemobot.runtime.memories.store import MemoriesStore
from mnemobot.runtime.memory.janitor import Janitor, LogRetention
from mnemobot.runtime.memory.policy import UserPolicies
from mnemobot.runtime.memory.store import MemoryStore
from mnemobot.runtime.ops.audit import AuditLog
from mnemobot.runtime.ops.metrics import Metrics
from mnemobot.runtime.people.identity import IdentityStore
from mnemobot.runtime.people.linking import LinkService
from mnemobot.runtime.pipeline.runtime import Runtime
from mnemobot.runtime.recall.embedding import VectorFiller, embedder_for
from mnemobot.runtime.recall.search import Recall
from mnemobot.runtime.settings import Settings
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.dialect import SQLITE, dialect_for
from mnemobot.runtime.storage.sqlite_vec import sqlite_driver, vector_search_for

__all__ = ["LLMFactory", "build_runtime"]

LLMFactory = Callable[[Callable[[Usage], Awaitable[None]]], LLM]
"""Makes a model client given where it reports each call's usage (its ``on_usage``)."""


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    llm: LLM | None = None,
    make_llm: LLMFactory | None = None,
    require_bots: bool = True,
    bots: BotRegistry | None = None,
    metrics: Metrics | None = None,
) -> Runtime:
    """A runtime for ``settings``: its bots loaded and checked, its database not yet opened.

    Args:
        settings: the deployment configuration.
        clock: the time source (default: the system clock).
        llm: a ready model client (its usage, if any, is its own affair).
        make_llm: makes the model client with the runtime's usage recorder as its sink;
            without ``llm`` or ``make_llm``, a LiteLLM client when ``[llm] default`` is set.
        require_bots: False for tools that only read and change memory (``mnemobot
            memory``, ``forget``, ``export``): they work from any directory, with or without
            a bots folder.
        bots: bots already loaded (then ``require_bots`` is not consulted).
        metrics: where counts go (default: a registry of the runtime's own).
    """
    if bots is None and (require_bots or settings.bots.dir.is_dir()):
        bots = load_bots(settings.bots.dir)
    elif bots is None:
        bots = BotRegistry({})
    clock = clock or SystemClock()
    metrics = metrics or Metrics()
    embedder = embedder_for(settings, clock)  # [memory] embedding; None: lexical recall only
    driver = sqlite_driver(settings.database.sqlite_driver)
    vector_search = None
    if embedder is not None:
        # where it compares vectors is logged at start, once the database is open
        vector_search = vector_search_for(dialect_for(settings.database.url) is SQLITE, driver)
    db = Database(
        settings.database.url,
        echo=settings.database.echo,
        held_connections=settings.workers.max_turns,  # each turn in flight holds its lock's
        sqlite_driver=driver,
        sqlite_extensions=vector_search.extensions if vector_search is not None else (),
    )
    identity = IdentityStore(db, clock)
    bell = JobBell()  # a session that ends here wakes this process's episode worker
    sessions = SessionStore(db, clock, timeout=settings.sessions.timeout, bell=bell)
    usage = UsageStore(db, clock)
    usage_recorder = UsageRecorder(db, usage, identity, metrics)
    if llm is None and make_llm is not None:
        llm = make_llm(usage_recorder.record)
    elif llm is None and settings.llm.default:
        llm = LiteLLM(settings.llm, on_usage=usage_recorder.record)
    vectors = (  # what no model may see is kept from the embedding model too
        VectorFiller(db, embedder, clock, sensitive=bots.sensitive)
        if embedder is not None
        else None
    )
    user_policy = UserPolicies(
        max_value_bytes=settings.memory.max_value_bytes, retention=settings.memory.retention
    )
    memories = MemoriesStore(db, clock)  # free-text: bots, the agentic worker, operators
    dialog_runner = None
    if any(bot.dialog is not None for bot in bots):
        from mnemobot.runtime.bots.dialog_host import run_bot_dialog

        dialog_runner = run_bot_dialog
    return Runtime(
        settings=settings,
        bots=bots,
        db=db,
        clock=clock,
        metrics=metrics,
        # advisory locks on PostgreSQL (several worker processes), in-process on SQLite
        locks=locks_for(db, max_held=settings.workers.max_turns),
        memory=MemoryStore(db, clock, max_value_bytes=settings.memory.max_value_bytes),
        memories=memories,
        identity=identity,
        sessions=sessions,
        inbox=InboxStore(db, clock),
        outbox=OutboxStore(db, clock),
        linking=LinkService(
            db, clock, code_ttl=settings.link.code_ttl, max_attempts=settings.link.max_attempts
        ),
        episodes=EpisodeReader(db),
        usage=usage,
        usage_recorder=usage_recorder,
        janitor=Janitor(
            db,
            clock,
            sessions,
            retention_days={b.name: b.options.episodic_memory_retention_days for b in bots},
            link_window=settings.link.code_ttl,
            batch=settings.janitor.batch,
            retention=LogRetention.of(settings.janitor),
            metrics=metrics,
        ),
        episode_worker=EpisodeWorker(
            db,
            clock,
            bots,
            llm,
            policy_for=user_policy,
            metrics=metrics,
            bell=bell,
            vectors=vectors,
            memories=memories,
        ),
        llm=llm,
        user_policy=user_policy,
        dialog_runner=dialog_runner,
        recall=Recall(
            db,
            clock,
            embedder=embedder,
            index=vector_search.index if vector_search is not None else None,
        ),
        audit=AuditLog(db, clock),
        # On start, replies another live worker is sending are left to it (SQLite: one process)
        recover_lease=0.0 if db.dialect.one_process else settings.workers.send_lease,
        vector_search=vector_search,
    )
