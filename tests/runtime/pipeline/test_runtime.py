"""The path of one message: dedupe, rollback of a failed turn, apology, clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.errors import StorageError, UnknownBot
from mnemobot.runtime.messages import InboundMessage
from mnemobot.runtime.pipeline.runtime import APOLOGY, MEMORY_FULL_APOLOGY
from mnemobot.runtime.storage.tables import TURNS
from tests.support import Chat, write_bot

COUNTER_BOT = """
    async def on_message(ctx):
        n = await ctx.user.memory.increment("messages")
        await ctx.bot.memory.set("last_text", ctx.text)
        await ctx.say(f"message {n}")
"""

FAILING_BOT = """
    async def on_message(ctx):
        await ctx.user.memory.set("half", "written")
        await ctx.bot.memory.increment("runs")
        await ctx.session.set("step", 2)
        if ctx.text == "boom":
            raise RuntimeError("the bot's own bug")
        await ctx.say("fine")
"""


TWO_REPLIES_BOT = """
    async def on_message(ctx):
        if ctx.text == "boom":
            raise RuntimeError("the bot's own bug")
        await ctx.say(f"1: {ctx.text}")
        await ctx.say(f"2: {ctx.text}")
        if ctx.text == "bye":
            ctx.end_session()
"""


def message(text: str, event_id: str, channel: str = "console:counter") -> InboundMessage:
    return InboundMessage(
        channel=channel,
        channel_kind="console",
        external_user_id="ana",
        chat_id="ana",
        text=text,
        event_id=event_id,
        display_name="Ana",
    )


def count(runtime, table) -> int:
    with runtime.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


async def test_the_same_event_delivered_twice_is_handled_once(make_runtime, tmp_path: Path):
    from mnemobot.runtime.storage.tables import INBOX, OUTBOX, TURNS

    write_bot(tmp_path, "counter", bot_py=COUNTER_BOT)
    runtime = await make_runtime(bots_dir=tmp_path)
    runtime.bind_channel("console:counter", bot="counter")

    first = await runtime.handle(message("hi", "evt-1"))
    again = await runtime.handle(message("hi", "evt-1"))
    other = await runtime.handle(message("hi", "evt-2"))

    assert [r.text for r in first.replies] == ["message 1"]
    assert again.duplicate and again.replies == []
    assert [r.text for r in other.replies] == ["message 2"]
    assert count(runtime, INBOX) == 2
    assert count(runtime, TURNS) == 4  # two user messages, two replies
    assert count(runtime, OUTBOX) == 2


async def test_a_failing_bot_rolls_back_its_writes_and_the_person_gets_an_apology(
    make_runtime, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    from mnemobot.runtime.storage.tables import BOT_MEMORY, INBOX, SESSION_MEMORY, USER_MEMORY

    write_bot(tmp_path, "fragile", bot_py=FAILING_BOT)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="fragile", user="ana")

    with caplog.at_level(logging.ERROR, logger="mnemobot.runtime.pipeline.runtime"):
        replies = await chat.say("boom")

    assert replies == [f"fragile: {APOLOGY}"]
    assert count(runtime, USER_MEMORY) == 0
    assert count(runtime, SESSION_MEMORY) == 0
    # An increment is committed when it is made (a ticket number is never handed out twice),
    # so it stays, like a database sequence: the failed turn leaves a gap, nothing else.
    runs = runtime.memory.bot_ref("fragile")
    assert runtime.memory.read_value(runs, "runs") == 1
    assert count(runtime, BOT_MEMORY) == 1
    with runtime.db.read() as conn:
        status, error = conn.execute(select(INBOX.c.status, INBOX.c.error)).one()
    assert status == "failed"
    assert error == "RuntimeError: the bot's own bug"
    record = next(r for r in caplog.records if "bot turn failed" in r.getMessage())
    assert "bot=fragile" in record.getMessage()
    assert "the bot's own bug" in record.getMessage()

    assert await chat.say("again") == ["fragile: fine"]  # the next turn works and commits
    assert count(runtime, USER_MEMORY) == 1
    assert runtime.memory.read_value(runs, "runs") == 2


async def test_memory_full_at_commit_writes_nothing_and_says_so(make_runtime, tmp_path: Path):
    from mnemobot.runtime.storage.tables import BOT_MEMORY, USER_MEMORY

    write_bot(
        tmp_path,
        "hoarder",
        config="name,value\nuser-memory-max-keys,2\n",
        bot_py="""
            async def on_message(ctx):
                await ctx.bot.memory.increment("attempts")
                await ctx.user.memory.set("k-" + ctx.text, True)
                await ctx.say("kept " + ctx.text)
        """,
    )
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="hoarder", user="ana")
    assert await chat.say("1") == ["hoarder: kept 1"]
    assert await chat.say("2") == ["hoarder: kept 2"]
    assert await chat.say("3") == [f"hoarder: {MEMORY_FULL_APOLOGY}"]
    assert count(runtime, USER_MEMORY) == 2
    bot_memory = runtime.memory.bot_ref("hoarder")
    # The third turn's writes rolled back; its increment was committed when made (a gap).
    assert runtime.memory.read_value(bot_memory, "attempts") == 3
    assert count(runtime, BOT_MEMORY) == 1


async def test_a_sessions_lines_are_numbered_in_the_order_they_were_said(
    make_runtime, tmp_path: Path, clock: ManualClock
):
    """Recall reads a line's neighbours by these numbers (recall.around)."""
    write_bot(tmp_path / "bots", "two", bot_py=TWO_REPLIES_BOT)
    runtime = await make_runtime(bots_dir=tmp_path / "bots")
    chat = Chat(runtime, bot="two", user="ana")
    for text in ("hi", "boom", "bye", "again"):
        await chat.say(text)
        clock.advance(seconds=1)

    with runtime.db.read() as conn:
        rows = conn.execute(
            select(TURNS.c.session_id, TURNS.c.line, TURNS.c.text).order_by(
                TURNS.c.created_at, TURNS.c.seq
            )
        ).all()
    first, second = dict.fromkeys(row.session_id for row in rows)
    assert [(row.session_id, row.line, row.text) for row in rows] == [
        (first, 0, "hi"),
        (first, 1, "1: hi"),
        (first, 2, "2: hi"),
        (first, 3, "boom"),
        (first, 4, APOLOGY),  # a failed turn's lines are numbered as any
        (first, 5, "bye"),
        (first, 6, "1: bye"),
        (first, 7, "2: bye"),
        (second, 0, "again"),  # a new session starts again
        (second, 1, "1: again"),
        (second, 2, "2: again"),
    ]


