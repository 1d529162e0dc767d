"""Sessions: opened by the first message, ended by inactivity or on request."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.storage.tables import JOBS, SESSION_MEMORY, SESSIONS
from tests.support import Chat, write_bot

STEP_BOT = """
    async def on_message(ctx):
        seen = await ctx.session.get("seen", 0)
        await ctx.session.set("seen", seen + 1)
        await ctx.session.context.set("topic", ctx.text)
        if ctx.text == "bye":
            ctx.end_session()
        await ctx.say(f"new={ctx.session.opened_now} seen={seen}")
"""


def sessions(runtime):
    with runtime.db.read() as conn:
        return conn.execute(select(SESSIONS).order_by(SESSIONS.c.started_at)).all()


def jobs(runtime):
    with runtime.db.read() as conn:
        return conn.execute(select(JOBS)).all()


async def test_session_memory_lasts_until_the_inactivity_timeout(
    make_runtime, tmp_path: Path, clock: ManualClock
):
    write_bot(tmp_path, "steps", bot_py=STEP_BOT)
    runtime = await make_runtime(bots_dir=tmp_path, sessions={"timeout": 1800})
    chat = Chat(runtime, bot="steps", user="ana")

    assert await chat.say("a") == ["steps: new=True seen=0"]
    clock.advance(1799)
    assert await chat.say("b") == ["steps: new=False seen=1"]
    clock.advance(1800)
    assert await chat.say("c") == ["steps: new=True seen=0"]  # cleared with the old session

    first, second = sessions(runtime)
    assert first.end_reason == "timeout" and first.ended_at is not None
    assert second.ended_at is None
    [job] = jobs(runtime)
    assert job.kind == "session_ended"
    assert job.payload["session_id"] == first.id
    assert job.payload["user_messages"] == 2
    with runtime.db.read() as conn:
        rows = conn.execute(select(SESSION_MEMORY.c.session_id)).scalars().all()
    assert set(rows) == {second.id}


async def test_an_explicit_end_clears_the_session_and_records_the_ending(
    make_runtime, tmp_path: Path
):
    write_bot(tmp_path, "steps", bot_py=STEP_BOT)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="steps", user="ana")
    await chat.say("a")
    assert await chat.say("bye") == ["steps: new=False seen=1"]
    assert await chat.say("again") == ["steps: new=True seen=0"]
    assert await chat.say("/end") == ["steps: Conversation ended. Say anything to start a new one."]
    assert [s.end_reason for s in sessions(runtime)] == ["explicit", "explicit"]
    assert len(jobs(runtime)) == 2


async def test_the_janitor_ends_idle_sessions_and_deletes_expired_memory(
    make_runtime, tmp_path: Path, clock: ManualClock
):
    from mnemobot.runtime.memory.policy import UserMemoryPolicy
    from mnemobot.runtime.memory.store import MemoryScope
    from mnemobot.runtime.storage.tables import USER_MEMORY

    write_bot(tmp_path, "steps", bot_py=STEP_BOT)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="steps", user="ana")
    await chat.say("a")
    user_id = await chat.user_id()
    scope = MemoryScope(runtime.memory, runtime.memory.user_ref(user_id, UserMemoryPolicy()))
    await scope.set("temp", 1, ttl=60)
    await scope.set("kept", 2)

    assert runtime.janitor.sweep_all()["sessions_ended"] == 0
    clock.advance(1801)
    swept = runtime.janitor.sweep_all()
    assert swept["sessions_ended"] == 1
    assert swept["user_memory_expired"] == 1
    assert [s.end_reason for s in sessions(runtime)] == ["timeout"]
    assert len(jobs(runtime)) == 1
    with runtime.db.read() as conn:
        assert conn.execute(select(USER_MEMORY.c.key)).scalars().all() == ["kept"]
    assert runtime.janitor.sweep_all() == {
        "sessions_ended": 0,
        "user_memory_expired": 0,
        "link_codes": 0,
        "link_attempts": 0,
        "episodes": 0,
        "inbox_payloads": 0,
        "inbox_rows": 0,
        "outbox_sent": 0,
        "turns": 0,
        "user_memories": 0,
    }


async def test_a_transfer_lasts_for_the_session_then_the_entry_bot_is_back(
    make_runtime, clock: ManualClock
):
    runtime = await make_runtime()
    chat = Chat(runtime, bot="sales-bot", user="dora")
    for line in ("hi", "Dora", "English", "help, support please"):
        await chat.say(line)
    assert (await chat.say("still there?"))[0].startswith("support-bot:")
    clock.advance(1801)
    assert (await chat.say("hello again"))[0].startswith("sales-bot:")
