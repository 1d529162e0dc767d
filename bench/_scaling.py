"""Two worker processes against one, on one PostgreSQL: does throughput scale? (issue 6)

Why: several ``mnemobot run`` workers may share a PostgreSQL database (advisory conversation
locks, an ordered inbox, send claims), and issue 6 asks that 2 workers handle at least 1.6x
the turns per second of 1, with 500 conversations. This measures it with the production
turn and prints, next to the ratio, where the CPU and the time went, so that a missed
target says what limits it.

How:

- **Workers** are real OS processes (``multiprocessing``, spawn), each building its runtime
  the way ``mnemobot run`` does: a config file, ``load_settings``, ``build_runtime``,
  ``Runtime.start`` (advisory locks, connection pool, ``[workers] max_turns``), the start-up
  heap frozen, one JSON log line per turn to a file as under a process manager. The model
  is ``fixed_model()`` (ScriptedLLM: in-process, no HTTP) and the bot is a folder with only
  ``config.csv``, as in ``bench/pipeline.py``. Each message goes through
  ``adapters.base.Delivery`` with a channel whose ``send`` reaches no platform: ``accept``
  (the inbox row a webhook stores before its 2xx), then ``process``: ``Runtime.handle``
  (dedupe, identity, advisory lock, backlog, session, prompt, commit) with its reply sent
  and marked sent while the conversation is held. That is ``mnemobot run`` minus the HTTP
  server and the periodic reclaimer, janitor and episode passes (every 10 s and 120 s, off
  the turn's path).
- **Workload**: every round has fresh people, so no session grows more in one kind of
  round than in the other: 500 people, each sending ``messages`` texts in order, the next
  once the previous one is answered (a person waits for the reply). A worker keeps
  ``max_turns`` turns in flight (``[workers] max_turns``, the runtime's default of 16).
- **Routing**: a sticky load balancer, person ``i`` to worker ``i % n``. A round-robin one
  would spread each person's messages over both workers, but as a person waits for each
  reply, two turns of one conversation never overlap either way: the work per turn is the
  same, and sticky routing keeps the split exactly even.
- **Timing**: the workers start, connect and warm up (a round of their own, filling pools
  and threads) untimed; a round starts when the parent tells the ready workers to go and
  ends when the last reply is committed and marked sent. Throughput is turns / seconds.
  Rounds alternate 1 and 2 workers; the best round of each is the figure. After each round
  the database is checked: every message stored once and answered (``done``), one reply
  each, marked ``sent``, each person's messages in the turn log in the order sent; if not,
  it raises.
- **Where it goes**, per round: CPU seconds of the workers (``time.process_time``), of the
  PostgreSQL server (``/proc``: every postgres process but live backends of other
  databases, exited backends through the postmaster's child times) and of the machine
  (``/proc/stat``), the rest being other processes; context switches, and how often the
  workers were preempted; statements, transactions, pool checkouts and new connections per
  turn (SQLAlchemy events in the workers); time
  to get the conversation lock (the runtime's metrics); the scratch database's backends by
  state (``pg_stat_activity`` every 100 ms); the server's durability settings and one
  commit's cost alone. Nothing on the server is changed.

**The model's latency** (``model_seconds``): at 0 the model answers at once, and a worker
is bound by its CPU. A real model takes seconds, and a turn holds one of the worker's
``max_turns`` slots (and its conversation lock) through the model call, so a worker is then
bound by ``max_turns / latency`` and more workers add turns in flight; with
``model_seconds`` > 0 the report prints that bound instead of the CPU ceiling.

Reading it: a worker runs Python under one GIL, so one worker alone uses at most about one
core, and PostgreSQL works beside it. If the 1-worker round already keeps ``u`` cores busy
(worker + PostgreSQL), 2 workers can do at most ``cores / u`` times as much at the same
CPU per turn: the "ceiling" line. On 2 cores with PostgreSQL on the same machine, 1.6x
needs ``u <= 1.25``: with the worker at one core, PostgreSQL's CPU per turn at most a quarter
of the worker's.

Run: ``.venv/bin/python bench/_scaling.py [--quick] [--messages N] [--rounds N]``; full is
500 people x 3 messages (fewer than a real session's, to keep to about a minute on 2
cores), 2 rounds of each; ``--messages 8 --rounds 3`` takes about 3 minutes.
``MNEMOBOT_BENCH_POSTGRES`` names the admin database, as for the other benches. From
``bench/pipeline.py``: ``report_scaling(measure_scaling(PG_ADMIN_URL, quick))``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection as Pipe
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PG_ADMIN_URL, REPLY, fixed_model, scratch_postgres

from mnemobot.runtime.messages import InboundMessage, OutboundMessage

__all__ = ["RoundFigures", "Scaling", "measure_scaling", "report_scaling"]

TARGET = 1.6  # issue 6: 2 workers at least 1.6x the turns per second of 1
MODEL_BOUND_SECONDS = 0.2  # the second measurement: every model answer takes this long
CHANNEL = "bench"
BOT = "plain"
PERSONA = "You are a concise helper."
MAX_TURNS = 16  # [workers] max_turns, the runtime's default
SAMPLE_EVERY = 0.1  # seconds between pg_stat_activity samples
START_TIMEOUT = 60.0
ROUND_TIMEOUT = 600.0


@dataclass(frozen=True)
class Size:
    """People and messages per person in a round, rounds of each worker count, warm-up."""

    people: int
    messages: int
    rounds: int
    warmup: int  # people per worker in the untimed first round


# Full: 1500 turns a round at 110-150 turns/s on 2 cores, about a minute in all.
SIZES = {
    "full": Size(people=500, messages=3, rounds=2, warmup=32),
    "quick": Size(people=60, messages=2, rounds=1, warmup=16),
}


# -- what runs in a worker process ------------------------------------------------------------


def question(person: str, k: int) -> str:
    return f"Message {k} from {person}: where is my order {k % 17}, and what did I ask before?"


class _NullChannel:
    """A channel whose ``send`` reaches no platform: what a turn costs is the runtime's."""

    name = CHANNEL
    kind = "bench"

    def __init__(self, runtime: Any) -> None:
        from mnemobot.runtime.pipeline.delivery import Delivery

        self.delivery = Delivery(runtime.delivery_services, self)
        self.sent = 0

    def routes(self) -> list[Any]:
        return []

    async def start(self) -> None:
        """Nothing to receive from."""

    async def stop(self) -> None:
        """Nothing to stop."""

    async def send(self, reply: OutboundMessage) -> None:
        self.sent += 1


