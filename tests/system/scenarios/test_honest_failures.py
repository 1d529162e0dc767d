"""Bots that fail honestly: what the person, the operator (the log) and the database see.

A failed turn leaves the conversation as if its message never came (a dialog whose opening
turn failed starts again at the next message); BASIC bots get the same specific apology as
Python bots; a failure that says its cause in one line is logged in one line; a bot with
its user memory off still answers with its model, from a prompt without user memory.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from sqlalchemy import func, select

from mnemobot.runtime.errors import LLMError
from mnemobot.runtime.llm.client import NO_MODEL_HELP, LiteLLM
from mnemobot.runtime.pipeline.runtime import APOLOGY, LLM_DOWN_APOLOGY, MEMORY_FULL_APOLOGY
from mnemobot.runtime.settings import LLMSettings
from mnemobot.runtime.storage.tables import INBOX, SESSIONS, USER_MEMORY
from tests.fakes import RecordedRequest, Reply
from tests.fakes.openai_api import FakeOpenAI
from tests.support import Chat, write_bot
from tests.system.scenarios.rates_server import RatesServer

RUNTIME_LOGGER = "mnemobot.runtime.pipeline.runtime"


class FlakyRates(RatesServer):
    """The rates API, answering 503 while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    def handle(self, request: RecordedRequest) -> Reply:
        if self.down:
            return Reply(503, {"error": "maintenance"})
        return super().handle(request)


def inbox_rows(runtime) -> list[tuple[str, str | None]]:
    with runtime.db.read() as conn:
        return [
            (status, error)
            for status, error in conn.execute(
                select(INBOX.c.status, INBOX.c.error).order_by(INBOX.c.seq)
            ).all()
        ]


def user_memory_count(runtime) -> int:
    with runtime.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(USER_MEMORY)).scalar_one())


def failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "bot turn failed" in r.getMessage()]


async def no_wait(_seconds: float) -> None:
    return None


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAKE_MODEL_KEY", "not-a-secret")
    with FakeOpenAI() as server:
        yield server


def model_for(server: FakeOpenAI, **settings: Any) -> LiteLLM:
    return LiteLLM(
        LLMSettings(
            default="openai/fake-model",
            api_base=server.api_base,
            api_key_env="FAKE_MODEL_KEY",
            **settings,
        ),
        sleep=no_wait,
    )


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- a failed turn is as if its message never came ------------------------------------------


async def test_a_dialog_whose_first_turn_failed_starts_again_at_the_next_message(
    make_runtime, tmp_path, caplog
):
    with FlakyRates() as rates:
        write_bot(
            tmp_path,
            "fx-bot",
            config="name,value\nhttp-allow-private,true\nhttp-allow-hosts,127.0.0.1\n",
            start_bas=f"""
                SET USER MEMORY "visited", "yes"
                rates = GET "{rates.url}"
                TALK "USD->BRL " + rates.rates.BRL + ". What's your name?"
                HEAR name
                TALK "Thanks, " + name + "!"
            """,
        )
        runtime = await make_runtime(bots_dir=tmp_path)
        chat = Chat(runtime, bot="fx-bot", user="ana")

        with caplog.at_level(logging.ERROR, logger=RUNTIME_LOGGER):
            assert await chat.say("hi") == [f"fx-bot: {APOLOGY}"]
        assert user_memory_count(runtime) == 0
        [(status, error)] = inbox_rows(runtime)
        assert status == "failed" and "HTTP 503" in error
        [record] = failures(caplog)
        assert "start.bas:2:" in record.getMessage()
        assert record.exc_info is None  # file:line:col says it all; no Python traceback

        rates.down = False
        assert await chat.say("hi again") == ["fx-bot: USD->BRL 5. What's your name?"]
        assert await chat.say("Ana") == ["fx-bot: Thanks, Ana!"]
        assert rates.hits == 1
    assert [status for status, _ in inbox_rows(runtime)] == ["failed", "done", "done"]
    assert user_memory_count(runtime) == 1
    with runtime.db.read() as conn:
        [(user_messages, ended)] = conn.execute(
            select(SESSIONS.c.user_messages, SESSIONS.c.ended_at)
        ).all()
    assert (user_messages, ended) == (2, None)  # one session; the failed turn not counted


