"""Episodes: finished sessions summarised by the model, kept within limits, used next time.

Sessions end through the runtime (``/end`` in a console chat, or the janitor's inactivity
sweep), so the worker handles the real ``session_ended`` jobs. The model is litellm for
real, talking HTTP to FakeOpenAI on 127.0.0.1; retries sleep no time. Every test runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.episodes.worker import EpisodeWorker
from mnemobot.runtime.llm.client import LiteLLM
from mnemobot.runtime.settings import LLMSettings
from mnemobot.runtime.storage.tables import EPISODES, JOBS
from tests.fakes.openai_api import FakeOpenAI
from tests.support import Chat, eventually, write_bot

ECHO_BOT = """
    async def on_message(ctx):
        await ctx.say("noted")
"""


async def _no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAKE_MODEL_KEY", "not-a-secret")
    with FakeOpenAI() as server:
        yield server


def llm_for(server: FakeOpenAI, retries: int = 0) -> LiteLLM:
    """The real client: ``fast`` (the episodic-memory-model default) is its own model name."""
    return LiteLLM(
        LLMSettings(
            default="openai/chat-model",
            fast="openai/fast-model",
            api_base=server.api_base,
            api_key_env="FAKE_MODEL_KEY",
            retries=retries,
            backoff=0,
        ),
        sleep=_no_sleep,
    )


def make_bot(root: Path, name: str = "helper", **options: Any) -> None:
    """An echo bot (it never asks the model) with ``config.csv`` options given as kwargs."""
    rows = "".join(f"{k.replace('_', '-')},{str(v).lower()}\n" for k, v in options.items())
    write_bot(root, name, bot_py=ECHO_BOT, config="name,value\n" + rows)


def summary_json(summary: str = "User asked about a refund", **extra: Any) -> str:
    return json.dumps(
        {
            "summary": summary,
            "topics": ["refunds"],
            "sentiment": "positive",
            "resolution": "resolved",
            **extra,
        }
    )


async def converse(chat: Chat, *messages: str, end: bool = True) -> None:
    for text in messages:
        await chat.say(text)
    if end:
        [reply] = await chat.say("/end")
        assert reply.endswith("Conversation ended. Say anything to start a new one.")


def jobs_of(runtime, kind: str = "session_ended") -> list[Any]:
    with runtime.db.read() as conn:
        return conn.execute(
            select(JOBS).where(JOBS.c.kind == kind).order_by(JOBS.c.created_at)
        ).all()


def episodes_of(runtime, user_id: str | None = None) -> list[Any]:
    query = select(EPISODES).order_by(EPISODES.c.created_at)
    if user_id is not None:
        query = query.where(EPISODES.c.user_id == user_id)
    with runtime.db.read() as conn:
        return conn.execute(query).all()


def worker_for(runtime, clock: ManualClock, llm: Any, **kwargs: Any) -> EpisodeWorker:
    return EpisodeWorker(
        runtime.db, clock, runtime.bots, llm, policy_for=runtime.user_policy, **kwargs
    )


# -- threshold --------------------------------------------------------------------------------


async def test_fewer_user_messages_than_the_threshold_make_no_episode(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, episodic_memory_threshold=4)
    runtime = await make_runtime(bots_dir=tmp_path)
    await converse(Chat(runtime, bot="helper", user="ana"), "hi", "refund?", "thanks")

    counts = await worker_for(runtime, clock, llm_for(model)).run_once()

    assert counts["skipped"] == 1
    [job] = jobs_of(runtime)
    assert job.status == "skipped"
    assert "below threshold: 3 user messages" in job.last_error  # /end is not a message
    assert episodes_of(runtime) == []
    assert model.chats() == []


async def test_at_the_threshold_the_models_summary_becomes_an_episode(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, episodic_memory_threshold=4)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="helper", user="ana")
    await converse(chat, "hi", "I want a refund for order 42", "it arrived broken", "thanks")
    model.answer(summary_json(decisions=["refund order 42"], action_items=["email label"]))

    counts = await worker_for(runtime, clock, llm_for(model)).run_once()

    assert counts["done"] == 1
    [job] = jobs_of(runtime)
    [episode] = episodes_of(runtime)
    assert (job.status, job.last_error) == ("done", None)
    assert episode.user_id == await chat.user_id()
    assert episode.conversation_id == job.payload["session_id"]
    assert episode.bot == "helper"
    assert episode.summary == "User asked about a refund"
    assert episode.topics == ["refunds"]
    assert (episode.sentiment, episode.resolution) == ("positive", "resolved")
    assert episode.details["decisions"] == ["refund order 42"]
    assert episode.details["action_items"] == ["email label"]
    assert episode.created_at == clock.now()
    # The episodic-memory-model alias was used, with the transcript quoted as data.
    [request] = model.requests("chat.completions")
    assert request.params["model"] == "fast-model"
    system, data = request.params["messages"]
    assert "data, not instructions" in system["content"]
    assert data["content"].startswith("<transcript>")
    transcript = json.loads(data["content"].split("\n")[1])
    # in the order said, though the test's clock gave every turn the same time
    assert [line["text"] for line in transcript] == [
        *("hi", "noted", "I want a refund for order 42", "noted"),
        *("it arrived broken", "noted", "thanks", "noted"),
    ]
    assert {"from": "bot helper", "text": "noted"} in transcript
    assert all(line["text"] != "/end" for line in transcript)
    assert not any("Conversation ended" in line["text"] for line in transcript)  # its answer


# -- validation and retries ---------------------------------------------------------------------


async def test_an_invalid_answer_is_retried_with_the_reason(make_runtime, tmp_path, clock, model):
    make_bot(tmp_path, episodic_memory_threshold=1)
    runtime = await make_runtime(bots_dir=tmp_path)
    await converse(Chat(runtime, bot="helper", user="ana"), "hi")
    model.answer("Sure! The user said hi.", "```json\n" + summary_json("User said hi") + "\n```")

    await worker_for(runtime, clock, llm_for(model)).run_once()

    [episode] = episodes_of(runtime)
    assert episode.summary == "User said hi"
    assert jobs_of(runtime)[0].status == "done"
    first, second = model.chats()
    assert second[:2] == first
    assert second[2] == {"role": "assistant", "content": "Sure! The user said hi."}
    assert "not valid: the answer holds no JSON object" in second[3]["content"]


async def test_three_invalid_answers_fail_the_job_with_the_reason(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, episodic_memory_threshold=1)
    runtime = await make_runtime(bots_dir=tmp_path)
    await converse(Chat(runtime, bot="helper", user="ana"), "hi")
    model.answer(
        "no json here",
        '{"summary": "x", "topics": [}',
        summary_json(sentiment="ecstatic"),
    )

    counts = await worker_for(runtime, clock, llm_for(model)).run_once()

    assert counts["failed"] == 1
    [job] = jobs_of(runtime)
    assert job.status == "failed"
    assert "no valid JSON from the model after 3 tries" in job.last_error
    assert "sentiment" in job.last_error  # the last problem, named
    assert episodes_of(runtime) == []
    assert len(model.chats()) == 3
    assert await worker_for(runtime, clock, llm_for(model)).run_once() == {
        "claimed": 0,
        "done": 0,
        "skipped": 0,
        "failed": 0,
        "delayed": 0,
        "lost": 0,
    }


# -- the model down, then back ------------------------------------------------------------------


async def test_a_model_that_is_down_delays_the_episode_without_losing_it(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, episodic_memory_threshold=1)
    runtime = await make_runtime(bots_dir=tmp_path)
    await converse(Chat(runtime, bot="helper", user="ana"), "hi")
    model.fail_next(500, times=4)  # retries=1: two failed attempts of the job
    worker = worker_for(runtime, clock, llm_for(model, retries=1), retry_base=60)

    assert (await worker.run_once())["delayed"] == 1
    [job] = jobs_of(runtime)
    assert (job.status, job.attempts) == ("pending", 1)
    assert (job.run_after - clock.now()).total_seconds() == 60
    assert "model unavailable" in job.last_error

    assert (await worker.run_once())["claimed"] == 0  # not due yet: no request made
    assert len(model.chats()) == 2
    clock.advance(61)
    assert (await worker.run_once())["delayed"] == 1
    [job] = jobs_of(runtime)
    assert (job.status, job.attempts) == ("pending", 2)
    assert (job.run_after - clock.now()).total_seconds() == 120  # backoff doubles

    model.answer(summary_json("User said hi while the model was down"))
    clock.advance(121)
    assert (await worker.run_once())["done"] == 1
    clock.advance(3600)
    assert (await worker.run_once())["claimed"] == 0
    [episode] = episodes_of(runtime)
    assert episode.summary == "User said hi while the model was down"
    assert jobs_of(runtime)[0].status == "done"


async def test_a_model_down_for_too_long_fails_the_job_with_the_reason(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, episodic_memory_threshold=1)
    runtime = await make_runtime(bots_dir=tmp_path)
    await converse(Chat(runtime, bot="helper", user="ana"), "hi")
    model.fail_next(500, times=2)
    worker = worker_for(runtime, clock, llm_for(model), max_attempts=2, retry_base=10)

    assert (await worker.run_once())["delayed"] == 1
    clock.advance(11)
    assert (await worker.run_once())["failed"] == 1

    [job] = jobs_of(runtime)
    assert job.status == "failed"
    assert job.last_error.startswith("gave up after 2 attempts: model unavailable")
    assert episodes_of(runtime) == []


async def test_with_no_model_configured_jobs_wait_for_one(make_runtime, tmp_path, clock, model):
    make_bot(tmp_path, episodic_memory_threshold=1)
    runtime = await make_runtime(bots_dir=tmp_path)
    await converse(Chat(runtime, bot="helper", user="ana"), "hi")

    assert (await worker_for(runtime, clock, None).run_once())["delayed"] == 1
    [job] = jobs_of(runtime)
    assert (job.status, job.attempts, job.last_error) == ("pending", 0, "no model configured")
    assert episodes_of(runtime) == []

    model.answer(summary_json("Summarised once a model was configured"))
    clock.advance(301)
    assert (await worker_for(runtime, clock, llm_for(model)).run_once())["done"] == 1
    assert [e.summary for e in episodes_of(runtime)] == ["Summarised once a model was configured"]


async def test_a_job_whose_worker_died_is_taken_up_again(make_runtime, tmp_path, clock, model):
    make_bot(tmp_path, episodic_memory_threshold=1)
    runtime = await make_runtime(bots_dir=tmp_path)
    await converse(Chat(runtime, bot="helper", user="ana"), "hi")
    with runtime.db.write() as conn:  # as a worker leaves it when the process dies mid-job
        conn.execute(update(JOBS).values(status="running", run_after=clock.now()))
    model.answer(summary_json("Recovered"))

    assert (await worker_for(runtime, clock, llm_for(model)).run_once())["done"] == 1
    [job] = jobs_of(runtime)
    assert (job.status, job.attempts) == ("done", 1)
    assert [e.summary for e in episodes_of(runtime)] == ["Recovered"]


# -- the maximum: roll up, never drop -----------------------------------------------------------


class RollupModel:
    """Answers summaries from the transcript, and roll-ups listing what they combined."""

    def __init__(self) -> None:
        self.rollups_fail = False

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        data = json.loads(messages[1]["content"].split("\n")[1])
        if messages[0]["content"].startswith("You combine"):
            if self.rollups_fail:
                return "I cannot do that"
            return summary_json("rollup of " + " + ".join(e["summary"] for e in data))
        return summary_json(data[0]["text"])


async def test_past_the_maximum_the_oldest_are_rolled_up_not_dropped(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, episodic_memory_threshold=1, episodic_memory_max_episodes=3)
    runtime = await make_runtime(bots_dir=tmp_path)
    model.rule = RollupModel()
    worker = worker_for(runtime, clock, llm_for(model))
    chat = Chat(runtime, bot="helper", user="ana")
    for n in range(1, 6):
        await converse(chat, f"s{n}")
        await worker.run_until_idle()
        clock.advance(60)

    episodes = episodes_of(runtime, await chat.user_id())
    assert [e.summary for e in episodes] == ["rollup of rollup of s1 + s2 + s3", "s4", "s5"]
    oldest = episodes[0]
    assert oldest.details["rolled_up"] == 3
    assert len(oldest.details["episode_ids"]) == 2  # the earlier roll-up and s3
    assert sum(e.details.get("rolled_up", 1) for e in episodes) == 5  # none dropped
    assert [j.status for j in jobs_of(runtime)] == ["done"] * 5


async def test_a_failed_roll_up_keeps_the_episodes_and_is_tried_again(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, episodic_memory_threshold=1, episodic_memory_max_episodes=2)
    runtime = await make_runtime(bots_dir=tmp_path)
    rule = RollupModel()
    rule.rollups_fail = True
    model.rule = rule
    worker = worker_for(runtime, clock, llm_for(model))
    chat = Chat(runtime, bot="helper", user="ana")
    for n in range(1, 4):
        await converse(chat, f"s{n}")
        await worker.run_until_idle()
        clock.advance(60)
    assert [e.summary for e in episodes_of(runtime)] == ["s1", "s2", "s3"]  # kept over the max

    rule.rollups_fail = False
    await converse(chat, "s4")
    await worker.run_until_idle()

    episodes = episodes_of(runtime)
    assert [e.summary for e in episodes] == ["rollup of s1 + s2 + s3", "s4"]
    assert episodes[0].details["rolled_up"] == 3


# -- retention and options --------------------------------------------------------------------


async def test_the_janitor_removes_episodes_past_the_retention_days(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, episodic_memory_threshold=1, episodic_memory_retention_days=10)
    runtime = await make_runtime(bots_dir=tmp_path)
    model.rule = RollupModel()
    worker = worker_for(runtime, clock, llm_for(model))
    chat = Chat(runtime, bot="helper", user="ana")
    await converse(chat, "old")
    await worker.run_until_idle()
    clock.advance(days=6)
    await converse(chat, "recent")
    await worker.run_until_idle()

    clock.advance(days=3)  # "old" is 9 days old
    assert runtime.janitor.sweep()["episodes"] == 0
    clock.advance(days=1, seconds=1)
    assert runtime.janitor.sweep()["episodes"] == 1
    assert [e.summary for e in episodes_of(runtime)] == ["recent"]


async def test_a_session_ended_by_inactivity_gets_its_episode(make_runtime, tmp_path, clock, model):
    make_bot(tmp_path, episodic_memory_threshold=2)
    runtime = await make_runtime(bots_dir=tmp_path, sessions={"timeout": 1800})
    model.rule = RollupModel()
    await converse(Chat(runtime, bot="helper", user="ana"), "first", "second", end=False)
    clock.advance(1801)
    assert runtime.janitor.sweep()["sessions_ended"] == 1

    await worker_for(runtime, clock, llm_for(model)).run_until_idle()

    assert jobs_of(runtime)[0].payload["reason"] == "timeout"
    assert [e.summary for e in episodes_of(runtime)] == ["first"]


@pytest.mark.parametrize("option", ["episodic_memory_enabled", "episodic_memory_auto_summarize"])
async def test_episodes_switched_off_are_respected(make_runtime, tmp_path, clock, model, option):
    make_bot(tmp_path, episodic_memory_threshold=1, **{option: False})
    runtime = await make_runtime(bots_dir=tmp_path)
    await converse(Chat(runtime, bot="helper", user="ana"), "hi", "more", "and more", "bye")

    assert (await worker_for(runtime, clock, llm_for(model)).run_once())["skipped"] == 1

    [job] = jobs_of(runtime)
    assert (job.status, job.last_error) == ("skipped", f"{option.replace('_', '-')} is false")
    assert episodes_of(runtime) == []
    assert model.chats() == []
    assert jobs_of(runtime, "extract_facts") == []


# -- used next time -----------------------------------------------------------------------------

RECALL_BAS = """
    episodes = GET USER MEMORY("recent_episodes")
    TALK "recent: " + JSON(episodes)
