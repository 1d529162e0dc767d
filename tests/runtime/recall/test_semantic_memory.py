"""Semantic recall of facts, their earlier values and free-text memories (issue 13).

As in test_semantic: litellm embeds for real over HTTP to FakeOpenAI on 127.0.0.1, whose
vectors are a hashed bag of words in which the words of one synonym group share a dimension,
so a question can mean a fact without sharing a word with it. The bot writes facts and
memories mid-session; the episode worker's catch-up pass embeds them, never the turn. Every
test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.llm.prompt import PromptItem
from mnemobot.runtime.memories.record import Origin
from mnemobot.runtime.memories.store import Change
from mnemobot.runtime.ops.admin.base import Actor
from mnemobot.runtime.ops.admin.service import Admin
from mnemobot.runtime.people.linking import merge_users
from mnemobot.runtime.people.privacy import forget_user
from mnemobot.runtime.pipeline.runtime import Runtime
from mnemobot.runtime.recall.search import Recall, Recalled
from mnemobot.runtime.storage.tables import JOBS, RECALL_VECTORS, USER_MEMORIES, USER_MEMORY
from mnemobot.runtime.storage.vectors import VectorStore
from tests.adapters.admin.conftest import admin_app, http
from tests.fakes.openai_api import FakeOpenAI
from tests.runtime.recall.conftest import SemanticRuntime, prompt_with
from tests.support import Chat, write_bot

MEMORY_BOT = """
    import json

    async def on_message(ctx):
        verb, _, rest = ctx.text.partition(" ")
        key, _, value = rest.partition(" ")
        if verb == "fact":
            await ctx.user.memory.set(key, value, memory_type="fact")
        elif verb == "brief":  # a fact that expires in a minute
            await ctx.user.memory.set(key, value, memory_type="fact", ttl=60)
        elif verb == "note":
            await ctx.user.memories.add(rest)
        elif verb == "recall":
            found = await ctx.user.recall(rest, limit=10)
            await ctx.say(json.dumps(found))
            return
        await ctx.say("noted")