async def test_a_python_bot_sees_a_new_session_again_after_its_first_turn_failed(
    make_runtime, tmp_path
):
    write_bot(
        tmp_path,
        "greeter",
        bot_py="""
            async def on_message(ctx):
                if ctx.text == "boom":
                    raise RuntimeError("the bot's own bug")
                await ctx.say(f"new={ctx.session.opened_now}")
        """,
    )
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="greeter", user="ana")
    assert await chat.say("boom") == [f"greeter: {APOLOGY}"]
    assert await chat.say("hello") == ["greeter: new=True"]
    assert await chat.say("again") == ["greeter: new=False"]
    assert await chat.say("boom") == [f"greeter: {APOLOGY}"]
    assert await chat.say("still there") == ["greeter: new=False"]  # mid-session: unchanged


# -- BASIC gets the specific apology, and one log line ----------------------------------------


async def test_basic_memory_full_gets_the_memory_full_apology(make_runtime, tmp_path, caplog):
    write_bot(
        tmp_path,
        "hoarder",
        config="name,value\nuser-memory-max-keys,1\n",
        start_bas='SET USER MEMORY "a", 1\nSET USER MEMORY "b", 2\nTALK "kept both"\n',
    )
    runtime = await make_runtime(bots_dir=tmp_path)
    with caplog.at_level(logging.ERROR, logger=RUNTIME_LOGGER):
        assert await Chat(runtime, bot="hoarder", user="ana").say("hi") == [
            f"hoarder: {MEMORY_FULL_APOLOGY}"
        ]
    assert user_memory_count(runtime) == 0
    [record] = failures(caplog)
    assert "start.bas:2:" in record.getMessage() and "MemoryFull" in record.getMessage()
    assert record.exc_info is None
    [(status, error)] = inbox_rows(runtime)
    assert status == "failed" and "user memory full" in error


async def test_basic_llm_without_a_model_says_no_model_is_configured(make_runtime, tmp_path):
    write_bot(tmp_path, "asker", start_bas='answer = LLM "hello?"\nTALK answer\n')
    runtime = await make_runtime(bots_dir=tmp_path)
    assert await Chat(runtime, bot="asker", user="ana").say("hi") == [f"asker: {NO_MODEL_HELP}"]


async def test_basic_llm_with_the_model_down_gets_the_model_down_apology(
    make_runtime, tmp_path, fake_model, caplog
):
    write_bot(tmp_path, "asker", start_bas='answer = LLM "hello?"\nTALK answer\n')
    fake_model.fail_next(500, times=2)
    runtime = await make_runtime(bots_dir=tmp_path, llm=model_for(fake_model, retries=1))
    with caplog.at_level(logging.ERROR, logger=RUNTIME_LOGGER):
        assert await Chat(runtime, bot="asker", user="ana").say("hi") == [
            f"asker: {LLM_DOWN_APOLOGY}"
        ]
    [record] = failures(caplog)
    assert record.exc_info is None
    assert f"model openai/fake-model at {fake_model.api_base}: HTTP 500" in record.getMessage()
    assert len(fake_model.requests("chat.completions")) == 2


async def test_a_bug_in_a_python_bot_still_logs_its_traceback(make_runtime, tmp_path, caplog):
    write_bot(
        tmp_path,
        "buggy",
        bot_py="""
            async def on_message(ctx):
                raise KeyError("missing")
        """,
    )
    runtime = await make_runtime(bots_dir=tmp_path)
    with caplog.at_level(logging.ERROR, logger=RUNTIME_LOGGER):
        assert await Chat(runtime, bot="buggy", user="ana").say("hi") == [f"buggy: {APOLOGY}"]
    [record] = failures(caplog)
    assert record.exc_info is not None and record.exc_info[0] is KeyError


# -- a model that cannot be reached -------------------------------------------------------------


