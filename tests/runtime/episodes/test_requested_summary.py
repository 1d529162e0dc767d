"""A session summary on demand (issue 16): with ``episodic-memory-auto-summarize,false`` a
bot asks for one (``await ctx.session.summarize()``, BASIC ``SUMMARIZE SESSION``) and the
episode worker writes it when the session ends, as it writes the automatic ones. litellm for
real against FakeOpenAI; SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from mnemobot.runtime.clock import ManualClock
from tests.fakes.openai_api import FakeOpenAI
from tests.runtime.episodes.test_worker import (
    episodes_of,
    jobs_of,
    llm_for,
    model,
    summary_json,
    worker_for,
)
from tests.support import Chat, write_bot

__all__ = ["model"]  # the FakeOpenAI fixture, shared with test_worker

NO_AUTO = "name,value\nepisodic-memory-auto-summarize,false\n"

ASKING_BOT = """
async def on_message(ctx):
    if ctx.text == "summarize please":
        await ctx.session.summarize()
        await ctx.session.summarize()  # asking twice still makes one episode
        await ctx.say("I will remember this conversation")
    else:
        await ctx.say("noted")
"""

BASIC_BOT = """
TALK "What went wrong?"
HEAR problem
SUMMARIZE SESSION
TALK "Thanks, I will remember: " + problem
"""


async def test_without_a_request_no_episode_with_one_the_session_is_summarised(
    make_runtime, tmp_path: Path, clock: ManualClock, model: FakeOpenAI
) -> None:
    write_bot(tmp_path, "helper", bot_py=ASKING_BOT, config=NO_AUTO)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="helper", user="ana")
    worker = worker_for(runtime, clock, llm_for(model))

    # auto-summarize is off: a session that asked for nothing is skipped, as before
    await chat.say("hi")
    await chat.say("/end")
    assert (await worker.run_once())["skipped"] == 1
    assert jobs_of(runtime)[0].last_error == "episodic-memory-auto-summarize is false"

    # one message (below the threshold of 4), but the bot asked: summarised at its end
    assert await chat.say("summarize please") == ["helper: I will remember this conversation"]
    assert await worker.run_once() == {
        "claimed": 0,
        "done": 0,
        "skipped": 0,
        "failed": 0,
        "delayed": 0,
        "lost": 0,
    }  # nothing before the session ends
    await chat.say("/end")
    model.answer(summary_json("Ana asked for her conversation to be remembered"))
    assert (await worker.run_once())["done"] == 1

    [episode] = episodes_of(runtime)
    job = jobs_of(runtime)[-1]
    assert job.payload["requested"] is True and job.status == "done"
    assert episode.conversation_id == job.payload["session_id"]
    assert episode.user_id == await chat.user_id()
    assert episode.summary == "Ana asked for her conversation to be remembered"
    [request] = model.requests("chat.completions")
    assert request.params["model"] == "fast-model"
    assert "summarize please" in request.params["messages"][1]["content"]


async def test_basic_summarize_session(
    make_runtime, tmp_path: Path, clock: ManualClock, model: FakeOpenAI
) -> None:
    write_bot(tmp_path, "desk", start_bas=BASIC_BOT, config=NO_AUTO)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="desk", user="ana")

    await chat.say("hello")
    assert await chat.say("the printer jams") == ["desk: Thanks, I will remember: the printer jams"]
    await chat.say("/end")
    model.answer(summary_json("Printer jams"))
    assert (await worker_for(runtime, clock, llm_for(model)).run_once())["done"] == 1

    [episode] = episodes_of(runtime)
    assert (episode.bot, episode.summary) == ("desk", "Printer jams")


async def test_a_failed_turn_asks_for_nothing(
    make_runtime, tmp_path: Path, clock: ManualClock, model: FakeOpenAI
) -> None:
    failing = """
async def on_message(ctx):
    await ctx.session.summarize()
    raise RuntimeError("bug after the request")
"""
    write_bot(tmp_path, "buggy", bot_py=failing, config=NO_AUTO)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="buggy", user="ana")

    await chat.say("hi")
    await chat.say("/end")

    assert (await worker_for(runtime, clock, llm_for(model)).run_once())["skipped"] == 1
    assert "requested" not in jobs_of(runtime)[0].payload
    assert model.chats() == []


async def test_a_bot_without_episodic_memory_is_told_so(make_runtime, tmp_path: Path) -> None:
    bot = """
async def on_message(ctx):
    try:
        await ctx.session.summarize()
    except Exception as exc:
        await ctx.say(f"{type(exc).__name__}: {exc}")
"""
    write_bot(tmp_path, "forgetful", bot_py=bot, config="episodic-memory-enabled,false\n")
    runtime = await make_runtime(bots_dir=tmp_path)

    assert await Chat(runtime, bot="forgetful", user="ana").say("hi") == [
        "forgetful: MemoryDisabled: episodic memory is off for this bot "
        "(episodic-memory-enabled,false in config.csv): no session summary can be written"
    ]