class _Tally:
    """SQLAlchemy events counted in a worker (they fire on several threads)."""

    KINDS = ("statements", "transactions", "commits", "checkouts", "connects")

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self._lock = threading.Lock()
        self.counts = dict.fromkeys(self.KINDS, 0)
        event.listen(engine, "before_cursor_execute", self._counter("statements"))
        event.listen(engine, "begin", self._counter("transactions"))
        event.listen(engine, "commit", self._counter("commits"))
        event.listen(engine.pool, "checkout", self._counter("checkouts"))
        event.listen(engine.pool, "connect", self._counter("connects"))

    def _counter(self, kind: str) -> Callable[..., None]:
        def seen(*_args: Any) -> None:
            with self._lock:
                self.counts[kind] += 1

        return seen

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


@dataclass(frozen=True)
class Job:
    """A worker's share of a round: these people (also their chat ids), ``messages`` each."""

    people: list[str]
    messages: int


@dataclass
class WorkerReport:
    """What one worker did in one round (``time.monotonic`` is the same in every process)."""

    turns: int
    started: float
    finished: float
    cpu: float
    preempted: int  # involuntary context switches of the process (all its threads)
    counts: dict[str, int]
    lock_wait: float
    turn_seconds: float
    sent: int


async def _person(delivery: Any, slots: asyncio.Semaphore, person: str, messages: int) -> int:
    """One person's messages in order, each once the previous one is answered."""
    turns = 0
    for k in range(messages):
        msg = InboundMessage(
            channel=CHANNEL,
            channel_kind="console",
            external_user_id=person,
            chat_id=person,
            text=question(person, k),
            event_id=str(uuid.uuid4()),
            display_name=person,
        )
        async with slots:
            stored = await delivery.accept(msg)
            if stored is not None:
                await delivery.process(msg, stored)
                turns += 1
    return turns


async def _run_job(channel: _NullChannel, job: Job, max_turns: int) -> int:
    slots = asyncio.Semaphore(max_turns)
    people = [_person(channel.delivery, slots, p, job.messages) for p in job.people]
    return sum(await asyncio.gather(*people))