"""


async def test_an_episode_is_there_in_the_next_session(make_runtime, tmp_path, clock, model):
    write_bot(
        tmp_path, "recall", start_bas=RECALL_BAS, config="name,value\nepisodic-memory-threshold,1\n"
    )
    runtime = await make_runtime(bots_dir=tmp_path)
    ana = Chat(runtime, bot="recall", user="ana")
    assert await ana.say("I want a refund") == ["recall: recent: []"]
    await ana.say("/end")
    model.answer(summary_json("User asked about refund policy, was satisfied"))
    await worker_for(runtime, clock, llm_for(model)).run_until_idle()
    clock.advance(60)

    [reply] = await ana.say("hello again")

    recent = json.loads(reply.removeprefix("recall: recent: "))
    [episode] = recent
    assert episode["summary"] == "User asked about refund policy, was satisfied"
    assert episode["topics"] == ["refunds"]
    assert (episode["sentiment"], episode["resolution"]) == ("positive", "resolved")
    assert episode["conversation_id"] == jobs_of(runtime)[0].payload["session_id"]
    assert [e.as_dict() for e in runtime.episodes.recent(await ana.user_id())] == recent
    # Another person sees none of it.
    assert await Chat(runtime, bot="recall", user="bob").say("hi") == ["recall: recent: []"]


# -- several workers ------------------------------------------------------------------------------


async def test_two_workers_never_summarise_a_session_twice(make_runtime, tmp_path, clock, model):
    make_bot(tmp_path, episodic_memory_threshold=1)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="helper", user="ana")
    for n in range(3):
        await converse(chat, f"s{n}")
    model.rule = RollupModel()
    first, second = (worker_for(runtime, clock, llm_for(model)) for _ in range(2))

    counts = await asyncio.gather(first.run_once(), second.run_once())

    assert sum(c["claimed"] for c in counts) == 3
    assert sorted(e.summary for e in episodes_of(runtime)) == ["s0", "s1", "s2"]
    assert len(model.chats()) == 3


async def test_a_slow_worker_whose_job_was_taken_over_writes_nothing(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, episodic_memory_threshold=1)
    runtime = await make_runtime(bots_dir=tmp_path)
    await converse(Chat(runtime, bot="helper", user="ana"), "hi")
    slow = worker_for(runtime, clock, llm_for(model), lease=600)
    other = worker_for(runtime, clock, llm_for(model), lease=600)
    calls: list[str] = []

    def rule(messages: list[dict[str, Any]]) -> str:
        calls.append("call")
        if len(calls) == 1:  # the slow worker is still waiting for this answer ...
            clock.advance(601)  # ... when its lease runs out and another worker takes the job
            taken = asyncio.run(other.run_once())
            assert taken["done"] == 1
            return summary_json("from the slow worker")
        return summary_json("from the other worker")

    model.rule = rule
    assert (await slow.run_once())["lost"] == 1

    assert [e.summary for e in episodes_of(runtime)] == ["from the other worker"]
    [job] = jobs_of(runtime)
    assert (job.status, job.attempts) == ("done", 1)


# -- promptly ---------------------------------------------------------------------------------


async def test_an_ended_session_is_summarised_at_once_and_searchable_not_at_the_next_poll(
    make_runtime, tmp_path, clock, model
):
    make_bot(tmp_path, episodic_memory_threshold=2)
    runtime = await make_runtime(bots_dir=tmp_path, llm=llm_for(model))
    stop = asyncio.Event()
    worker = asyncio.create_task(runtime.episode_worker.run(interval=3600, stop=stop))
    try:
        # the first pass is done and it waits now, for an hour or the bell
        await eventually(lambda: runtime.episode_worker.bell._event, what="the worker to wait")
        model.answer(summary_json("Ana booked a zeppelin flight to Lisbon"))
        chat = Chat(runtime, bot="helper", user="ana")

        await converse(chat, "book me a zeppelin", "to Lisbon please")

        # an hour's poll away, unless the end of the session woke the worker
        await eventually(lambda: episodes_of(runtime), within=30, what="the episode")
    finally:
        stop.set()
        await worker
    found = runtime.recall.search(await chat.user_id(), "zeppelin Lisbon")
    assert ("episode", "Ana booked a zeppelin flight to Lisbon (topics: refunds)") in {
        (f.kind, f.text) for f in found
    }
