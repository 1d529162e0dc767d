"""Agentic free-text memories: after a session the model edits the person's memories.

A bot with ``user-memories,agentic`` gets an ``edit_memories`` job when a session ends; the
worker shows the model the memories kept (numbered 1..n) and the transcript, and applies
the vetted answer, each change recording the session it came from. Episodes are off in these
bots so every model request seen here is a memories request. SQLite and PostgreSQL both.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.episodes.memories.prompts import EDITING_RULES
from mnemobot.runtime.storage.tables import SESSIONS, USER_MEMORIES
from tests.fakes.openai_api import FakeOpenAI
from tests.runtime.episodes.test_worker import converse, jobs_of, llm_for, make_bot, worker_for
from tests.support import Chat

AGENTIC = {"user_memories": "agentic", "episodic_memory_enabled": False}


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAKE_MODEL_KEY", "not-a-secret")
    with FakeOpenAI() as server:
        yield server


def edits(**changes: Any) -> str:
    return json.dumps({"add": [], "update": [], "delete": [], **changes})


def memories_of(runtime, user_id: str) -> list[dict[str, Any]]:
    with runtime.db.read() as conn:
        rows = conn.execute(
            select(USER_MEMORIES)
            .where(USER_MEMORIES.c.user_id == user_id)
            .order_by(USER_MEMORIES.c.created_at, USER_MEMORIES.c.memory)
        ).mappings()
        return [dict(r) for r in rows]


def shown_to_model(request: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    lines = request[1]["content"].split("\n")
    return json.loads(lines[1]), json.loads(lines[4])


def sessions_of(runtime, user_id: str) -> list[str]:
    with runtime.db.read() as conn:
        query = select(SESSIONS.c.id).where(SESSIONS.c.user_id == user_id)
        return list(conn.execute(query.order_by(SESSIONS.c.started_at)).scalars())


async def session(runtime, clock: ManualClock, model: FakeOpenAI, chat: Chat, *said: str) -> None:
    await converse(chat, *said)
    await worker_for(runtime, clock, llm_for(model)).run_until_idle()
    clock.advance(60)


async def test_the_model_adds_then_updates_and_deletes_instead_of_piling_up(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, **AGENTIC)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="helper", user="ana")
    model.answer(
        edits(
            add=[
                {"memory": "Prefers short answers.", "topics": ["style"], "input": "be brief"},
                {"memory": "Has a dog called Rex.", "topics": ["pets"]},
            ]
        )
    )
    await session(runtime, clock, model, chat, "be brief please", "my dog Rex says hi")
    user_id = await chat.user_id()
    first_session = sessions_of(runtime, user_id)[0]

    [request] = model.chats()
    assert request[0]["content"] == EDITING_RULES
    shown, transcript = shown_to_model(request)
    assert shown == []
    assert [line["text"] for line in transcript if line["from"] == "user"] == [
        "be brief please",
        "my dog Rex says hi",
    ]
    kept = memories_of(runtime, user_id)
    assert [(m["memory"], m["topics"]) for m in kept] == [
        ("Has a dog called Rex.", ["pets"]),
        ("Prefers short answers.", ["style"]),
    ]
    assert {(m["source"], m["bot"], m["session_id"]) for m in kept} == {
        ("agentic", "helper", first_session)
    }
    short = next(m for m in kept if m["memory"].startswith("Prefers"))
    assert short["input"] == "be brief"

    # The second session refines one, drops the other, and repeats one word for word; the
    # model answers by the numbers it is shown.
    def second_answer(messages: list[dict[str, Any]]) -> str:
        shown, _ = shown_to_model(messages)
        number = {m["memory"]: m["id"] for m in shown}
        return edits(
            update=[
                {
                    "id": number["Prefers short answers."],
                    "memory": "Prefers short answers with no preamble.",
                }
            ],
            delete=[{"id": number["Has a dog called Rex."]}],
            add=[{"memory": "prefers short answers with no preamble", "topics": []}],
        )

    model.rule = second_answer
    await session(runtime, clock, model, chat, "no preamble either", "Rex is gone, sadly")
    second_session = sessions_of(runtime, user_id)[1]

    shown, _ = shown_to_model(model.chats()[1])
    assert sorted((m["id"], m["memory"], tuple(m["topics"])) for m in shown) in (
        [(1, "Has a dog called Rex.", ("pets",)), (2, "Prefers short answers.", ("style",))],
        [(1, "Prefers short answers.", ("style",)), (2, "Has a dog called Rex.", ("pets",))],
    )
    [kept_now] = memories_of(runtime, user_id)
    assert kept_now["id"] == short["id"]  # edited in place, not piled up
    assert kept_now["memory"] == "Prefers short answers with no preamble."
    assert kept_now["topics"] == ["style"] and kept_now["input"] == "be brief"
    assert kept_now["session_id"] == second_session  # where this change came from
    assert kept_now["created_at"] == short["created_at"]
    [job] = [
        j for j in jobs_of(runtime, "edit_memories") if j.payload["session_id"] == second_session
    ]
    assert job.status == "done" and "it repeats a kept memory" in job.last_error


async def test_secrets_unknown_numbers_and_the_limit_are_refused(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, **AGENTIC, user_memory_max_keys=1)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="helper", user="ana")
    model.answer(
        edits(
            add=[
                {"memory": "Card is 4111 1111 1111 1111.", "topics": ["billing"]},
                {"memory": "Lives in Lisbon.", "topics": ["home"]},
                {"memory": "Works at Acme.", "topics": ["work"]},
            ],
            update=[{"id": 7, "memory": "nothing shown has number 7"}],
        )
    )
    await session(runtime, clock, model, chat, "I live in Lisbon and work at Acme")

    assert [m["memory"] for m in memories_of(runtime, await chat.user_id())] == ["Lives in Lisbon."]
    [job] = jobs_of(runtime, "edit_memories")
    assert "looks like a card number" in job.last_error
    assert "4111" not in job.last_error
    assert "no memory shown has that number" in job.last_error
    assert "user memories are full (1" in job.last_error


async def test_an_invalid_answer_fails_the_job_and_changes_nothing(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, **AGENTIC)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="helper", user="ana")
    model.answer("not json", '{"add": "nope"}', '{"add": [{"memory": ""}]}')
    await session(runtime, clock, model, chat, "hello there")

    [job] = jobs_of(runtime, "edit_memories")
    assert job.status == "failed"
    assert memories_of(runtime, await chat.user_id()) == []


@pytest.mark.parametrize("mode", ["manual", "off"])
async def test_only_agentic_bots_get_the_job(make_runtime, tmp_path, clock, model, mode):
    make_bot(tmp_path, user_memories=mode, episodic_memory_enabled=False)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="helper", user="ana")
    await session(runtime, clock, model, chat, "I live in Lisbon")

    assert jobs_of(runtime, "edit_memories") == []
    assert model.chats() == []