async def test_a_model_nobody_listens_for_fails_at_once_in_one_line(
    make_runtime, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("FAKE_MODEL_KEY", "not-a-secret")
    base = f"http://127.0.0.1:{closed_port()}/v1"
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    llm = LiteLLM(
        LLMSettings(default="openai/gpt-4o-mini", api_base=base, api_key_env="FAKE_MODEL_KEY"),
        sleep=sleep,
    )
    write_bot(tmp_path, "concierge")
    runtime = await make_runtime(bots_dir=tmp_path, llm=llm)
    with caplog.at_level(logging.DEBUG, logger=RUNTIME_LOGGER):
        assert await Chat(runtime, bot="concierge", user="ana").say("hello") == [
            f"concierge: {LLM_DOWN_APOLOGY}"
        ]
    [record] = failures(caplog)
    assert f"model openai/gpt-4o-mini at {base}: connection refused" in record.getMessage()
    assert record.exc_info is None and "\n" not in record.getMessage()
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert debug  # the traceback is there for whoever turns debug on
    assert slept == []  # nothing listens: no retries
    [(status, error)] = inbox_rows(runtime)
    assert status == "failed" and "connection refused" in error


async def test_a_model_whose_key_variable_is_empty_says_so(monkeypatch, caplog):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAI() as server:
        implicit = LiteLLM(
            LLMSettings(default="openai/gpt-4o-mini", api_base=server.api_base), sleep=no_wait
        )
        with pytest.raises(LLMError) as caught:
            await implicit.complete([{"role": "user", "content": "hi"}])
        assert str(caught.value) == (
            f"model openai/gpt-4o-mini at {server.api_base}: OPENAI_API_KEY is not set"
        )
        named = LiteLLM(
            LLMSettings(
                default="openai/fake-model", api_base=server.api_base, api_key_env="MY_MODEL_KEY"
            ),
            sleep=no_wait,
        )
        with pytest.raises(LLMError, match="MY_MODEL_KEY is not set"):
            await named.complete([{"role": "user", "content": "hi"}])
        assert server.requests("chat.completions") == []

        with caplog.at_level(logging.WARNING, logger="mnemobot.runtime.llm.client"):
            implicit.warm_up()
        [warning] = [r.getMessage() for r in caplog.records if "not set" in r.getMessage()]
        assert "[llm] default" in warning and "OPENAI_API_KEY" in warning

        monkeypatch.setenv("OPENAI_API_KEY", "not-a-secret")
        assert implicit.key_warnings() == []


# -- user memory off ----------------------------------------------------------------------------


async def test_a_bot_with_user_memory_off_answers_from_a_prompt_without_user_memory(
    make_runtime, tmp_path, fake_model
):
    write_bot(
        tmp_path,
        "teacher",
        bot_py="""
            async def on_message(ctx):
                await ctx.user.facts.set("name", "Ana Lima")
                await ctx.say("noted")
        """,
    )
    off = 'name,value\nuser-memory-enabled,false\nprompt,"You are discreet."\n'
    write_bot(tmp_path, "plain", config=off)
    write_bot(
        tmp_path,
        "coder",
        config=off,
        bot_py="""
            async def on_message(ctx):
                await ctx.say("model says " + await ctx.llm(ctx.text))
        """,
    )
    write_bot(tmp_path, "basic", config=off, start_bas='x = LLM "Ana Lima?"\nTALK "got " + x\n')
    runtime = await make_runtime(bots_dir=tmp_path, llm=model_for(fake_model))
    assert await Chat(runtime, bot="teacher", user="ana").say("I am Ana Lima") == ["teacher: noted"]
    fake_model.answer("hello there", "fine", "sure")

    assert await Chat(runtime, bot="plain", user="ana").say("who am I, Ana Lima?") == [
        "plain: hello there"
    ]
    assert await Chat(runtime, bot="coder", user="ana").say("Ana Lima?") == [
        "coder: model says fine"
    ]
    assert await Chat(runtime, bot="basic", user="ana").say("hi") == ["basic: got sure"]

    chats = fake_model.chats()
    assert len(chats) == 3
    for messages in chats:
        system = messages[0]["content"]
        assert system.startswith("You are discreet.")
        assert "Ana Lima" not in system  # neither the fact nor what recall would find
    assert [status for status, _ in inbox_rows(runtime)] == ["done"] * 4
    assert user_memory_count(runtime) == 1  # the teacher's fact, nothing more