def _metric_sum(runtime: Any, family: str) -> float:
    """The sum of a histogram over all its labels, from the runtime's own registry."""
    return float(
        sum(
            sample.value
            for metric in runtime.metrics.registry.collect()
            if metric.name == family
            for sample in metric.samples
            if sample.name == f"{family}_sum"
        )
    )


def worker_main(index: int, config: str, log_path: str, pipe: Pipe, model_seconds: float) -> None:
    """A worker process: build the runtime as ``mnemobot run`` does, then run what it is sent.

    Its model answers after ``model_seconds`` (0: at once).

    On ``pipe`` it sends ``("ready", None)`` once started; then for each :class:`Job`, it
    sends ``("ready", None)``, waits for ``"go"``, runs the job and sends ``("done",
    WorkerReport)``. ``None`` stops it. A failure is sent as ``("error", traceback)``.
    """
    runtime = None
    loop = asyncio.new_event_loop()
    try:
        from mnemobot.runtime.app.build import build_runtime
        from mnemobot.runtime.ops.logs import configure_logging
        from mnemobot.runtime.settings import load_settings

        log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - the process's lifetime
        configure_logging(log, json_lines=True)
        runtime = build_runtime(load_settings(Path(config)), llm=fixed_model(delay=model_seconds))
        loop.run_until_complete(runtime.start())
        runtime.bind_channel(CHANNEL, bot=BOT)
        channel = _NullChannel(runtime)
        tally = _Tally(runtime.db.engine)
        gc.collect()  # then freeze the start-up heap, as `mnemobot run` does before it listens
        gc.freeze()
        pipe.send(("ready", None))
        while (job := pipe.recv()) is not None:
            counts, sent = tally.snapshot(), channel.sent
            lock_wait = _metric_sum(runtime, "mnemobot_lock_wait_seconds")
            turn_seconds = _metric_sum(runtime, "mnemobot_turn_seconds")
            pipe.send(("ready", None))
            if pipe.recv() != "go":
                raise RuntimeError("expected 'go'")
            started, cpu = time.monotonic(), time.process_time()
            preempted = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
            turns = loop.run_until_complete(
                _run_job(channel, job, runtime.settings.workers.max_turns)
            )
            finished, cpu = time.monotonic(), time.process_time() - cpu
            preempted = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - preempted
            after = tally.snapshot()
            report = WorkerReport(
                turns=turns,
                started=started,
                finished=finished,
                cpu=cpu,
                preempted=preempted,
                counts={k: after[k] - counts[k] for k in after},
                lock_wait=_metric_sum(runtime, "mnemobot_lock_wait_seconds") - lock_wait,
                turn_seconds=_metric_sum(runtime, "mnemobot_turn_seconds") - turn_seconds,
                sent=channel.sent - sent,
            )
            pipe.send(("done", report))
    except BaseException:
        with suppress(Exception):
            pipe.send(("error", f"worker {index}:\n{traceback.format_exc()}"))
        raise
    finally:
        if runtime is not None:
            loop.run_until_complete(runtime.stop())
        loop.close()
        logging.shutdown()


# -- what the parent watches ----------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _machine_cpu() -> tuple[float, float, int]:
    """Busy and total CPU seconds of the machine, and its context switches, since boot."""
    with open("/proc/stat", encoding="ascii") as stat:
        lines = stat.read().splitlines()
    values = [int(v) for v in lines[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    switches = next(int(line.split()[1]) for line in lines if line.startswith("ctxt "))
    return (sum(values) - idle) / _TICK, sum(values) / _TICK, switches


def _postgres_ticks() -> dict[int, tuple[int, int]]:
    """Per live PostgreSQL process: its CPU clock ticks, and those of its exited children."""
    ticks = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                line = stat.read()
        except OSError:
            continue
        if line[line.index("(") + 1 : line.rindex(")")] == "postgres":
            fields = [int(v) for v in line[line.rindex(")") + 2 :].split()[11:15]]
            ticks[int(entry.name)] = (fields[0] + fields[1], fields[2] + fields[3])
    return ticks


def _postgres_seconds(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]], others: set[int]
) -> float:
    """CPU seconds PostgreSQL spent between two :func:`_postgres_ticks`, minus the live
    backends of other databases. A backend that exits hands its whole life's ticks to the
    postmaster's child times, so what it had before is taken off again."""
    live = sum(t - before.get(p, (0, 0))[0] for p, (t, _) in after.items() if p not in others)
    exited = sum(after_c for _, after_c in after.values()) - sum(c for _, c in before.values())
    exited -= sum(t for p, (t, _) in before.items() if p not in after)
    return (live + exited) / _TICK


