"""Botpress's ``temp`` scope: ``ctx.temp`` and BASIC's ``SET TEMP``/``GET TEMP``, kept for one
dialog or flow and cleared when it ends, when the session ends, and at a transfer (the
transfer through ``mnemobot chat`` is in tests/system/scenarios/test_temp_scope.py).
Stored as session_memory rows of kind ``temp``, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.ops.admin import Admin
from mnemobot.runtime.pipeline.runtime import Runtime
from mnemobot.runtime.storage.tables import SESSION_MEMORY
from tests.support import Chat, write_bot

FLOW_BOT = """
async def on_message(ctx):
    words = ctx.text.split()
    if words[0] == "set":
        await ctx.temp.set(words[1], words[2])
        await ctx.say("ok")
    elif words[0] == "get":
        await ctx.say(f"{words[1]} = {await ctx.temp.get(words[1], 'none')}")
    elif words[0] == "delete":
        await ctx.temp.delete(words[1])
        await ctx.say("deleted")
    elif words[0] == "all":
        await ctx.say(f"temp {await ctx.temp.items()}, session {await ctx.session.items()}")
    elif words[0] == "clear":
        await ctx.temp.clear()
        await ctx.say("cleared")
    elif words[0] == "bye":
        await ctx.temp.set("late", "1")
        ctx.end_session()
        await ctx.say("bye")
"""

DIALOG = """
SET TEMP "step", "asked"
TALK "temp step " + GET TEMP "step"
HEAR answer
TALK "still " + GET TEMP("step") + ", you said " + answer
"""


def temp_rows(runtime: Runtime) -> dict[str, Any]:
    """Every temp row in the database, key to value (whatever the session)."""
    with runtime.db.read() as conn:
        rows = conn.execute(
            select(SESSION_MEMORY.c.key, SESSION_MEMORY.c.value).where(
                SESSION_MEMORY.c.kind == "temp"
            )
        ).all()
    return {row.key: row.value for row in rows}


async def test_ctx_temp_is_a_scope_kept_across_turns_until_cleared(
    make_runtime: Callable[..., Any], tmp_path: Path
) -> None:
    write_bot(tmp_path, "flow-bot", bot_py=FLOW_BOT)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="flow-bot", user="ana")

    assert await chat.say("set order 42") == ["flow-bot: ok"]
    await chat.say("set size L")
    assert await chat.say("get order") == ["flow-bot: order = 42"]
    assert await chat.say("all") == ["flow-bot: temp {'order': '42', 'size': 'L'}, session {}"]
    assert temp_rows(runtime) == {"order": "42", "size": "L"}
    await chat.say("delete size")
    assert temp_rows(runtime) == {"order": "42"}

    assert await chat.say("clear") == ["flow-bot: cleared"]
    assert await chat.say("get order") == ["flow-bot: order = none"]
    assert temp_rows(runtime) == {}


async def test_temp_is_cleared_when_the_session_ends(
    make_runtime: Callable[..., Any], tmp_path: Path, clock: ManualClock
) -> None:
    write_bot(tmp_path, "flow-bot", bot_py=FLOW_BOT)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="flow-bot", user="ana")

    await chat.say("set order 42")
    await chat.say("/end")
    assert temp_rows(runtime) == {}
    assert await chat.say("get order") == ["flow-bot: order = none"]

    # written in the turn that ends the session: gone with it
    assert await chat.say("bye") == ["flow-bot: bye"]
    assert temp_rows(runtime) == {}

    # a session that times out takes its temp memory with it
    await chat.say("set order 43")
    clock.advance(runtime.settings.sessions.timeout + 1)
    assert await chat.say("get order") == ["flow-bot: order = none"]
    assert temp_rows(runtime) == {}


async def test_basic_temp_lasts_while_the_dialog_waits_and_shows_in_the_inspector(
    make_runtime: Callable[..., Any], tmp_path: Path
) -> None:
    write_bot(tmp_path, "ask-bot", start_bas=DIALOG)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="ask-bot", user="ana")
    admin = Admin(runtime, runtime.audit)

    assert await chat.say("hi") == ["ask-bot: temp step asked"]
    detail = admin.people.user_detail(await chat.user_id())
    [session] = detail["sessions"]
    assert [(t["key"], t["value"]) for t in session["temp"]] == [("step", "asked")]
    assert session["memory"] == [] and session["context"] == []

    # the dialog ends with this answer: its temp memory goes with it
    assert await chat.say("blue") == ["ask-bot: still asked, you said blue"]
    assert temp_rows(runtime) == {}
    [session] = admin.people.user_detail(await chat.user_id())["sessions"]
    assert session["temp"] == []


async def test_a_dialog_restarted_after_its_program_changed_starts_without_temp(
    make_runtime: Callable[..., Any], tmp_path: Path
) -> None:
    write_bot(tmp_path, "ask-bot", start_bas=DIALOG)
    before = await make_runtime(bots_dir=tmp_path)
    assert await Chat(before, bot="ask-bot", user="ana").say("hi") == ["ask-bot: temp step asked"]
    await before.stop()

    # start.bas changes while the dialog waits: its saved state no longer fits, it restarts
    write_bot(tmp_path, "ask-bot", start_bas='TALK "new, temp [" + GET TEMP "step" + "]"\n')
    after = await make_runtime(bots_dir=tmp_path)

    assert await Chat(after, bot="ask-bot", user="ana").say("blue") == ["ask-bot: new, temp []"]
    assert temp_rows(after) == {}