"""
PET = "a tabby cat"  # "kitten" means it: the fake's synonyms
CELLO = "Ana is learning the cello"  # "instrument" means it
SYNONYMS = [{"cat", "kitten"}, {"cello", "instrument"}, {"parrot", "bird"}]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAKE_KEY", "not-a-secret")
    with FakeOpenAI(synonyms=SYNONYMS) as server:
        yield server


@pytest.fixture
def start(semantic_runtime: SemanticRuntime, tmp_path: Path, fake: FakeOpenAI):
    """A runtime with the memory bot; ``embedding=False`` leaves embeddings off."""
    write_bot(
        tmp_path / "bots",
        "keeper",
        bot_py=MEMORY_BOT,
        config="name,value\nsensitive-keys,pin\n",
    )
    return functools.partial(semantic_runtime, fake, janitor={"user_memories": 30 * 86400})


async def tell(runtime: Runtime, user: str, *lines: str) -> str:
    """Say ``lines`` to the bot as ``user`` (the session stays open); their user id."""
    chat = Chat(runtime, bot="keeper", user=user)
    for line in lines:
        assert await chat.say(line) == ["keeper: noted"]
    return await chat.user_id()


async def recall_in_chat(runtime: Runtime, user: str, query: str) -> list[dict[str, Any]]:
    """What ``ctx.user.recall`` gives the bot for ``query``."""
    [reply] = await Chat(runtime, bot="keeper", user=user).say(f"recall {query}")
    found: list[dict[str, Any]] = json.loads(reply.removeprefix("keeper: "))
    return found


async def search(runtime: Runtime, user_id: str, query: str, limit: int = 10) -> list[Recalled]:
    recall = runtime.recall
    vector = await recall.query_vector(query)
    return await runtime.db.run(recall.search, user_id, query, limit=limit, query_vector=vector)


PERSON_KINDS = ("fact", "earlier_fact", "memory")  # the transcript's vectors are not counted


def vectors(runtime: Runtime, user_id: str | None = None, kind: str | None = None) -> list[Any]:
    """The vectors of facts, earlier values and memories (of ``kind``), of ``user_id``."""
    kinds = PERSON_KINDS if kind is None else (kind,)
    query = select(RECALL_VECTORS).where(RECALL_VECTORS.c.source_kind.in_(kinds))
    if user_id is not None:
        query = query.where(RECALL_VECTORS.c.user_id == user_id)
    with runtime.db.read() as conn:
        return list(conn.execute(query).all())


def fact_id(runtime: Runtime, user_id: str, key: str) -> str:
    with runtime.db.read() as conn:
        return str(
            conn.execute(
                select(USER_MEMORY.c.id).where(
                    USER_MEMORY.c.user_id == user_id, USER_MEMORY.c.key == key
                )
            ).scalar_one()
        )


def memory_id(runtime: Runtime, user_id: str) -> str:
    with runtime.db.read() as conn:
        return str(
            conn.execute(
                select(USER_MEMORIES.c.id).where(USER_MEMORIES.c.user_id == user_id)
            ).scalar_one()
        )


def jobs(runtime: Runtime) -> list[tuple[str, str]]:
    """(kind, status) of the jobs after sessions, by kind."""
    query = select(JOBS.c.kind, JOBS.c.status).where(JOBS.c.kind != "session_ended")
    with runtime.db.read() as conn:
        return sorted((kind, status) for kind, status in conn.execute(query))


def embedded_texts(fake: FakeOpenAI) -> set[str]:
    return {text for request in fake.embedded() for text in request}


# -- found by meaning -----------------------------------------------------------------------------


async def test_a_fact_set_mid_session_is_found_by_meaning_after_the_catch_up_pass(
    start: Any, fake: FakeOpenAI, clock: ManualClock
) -> None:
    runtime = await start()
    ana = await tell(runtime, "ana", f"fact pet {PET}", "fact home Porto")
    fake.clear_requests()
    assert vectors(runtime) == []  # nothing embedded on the turn path

    await runtime.episode_worker.run_until_idle()  # the session is still open: catch-up

    assert sorted(v.source_kind for v in vectors(runtime, ana)) == ["fact", "fact"]
    assert {"pet: a tabby cat", "home: Porto"} <= embedded_texts(fake)
    lexical = Recall(runtime.db, clock).search(ana, "which kitten?")
    assert lexical == []  # no word of the fact in the question
    found = await search(runtime, ana, "which kitten?")
    facts = [f for f in found if f.kind == "fact"]
    assert (facts[0].key, facts[0].text, facts[0].rank) == ("pet", f"pet: {PET}", 0)
    assert facts[0].similarity is not None and facts[0].similarity > 0.2
    in_chat = await recall_in_chat(runtime, "ana", "which kitten?")
    assert next((r["kind"], r["key"]) for r in in_chat if r["kind"] == "fact") == ("fact", "pet")


async def test_a_fact_written_after_a_pass_waits_for_the_next_one(
    start: Any, clock: ManualClock
) -> None:
    """Facts are embedded by the catch-up pass, ``catch_up_every`` (300 s) apart."""
    runtime = await start()
    ana = await tell(runtime, "ana", "fact home Porto")
    await runtime.episode_worker.run_until_idle()
    await tell(runtime, "ana", f"fact pet {PET}")

    await runtime.episode_worker.run_until_idle()
    assert [v.source_kind for v in vectors(runtime, ana)] == ["fact"]  # not due yet

    clock.advance(seconds=301)
    await runtime.episode_worker.run_until_idle()
    assert len(vectors(runtime, ana, "fact")) == 2
    found = await search(runtime, ana, "which kitten?")
    assert next(f.key for f in found if f.kind == "fact") == "pet"


async def test_facts_a_session_taught_are_found_by_meaning_once_extracted(
    start: Any, fake: FakeOpenAI, tmp_path: Path, clock: ManualClock
) -> None:
    """The session's embed_session job ran while the extraction waited for the model; its
    facts are embedded as the extraction applies them, not at a catch-up minutes later."""
    config = "name,value\nuser-memory-agentic,true\nepisodic-memory-enabled,false\n"
    write_bot(tmp_path / "bots", "learner", bot_py=MEMORY_BOT, config=config)
    runtime = await start()
    chat = Chat(runtime, bot="learner", user="ana")
    assert await chat.say("we adopted a tabby last week") == ["learner: noted"]
    await runtime.episode_worker.run_until_idle()  # the catch-up pass runs: next one in 5 min
    [ended] = await chat.say("/end")
    assert ended.endswith("Conversation ended. Say anything to start a new one.")
    fake.fail_next(503)  # the extraction waits a minute; the session's vectors do not
    fake.answer(json.dumps({"add": [{"key": "pet", "value": PET}], "update": [], "delete": []}))
    await runtime.episode_worker.run_until_idle()
    assert [kind for kind, status in jobs(runtime)] == ["embed_session", "extract_facts"]
    assert jobs(runtime)[1][1] == "pending"

    clock.advance(seconds=61)  # the extraction is due again; the next catch-up is not
    await runtime.episode_worker.run_until_idle()

    ana = await chat.user_id()
    assert [v.source_kind for v in vectors(runtime, ana, "fact")] == ["fact"]
    assert f"pet: {PET}" in embedded_texts(fake)
    found = await search(runtime, ana, "which kitten?")
    assert next(f.key for f in found if f.kind == "fact") == "pet"


async def test_a_memory_is_found_by_meaning(
    start: Any, fake: FakeOpenAI, clock: ManualClock
) -> None:
    runtime = await start()
    ana = await tell(runtime, "ana", f"note {CELLO}", "note Ana lives near the sea")
    await runtime.episode_worker.run_until_idle()

    assert len(vectors(runtime, ana, "memory")) == 2
    assert CELLO in embedded_texts(fake)
    assert Recall(runtime.db, clock).search(ana, "which instrument?") == []
    found = await search(runtime, ana, "which instrument?")
    memories = [f for f in found if f.kind == "memory"]
    assert (memories[0].text, memories[0].rank) == (CELLO, 0)
    assert memories[0].similarity is not None and memories[0].similarity > 0.2
    in_chat = await recall_in_chat(runtime, "ana", "which instrument?")
    assert next(r["text"] for r in in_chat if r["kind"] == "memory") == CELLO

    async with http(admin_app(runtime)) as api:  # the admin API searches alike
        answer = await api.get(f"/admin/api/users/{ana}/recall", params={"q": "which instrument?"})
    assert answer.status_code == 200, answer.text
    given = [r for r in answer.json()["results"] if r["kind"] == "memory"]
    assert given[0]["text"] == CELLO and given[0]["similarity"] > 0.2


async def test_an_earlier_value_of_a_fact_is_found_by_meaning(
    start: Any, fake: FakeOpenAI, clock: ManualClock
) -> None:
    runtime = await start()
    ana = await tell(runtime, "ana", "fact home Porto")
    edits = Admin(runtime, runtime.audit).edits
    operator = Actor("ops", "test")
    edits.set_fact(operator, ana, "pet", PET)
    clock.advance(seconds=1)
    edits.set_fact(operator, ana, "pet", "a green parrot")

    await runtime.episode_worker.run_until_idle()

    assert len(vectors(runtime, ana, "earlier_fact")) == 1  # the superseded value only
    found = await search(runtime, ana, "which kitten?")
    earlier = [f for f in found if f.kind == "earlier fact"]
    assert (earlier[0].text, earlier[0].rank) == (f"pet was: {PET}", 0)
    assert earlier[0].similarity is not None and earlier[0].similarity > 0.2
    now = [f for f in await search(runtime, ana, "which bird?") if f.kind == "fact"]
    assert (now[0].key, now[0].text) == ("pet", "pet: a green parrot")


async def test_the_prompt_puts_the_fact_meant_first_and_recalls_its_earlier_value(
    start: Any, clock: ManualClock
) -> None:
    runtime = await start()
    ana = await tell(runtime, "ana", f"fact pet {PET}")  # the oldest: last by default
    edits = Admin(runtime, runtime.audit).edits
    operator = Actor("ops", "test")
    clock.advance(seconds=1)
    edits.set_fact(operator, ana, "plays", "the cello")
    clock.advance(seconds=1)
    edits.set_fact(operator, ana, "plays", "the drums")
    clock.advance(seconds=1)
    await tell(runtime, "ana", "fact job baker")  # the newest: first by default
    await runtime.episode_worker.run_until_idle()

    async def prompt(recall: Recall) -> list[PromptItem]:
        built = await prompt_with(
            runtime, "keeper", ana, "had she a kitten, an instrument?", recall
        )
        return built.items

    by_meaning = await prompt(runtime.recall)
    facts = [(i.label, i.detail) for i in by_meaning if i.section == "facts"]
    assert facts[0] == ("pet", "matched the message")
    [earlier] = [
        i.content
        for i in by_meaning
        if i.section == "recalled" and i.included and i.content.kind == "earlier fact"
    ]
    assert earlier.text == "plays was: the cello"

    by_words = await prompt(Recall(runtime.db, clock))
    assert next((i.label, i.detail) for i in by_words if i.section == "facts") == ("job", "newest")
    assert not [i for i in by_words if i.section == "recalled" and i.content.kind != "turn"]


async def test_off_by_default_nothing_is_embedded_and_results_are_lexical(
    start: Any, fake: FakeOpenAI, clock: ManualClock
) -> None:
    runtime = await start(embedding=False)
    ana = await tell(runtime, "ana", f"fact pet {PET}", f"note {CELLO}")
    await runtime.episode_worker.run_until_idle()

    found = await search(runtime, ana, "cat cello")
    lexical = Recall(runtime.db, clock).search(ana, "cat cello")
    assert [f.as_dict() for f in found] == [f.as_dict() for f in lexical]
    assert {"fact", "memory"} <= {f.kind for f in found}
    assert all(f.similarity is None for f in found)
    assert await search(runtime, ana, "which kitten?") == []
    assert fake.embedded() == []
    assert vectors(runtime) == []


# -- privacy --------------------------------------------------------------------------------------


async def test_a_search_by_meaning_never_returns_another_persons_fact_or_memory(
    start: Any,
) -> None:
    runtime = await start()
    ana = await tell(runtime, "ana", f"fact pet {PET}", f"note {CELLO}")
    bea = await tell(runtime, "bea", "fact pet a black cat", "note Bea plays the cello")
    await runtime.episode_worker.run_until_idle()

    for_ana = await search(runtime, ana, "which kitten instrument?", limit=50)
    for_bea = await search(runtime, bea, "which kitten instrument?", limit=50)

    def remembered(found: list[Recalled]) -> set[str]:
        return {f.text for f in found if f.kind in ("fact", "memory")}

    assert remembered(for_ana) == {f"pet: {PET}", CELLO}
    assert remembered(for_bea) == {"pet: a black cat", "Bea plays the cello"}
    assert not {f.text for f in for_ana} & {"fact pet a black cat", "note Bea plays the cello"}


async def test_merged_people_keep_the_vectors_of_the_facts_that_stay(
    start: Any, clock: ManualClock
) -> None:
    runtime = await start()
    bea = await tell(runtime, "bea", "fact pet a black cat", "fact home Lisbon")
    clock.advance(seconds=1)
    ana = await tell(runtime, "ana", "fact home Porto")  # newer: kept over Lisbon
    await runtime.episode_worker.run_until_idle()
    black_cat = fact_id(runtime, bea, "pet")

    with runtime.db.write() as conn:
        merge_users(conn, from_user_id=bea, into_user_id=ana, now=clock.now())

    assert {v.source_id: v.user_id for v in vectors(runtime)} == {
        black_cat: ana,
        fact_id(runtime, ana, "home"): ana,
    }
    found = await search(runtime, ana, "which kitten?")
    assert next(f.text for f in found if f.kind == "fact") == "pet: a black cat"


async def test_a_sensitive_fact_is_never_sent_to_the_embedding_model(
    start: Any, fake: FakeOpenAI
) -> None:
    runtime = await start()
    ana = await tell(runtime, "ana", "fact pin 4921", f"fact pet {PET}")
    await runtime.episode_worker.run_until_idle()

    assert not any("4921" in text for text in embedded_texts(fake))
    [kept_out] = [v for v in vectors(runtime, ana) if v.source_id == fact_id(runtime, ana, "pin")]
    assert (kept_out.dims, kept_out.vector) == (0, b"")  # done, and near nothing
    filler = runtime.episode_worker.vectors
    assert filler is not None and await filler.fill() == 0  # not read again
    found = await search(runtime, ana, "which kitten?")
    assert "pin" not in [f.key for f in found if f.similarity is not None]


# -- vectors go with their rows -------------------------------------------------------------------


async def test_a_changed_fact_or_memory_loses_its_vector_until_embedded_again(
    start: Any, fake: FakeOpenAI, clock: ManualClock
) -> None:
    runtime = await start()
    ana = await tell(runtime, "ana", f"fact pet {PET}", f"note {CELLO}")
    await runtime.episode_worker.run_until_idle()
    pet, cello = fact_id(runtime, ana, "pet"), memory_id(runtime, ana)
    assert {v.source_id for v in vectors(runtime, ana)} == {pet, cello}

    await tell(runtime, "ana", f"fact pet {PET}")  # the same value: the vector stays
    assert {v.source_id for v in vectors(runtime, ana)} == {pet, cello}
    await tell(runtime, "ana", "fact pet a green parrot")
    runtime.memories.edit(
        ana, cello, Change(text="Ana is learning the piano"), origin=Origin("admin")
    )
    assert vectors(runtime, ana) == []  # both texts changed: their vectors went at once
    assert [f for f in await search(runtime, ana, "which kitten?") if f.kind == "fact"] == []

    clock.advance(seconds=301)
    fake.clear_requests()
    await runtime.episode_worker.run_until_idle()
    assert {v.source_id for v in vectors(runtime, ana)} == {pet, cello}
    assert {"pet: a green parrot", "Ana is learning the piano"} <= embedded_texts(fake)
    assert f"pet: {PET}" not in embedded_texts(fake)

    runtime.memories.delete(ana, [cello])
    await tell(runtime, "ana", "fact pet ")  # "" deletes the key
    assert vectors(runtime, ana) == []


async def test_vectors_go_with_ttl_expiry_retention_and_forget(
    start: Any, clock: ManualClock
) -> None:
    runtime = await start()
    ana = await tell(runtime, "ana", f"brief pet {PET}", f"note {CELLO}", "fact home Porto")
    bea = await tell(runtime, "bea", "fact pet a black cat", "note Bea plays the cello")
    await runtime.episode_worker.run_until_idle()
    assert len(vectors(runtime, ana)) == 3 and len(vectors(runtime, bea)) == 2

    clock.advance(seconds=61)  # past the brief fact's TTL, before the janitor's sweep
    assert "pet" not in [f.key for f in await search(runtime, ana, "which kitten?")]
    assert runtime.janitor.sweep()["user_memory_expired"] == 1
    assert sorted(v.source_kind for v in vectors(runtime, ana)) == ["fact", "memory"]

    clock.advance(days=31)  # past [janitor] user_memories: every memory unchanged since
    assert runtime.janitor.sweep()["user_memories"] == 2
    assert [v.source_kind for v in vectors(runtime, ana)] == ["fact"]
    assert [v.source_kind for v in vectors(runtime, bea)] == ["fact"]

    with runtime.db.read() as conn:
        held = VectorStore().count(conn, ana)  # the fact's, and the transcript's
    removed = forget_user(runtime.db, ana)
    assert removed["recall_vectors"] == held
    with runtime.db.read() as conn:
        assert VectorStore().count(conn, ana) == 0
    assert [v.source_kind for v in vectors(runtime, bea)] == ["fact"]