_OTHER_BACKENDS = (
    "SELECT pid FROM pg_stat_activity WHERE datname IS NOT NULL AND datname <> current_database()"
)


_SAMPLE = """
SELECT a.state, a.wait_event_type, a.wait_event,
       EXISTS (SELECT 1 FROM pg_locks l
               WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted)
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
  AND a.backend_type = 'client backend'
"""


def _state(state: str | None, wait_type: str | None, wait: str | None, holds: bool) -> str:
    """A backend's state, in the report's words."""
    if state == "active":
        if wait_type is None:
            return "running a statement"
        if wait_type == "Lock":
            return f"waiting for a lock ({wait})"
        if wait in ("WALSync", "WALWrite"):
            return "waiting for the WAL flush (commit)"
        return f"waiting: {wait_type}:{wait}"
    if state == "idle in transaction":
        return "holding a turn's advisory lock" if holds else "in a transaction, worker busy"
    if state is None:
        return "starting or ending"
    return "idle in the pool" if state == "idle" else f"other ({state})"


@dataclass
class RoundFigures:
    """One round: ``workers`` processes did ``turns`` in ``seconds``, and what it cost.

    CPU figures are seconds over the round; ``counts`` sum the workers' SQLAlchemy events;
    ``backends`` is the mean number of the database's client backends in each state.
    """

    workers: int
    turns: int
    seconds: float
    worker_cpu: float
    postgres_cpu: float
    machine_busy: float
    machine_total: float
    switches: int  # context switches on the machine
    preempted: int  # involuntary context switches of the workers
    sampler_cpu: float
    counts: dict[str, int]
    lock_wait: float
    turn_seconds: float
    backends: dict[str, float] = field(default_factory=dict)
    per_worker: list[tuple[int, float, float]] = field(default_factory=list)  # turns, s, cpu

    @property
    def turns_per_second(self) -> float:
        return self.turns / self.seconds

    @property
    def cores(self) -> float:
        """The machine's cores, as ``/proc/stat`` counted them over the round."""
        return self.machine_total / self.seconds

    @property
    def other_cpu(self) -> float:
        """CPU seconds of everything else: the OS, other jobs, this bench's parent."""
        return max(0.0, self.machine_busy - self.worker_cpu - self.postgres_cpu)


@dataclass
class Scaling:
    """Every round of one measurement; :attr:`one` and :attr:`two` are the best of each."""

    people: int
    messages: int
    max_turns: int
    model_seconds: float
    rounds: list[RoundFigures]
    server: dict[str, str]
    commit_ms: float
    seconds: float

    def best(self, workers: int) -> RoundFigures:
        of_count = [r for r in self.rounds if r.workers == workers]
        return max(of_count, key=lambda r: r.turns_per_second)

    @property
    def one(self) -> RoundFigures:
        return self.best(1)

    @property
    def two(self) -> RoundFigures:
        return self.best(2)

    @property
    def ratio(self) -> float:
        return self.two.turns_per_second / self.one.turns_per_second

    @property
    def ceiling(self) -> float:
        """The most 2 workers could reach, as a ratio, if they kept every core busy at the
        CPU per turn (worker + PostgreSQL) of the 1-worker round: cores / cores it used."""
        one = self.one
        return one.cores * one.seconds / (one.worker_cpu + one.postgres_cpu)


# -- the parent -----------------------------------------------------------------------------


def write_deployment(root: Path, url: str, max_turns: int) -> Path:
    """A code-less bot and the config file every worker starts from; returns the config."""
    bot = root / "bots" / BOT
    bot.mkdir(parents=True, exist_ok=True)
    (bot / "config.csv").write_text(f"name,value\nprompt,{PERSONA}\n", encoding="utf-8")
    config = root / "mnemobot.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n[bots]\ndir = "{root / "bots"}"\n'
        f"[workers]\nmax_turns = {max_turns}\n",
        encoding="utf-8",
    )
    return config


