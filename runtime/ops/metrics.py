"""Prometheus metrics of one runtime, in a registry of its own.

A :class:`Metrics` is created per runtime (``Runtime.metrics``), never at import: two
runtimes in one process (tests do this all the time) count separately, and nothing touches
prometheus-client's global default registry. The pipeline, the LLM client, the janitor and
the episode worker call the small methods below at the points named in their docstrings;
``GET /metrics`` renders :meth:`Metrics.render`.

Labels are bounded by configuration (channel instance names, bot names, model names,
exception class names), never a user id or text, so the number of series stays small.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from mnemobot.runtime.llm.client import Usage

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

_TURN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_LLM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0, 120.0)
_LOCK_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0)


class Metrics:
    """Every metric mnemobot exports, registered on ``self.registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_in = Counter(
            "mnemobot_messages_received",
            "Messages people sent, per channel instance and the bot that took them.",
            ["channel", "bot"],
            registry=r,
        )
        self.messages_out = Counter(
            "mnemobot_messages_sent",
            "Replies the bots committed to send, per channel instance and bot.",
            ["channel", "bot"],
            registry=r,
        )
        self.turn_seconds = Histogram(
            "mnemobot_turn_seconds",
            "Time to handle one message, from the inbox to the committed replies.",
            ["bot", "outcome"],
            buckets=_TURN_BUCKETS,
            registry=r,
        )
        self.llm_seconds = Histogram(
            "mnemobot_llm_seconds",
            "Time of one language-model call (including failed ones).",
            ["model", "purpose"],
            buckets=_LLM_BUCKETS,
            registry=r,
        )
        self.llm_tokens = Counter(
            "mnemobot_llm_tokens",
            "Tokens sent to (prompt) and received from (completion) the language model.",
            ["model", "purpose", "kind"],
            registry=r,
        )
        self.llm_calls = Counter(
            "mnemobot_llm_calls",
            "Language-model calls, by whether they answered.",
            ["model", "purpose", "ok"],
            registry=r,
        )
        self.dedupe_hits = Counter(
            "mnemobot_dedupe_hits",
            "Platform events seen before (redeliveries) and not handled again.",
            ["channel"],
            registry=r,
        )
        self.lock_wait_seconds = Histogram(
            "mnemobot_lock_wait_seconds",
            "Time a turn waited for its conversation lock (another turn of it was running).",
            buckets=_LOCK_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "mnemobot_errors",
            "Failures, by kind (the exception class) and where they happened.",
            ["kind", "where"],
            registry=r,
        )
        self.janitor_rows = Counter(
            "mnemobot_janitor_rows",
            "Rows the janitor removed or ended, by kind (sessions_ended, link_codes, ...).",
            ["kind"],
            registry=r,
        )
        self.janitor_runs = Counter(
            "mnemobot_janitor_runs", "Janitor sweeps, by outcome.", ["outcome"], registry=r
        )
        self.episode_jobs = Counter(
            "mnemobot_episode_jobs",
            "Episode worker jobs, by outcome (done, skipped, failed, delayed, lost).",
            ["outcome"],
            registry=r,
        )

    # -- the pipeline ---------------------------------------------------------------------

    def message_received(self, channel: str, bot: str) -> None:
        """A person's message reached a bot (``Runtime.handle``, after dedupe)."""
        self.messages_in.labels(channel, bot).inc()

    def replies_committed(self, channel: str, bot_counts: Mapping[str, int]) -> None:
        """A turn committed replies: ``{bot: how many}`` (several bots answer on a transfer)."""
        for bot, count in bot_counts.items():
            if count:
                self.messages_out.labels(channel, bot).inc(count)

    def turn_finished(self, bot: str, seconds: float, *, outcome: str = "ok") -> None:
        """One turn ended: ``outcome`` is ok, failed, duplicate or refused."""
        self.turn_seconds.labels(bot or "-", outcome).observe(max(0.0, seconds))

    def dedupe_hit(self, channel: str) -> None:
        """An event already in the inbox came again and was acknowledged without a turn."""
        self.dedupe_hits.labels(channel).inc()

    def lock_waited(self, seconds: float) -> None:
        """How long a turn waited to hold its conversation."""
        self.lock_wait_seconds.observe(max(0.0, seconds))

    @contextmanager
    def timing_lock(self) -> Iterator[None]:
        """Wrap the acquisition of a conversation lock: ``async with`` inside this block."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.lock_waited(time.perf_counter() - started)

    def error(self, kind: str | BaseException, where: str = "turn") -> None:
        """A failure; pass the exception (its class name is the kind) or a short kind."""
        name = kind if isinstance(kind, str) else type(kind).__name__
        self.errors.labels(name, where).inc()

    # -- the model ------------------------------------------------------------------------

    def llm_call(self, usage: Usage) -> None:
        """One model call as ``LiteLLM`` reports it to ``on_usage``."""
        self.llm_seconds.labels(usage.model, usage.purpose).observe(usage.latency_ms / 1000)
        self.llm_calls.labels(usage.model, usage.purpose, "true" if usage.ok else "false").inc()
        if usage.prompt_tokens:
            self.llm_tokens.labels(usage.model, usage.purpose, "prompt").inc(usage.prompt_tokens)
        if usage.completion_tokens:
            self.llm_tokens.labels(usage.model, usage.purpose, "completion").inc(
                usage.completion_tokens
            )
        if not usage.ok:
            self.error("LLMCallFailed", where="llm")

    # -- background work --------------------------------------------------------------------

    def janitor_swept(self, counts: Mapping[str, int]) -> None:
        """One ``Janitor.sweep_all`` result (rows per kind)."""
        self.janitor_runs.labels("ok").inc()
        for kind, count in counts.items():
            if count:
                self.janitor_rows.labels(kind).inc(count)

    def janitor_failed(self, exc: BaseException) -> None:
        self.janitor_runs.labels("failed").inc()
        self.error(exc, where="janitor")

    def episode_jobs_ran(self, counts: Mapping[str, int]) -> None:
        """One ``EpisodeWorker.run_once`` result; ``claimed`` is a total, not an outcome."""
        for outcome, count in counts.items():
            if outcome != "claimed" and count:
                self.episode_jobs.labels(outcome).inc(count)

    # -- exposition ------------------------------------------------------------------------

    def render(self) -> bytes:
        """Every metric in the Prometheus text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)