async def test_an_unknown_bot_is_a_clear_error(make_runtime):
    runtime = await make_runtime()
    with pytest.raises(UnknownBot, match="unknown bot 'nobody'; bots here: sales-bot, support-bot"):
        Chat(runtime, bot="nobody", user="ana")


async def test_a_message_on_an_unbound_channel_is_refused(make_runtime):
    runtime = await make_runtime()
    with pytest.raises(UnknownBot, match="not bound"):
        await runtime.handle(message("hi", "e", channel="console:ghost"))


async def test_a_database_that_is_down_is_a_clear_error(tmp_path: Path, db_url: str):
    from mnemobot.runtime.app.build import build_runtime
    from mnemobot.runtime.settings import load_settings

    write_bot(tmp_path, "counter", bot_py=COUNTER_BOT)
    down_url = (
        "postgresql+psycopg://127.0.0.1:1/nowhere"
        if db_url.startswith("postgresql")
        else "sqlite:////proc/no-such-place/mnemobot.db"
    )
    settings = load_settings(None, database={"url": down_url}, bots={"dir": str(tmp_path)})
    runtime = build_runtime(settings)
    expected = "database unavailable: .*refused" if "postgres" in down_url else "cannot create"
    with pytest.raises(StorageError, match=expected):
        await runtime.start()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_database_that_goes_away_mid_turn_loses_nothing(
    make_runtime, tmp_path: Path, db_url: str
):
    """The commit fails: nothing is half-written, and a redelivery is then handled once."""
    import psycopg

    from mnemobot.runtime.storage.tables import INBOX, OUTBOX, TURNS, USER_MEMORY
    from tests.conftest import PG_ADMIN_URL

    database = db_url.rsplit("/", 1)[1]

    def cut_the_database() -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )

    write_bot(
        tmp_path,
        "counter",
        bot_py="""
            import os
            CUT = []

            async def on_message(ctx):
                n = await ctx.user.memory.get("messages", 0) + 1  # increment would commit now
                await ctx.user.memory.set("messages", n)
                await ctx.user.memory.set("last", ctx.text)
                if CUT:
                    CUT.pop()()
                await ctx.say(f"message {n}")
        """,
    )
    runtime = await make_runtime(bots_dir=tmp_path)
    runtime.bind_channel("console:counter", bot="counter")
    import sys

    sys.modules["mnemobot_bots.counter"].CUT.append(cut_the_database)
    try:
        with pytest.raises(StorageError, match="database"):
            await runtime.handle(message("hello", "evt-1"))
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')

    assert count(runtime, USER_MEMORY) == 0
    assert count(runtime, TURNS) == 0
    assert count(runtime, OUTBOX) == 0
    with runtime.db.read() as conn:
        assert conn.execute(select(INBOX.c.status)).scalar_one() == "received"

    retry = await runtime.handle(message("hello", "evt-1"))  # the platform redelivers
    again = await runtime.handle(message("hello", "evt-1"))
    assert [r.text for r in retry.replies] == ["message 1"]
    assert again.duplicate
    assert count(runtime, USER_MEMORY) == 2
    assert count(runtime, OUTBOX) == 1


