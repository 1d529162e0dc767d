"""The cost of one whole turn: mnemobot against the raw driver, litellm, Agno, and start-up.

Why this exists (issue 6, "How it must be shown"): the runtime promises that what it adds
around a model call is small next to the database work a turn cannot avoid, that the litellm
SDK stays off every path that does not call a model, that it is much cheaper per turn than an
agent framework such as Agno and stays flat as a session grows, and that ``mnemobot --help``
starts fast. Each claim is measured here, in one run, on one machine, side by side:

1. **The turn against its floor.** An ``InboundMessage`` goes through ``Runtime.handle``
   (dedupe, identity, lock, session, commands, the bot, commit) and its replies are marked
   sent (``Runtime.mark_sent``), as a channel does. The bot has no code (a folder with only
   ``config.csv``), so the model answers with the assembled prompt: persona, the person's 20
   remembered facts, the last 20 turns of the session. The model is the runtime's
   ``ScriptedLLM``, an in-process implementation of the ``LLM`` protocol (no HTTP, no
   litellm). The floor replays the statements a real turn of the runtime executed (recorded
   with SQLAlchemy's ``before_cursor_execute`` event) with the bare driver (``sqlite3`` /
   ``psycopg``): see :class:`StatementRecorder` and :class:`Replay`. Target: within 5x of the
   floor.
2. **litellm's own cost.** The same turn with :class:`MockLiteLLM`, which calls
   ``litellm.acompletion(..., mock_response=...)``, alternating with the fake; the difference
   is what the SDK costs per call (no network either way).
3. **Agno.** The same messages through an Agno agent (``bench/_agno_baseline.py``: SqliteDb
   sessions, 20 user memories in context, a fake ``Model``), turn by turn alternating with
   mnemobot on SQLite, for a session of 500 turns; per-turn cost at a few session lengths.
   Target: at least 10x faster per turn, and flat.
4. **Start-up.** ``mnemobot --help`` and ``mnemobot bots`` against ``python -c pass``, as
   subprocesses taking turns, median, next to the floor of each (the libraries it cannot do
   without). Target: within 3x.
5. **Slack ack latency** while every model call takes 30 s: a real ``mnemobot run`` worker,
   signed Events API requests at a steady rate (``bench/_slack_ack.py``). Target: p99 under
   100 ms.
6. **2 workers vs 1** on PostgreSQL with 500 conversations: real worker processes, the
   turns/s of each round (``bench/_scaling.py``). Target: at least 1.6x. Measured twice: with
   the model answering at once (a worker is bound by its CPU), then, as 6b, with every answer
   taking 0.2 s, still faster than a hosted model (a worker is bound by its turns in flight).

Conventions as in ``bench/memory_ops.py``: both sides in the same process and run, rounds
alternating which side goes first, the best round of each side is the figure, correctness is
checked before timing (raising, not asserting), times are printed and never asserted, and
``--quick`` is a smoke run whose figures are noise. PostgreSQL runs on a scratch database
created for the run and dropped at the end. No socket leaves loopback (Agno's telemetry
would): :func:`_loopback_only` refuses it.

Run: ``.venv/bin/python bench/pipeline.py [--quick] [--backend sqlite|postgresql|all]``;
``--profile`` prints a cProfile of mnemobot's SQLite turn instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before any litellm import
os.environ.setdefault("AGNO_TELEMETRY", "false")

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for the _modules beside this one

from _common import PG_ADMIN_URL, REPLY, _loopback_only, fixed_model, scratch_postgres
from _scaling import MODEL_BOUND_SECONDS, Scaling, measure_scaling, report_scaling
from _slack_ack import measure_slack_ack, report_slack_ack
from sqlalchemy import Connection

from mnemobot.runtime.app.build import build_runtime
from mnemobot.runtime.llm.client import LLM, estimate_tokens
from mnemobot.runtime.memory.store import MemoryScope
from mnemobot.runtime.messages import InboundMessage, TurnResult
from mnemobot.runtime.settings import load_settings
from mnemobot.runtime.storage.database import SQLITE_BUSY_TIMEOUT_MS, Database
from mnemobot.runtime.storage.folding import register_spaced

REPO = Path(__file__).resolve().parent.parent

CHANNEL = "bench"
BOT = "plain"
PERSONA = "You are a concise helper."
MEMORIES = 20
HISTORY_WARMUP = 20  # turns before timing, so every turn reads a full window of 20 turns
FLOOR_TARGET = 5.0  # issue 6: the turn within 5x of the raw driver
AGNO_TARGET = 10.0  # issue 6: at least 10x faster per turn than Agno
LITELLM_MODEL = "openai/gpt-4o-mini"  # only names the provider; mock_response never sends

# (turns per round, rounds). The best round of each side is its figure. Full: stable to
# about 10% and about a minute for everything on 2 cores; --quick only proves it all runs.
SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "full": {"sqlite": (150, 7), "postgresql": (60, 7), "litellm": (100, 5)},
    "quick": {"sqlite": (30, 2), "postgresql": (15, 2), "litellm": (20, 2)},
}
AGNO_TURNS = {"full": 500, "quick": 60}
AGNO_POINTS = {"full": (1, 10, 100, 250, 500), "quick": (1, 10, 30, 60)}
STARTUP_RUNS = {"full": 15, "quick": 3}
STARTUP_TARGET = 3.0  # issue 12: --help and bots within 3x of python -c pass
PASS, HELP, BOTS = "python -c pass", "mnemobot --help", "mnemobot bots"
HELP_FLOOR = "floor of --help: python -c 'import typer'"
BOTS_FLOOR = "floor of bots: + pydantic_settings, lark"
FLOORS = {HELP: HELP_FLOOR, BOTS: BOTS_FLOOR}  # the commands with a target, and their floors


# -- the models -------------------------------------------------------------------------------


class MockLiteLLM:
    """The ``LLM`` protocol with each answer from ``litellm.acompletion(mock_response=...)``.

    Token counting is the same estimate as the in-process model's, so the difference against
    it is the completion call alone: request building, the mock response object, logging
    hooks.
    """

    def __init__(self, reply: str = REPLY) -> None:
        import litellm

        litellm.telemetry = False
        litellm.suppress_debug_info = True
        self.litellm = litellm
        self.reply = reply
        self.last_messages: list[dict[str, str]] = []

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        model: str = "default",
        bot: str = "",
        user_id: str | None = None,
        purpose: str = "answer",
    ) -> str:
        self.last_messages = messages
        response = await self.litellm.acompletion(
            model=LITELLM_MODEL, messages=messages, mock_response=self.reply
        )
        return str(response.choices[0].message.content or "").strip()

    def count_tokens(self, text: str, *, model: str = "default") -> int:
        return estimate_tokens(text)


# -- mnemobot's side ----------------------------------------------------------------------------


def message(person: str, text: str) -> InboundMessage:
    """What a channel hands the runtime: a console-like event with a fresh event id."""
    return InboundMessage(
        channel=CHANNEL,
        channel_kind="console",
        external_user_id=person,
        chat_id=person,
        text=text,
        event_id=str(uuid.uuid4()),
        display_name=person,
    )


def question(i: int) -> str:
    return f"Message {i}: where is my order {i % 17}, and can you remind me what I like?"


class SwitchedModel:
    """The bench side's model: the in-process fake or litellm's mock, switched between turns.

    The runtime receives its model once, when it is built; the bench switches what this one
    delegates to, so the same runtime answers with either.
    """

    def __init__(self, current: LLM) -> None:
        self.current = current

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        model: str = "default",
        bot: str = "",
        user_id: str | None = None,
        purpose: str = "answer",
    ) -> str:
        return await self.current.complete(
            messages, model=model, bot=bot, user_id=user_id, purpose=purpose
        )

    def count_tokens(self, text: str, *, model: str = "default") -> int:
        return self.current.count_tokens(text, model=model)


class OurSide:
    """A runtime with one code-less bot bound to the bench channel (started by :meth:`open`)."""

    def __init__(self, url: str, bots_dir: Path) -> None:
        settings = load_settings(None, database={"url": url}, bots={"dir": str(bots_dir)})
        self.fake = fixed_model()
        self.model = SwitchedModel(self.fake)
        self.runtime = build_runtime(settings, llm=self.model)
        self.runtime.bind_channel(CHANNEL, bot=BOT)

    @classmethod
    async def open(cls, url: str, bots_dir: Path) -> OurSide:
        side = cls(url, bots_dir)
        await side.runtime.start()
        return side

    async def turn(self, person: str, text: str) -> TurnResult:
        """Inbound event in, replies committed, marked sent: what a channel's delivery does."""
        self.fake.requests.clear()  # only the last turn's are checked; a long run keeps none
        result = await self.runtime.handle(message(person, text))
        await self.runtime.mark_sent(result)
        return result

    async def add_person(self, person: str) -> str:
        """First contact, then the person's 20 facts; returns their user id."""
        result = await self.turn(person, "hello")
        if result.user_id is None:
            raise RuntimeError("the first turn resolved no user")
        bot = self.runtime.bots.get(BOT)
        store = self.runtime.memory
        scope = MemoryScope(store, store.user_ref(result.user_id, self.runtime.user_policy(bot)))
        for i in range(MEMORIES):
            await scope.set(f"fact_{i}", f"the person likes thing number {i}")
        return result.user_id

    def statements(self) -> StatementRecorder:
        return StatementRecorder(self.runtime.db)

    async def stop(self) -> None:
        await self.runtime.stop()


