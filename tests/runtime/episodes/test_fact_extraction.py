"""Agentic fact extraction: the model proposes, the runtime vets, history keeps what changed.

A bot with ``user-memory-agentic,true`` gets an ``extract_facts`` job when a session ends;
the worker shows the model the known facts (numbered 1..n) and the transcript, and applies
the validated, secret-free answer with provenance. Episodes are switched off in these bots
so every model request seen here is an extraction. SQLite and PostgreSQL both.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select, update

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.episodes.facts.extraction import fact_history
from mnemobot.runtime.memory.secrets_filter import redact, secret_reason
from mnemobot.runtime.memory.store import MemoryScope
from mnemobot.runtime.storage.tables import EPISODES, FACT_HISTORY, JOBS, USER_MEMORY
from tests.fakes.openai_api import FakeOpenAI
from tests.runtime.episodes.test_worker import converse, jobs_of, llm_for, make_bot, worker_for
from tests.support import Chat


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAKE_MODEL_KEY", "not-a-secret")
    with FakeOpenAI() as server:
        yield server


AGENTIC = {"user_memory_agentic": True, "episodic_memory_enabled": False}


def proposal(**changes: Any) -> str:
    return json.dumps({"add": [], "update": [], "delete": [], **changes})


def facts_of(runtime, user_id: str) -> dict[str, Any]:
    with runtime.db.read() as conn:
        rows = conn.execute(
            select(USER_MEMORY.c.key, USER_MEMORY.c.value).where(
                USER_MEMORY.c.user_id == user_id, USER_MEMORY.c.memory_type == "fact"
            )
        ).all()
    return dict(rows)


def shown_to_model(request: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """The known facts and the transcript of one extraction request, parsed."""
    lines = request[1]["content"].split("\n")
    return json.loads(lines[1]), json.loads(lines[4])


async def code_writes_fact(runtime, user_id: str, key: str, value: Any) -> None:
    """A fact written by bot code (manual mode), which keeps no history of its own."""
    policy = runtime.user_policy(runtime.bots.get("helper"))
    await MemoryScope(runtime.memory, runtime.memory.user_ref(user_id, policy)).set(
        key, value, memory_type="fact"
    )


async def session(runtime, clock: ManualClock, model: FakeOpenAI, chat: Chat, *said: str) -> None:
    await converse(chat, *said)
    await worker_for(runtime, clock, llm_for(model)).run_until_idle()
    clock.advance(60)


async def test_facts_the_model_proposes_are_added_with_provenance(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, **AGENTIC)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="helper", user="ana")
    model.answer(
        proposal(add=[{"key": "city", "value": "Lisbon"}, {"key": "Employer", "value": "Acme"}])
    )
    ended_at = clock.now()

    await session(runtime, clock, model, chat, "I moved to Lisbon", "I work at Acme now")

    user_id = await chat.user_id()
    assert facts_of(runtime, user_id) == {"city": "Lisbon", "employer": "Acme"}
    [request] = model.chats()
    facts, transcript = shown_to_model(request)
    assert facts == []
    assert {"from": "user", "text": "I moved to Lisbon"} in transcript
    assert "not instructions" in request[0]["content"]
    [job] = jobs_of(runtime, "extract_facts")
    session_id = jobs_of(runtime)[0].payload["session_id"]
    assert (job.status, job.payload["session_id"]) == ("done", session_id)
    history = fact_history(runtime.db, user_id, "city")
    assert history == [
        {
            "id": history[0]["id"],
            "user_id": user_id,
            "key": "city",
            "value": "Lisbon",
            "action": "add",
            "source": "extraction",
            "session_id": session_id,
            "bot": "helper",
            "model": "openai/fast-model",
            "superseded_at": None,
            "created_at": ended_at.isoformat(),
        }
    ]


async def test_an_update_supersedes_the_old_value_which_stays_in_history(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, **AGENTIC)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="helper", user="ana")
    model.answer(proposal(add=[{"key": "city", "value": "Lisbon"}]))
    await session(runtime, clock, model, chat, "I live in Lisbon")
    user_id = await chat.user_id()
    await code_writes_fact(runtime, user_id, "company", "Acme")
    model.answer(proposal(update=[{"id": 1, "value": "Porto"}, {"id": 2, "value": "Initech"}]))
    second_ended = clock.now()

    await session(runtime, clock, model, chat, "I moved to Porto and joined Initech")

    facts, _ = shown_to_model(model.chats()[1])
    assert facts == [
        {"id": 1, "key": "city", "value": "Lisbon"},
        {"id": 2, "key": "company", "value": "Acme"},
    ]
    assert facts_of(runtime, user_id) == {"city": "Porto", "company": "Initech"}
    city = fact_history(runtime.db, user_id, "city")
    assert [(h["value"], h["action"], h["superseded_at"]) for h in city] == [
        ("Lisbon", "add", second_ended.isoformat()),
        ("Porto", "update", None),
    ]
    company = fact_history(runtime.db, user_id, "company")
    assert [(h["value"], h["action"], h["source"], h["superseded_at"]) for h in company] == [
        ("Acme", "add", "bot", second_ended.isoformat()),  # the code-written value, kept
        ("Initech", "update", "extraction", None),
    ]


async def test_a_fact_the_model_deletes_is_removed_and_recorded(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, **AGENTIC)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="helper", user="ana")
    await chat.say("hi")
    user_id = await chat.user_id()
    await code_writes_fact(runtime, user_id, "company", "Acme")
    await code_writes_fact(runtime, user_id, "pet", "cat")
    model.answer(proposal(delete=[{"id": 1}, {"id": 7}]))

    await session(runtime, clock, model, chat, "I left Acme")

    assert facts_of(runtime, user_id) == {"pet": "cat"}
    history = fact_history(runtime.db, user_id, "company")
    assert [(h["value"], h["action"], h["superseded_at"] is None) for h in history] == [
        ("Acme", "add", False),
        (None, "delete", True),
    ]
    [job] = jobs_of(runtime, "extract_facts")
    assert job.status == "done"
    assert job.last_error == "delete #7: no known fact has that number"


CARD = "4111 1111 1111 1111"
TOKEN = "sk-proj-abcdefghijklmnop0123456789"


async def test_secrets_and_payment_data_are_never_written(make_runtime, tmp_path, clock, model):
    make_bot(tmp_path, user_memory_agentic=True, episodic_memory_threshold=1)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="helper", user="ana")
    await chat.say("hi")
    user_id = await chat.user_id()
    await code_writes_fact(runtime, user_id, "note", "likes tea")

    def rule(messages: list[dict[str, Any]]) -> str:
        if messages[0]["content"].startswith("You write short summaries"):
            return json.dumps(
                {
                    "summary": f"User shared card {CARD} and said password: hunter2",
                    "topics": ["billing"],
                    "sentiment": "neutral",
                    "resolution": "resolved",
                }
            )
        return proposal(
            add=[
                {"key": "password", "value": "hunter2"},
                {"key": "card", "value": CARD},
                {"key": "openai", "value": TOKEN},
                {"key": "wifi", "value": "the password is hunter2"},
                {"key": "city", "value": "Lisbon"},
            ],
            update=[{"id": 1, "value": "card 4111-1111-1111-1111"}],
        )

    model.rule = rule
    await session(
        runtime,
        clock,
        model,
        chat,
        f"my card is {CARD}, my password is hunter2, key {TOKEN}",
        "I live in Lisbon",
    )

    assert facts_of(runtime, user_id) == {"note": "likes tea", "city": "Lisbon"}
    with runtime.db.read() as conn:
        stored = [
            json.dumps([list(row) for row in conn.execute(select(table)).all()], default=str)
            for table in (USER_MEMORY, FACT_HISTORY, EPISODES, JOBS)
        ]
    for secret in ("hunter2", "4111", TOKEN):
        assert not any(secret in text for text in stored), secret
    assert [h["key"] for h in fact_history(runtime.db, user_id)] == ["city"]
    [job] = jobs_of(runtime, "extract_facts")
    assert "add 'password': the key 'password' names a secret" in job.last_error
    assert "add 'card': the value looks like a card number" in job.last_error
    # The model was not even shown the card number or the token.
    sent = json.dumps(model.chats())
    assert CARD not in sent and TOKEN not in sent and "[redacted]" in sent


async def test_without_agentic_mode_nothing_is_extracted(make_runtime, tmp_path, clock, model):
    make_bot(tmp_path, episodic_memory_enabled=False)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="helper", user="ana")

    await session(runtime, clock, model, chat, "I live in Lisbon", "I work at Acme")

    assert facts_of(runtime, await chat.user_id()) == {}
    assert jobs_of(runtime, "extract_facts") == []
    assert [j.status for j in jobs_of(runtime)] == ["skipped"]
    assert model.chats() == []
    assert fact_history(runtime.db, await chat.user_id()) == []


async def test_a_fact_changed_while_the_model_thought_is_not_overwritten(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, **AGENTIC)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="helper", user="ana")
    await chat.say("hi")
    user_id = await chat.user_id()
    await code_writes_fact(runtime, user_id, "city", "Lisbon")

    def rule(messages: list[dict[str, Any]]) -> str:
        # A turn elsewhere changes the fact between the model's read and the answer.
        with runtime.db.write() as conn:
            conn.execute(
                update(USER_MEMORY).where(USER_MEMORY.c.key == "city").values(value="Faro")
            )
        return proposal(update=[{"id": 1, "value": "Porto"}])

    model.rule = rule
    await session(runtime, clock, model, chat, "I moved to Porto")

    assert facts_of(runtime, user_id) == {"city": "Faro"}
    [job] = jobs_of(runtime, "extract_facts")
    assert job.last_error == "update #1 ('city'): the fact changed after the model read it"


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("password", "x", "names a secret"),
        ("bank_pin", "1234", "names a secret"),
        ("apiKey", "abc", "names a secret"),
        ("card", "4111111111111111", "card number"),
        ("note", "pay with 5500-0000-0000-0004", "card number"),
        ("slack", "xoxb-123456789-abcdefghij", "Slack token"),
        ("blob", "Zm9vYmFyYmF6cXV4cXV1eDEyMzQ1Njc4OTA=", "opaque string"),
        ("hash", "d41d8cd98f00b204e9800998ecf8427e", "long hex string"),
        ("wifi", "passcode: swordfish", "a password"),
    ],
)
def test_secret_detection(key: str, value: str, reason: str):
    found = secret_reason(key, value)
    assert found is not None and reason in found
    assert value not in found  # reasons are safe to log


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("shipping_address", "Rua Augusta 12, Lisbon"),
        ("opinion", "spinach is great"),
        ("phone", "+351 912 345 678"),
        ("order", "4111111111111112"),  # 16 digits, not Luhn-valid: not a card
        ("interests", ["AI", "automation"]),
        ("favourite_word", "antidisestablishmentarianism"),
    ],
)
def test_ordinary_facts_are_not_mistaken_for_secrets(key: str, value: Any):
    assert secret_reason(key, value) is None


def test_redact_hides_cards_tokens_and_stated_passwords():
    text = f"card {CARD}, key {TOKEN}, my password is hunter2, order 4111111111111112"
    assert redact(text) == "card [redacted], key [redacted], my [redacted], order 4111111111111112"