async def test_an_oversized_message_gets_a_clear_answer_and_the_bot_does_not_run(
    make_runtime, tmp_path: Path
):
    from mnemobot.runtime.storage.tables import INBOX, TURNS, USER_MEMORY

    write_bot(tmp_path, "counter", bot_py=COUNTER_BOT)
    runtime = await make_runtime(bots_dir=tmp_path, messages={"max_chars": 100})
    chat = Chat(runtime, bot="counter", user="ana")

    assert await chat.say("x" * 150) == [
        "counter: Sorry, that message is too long for me (150 characters; the limit is 100). "
        "Please send it in shorter parts."
    ]
    assert count(runtime, USER_MEMORY) == 0
    with runtime.db.read() as conn:
        logged = conn.execute(select(TURNS.c.text).where(TURNS.c.role == "user")).scalar_one()
        status = conn.execute(select(INBOX.c.status)).scalar_one()
    assert logged == "x" * 100 + " [... 50 more characters]"
    assert status == "failed"
    assert await chat.say("x" * 100) == ["counter: message 1"]


async def test_a_lone_surrogate_in_an_event_becomes_a_replacement_character_and_is_answered(
    make_runtime, tmp_path: Path
):
    from mnemobot.runtime.storage.tables import INBOX

    write_bot(tmp_path, "counter", bot_py=COUNTER_BOT)
    runtime = await make_runtime(bots_dir=tmp_path)
    runtime.bind_channel("console:counter", bot="counter")
    # as json.loads gives it for '"caf\\ud800"' (a crafted request, a client's bug)
    event = InboundMessage(
        channel="console:counter", channel_kind="console", external_user_id="ana",
        chat_id="ana", text="caf\ud800 please", event_id="e-1", display_name="An\udfffa",
        payload={"message": {"text": "caf\ud800 please", "from": ["An\udfffa"]}},
    )  # fmt: skip

    result = await runtime.handle(event)

    assert [r.text for r in result.replies] == ["message 1"]
    with runtime.db.read() as conn:
        logged = conn.execute(select(TURNS.c.text).where(TURNS.c.role == "user")).scalar_one()
        stored = conn.execute(select(INBOX.c.payload, INBOX.c.status)).one()
    assert logged == "caf\ufffd please"
    held = stored.payload  # the event as the inbox keeps it, for a replay after a crash
    assert (held["text"], held["display_name"]) == ("caf\ufffd please", "An\ufffda")
    assert held["payload"]["message"] == {"text": "caf\ufffd please", "from": ["An\ufffda"]}
    assert stored.status == "done"