@dataclass
class _Worker:
    index: int
    process: multiprocessing.process.BaseProcess
    pipe: Pipe
    log: Path

    def receive(self, expected: str, timeout: float) -> Any:
        """The next message, which must be ``expected``; raises with the worker's story."""
        if not self.pipe.poll(timeout):
            raise RuntimeError(
                f"worker {self.index}: no {expected!r} in {timeout:g} s{self.tail()}"
            )
        try:
            kind, body = self.pipe.recv()
        except EOFError:
            raise RuntimeError(f"worker {self.index} exited{self.tail()}") from None
        if kind == "error":
            raise RuntimeError(f"{body}{self.tail()}")
        if kind != expected:
            raise RuntimeError(f"worker {self.index}: sent {kind!r}, expected {expected!r}")
        return body

    def tail(self) -> str:
        if not self.log.exists():
            return ""
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
        return ("\nits last log lines:\n" + "\n".join(lines)) if lines else ""


class _Deployment:
    """Worker processes on the scratch database, and the parent's connection to watch it."""

    def __init__(self, root: Path, url: str, max_turns: int, model_seconds: float) -> None:
        self.root = root
        self.config = write_deployment(root, url, max_turns)
        self.model_seconds = model_seconds
        self.workers: list[_Worker] = []
        self.monitor = psycopg.connect(url, autocommit=True)

    def start(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        for index in range(count):
            ours, theirs = context.Pipe()
            log = self.root / f"worker-{index}.log"
            process = context.Process(
                target=worker_main,
                args=(index, str(self.config), str(log), theirs, self.model_seconds),
                name=f"mnemobot-bench-worker-{index}",
                daemon=True,
            )
            process.start()
            theirs.close()
            self.workers.append(_Worker(index, process, ours, log))
        for worker in self.workers:
            worker.receive("ready", START_TIMEOUT)

    def stop(self) -> None:
        for worker in self.workers:
            with suppress(OSError):
                worker.pipe.send(None)
        for worker in self.workers:
            worker.process.join(10)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(5)
        self.monitor.close()

    def run_round(self, tag: str, workers: int, people: int, messages: int) -> RoundFigures:
        """``people`` people of ``messages`` turns, split over the first ``workers``."""
        chosen = self.workers[:workers]
        ids = [f"{tag}-p{i}" for i in range(people)]  # no "_" or "%": a LIKE prefix is exact
        for n, worker in enumerate(chosen):
            worker.pipe.send(Job(ids[n::workers], messages))
        for worker in chosen:
            worker.receive("ready", START_TIMEOUT)
        busy, total, switches = _machine_cpu()
        postgres, sampler = _postgres_ticks(), time.process_time()
        others = {pid for (pid,) in self.monitor.execute(_OTHER_BACKENDS)}
        for worker in chosen:
            worker.pipe.send("go")
        states: Counter[str] = Counter()
        samples = 0
        reports: dict[int, WorkerReport] = {}
        deadline = time.monotonic() + ROUND_TIMEOUT
        while len(reports) < len(chosen):
            if time.monotonic() > deadline:
                raise RuntimeError(f"round {tag}: not finished in {ROUND_TIMEOUT:g} s")
            for ready in wait([w.pipe for w in chosen if w.index not in reports], SAMPLE_EVERY):
                worker = next(w for w in chosen if w.pipe is ready)
                reports[worker.index] = worker.receive("done", 1.0)
            if len(reports) < len(chosen):
                states.update(_state(*row) for row in self.monitor.execute(_SAMPLE))
                samples += 1
        sampler = time.process_time() - sampler
        others |= {pid for (pid,) in self.monitor.execute(_OTHER_BACKENDS)}
        postgres_cpu = _postgres_seconds(postgres, _postgres_ticks(), others)
        end_busy, end_total, end_switches = _machine_cpu()
        done = list(reports.values())
        figures = RoundFigures(
            workers=workers,
            turns=sum(r.turns for r in done),
            seconds=max(r.finished for r in done) - min(r.started for r in done),
            worker_cpu=sum(r.cpu for r in done),
            postgres_cpu=postgres_cpu,
            machine_busy=end_busy - busy,
            switches=end_switches - switches,
            preempted=sum(r.preempted for r in done),
            machine_total=end_total - total,
            sampler_cpu=sampler,
            counts={k: sum(r.counts[k] for r in done) for k in _Tally.KINDS},
            lock_wait=sum(r.lock_wait for r in done),
            turn_seconds=sum(r.turn_seconds for r in done),
            backends={k: v / max(1, samples) for k, v in states.items()},
            per_worker=[(r.turns, r.finished - r.started, r.cpu) for r in done],
        )
        self.check(tag, people, messages, figures.turns, sum(r.sent for r in done))
        return figures

    def check(self, tag: str, people: int, messages: int, turns: int, sent: int) -> None:
        """Every message stored once and answered, its one reply sent; order kept."""
        expected = people * messages
        like = f"{CHANNEL}|{tag}-%"
        inbox = self.monitor.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'done'),"
            " count(DISTINCT conversation) FROM inbox WHERE conversation LIKE %s",
            (like,),
        ).fetchone()
        outbox = self.monitor.execute(
            "SELECT count(*), count(*) FILTER (WHERE o.status = 'sent' AND o.text = %s),"
            " count(DISTINCT o.inbox_id) FROM outbox o JOIN inbox i ON i.id = o.inbox_id"
            " WHERE i.conversation LIKE %s",
            (REPLY, like),
        ).fetchone()
        assert inbox is not None and outbox is not None  # aggregates return one row
        found = {"turns": turns, "replies the channel sent": sent, "inbox rows": inbox[0]}
        found |= {"inbox rows done": inbox[1], "outbox rows": outbox[0]}
        found |= {"outbox rows sent": outbox[1], "inbox rows answered": outbox[2]}
        wrong = {k: v for k, v in found.items() if v != expected}
        if inbox[2] != people:
            wrong["conversations"] = inbox[2]
        if wrong:
            raise RuntimeError(f"round {tag}: expected {expected} of each, found {wrong}")
        logs = self.monitor.execute(
            "SELECT s.chat_id, array_agg(t.text ORDER BY t.created_at, t.seq)"
            " FROM turns t JOIN sessions s ON s.id = t.session_id"
            " WHERE s.conversation LIKE %s AND t.role = 'user' GROUP BY s.id, s.chat_id",
            (like,),
        ).fetchall()
        bad = [p for p, texts in logs if texts != [question(p, k) for k in range(messages)]]
        if len(logs) != people or bad:
            raise RuntimeError(
                f"round {tag}: {len(logs)} sessions for {people} people; out of order: {bad[:3]}"
            )


