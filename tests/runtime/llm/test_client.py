"""The LLM layer through real litellm against an OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from mnemobot.runtime.errors import LLMError
from mnemobot.runtime.llm.client import NO_MODEL_HELP, LiteLLM
from mnemobot.runtime.pipeline.runtime import LLM_DOWN_APOLOGY
from mnemobot.runtime.settings import LLMSettings
from mnemobot.runtime.storage.tables import LLM_USAGE
from tests.fakes.openai_api import FakeOpenAI
from tests.support import Chat, write_bot


async def no_wait(_seconds: float) -> None:
    return None


@pytest.fixture
def model_server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAKE_MODEL_KEY", "not-a-secret")
    with FakeOpenAI() as server:
        yield server


def llm_for(server: FakeOpenAI, on_usage=None, **settings) -> LiteLLM:
    return LiteLLM(
        LLMSettings(
            default="openai/fake-model",
            api_base=server.api_base,
            api_key_env="FAKE_MODEL_KEY",
            **settings,
        ),
        on_usage=on_usage,
        sleep=no_wait,
    )


LLM_BOT_CONFIG = 'name,value\nprompt,"You are the concierge. Be brief."\n'


async def test_a_bot_without_code_answers_with_its_model_from_the_persons_memory(
    make_runtime, tmp_path: Path, model_server: FakeOpenAI
):
    write_bot(
        tmp_path,
        "teacher",
        bot_py="""
            async def on_message(ctx):
                key, _, value = ctx.text.partition("=")
                await ctx.user.memory.set(key, value)
                await ctx.session.context.set("topic", "languages")
                await ctx.say("noted")
        """,
    )
    write_bot(tmp_path, "concierge", config=LLM_BOT_CONFIG)
    runtime = await make_runtime(
        bots_dir=tmp_path, make_llm=lambda on_usage: llm_for(model_server, on_usage=on_usage)
    )
    await Chat(runtime, bot="teacher", user="ana").say("language=pt-BR")
    await Chat(runtime, bot="teacher", user="bob").say("language=de")
    model_server.answer("Olá! Posso ajudar?")

    concierge = Chat(runtime, bot="concierge", user="ana")
    assert await concierge.say("hello") == ["concierge: Olá! Posso ajudar?"]

    [messages] = model_server.chats()
    system = messages[0]["content"]
    assert system.startswith("You are the concierge. Be brief.")
    assert '"language": "pt-BR"' in system
    assert '"de"' not in system  # nothing of another person
    assert messages[-1] == {"role": "user", "content": "hello"}
    request = model_server.requests("chat.completions")[0]
    assert request.params["model"] == "fake-model"
    assert request.headers["authorization"] == "Bearer not-a-secret"

    with runtime.db.read() as conn:
        usage = conn.execute(select(LLM_USAGE)).one()
    assert (usage.bot, usage.user_id, usage.purpose) == (
        "concierge",
        await concierge.user_id(),
        "answer",
    )
    assert (usage.prompt_tokens, usage.completion_tokens, usage.ok) == (10, 5, True)
    assert runtime.usage.totals(bot="concierge")["calls"] == 1


async def test_the_next_turn_sees_the_sessions_earlier_turns(make_runtime, tmp_path, model_server):
    write_bot(tmp_path, "concierge", config=LLM_BOT_CONFIG)
    runtime = await make_runtime(bots_dir=tmp_path, llm=llm_for(model_server))
    chat = Chat(runtime, bot="concierge", user="ana")
    model_server.answer("first answer", "second answer", "third answer")
    await chat.say("first question")
    await chat.say("second question")
    await chat.say("third question")  # the test's clock has not moved: their times are equal
    third = model_server.chats()[2]
    assert third[1:] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
        {"role": "assistant", "content": "second answer"},
        {"role": "user", "content": "third question"},
    ]


async def test_rate_limits_and_server_errors_are_retried(model_server):
    model_server.fail_next(429)
    model_server.fail_next(503)
    model_server.answer("finally")
    llm = llm_for(model_server, retries=2)
    assert await llm.complete([{"role": "user", "content": "hi"}]) == "finally"
    assert len(model_server.requests("chat.completions")) == 3


async def test_a_model_still_down_after_retries_is_an_llm_error(model_server):
    model_server.fail_next(500, times=3)
    llm = llm_for(model_server, retries=2)
    expected = (
        f"model openai/fake-model at {model_server.api_base}: HTTP 500: fake failure \\(3 tries\\)$"
    )
    with pytest.raises(LLMError, match=expected):
        await llm.complete([{"role": "user", "content": "hi"}])


async def test_the_fallback_alias_answers_when_the_default_keeps_failing(model_server, monkeypatch):
    with FakeOpenAI() as backup:
        backup.answer("from the backup model")
        model_server.fail_next(500, times=2)
        llm = LiteLLM(
            LLMSettings(
                default="openai/main-model",
                api_base=model_server.api_base,
                api_key_env="FAKE_MODEL_KEY",
                retries=1,
                fallback="backup",
                backup={"model": "openai/small-model", "api_base": backup.api_base},
            ),
            sleep=no_wait,
        )
        assert await llm.complete([{"role": "user", "content": "hi"}]) == "from the backup model"
        assert backup.requests("chat.completions")[0].params["model"] == "small-model"


async def test_when_the_model_is_down_the_person_is_told_and_nothing_is_saved(
    make_runtime, tmp_path, model_server
):
    write_bot(
        tmp_path,
        "asker",
        bot_py="""
            async def on_message(ctx):
                await ctx.user.memory.set("asked", ctx.text)
                await ctx.say(await ctx.llm(ctx.text))
        """,
    )
    model_server.fail_next(500, times=3)
    runtime = await make_runtime(bots_dir=tmp_path, llm=llm_for(model_server, retries=2))
    chat = Chat(runtime, bot="asker", user="ana")
    assert await chat.say("hello?") == [f"asker: {LLM_DOWN_APOLOGY}"]
    ref = runtime.memory.user_ref(
        await chat.user_id(), runtime.user_policy(runtime.bots.get("asker"))
    )
    assert runtime.memory.read_rows(ref) == []


async def test_without_a_model_the_answer_says_so_honestly(make_runtime, tmp_path):
    write_bot(tmp_path, "concierge", config=LLM_BOT_CONFIG)
    runtime = await make_runtime(bots_dir=tmp_path)
    assert await Chat(runtime, bot="concierge", user="ana").say("hello") == [
        f"concierge: {NO_MODEL_HELP}"
    ]


def test_aliases_resolve_to_models_and_servers():
    llm = LiteLLM(
        LLMSettings(
            default="openai/gpt-4o-mini",
            api_base="http://127.0.0.1:9/v1",
            local={"model": "openai/llama3", "api_base": "http://127.0.0.1:11434/v1", "timeout": 5},
            cheap="openai/gpt-4.1-nano",
        )
    )
    assert llm.resolve("fast").model == "openai/gpt-4o-mini"  # fast falls back to default
    local = llm.resolve("local")
    assert (local.model, local.api_base, local.timeout) == (
        "openai/llama3",
        "http://127.0.0.1:11434/v1",
        5.0,
    )
    assert llm.resolve("cheap").api_base == "http://127.0.0.1:9/v1"
    assert llm.resolve("anthropic/claude-3-haiku").model == "anthropic/claude-3-haiku"
    assert LiteLLM(LLMSettings()).resolve("default") is None


def test_warming_up_imports_litellm_and_counts_offline_before_any_turn():
    """`mnemobot run` warms up before it listens, so no webhook waits on the import."""
    llm = LiteLLM(LLMSettings(default="openai/gpt-4o-mini", api_base="http://127.0.0.1:9/v1"))
    assert llm._litellm is None  # nothing imported by constructing it (fast CLI start)
    llm.warm_up()  # the suite refuses any socket off loopback: counting stays local
    assert llm._litellm is not None
    assert llm.count_tokens("hello there") == llm._litellm.token_counter(
        model="gpt-4o-mini", text="hello there"
    )


@pytest.mark.parametrize("length", [0, 1, 200, 1024, 1025, 5000])
@pytest.mark.parametrize(
    ("configured", "named"),
    [
        ("openai/gpt-4o-mini", "gpt-4o-mini"),  # o200k_base
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("azure/gpt-4o", "gpt-4o"),
        ("anthropic/claude-3-haiku-20240307", "claude-3-haiku-20240307"),  # cl100k_base
    ],
)
def test_token_counts_are_litellms_token_counter_for_the_model_its_provider_names(
    length: int, configured: str, named: str
) -> None:
    """The count is token_counter's for the model as its provider names it, for short and
    long texts, accents, emoji and special-token text included (without token_counter's
    cost: its encoding is called directly, in its chunks)."""
    llm = LiteLLM(LLMSettings(default=configured))
    sample = "São Paulo, 12,345.67 🙂 <|endoftext|> naïve 日本語 words\n"
    text = (sample * (length // len(sample) + 1))[:length]
    llm.warm_up()
    assert llm.count_tokens(text) == llm._litellm.token_counter(model=named, text=text)


def test_a_provider_prefix_does_not_count_a_gpt_4o_prompt_with_gpt_3_5s_tokenizer() -> None:
    """token_counter given "openai/gpt-4o-mini" falls back to cl100k_base, which counts the
    example bots' Portuguese ~20% longer than gpt-4o-mini's own o200k_base."""
    llm = LiteLLM(LLMSettings(default="openai/gpt-4o-mini"))
    llm.warm_up()
    text = (
        "Olá, Ana! Sou o bot de suporte. Como posso ajudar? Diga 'suporte' se algo não funcionar."
    )

    as_gpt_3_5 = llm._litellm.token_counter(model="openai/gpt-4o-mini", text=text)

    assert llm.count_tokens(text) == llm._litellm.token_counter(model="gpt-4o-mini", text=text)
    assert llm.count_tokens(text) < 0.9 * as_gpt_3_5
