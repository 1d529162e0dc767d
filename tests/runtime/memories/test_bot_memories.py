"""``ctx.user.memories`` in real turns: the per-person limit answers the memory-full apology
and keeps nothing of the turn; memories written in one turn are the next turn's, for every
bot; off mode refuses. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.pipeline.runtime import MEMORY_FULL_APOLOGY
from tests.support import Chat, write_bot

NOTES_BOT = """
async def on_message(ctx):
    if ctx.text.startswith("remember "):
        await ctx.user.memory.set("last_note", ctx.text)
        await ctx.user.memories.add(ctx.text.removeprefix("remember "))
        await ctx.say("noted")
    else:
        await ctx.say(" | ".join(m.text for m in await ctx.user.memories.list()) or "nothing")
"""


async def test_the_limit_in_a_turn_is_the_memory_full_apology_and_keeps_nothing(
    make_runtime, tmp_path: Path, clock: ManualClock
) -> None:
    write_bot(tmp_path, "notes", bot_py=NOTES_BOT, config="name,value\nuser-memory-max-keys,2\n")
    write_bot(tmp_path, "other", bot_py=NOTES_BOT)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="notes", user="ana")

    assert await chat.say("remember one") == ["notes: noted"]
    clock.advance(1)  # oldest first: one, then two
    assert await chat.say("remember two") == ["notes: noted"]
    assert await chat.say("remember three") == [f"notes: {MEMORY_FULL_APOLOGY}"]
    assert await chat.say("list") == ["notes: one | two"]
    assert await Chat(runtime, bot="other", user="ana").say("list") == ["other: one | two"]
    user_id = await chat.user_id()
    key_value = runtime.memory.read_rows(
        runtime.memory.user_ref(user_id, runtime.user_policy(runtime.bots.get("notes")))
    )
    assert [r.value for r in key_value] == ["remember two"]  # the failed turn's write went too


async def test_off_mode_refuses_and_the_turn_apologises(make_runtime, tmp_path: Path) -> None:
    write_bot(tmp_path, "notes", bot_py=NOTES_BOT, config="name,value\nuser-memories,off\n")
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="notes", user="ana")

    [reply] = await chat.say("remember one")
    assert reply.startswith("notes: Sorry, something went wrong")
    assert runtime.memories.list(await chat.user_id()) == []