def _server_settings(conn: psycopg.Connection[Any]) -> dict[str, str]:
    names = ("synchronous_commit", "fsync", "wal_sync_method", "commit_delay", "max_connections")
    settings = {}
    for name in names:
        row = conn.execute(f"SHOW {name}").fetchone()
        settings[name] = str(row[0]) if row else "?"
    return settings


def _commit_ms(conn: psycopg.Connection[Any], seconds: float = 0.3) -> float:
    """Median of one-row autocommit inserts, alone: mostly the WAL flush at commit."""
    conn.execute("CREATE TABLE bench_commit_probe (n int)")
    times: list[float] = []
    until = time.monotonic() + seconds
    while time.monotonic() < until or len(times) < 20:
        began = time.perf_counter()
        conn.execute("INSERT INTO bench_commit_probe VALUES (1)")
        times.append(time.perf_counter() - began)
    conn.execute("DROP TABLE bench_commit_probe")
    return statistics.median(times) * 1000


def measure_scaling(
    postgres_admin_url: str = PG_ADMIN_URL,
    quick: bool = False,
    *,
    messages: int | None = None,
    rounds: int | None = None,
    model_seconds: float = 0.0,
) -> Scaling:
    """Rounds of 1 and 2 worker processes on a scratch database; see the module docstring.

    Args:
        postgres_admin_url: a database the bench may create and drop databases from.
        quick: a smoke run (60 people, 2 messages, 1 round of each); figures are noise.
        messages: messages per person instead of the size's (more: steadier, slower).
        rounds: rounds of each worker count instead of the size's.
        model_seconds: how long each model answer takes. At 0 a worker is bound by its CPU
            (one core at most, under the GIL); at a model's latency, by ``max_turns``, the
            turns it keeps in flight.

    Raises ``psycopg.OperationalError`` when PostgreSQL is unreachable, RuntimeError when a
    worker fails or a round's replies are not all there once each and in order.
    """
    from mnemobot.runtime.storage.database import Database
    from mnemobot.runtime.storage.migrate import ensure_schema

    size = SIZES["quick" if quick else "full"]
    size = replace(size, messages=messages or size.messages, rounds=rounds or size.rounds)
    began = time.perf_counter()
    figures: list[RoundFigures] = []
    with (
        tempfile.TemporaryDirectory(prefix="mnemobot-scaling-") as tmp,
        scratch_postgres(postgres_admin_url) as url,
    ):
        db = Database(url)
        db.start()
        ensure_schema(db)  # once, before the workers start
        db.stop()
        deployment = _Deployment(Path(tmp), url, MAX_TURNS, model_seconds)
        try:
            server = _server_settings(deployment.monitor)
            commit_ms = _commit_ms(deployment.monitor)
            deployment.start(2)
            deployment.run_round("warm", 2, size.warmup * 2, 2)
            for r in range(size.rounds):
                for workers in (1, 2) if r % 2 == 0 else (2, 1):
                    tag = f"r{r}w{workers}"
                    figures.append(deployment.run_round(tag, workers, size.people, size.messages))
                    print(
                        f"  scaling    model {model_seconds:g} s, round {r + 1}/{size.rounds},"
                        f" {workers} worker(s):"
                        f" {figures[-1].turns_per_second:.0f} turns/s",
                        file=sys.stderr,
                    )
        finally:
            deployment.stop()
    return Scaling(
        people=size.people,
        messages=size.messages,
        max_turns=MAX_TURNS,
        model_seconds=model_seconds,
        rounds=figures,
        server=server,
        commit_ms=commit_ms,
        seconds=time.perf_counter() - began,
    )