async def test_an_event_is_stored_while_every_shared_thread_is_busy(make_runtime, tmp_path: Path):
    """The platform's acknowledgement must not queue behind turns in flight (Slack: 3 s)."""
    import asyncio
    import threading

    from mnemobot.runtime.storage.tables import INBOX

    write_bot(tmp_path, "counter", bot_py=COUNTER_BOT)
    runtime = await make_runtime(bots_dir=tmp_path)
    runtime.bind_channel("console:counter", bot="counter")
    gate = threading.Event()
    # More blocked calls than Database.run has threads, so its queue is not empty either.
    # (On SQLite run() and the store are inline: block other threads, as there are none.)
    block = runtime.db.run if runtime.db.dialect == "postgresql" else asyncio.to_thread
    busy = [asyncio.ensure_future(block(gate.wait)) for _ in range(40)]
    try:
        await asyncio.sleep(0)
        entry = await asyncio.wait_for(runtime.accept(message("hi", "evt-busy")), timeout=20)
        assert not any(task.done() for task in busy)  # stored while the shared threads waited
    finally:
        gate.set()
        await asyncio.gather(*busy)

    assert entry is not None and entry.is_new
    with runtime.db.read() as conn:
        status = conn.execute(select(INBOX.c.status).where(INBOX.c.event_id == "evt-busy"))
        assert status.scalar_one() == "received"


# Each turn waits until all 40 are in flight at once, each holding its conversation: a pool
# too small for them would leave some unable to begin, and the turns would never end.
WAITING_BOT = """
import asyncio

TURNS = 40
begun = 0
ALL_IN_FLIGHT = asyncio.Event()

async def on_message(ctx):
    global begun
    begun += 1
    if begun == TURNS:
        ALL_IN_FLIGHT.set()
    await ALL_IN_FLIGHT.wait()
    n = await ctx.user.memory.increment("visits")
    await ctx.say(f"visit {n}")
"""


async def test_max_turns_in_flight_at_once_all_get_their_connections(db_url: str, tmp_path: Path):
    """On PostgreSQL each turn in flight holds a connection for its conversation lock, and
    its own statements need more: the pool is sized from ``[workers] max_turns``."""
    import asyncio

    from mnemobot.runtime.app.build import build_runtime
    from mnemobot.runtime.settings import load_settings
    from mnemobot.runtime.storage.tables import INBOX

    write_bot(tmp_path, "waiter", bot_py=WAITING_BOT)
    turns = 40
    settings = load_settings(
        None,
        database={"url": db_url},
        bots={"dir": str(tmp_path)},
        workers={"max_turns": turns},
    )
    async with build_runtime(settings) as runtime:
        runtime.bind_channel("console:waiter", bot="waiter")
        people = [
            InboundMessage(
                channel="console:waiter",
                channel_kind="console",
                external_user_id=f"person-{i}",
                chat_id=f"person-{i}",
                text="hi",
                event_id=f"evt-{i}",
            )
            for i in range(turns)
        ]
        results = await asyncio.wait_for(
            asyncio.gather(*(runtime.handle(msg) for msg in people)), timeout=60
        )

        assert [[r.text for r in result.replies] for result in results] == [["visit 1"]] * turns
        with runtime.db.read() as conn:
            statuses = conn.execute(select(INBOX.c.status)).scalars().all()
        assert statuses == ["done"] * turns