def write_bot(root: Path) -> Path:
    """A bot with no code: the model answers with the assembled prompt."""
    folder = root / "bots" / BOT
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.csv").write_text(f"name,value\nprompt,{PERSONA}\n", encoding="utf-8")
    return folder.parent


# -- the floor: the runtime's own statements, replayed with the bare driver ---------------------

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MARKS = ("BEGIN", "COMMIT", "ROLLBACK")


@dataclass(frozen=True)
class Statement:
    """One thing the runtime sent a driver: SQL and parameters as the driver got them, or a
    transaction mark (``BEGIN``/``COMMIT``/``ROLLBACK``), on connection ``conn`` (numbered by
    first use in the recording)."""

    conn: int
    sql: str
    params: Any = None
    many: bool = False


class StatementRecorder:
    """What the runtime's engine sends its driver while active, in order.

    SQLAlchemy's ``before_cursor_execute`` gives each statement with its parameters after
    bind processing (exactly what the driver receives), and the ``begin``/``commit``/
    ``rollback`` events give the transactions around them, each on its DBAPI connection.
    """

    def __init__(self, db: Database) -> None:
        self.engine = db.engine
        self.statements: list[Statement] = []
        self._conns: dict[int, int] = {}
        self._hooks: dict[str, Callable[..., None]] = {
            "before_cursor_execute": self._execute,
            "begin": lambda conn: self._mark(conn, "BEGIN"),
            "commit": lambda conn: self._mark(conn, "COMMIT"),
            "rollback": lambda conn: self._mark(conn, "ROLLBACK"),
        }

    @property
    def count(self) -> int:
        """Statements recorded, transaction marks not counted."""
        return sum(1 for s in self.statements if s.sql not in _MARKS)

    def _number(self, conn: Connection) -> int:
        return self._conns.setdefault(id(conn.connection.dbapi_connection), len(self._conns))

    def _execute(
        self, conn: Connection, _cursor: Any, sql: str, params: Any, _ctx: Any, many: bool
    ) -> None:
        self.statements.append(Statement(self._number(conn), sql, params, many))

    def _mark(self, conn: Connection, mark: str) -> None:
        self.statements.append(Statement(self._number(conn), mark))

    def __enter__(self) -> StatementRecorder:
        for name, hook in self._hooks.items():
            event.listen(self.engine, name, hook)
        return self

    def __exit__(self, *_exc: Any) -> None:
        for name, hook in self._hooks.items():
            event.remove(self.engine, name, hook)