# -- report ---------------------------------------------------------------------------------


def verdict(ratio: float, target: float) -> str:
    return "met" if ratio >= target else "MISSED"


def report_scaling(s: Scaling, number: int | str = 5) -> None:
    """The report section: 1 and 2 workers' throughput, the ratio, and where the CPU went."""
    one, two = s.one, s.two
    print(f"{number}. Worker processes on one PostgreSQL, 2 against 1 (turns per second),")
    if s.model_seconds:
        print(
            f"   every model answer taking {s.model_seconds:g} s: a worker is bound by the turns"
            " it keeps in flight"
        )
    else:
        print("   the model answering at once: a worker is bound by its CPU")
    print(
        f"   {s.people} people x {s.messages} messages in order, {s.max_turns} turns in flight"
        " per worker; a turn: accept, handle, send, mark sent"
    )
    header = f"   {'workers':>7} {'turns':>7} {'seconds':>8} {'turns/s':>9} {'ratio':>7}"
    print(header + f"  target: 2 workers at least {TARGET:g}x")
    print("   " + "-" * (len(header) + 30))
    print(f"   {1:>7} {one.turns:>7} {one.seconds:>8.2f} {one.turns_per_second:>9.0f}")
    print(
        f"   {2:>7} {two.turns:>7} {two.seconds:>8.2f} {two.turns_per_second:>9.0f}"
        f" {s.ratio:>6.2f}x  {verdict(s.ratio, TARGET)}"
    )
    every = {w: [f"{r.turns_per_second:.0f}" for r in s.rounds if r.workers == w] for w in (1, 2)}
    print(
        f"   rounds: 1 worker {', '.join(every[1])}; 2 workers {', '.join(every[2])} turns/s;"
        f" best of each; {s.seconds:.0f} s in all"
    )
    print(f"   {'best rounds':<40} {'1 worker':>12} {'2 workers':>12}")

    def row(label: str, pick: Callable[[RoundFigures], str]) -> None:
        print(f"   {label:<40} {pick(one):>12} {pick(two):>12}")

    def ms(value: Callable[[RoundFigures], float]) -> Callable[[RoundFigures], str]:
        return lambda r: f"{value(r) / r.turns * 1000:.2f} ms"

    row("CPU a turn: worker processes", ms(lambda r: r.worker_cpu))
    row("CPU a turn: PostgreSQL", ms(lambda r: r.postgres_cpu))
    row("CPU a turn: anything else", ms(lambda r: r.other_cpu))
    row("  of which this bench's sampler", ms(lambda r: min(r.sampler_cpu, r.other_cpu)))
    row("machine busy", lambda r: f"{r.machine_busy / r.machine_total:.0%} of {r.cores:.0f}")
    row("cores each worker used", lambda r: " ".join(f"{c / t:.2f}" for _, t, c in r.per_worker))
    row("cores PostgreSQL used", lambda r: f"{r.postgres_cpu / r.seconds:.2f}")
    row("context switches a turn, machine", lambda r: f"{r.switches / r.turns:.0f}")
    row("  workers preempted a turn", lambda r: f"{r.preempted / r.turns:.2f}")
    row("turn latency (handle), mean", ms(lambda r: r.turn_seconds))
    row("  of which getting the lock", ms(lambda r: r.lock_wait))

    def count(kind: str) -> Callable[[RoundFigures], str]:
        return lambda r: f"{r.counts[kind] / r.turns:.2f}"

    def backends(state: str) -> Callable[[RoundFigures], str]:
        return lambda r: f"{r.backends.get(state, 0.0):.2f}"

    for kind in _Tally.KINDS:
        row(f"{kind} a turn", count(kind))
    print("   database backends, mean number in each state (pg_stat_activity every 0.1 s):")
    for state in sorted(set(one.backends) | set(two.backends)):
        row(f"  {state}", backends(state))
    used = (one.worker_cpu + one.postgres_cpu) / one.seconds
    if s.model_seconds:
        bound = s.max_turns / s.model_seconds
        print(
            f"   bound: {s.max_turns} turns in flight / {s.model_seconds:g} s a model answer ="
            f" at most {bound:.0f} turns/s a worker; the 1-worker round used {used:.2f} of"
            f" {one.cores:.0f} cores, so the CPU is not what limits it"
        )
    else:
        print(
            f"   ceiling: the 1-worker round used {used:.2f} of {one.cores:.0f} cores (worker"
            f" {one.worker_cpu / one.seconds:.2f}, PostgreSQL"
            f" {one.postgres_cpu / one.seconds:.2f}), so 2 workers can reach at most"
            f" {s.ceiling:.2f}x on this machine; {TARGET:g}x needs the 1-worker round to use at"
            f" most {one.cores / TARGET:.2f} cores"
        )

    def change(cpu: Callable[[RoundFigures], float]) -> str:
        return f"{(cpu(two) / two.turns) / (cpu(one) / one.turns) - 1:+.0%}"

    print(
        f"   with 2 workers a turn cost {change(lambda r: r.worker_cpu + r.postgres_cpu)} CPU"
        f" (worker {change(lambda r: r.worker_cpu)}, PostgreSQL"
        f" {change(lambda r: r.postgres_cpu)}) and the machine was"
        f" {1 - two.machine_busy / two.machine_total:.0%} idle"
    )
    settings = ", ".join(f"{k}={v}" for k, v in s.server.items())
    print(f"   server (not changed): {settings}; one commit alone {s.commit_ms:.2f} ms")
    disturbed = max(r.other_cpu / r.machine_total for r in (one, two))
    if disturbed > 0.1:
        print(
            f"   the machine was shared: other processes took up to {disturbed:.0%} of its CPU"
            " in a best round, so these figures are low"
        )
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small rounds: proves it runs")
    parser.add_argument("--messages", type=int, help="messages per person (full: 3)")
    parser.add_argument("--rounds", type=int, help="rounds of each worker count (full: 2)")
    parser.add_argument(
        "--model-seconds", type=float, default=0.0, help="each model answer's wait (default 0)"
    )
    args = parser.parse_args(argv)
    try:
        scaling = measure_scaling(
            PG_ADMIN_URL,
            args.quick,
            messages=args.messages,
            rounds=args.rounds,
            model_seconds=args.model_seconds,
        )
    except psycopg.OperationalError as exc:
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"not measured: {PG_ADMIN_URL} is unreachable ({line}); set MNEMOBOT_BENCH_POSTGRES")
        return 1
    print()
    report_scaling(scaling)
    print("Ratios are printed for reading, never asserted.")
    if args.quick:
        print("--quick: a smoke run; these figures are noise, run without it to read them.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