def _freshen(value: Any, new: dict[str, str]) -> Any:
    """``value`` with every id of ``new`` replaced, inside text, JSON and UUID values."""
    if isinstance(value, str):
        for old, fresh in new.items():
            if old in value:
                value = value.replace(old, fresh)
        return value
    if isinstance(value, uuid.UUID):
        return uuid.UUID(new[str(value)]) if str(value) in new else value
    if isinstance(value, dict):
        return {k: _freshen(v, new) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_freshen(v, new) for v in value)
    if isinstance(value, Jsonb):
        return Jsonb(_freshen(value.obj, new))
    return value


def _ids_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield from _UUID.findall(value)
    elif isinstance(value, uuid.UUID):
        yield str(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _ids_in(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _ids_in(v)
    elif isinstance(value, Jsonb):
        yield from _ids_in(value.obj)


class Replay:
    """The floor: one recorded turn of the runtime, replayed with the bare driver.

    Exactly the statements the runtime executed, with their parameters, on as many
    connections, in the same transactions (on SQLite ``BEGIN IMMEDIATE`` for a transaction
    that writes, as the runtime's writes do), every result fetched. Reads outside a
    transaction stay single autocommit statements, as the runtime runs them. What is new in
    each turn (an id or event id first seen in an ``INSERT``) gets a fresh UUID per replay,
    wherever it appears (the inbox payload too); everything else, timestamps included, is
    replayed as recorded. No prompt is assembled and no model is asked: what the runtime
    spends on those is part of what it spends above the floor.

    Args:
        statements: a :class:`StatementRecorder`'s recording of one whole turn.
        connect: opens one bare driver connection in autocommit mode.
        write_begin: what begins a transaction that writes (``BEGIN IMMEDIATE`` on SQLite).
    """

    def __init__(
        self,
        statements: list[Statement],
        connect: Callable[[], Any],
        *,
        write_begin: str = "BEGIN",
    ) -> None:
        self.conns = [connect() for _ in range(1 + max(s.conn for s in statements))]
        self.cursors = [conn.cursor() for conn in self.conns]
        self.statements = sum(1 for s in statements if s.sql not in _MARKS)
        seen: set[str] = set()
        fresh: list[str] = []
        for s in statements:
            for found in _ids_in(s.params):
                if found not in seen and s.sql.lstrip().upper().startswith("INSERT"):
                    fresh.append(found)
                seen.add(found)
        self.fresh = fresh
        self.steps: list[tuple[Any, str, Any, bool, bool]] = []
        for i, s in enumerate(statements):
            sql = s.sql
            if sql == "BEGIN":
                sql = write_begin if self._writes(statements, i) else "BEGIN"
            touched = not set(fresh).isdisjoint(_ids_in(s.params))
            self.steps.append((self.cursors[s.conn], sql, s.params, s.many, touched))

    @staticmethod
    def _writes(statements: list[Statement], begin: int) -> bool:
        conn = statements[begin].conn
        for s in statements[begin + 1 :]:
            if s.conn != conn:
                continue
            if s.sql in ("COMMIT", "ROLLBACK"):
                return False
            if s.sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
                return True
        return False

    def turn(self) -> None:
        new = {old: str(uuid.uuid4()) for old in self.fresh}
        for cursor, sql, params, many, touched in self.steps:
            if touched:
                params = _freshen(params, new)
            if many:
                cursor.executemany(sql, params)
            elif params is None or sql in _MARKS or sql.startswith("BEGIN"):
                cursor.execute(sql)
            else:
                cursor.execute(sql, params)
            if cursor.description is not None:
                cursor.fetchall()

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


def sqlite_connect(path: Path) -> Callable[[], sqlite3.Connection]:
    """Bare ``sqlite3`` connections with the runtime's pragmas, in autocommit mode."""

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        register_spaced(conn)  # the recall index's triggers call it, as the runtime's
        for pragma in (
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
        ):
            conn.execute(f"PRAGMA {pragma}")
        return conn

    return connect


def psycopg_connect(url: str) -> Callable[[], psycopg.Connection[Any]]:
    """Bare ``psycopg`` 3 connections in autocommit mode (BEGIN/COMMIT as recorded)."""
    return lambda: psycopg.connect(url, autocommit=True)


# -- figures ------------------------------------------------------------------------------------


@dataclass
class Pair:
    """Per-turn seconds of two sides, round by round; the best round of each is the figure."""

    name: str
    ours: list[float] = field(default_factory=list)
    other: list[float] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def best_ours(self) -> float:
        return min(self.ours)

    @property
    def best_other(self) -> float:
        return min(self.other)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f} ms"


async def timed(n: int, body: Callable[[int], Awaitable[Any]], start: int) -> float:
    """Seconds per call of ``n`` awaited calls of ``body``."""
    began = time.perf_counter()
    for i in range(n):
        await body(start + i)
    return (time.perf_counter() - began) / n


async def alternate(
    pair: Pair,
    ours: Callable[[int], Awaitable[Any]],
    other: Callable[[int], Awaitable[Any]],
    n: int,
    rounds: int,
) -> Pair:
    """``rounds`` rounds of ``n`` turns a side, alternating which side goes first."""
    counter = 10_000
    for r in range(rounds):
        if r % 2 == 0:
            pair.ours.append(await timed(n, ours, counter))
            pair.other.append(await timed(n, other, counter))
        else:
            pair.other.append(await timed(n, other, counter))
            pair.ours.append(await timed(n, ours, counter))
        counter += n
    return pair


# -- 1. the turn against its floor --------------------------------------------------------------


async def turn_vs_floor(
    backend: str, url: str, connect: Callable[[], Any], root: Path, size: str
) -> Pair:
    """Both sides get a person with 20 facts and 20 turns of history, then alternate rounds.

    The floor's person has its history made by the runtime too; one more of its turns is
    recorded (:class:`StatementRecorder`) and the floor replays that turn (:class:`Replay`).
    """
    n, rounds = SIZES[size][backend]
    side = await OurSide.open(url, write_bot(root))
    raw: Replay | None = None
    try:
        await side.add_person("ours")
        await side.add_person("floor")
        for i in range(HISTORY_WARMUP):
            await side.turn("ours", question(i))
            await side.turn("floor", question(i))
        check_our_turn(side, await side.turn("ours", question(0)))
        with side.statements() as ours_seen:
            await side.turn("ours", question(1))
        with side.statements() as recorded:
            check_our_turn(side, await side.turn("floor", question(1)))
        raw = Replay(recorded.statements, connect, write_begin=WRITE_BEGIN[backend])
        check_replay(raw)
        pair = Pair(backend)
        pair.notes["statements"] = (ours_seen.count, raw.statements)

        async def ours(i: int) -> None:
            await side.turn("ours", question(i))

        async def floor(_i: int) -> None:
            raw.turn()

        await alternate(pair, ours, floor, n, rounds)
        pair.notes["sizes"] = (n, rounds)
        print(f"  {backend:<10} turn vs floor done", file=sys.stderr)
        return pair
    finally:
        if raw is not None:
            raw.close()
        await side.stop()


WRITE_BEGIN = {"sqlite": "BEGIN IMMEDIATE", "postgresql": "BEGIN"}


def check_our_turn(side: OurSide, result: TurnResult) -> None:
    """The turn must be the real one: one committed reply, from the model, with the memories."""
    texts = [r.text for r in result.replies]
    asked = side.fake.requests[-1].messages if side.fake.requests else []
    system = asked[0]["content"] if asked else ""
    if texts != [REPLY] or f"fact_{MEMORIES - 1}" not in system:
        raise RuntimeError(f"the turn is not what is measured: replies {texts!r}")


def check_replay(raw: Replay) -> None:
    """A replay must write a turn: two more turn-log rows, and a reply marked sent."""
    cursor = raw.cursors[0]

    def counts() -> tuple[int, int]:
        cursor.execute("SELECT count(*) FROM turns")
        turns = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM outbox WHERE status = 'sent'")
        return turns, cursor.fetchone()[0]

    before = counts()
    raw.turn()
    after = counts()
    if after != (before[0] + 2, before[1] + 1):
        raise RuntimeError(f"the floor's replay did not write a turn: {before} -> {after}")


async def bench_sqlite(root: Path, size: str) -> Pair:
    path = root / "turn.db"
    return await turn_vs_floor("sqlite", f"sqlite:///{path}", sqlite_connect(path), root, size)


async def bench_postgresql(root: Path, size: str) -> Pair:
    with scratch_postgres() as url:
        return await turn_vs_floor("postgresql", url, psycopg_connect(url), root, size)


# -- 2. litellm with mock_response ------------------------------------------------------------


async def bench_litellm(root: Path, size: str) -> Pair:
    """The same runtime and conversation, its model switched between the fake and litellm."""
    n, rounds = SIZES[size]["litellm"]
    started = time.perf_counter()
    mock = MockLiteLLM()
    import_seconds = time.perf_counter() - started
    side = await OurSide.open(f"sqlite:///{root / 'litellm.db'}", write_bot(root))
    try:
        await side.add_person("ours")
        for i in range(HISTORY_WARMUP):
            await side.turn("ours", question(i))
        side.model.current = mock
        result = await side.turn("ours", question(0))
        if [r.text for r in result.replies] != [REPLY]:
            raise RuntimeError("litellm's mock_response did not come back as the reply")
        messages = mock.last_messages

        async def fake_turn(i: int) -> None:
            side.model.current = side.fake
            await side.turn("ours", question(i))

        async def litellm_turn(i: int) -> None:
            side.model.current = mock
            await side.turn("ours", question(i))

        pair = await alternate(Pair("litellm"), fake_turn, litellm_turn, n, rounds)

        async def bare_call(_i: int) -> None:
            await mock.complete(messages)

        calls = [await timed(n, bare_call, 0) for _ in range(rounds)]
        pair.notes.update(call=min(calls), import_seconds=import_seconds, sizes=(n, rounds))
        print("  litellm    mock_response done", file=sys.stderr)
        return pair
    finally:
        await side.stop()


# -- 3. Agno --------------------------------------------------------------------------------------


@dataclass
class Growth:
    """Per-turn seconds of each turn of one long session, for both sides."""

    ours: list[float] = field(default_factory=list)
    agno: list[float] = field(default_factory=list)
    version: str = ""


async def bench_agno(root: Path, size: str) -> Growth | str:
    """One session of N turns on each side, turn by turn alternating; a string if no Agno."""
    try:
        from _agno_baseline import AGNO_VERSION, AgnoSide
    except ImportError as exc:
        return f"not measured: Agno is not installed ({exc}); pip install 'agno[sqlite]'"
    turns = AGNO_TURNS[size]
    facts = [f"the person likes thing number {i}" for i in range(MEMORIES)]
    agno = AgnoSide(
        str(root / "agno.db"), user_id="agno-person", session_id="s1", memories=facts, reply=REPLY
    )
    side = await OurSide.open(f"sqlite:///{root / 'growth.db'}", write_bot(root))
    growth = Growth(version=AGNO_VERSION)
    try:
        await side.add_person("ours")
        for i in range(turns):
            text = question(i)
            order = (agno.turn, None) if i % 2 else (None, agno.turn)
            for call in order:
                began = time.perf_counter()
                if call is None:
                    await side.turn("ours", text)
                    growth.ours.append(time.perf_counter() - began)
                else:
                    answer = await call(text)
                    growth.agno.append(time.perf_counter() - began)
                    if i == 0 and (answer != REPLY or "thing number" not in agno.system_prompt()):
                        raise RuntimeError("the Agno turn is not what is measured")
        print("  agno       session growth done", file=sys.stderr)
        return growth
    finally:
        await side.stop()


def window(values: list[float], at: int) -> float:
    """The fastest of the (up to) 20 turns ending at turn ``at`` (1-based).

    The session is one pass, so there are no rounds to take the best of; the fastest turn of
    a window is its least disturbed one (as ``timeit`` reasons: other processes only ever
    add time), and 20 consecutive turns do the same work. Turn 1 stands alone (the cold
    start: first statements, first session); later windows leave it out.
    """
    if at == 1:
        return values[0]
    return min(values[max(1, at - 20) : at])


# -- 4. start-up --------------------------------------------------------------------------------


@dataclass
class Startup:
    """Median wall time of each command (seconds), over ``runs`` runs."""

    runs: int
    figures: dict[str, float]


def startup(runs: int, *, with_litellm: bool) -> Startup:
    """Each command as a user runs it, as subprocesses taking turns; the median of each.

    In the repository's folder, which holds ``config/mnemobot.toml`` and the example bots (two
    Python bots and a BASIC dialog), so ``mnemobot bots`` loads, parses and lists them all.
    With bytecode cached, as an installed package has it: a session may export
    ``PYTHONDONTWRITEBYTECODE``, and every run would then compile mnemobot's modules again
    (about 10 ms of ``--help``). The caches go to a scratch folder (``PYTHONPYCACHEPREFIX``) that
    one untimed run of each command fills, for ``python -c pass`` as for the others.

    A floor is the third-party imports a command cannot do without, timed the same way:
    ``import typer`` for ``--help``; for ``bots`` also pydantic-settings (the settings) and lark
    (the BASIC parser). A target below its floor is out of reach while those libraries are used.
    """
    python = sys.executable
    script = Path(python).parent / "mnemobot"
    mnemobot = [str(script)] if script.exists() else [python, "-m", "mnemobot.runtime.cli"]
    commands = {
        PASS: [python, "-c", "pass"],
        HELP: [*mnemobot, "--help"],
        BOTS: [*mnemobot, "bots"],
        HELP_FLOOR: [python, "-c", "import typer"],
        BOTS_FLOOR: [python, "-c", "import typer, pydantic_settings, lark"],
    }
    with tempfile.TemporaryDirectory(prefix="mnemobot-pycache-") as cache:
        env = {
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            "PYTHONPYCACHEPREFIX": cache,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
        for argv in commands.values():  # fills the bytecode cache; not timed
            subprocess.run(argv, cwd=REPO, env=env, capture_output=True, check=True)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, argv in commands.items():
                began = time.perf_counter()
                subprocess.run(argv, cwd=REPO, env=env, capture_output=True, check=True)
                times[name].append(time.perf_counter() - began)
        figures = {name: statistics.median(values) for name, values in times.items()}
        if with_litellm:  # once: what the CLI would pay if it imported the SDK at start-up
            argv = [python, "-c", "import litellm"]
            subprocess.run(argv, cwd=REPO, env=env, check=True)  # its bytecode, as above
            began = time.perf_counter()
            subprocess.run(argv, cwd=REPO, env=env, check=True)
            figures["python -c 'import litellm'"] = time.perf_counter() - began
    print("  start-up   done", file=sys.stderr)
    return Startup(runs, figures)


# -- report -------------------------------------------------------------------------------------


def verdict(ratio: float, target: float, *, at_least: bool) -> str:
    ok = ratio >= target if at_least else ratio <= target
    return "met" if ok else "MISSED"


def report_floor(pairs: list[Pair]) -> None:
    print("1. The full turn (inbound event -> Runtime.handle -> committed -> marked sent),")
    print(f"   code-less bot, fake in-process model, {MEMORIES} facts and 20 turns in the prompt")
    header = f"   {'backend':<11} {'mnemobot/turn':>14} {'raw floor/turn':>15} {'ratio':>7}"
    print(header + f"  target: within {FLOOR_TARGET:g}x of the floor")
    print("   " + "-" * (len(header) + 30))
    for p in pairs:
        ratio = p.best_ours / p.best_other
        print(
            f"   {p.name:<11} {ms(p.best_ours):>14} {ms(p.best_other):>15} {ratio:>6.1f}x"
            f"  {verdict(ratio, FLOOR_TARGET, at_least=False)}"
        )
    for p in pairs:
        ours_n, floor_n = p.notes["statements"]
        n, rounds = p.notes["sizes"]
        print(
            f"   {p.name}: {n} turns a round, best of {rounds} per side; SQL statements a turn"
            f" (BEGIN/COMMIT not counted): mnemobot {ours_n}, floor {floor_n}"
        )
    print()


def report_litellm(pair: Pair) -> None:
    fake, lite = pair.best_ours, pair.best_other
    n, rounds = pair.notes["sizes"]
    print("2. The same turn (SQLite) with litellm.acompletion(mock_response=...) as the model")
    print(f"   turn, fake model:             {ms(fake)}")
    print(f"   turn, litellm mock_response:  {ms(lite)}  ({lite / fake:.2f}x)")
    print(f"   litellm's share of a turn:    {ms(lite - fake)}")
    print(f"   one bare acompletion call:    {ms(pair.notes['call'])}")
    print(
        f"   import litellm (in this process, once): {pair.notes['import_seconds']:.2f} s;"
        f" {n} turns a round, best of {rounds}"
    )
    print()


def report_agno(growth: Growth | str | None, size: str) -> None:
    print("3. Per turn against an Agno agent (SqliteDb sessions, 20 memories in context,")
    print("   fake Model), one session each, turn by turn alternating, on SQLite")
    if growth is None:
        print("   not measured (SQLite not selected)\n")
        return
    if isinstance(growth, str):
        print(f"   {growth}\n")
        return
    header = f"   {'session turn':>12} {'mnemobot':>12} {'agno':>12} {'agno/mnemobot':>14}"
    print(header + f"  target: at least {AGNO_TARGET:g}x faster")
    print("   " + "-" * (len(header) + 30))
    for at in AGNO_POINTS[size]:
        if at > len(growth.ours):
            continue
        ours, agno = window(growth.ours, at), window(growth.agno, at)
        ratio = agno / ours
        print(
            f"   {at:>12} {ms(ours):>12} {ms(agno):>12} {ratio:>13.1f}x"
            f"  {verdict(ratio, AGNO_TARGET, at_least=True)}"
        )
    ours_all, agno_all = statistics.median(growth.ours), statistics.median(growth.agno)
    ratio = agno_all / ours_all
    print(
        f"   {'median, all':>12} {ms(ours_all):>12} {ms(agno_all):>12} {ratio:>13.1f}x"
        f"  {verdict(ratio, AGNO_TARGET, at_least=True)}"
    )
    last = AGNO_POINTS[size][-1]
    if last <= len(growth.ours):
        first = AGNO_POINTS[size][2]  # past the warm-up of the first turns
        ours_growth = window(growth.ours, last) / window(growth.ours, first)
        agno_growth = window(growth.agno, last) / window(growth.agno, first)
        print(
            f"   growth from turn {first} to turn {last}: mnemobot {ours_growth:.2f}x,"
            f" agno {agno_growth:.2f}x (1.00x = flat)"
        )
    print(f"   agno {growth.version}; a point: the fastest of the 20 turns ending there")
    print()


def report_startup(boot: Startup) -> None:
    print(
        f"4. Start-up, subprocess wall time, median of {boot.runs} runs, in the repository's"
        " folder, bytecode cached"
    )
    base = boot.figures[PASS]
    header = f"   {'command':<44} {'time':>8} {'x pass':>7}"
    print(header + f"  target: within {STARTUP_TARGET:g}x of python -c pass")
    print("   " + "-" * (len(header) + 40))
    for name, seconds in boot.figures.items():
        ratio = seconds / base
        line = f"   {name:<44} {seconds * 1000:6.0f} ms {ratio:>6.1f}x"
        if name in FLOORS:
            line += f"  {verdict(ratio, STARTUP_TARGET, at_least=False)}"
            floor = boot.figures[FLOORS[name]]
            line += f" (floor {floor / base:.1f}x, +{(seconds - floor) * 1000:.0f} ms above it)"
        print(line)
    print()


# -- profile ------------------------------------------------------------------------------------


async def profile_turn(turns: int) -> None:
    """cProfile of mnemobot's SQLite turn: where the time above the floor goes."""
    with tempfile.TemporaryDirectory(prefix="mnemobot-bench-") as tmp:
        root = Path(tmp)
        side = await OurSide.open(f"sqlite:///{root / 'profile.db'}", write_bot(root))
        try:
            await side.add_person("ours")
            for i in range(HISTORY_WARMUP):
                await side.turn("ours", question(i))
            profiler = cProfile.Profile()
            profiler.enable()
            for i in range(turns):
                await side.turn("ours", question(i))
            profiler.disable()
        finally:
            await side.stop()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)


# -- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny N: proves it runs (smoke)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "all"), default="all")
    parser.add_argument("--profile", action="store_true", help="cProfile our SQLite turn only")
    args = parser.parse_args(argv)
    socket.socket.connect = _loopback_only  # type: ignore[method-assign]

    if args.profile:
        asyncio.run(profile_turn(300))
        return 0

    size = "quick" if args.quick else "full"
    sqlite_on = args.backend in ("sqlite", "all")
    postgres_on = args.backend in ("postgresql", "all")
    unreachable: list[str] = []
    started = time.perf_counter()

    async def run_all() -> tuple[list[Pair], Pair | None, Growth | str | None]:
        pairs: list[Pair] = []
        lite: Pair | None = None
        growth: Growth | str | None = None
        with tempfile.TemporaryDirectory(prefix="mnemobot-bench-") as tmp:
            root = Path(tmp)
            if sqlite_on:
                pairs.append(await bench_sqlite(root, size))
            if postgres_on:
                try:
                    pairs.append(await bench_postgresql(root, size))
                except psycopg.OperationalError as exc:
                    line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    unreachable.append(
                        f"postgresql: not measured, {PG_ADMIN_URL} is unreachable ({line});"
                        " set MNEMOBOT_BENCH_POSTGRES to use another server"
                    )
            if sqlite_on:
                lite = await bench_litellm(root, size)
                growth = await bench_agno(root, size)
        return pairs, lite, growth

    pairs, lite, growth = asyncio.run(run_all())
    ack = measure_slack_ack(args.quick) if sqlite_on else None
    scaling: list[Scaling] = []
    if postgres_on:
        with contextlib.suppress(psycopg.OperationalError):  # said below, for section 1
            scaling.append(measure_scaling(PG_ADMIN_URL, args.quick))
            scaling.append(
                measure_scaling(
                    PG_ADMIN_URL,
                    args.quick,
                    messages=None if args.quick else 2,
                    rounds=1,
                    model_seconds=MODEL_BOUND_SECONDS,
                )
            )
    runs = STARTUP_RUNS[size]
    boot = startup(runs, with_litellm=not args.quick)
    print()
    if pairs:
        report_floor(pairs)
    if lite is not None:
        report_litellm(lite)
    report_agno(growth, size)
    report_startup(boot)
    if ack is not None:
        report_slack_ack(ack, number="5")
    for number, figures in zip(("6", "6b"), scaling, strict=False):
        report_scaling(figures, number=number)
    print("Ratios are printed for reading, never asserted.")
    if args.quick:
        print("--quick: a smoke run; these figures are noise, run without it to read them.")
    for line in unreachable:
        print(line)
    print(f"(whole run: {time.perf_counter() - started:.1f} s)")
    return 1 if unreachable else 0


if __name__ == "__main__":
    raise SystemExit(main())
