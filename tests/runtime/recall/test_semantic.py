"""Semantic recall: vectors from an OpenAI-compatible embeddings server, fused with the words.

The embedding model is litellm for real, over HTTP to FakeOpenAI on 127.0.0.1, whose vectors
are a hashed bag of words where "car" and "automobile" share a dimension: a question that
shares no word with a line can still mean it. Vectors are computed by the episode worker after
the session ends (``/end``), never on the turn path. Every test runs on SQLite, PostgreSQL,
and a PostgreSQL with pgvector (where vectors are compared in the database; skipped without
the pgserver package of the dev extra).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.episodes.worker import EpisodeWorker
from mnemobot.runtime.people.privacy import export_user, forget_user
from mnemobot.runtime.pipeline.runtime import Runtime
from mnemobot.runtime.recall.embedding import VectorFiller
from mnemobot.runtime.recall.fusion import fuse
from mnemobot.runtime.recall.search import Recall
from mnemobot.runtime.storage.pgvector import PgVectorIndex, PostgresVectors
from mnemobot.runtime.storage.tables import EPISODES, JOBS, RECALL_VECTORS, TURNS
from tests.adapters.admin.conftest import admin_app, http
from tests.conftest import database_url
from tests.fakes.openai_api import FakeOpenAI
from tests.runtime.recall.conftest import SemanticRuntime, prompt_with
from tests.support import Chat, write_bot

RECALLING_BOT = """
    async def on_message(ctx):
        found = await ctx.user.recall(ctx.text, limit=3)
        await ctx.say(f"{len(found)} found")
"""
SUMMARY = (
    '{"summary": "talked about a vehicle", "topics": ["vehicle"], '
    '"sentiment": "neutral", "resolution": "resolved"}'
)
CAR_LINE = "I finally bought a red automobile with a sunroof"


@pytest.fixture(params=["sqlite", "postgresql", "pgvector"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The usual two databases, and PostgreSQL with pgvector."""
    return database_url(request, tmp_path)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAKE_KEY", "not-a-secret")
    with FakeOpenAI(lambda _messages: SUMMARY, synonyms=[{"car", "automobile"}]) as server:
        yield server


@pytest.fixture
def start(
    semantic_runtime: SemanticRuntime,
    tmp_path: Path,
    fake: FakeOpenAI,
    request: pytest.FixtureRequest,
):
    """A runtime whose bot recalls on every message; ``embedding=False`` leaves it off. On
    the pgvector database its vectors are compared by pgvector (never in process unseen)."""
    write_bot(
        tmp_path / "bots",
        "helper",
        bot_py=RECALLING_BOT,
        config="name,value\nepisodic-memory-threshold,1\nepisodic-memory-retention-days,10\n",
    )

    async def started(**options: Any) -> Runtime:
        runtime = await semantic_runtime(fake, **options)
        if request.node.callspec.params["db_url"] == "pgvector" and runtime.recall.embedder:
            assert isinstance(runtime.recall.index, PostgresVectors)
            assert isinstance(runtime.recall.index.index, PgVectorIndex)
        return runtime

    return started


async def converse(runtime: Runtime, user: str, *lines: str) -> str:
    """``lines`` said a second apart (a turn's line and reply share their moment), then /end."""
    chat = Chat(runtime, bot="helper", user=user)
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    for line in lines:
        [reply] = await chat.say(line)
        assert reply.endswith("found")  # the turn was answered
        clock.advance(seconds=1)
    await chat.say("/end")
    return await chat.user_id()


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def vectors_of(runtime: Runtime, user_id: str | None = None) -> list[Any]:
    query = select(RECALL_VECTORS)
    if user_id is not None:
        query = query.where(RECALL_VECTORS.c.user_id == user_id)
    with runtime.db.read() as conn:
        return list(conn.execute(query).all())


def jobs_of(runtime: Runtime, kind: str = "embed_session") -> list[Any]:
    with runtime.db.read() as conn:
        return list(conn.execute(select(JOBS).where(JOBS.c.kind == kind)).all())


def only_jobs(runtime: Runtime, clock: ManualClock) -> EpisodeWorker:
    """The runtime's worker without the catch-up pass: what the jobs do, alone."""
    worker = runtime.episode_worker
    return EpisodeWorker(
        runtime.db,
        clock,
        runtime.bots,
        worker.llm,
        policy_for=runtime.user_policy,
        vectors=worker.vectors,
        catch_up_every=None,
    )


async def search(runtime: Runtime, user_id: str, query: str, limit: int = 5) -> list[Any]:
    recall = runtime.recall
    vector = await recall.query_vector(query, user_id)
    return await runtime.db.run(recall.search, user_id, query, limit=limit, query_vector=vector)


# -- off by default -----------------------------------------------------------------------------


async def test_off_nothing_is_embedded_and_results_are_the_lexical_ones(
    start: Any, fake: FakeOpenAI, clock: ManualClock
) -> None:
    runtime = await start(embedding=False)
    ana = await converse(runtime, "ana", CAR_LINE, "the car is red")
    await runtime.episode_worker.run_until_idle()

    assert runtime.recall.embedder is None
    assert await runtime.recall.query_vector("car") is None
    found = await search(runtime, ana, "red car")
    lexical = Recall(runtime.db, clock).search(ana, "red car", limit=5)
    assert [f.as_dict() for f in found] == [f.as_dict() for f in lexical]
    assert [(f.id, f.rank, f.score) for f in found] == [(f.id, f.rank, f.score) for f in lexical]
    assert all("similarity" not in f.as_dict() for f in found)
    assert fake.embedded() == []
    assert jobs_of(runtime) == []
    assert vectors_of(runtime) == []


# -- computed after the session ------------------------------------------------------------------


async def test_the_worker_embeds_a_sessions_turns_and_episode_after_it_ends(
    start: Any, fake: FakeOpenAI, clock: ManualClock
) -> None:
    runtime = await start()
    ana = await converse(runtime, "ana", CAR_LINE)
    fake.clear_requests()  # the turn's own query embedding
    assert vectors_of(runtime) == []  # nothing embedded on the turn path

    counts = await only_jobs(runtime, clock).run_until_idle()

    assert counts["done"] == 2  # the episode, then its session's vectors
    [job] = jobs_of(runtime)
    assert job.status == "done"
    with runtime.db.read() as conn:
        turns = conn.execute(select(func.count()).where(TURNS.c.user_id == ana)).scalar()
    kinds = sorted(v.source_kind for v in vectors_of(runtime, ana))
    assert kinds == ["episode"] + ["turn"] * turns
    by_kind = {(v.source_kind, v.model) for v in vectors_of(runtime)}
    assert by_kind == {("episode", "openai/fake-embed"), ("turn", "openai/fake-embed#next")}
    # a line is embedded with the one said after it in its session; the last line alone
    ended = "Conversation ended. Say anything to start a new one."
    assert {text for request in fake.embedded() for text in request} == {
        f"{CAR_LINE}\n0 found",
        "0 found\n/end",
        f"/end\n{ended}",
        ended,
        "talked about a vehicle",
    }
    assert len(fake.embedded()) == 1  # one batched request


async def test_a_question_without_the_lines_words_finds_it_by_meaning(
    start: Any, fake: FakeOpenAI, clock: ManualClock
) -> None:
    runtime = await start()
    ana = await converse(
        runtime, "ana", "the weather was lovely today", CAR_LINE, "my sister lives in Porto"
    )
    await runtime.episode_worker.run_until_idle()

    lexical = Recall(runtime.db, clock).search(ana, "which car?", limit=5)
    assert CAR_LINE not in [f.text for f in lexical]  # no word of it in the question
    found = await search(runtime, ana, "which car?")

    [hit] = [f for f in found if f.text == CAR_LINE]
    # its vector is of the line and the reply after it ("0 found"): that text's cosine
    assert hit.kind == "turn" and hit.similarity == pytest.approx(
        cosine(fake.vector("which car?"), fake.vector(f"{CAR_LINE}\n0 found")), abs=1e-6
    )
    assert hit.similarity > 0.15
    assert (hit.bot, hit.channel, hit.role, hit.session_id) == (
        "helper",
        "console:helper",
        "user",
        next(f.session_id for f in Recall(runtime.db, clock).search(ana, "sunroof")),
    )
    assert hit.at.date() == clock.now().date()
    assert hit.as_dict()["similarity"] == round(hit.similarity, 6)
    turns = [f for f in found if f.kind == "turn"]
    # the reply said before it is embedded with it (the same words): the two tie at the top
    assert {t.text for t in turns[:2]} == {CAR_LINE, "0 found"}
    assert turns[0].similarity == turns[1].similarity == hit.similarity
    assert [t.rank for t in turns[:2]] == [0, 1]


async def test_a_question_of_stop_words_alone_is_still_searched_by_meaning(
    start: Any, clock: ManualClock
) -> None:
    """ "Where is it?" has no word worth matching; the model still places it near a line."""
    runtime = await start()
    ana = await converse(runtime, "ana", "my sister lives in Porto", "I left it at the station")
    await runtime.episode_worker.run_until_idle()

    assert Recall(runtime.db, clock).search(ana, "where is it?", limit=5) == []  # words: none
    found = await search(runtime, ana, "where is it?")

    turns = [f for f in found if f.kind == "turn"]
    # the line, and the reply before it, embedded with it: tied at the top
    assert {t.text for t in turns[:2]} == {"I left it at the station", "0 found"}
    assert turns[0].similarity == turns[1].similarity > 0


async def test_the_admin_search_finds_by_meaning_as_ctx_user_recall_does(start: Any) -> None:
    runtime = await start()
    ana = await converse(runtime, "ana", "the weather was lovely today", CAR_LINE)
    await runtime.episode_worker.run_until_idle()

    async with http(admin_app(runtime)) as api:
        answer = await api.get(f"/admin/api/users/{ana}/recall", params={"q": "which car?"})

    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    turns = [r for r in results if r["kind"] == "turn"]
    # the reply before the line is embedded with it, so the two tie at the top by meaning
    assert {r["text"] for r in turns[:2]} == {CAR_LINE, "0 found"}
    assert turns[0]["similarity"] == turns[1]["similarity"] > 0.15
    given = [{k: v for k, v in r.items() if v is not None} for r in results]  # None: absent
    assert given == [f.as_dict() for f in await search(runtime, ana, "which car?", limit=10)]


async def test_words_and_meaning_are_fused_and_ranks_stay_the_prompts() -> None:
    lexical = [("a", 9.0), ("b", 5.0), ("c", 1.0)]
    semantic = [("c", 0.9), ("d", 0.8), ("a", 0.1)]

    linear = fuse(lexical, semantic, "linear")
    rrf = fuse(lexical, semantic, "rrf")

    # meaning weighs 0.5 (fusion.SEMANTIC_WEIGHT): a 0.5 + 0, c 0 + 0.5 (a tie: the words'
    # first), d 0.5 x 0.875, b 0.5 x 0.5
    assert [key for key, _ in linear] == ["a", "c", "d", "b"]
    assert [score for _, score in linear] == pytest.approx([0.5, 0.5, 0.4375, 0.25])
    assert [key for key, _ in rrf] == ["a", "c", "b", "d"]  # ties: lexical order first
    assert rrf[0][1] == pytest.approx(1 / 60 + 1 / 62)
    alone = fuse(lexical, [], "linear")
    assert [key for key, _ in alone] == ["a", "b", "c"]
    assert [score for _, score in alone] == pytest.approx([0.5, 0.25, 0.0])


async def test_the_prompt_gets_the_line_found_by_meaning(start: Any) -> None:
    runtime = await start()
    ana = await converse(runtime, "ana", CAR_LINE, "unrelated chatter about biscuits")
    await runtime.episode_worker.run_until_idle()

    async def prompt(recall: Recall) -> str:
        built = await prompt_with(runtime, "helper", ana, "what colour is my car?", recall)
        return built.messages[0]["content"]

    assert CAR_LINE in await prompt(runtime.recall)
    assert CAR_LINE not in await prompt(Recall(runtime.db, runtime.clock))  # words alone


# -- failures stay off the turn path -----------------------------------------------------------------


async def test_a_failing_embedding_server_slows_no_turn_and_the_job_is_retried(
    start: Any, fake: FakeOpenAI, clock: ManualClock
) -> None:
    runtime = await start()
    fake.embeddings_down = True
    chat = Chat(runtime, bot="helper", user="ana")
    assert await chat.say(CAR_LINE) == ["helper: 0 found"]  # answered, lexically
    asked = len(fake.requests("embeddings"))
    assert asked >= 1  # the query's embedding was tried, and failed
    assert await chat.say("the red car") == ["helper: 1 found"]
    assert len(fake.requests("embeddings")) == asked  # later turns do not wait on it again
    await chat.say("/end")
    ana = await chat.user_id()

    worker = only_jobs(runtime, clock)
    await worker.run_until_idle()

    [job] = jobs_of(runtime)
    assert (job.status, job.attempts) == ("pending", 1)
    assert "embedding model unavailable" in job.last_error
    assert "HTTP 503: fake embeddings are down" in job.last_error  # the server's own reason
    assert vectors_of(runtime) == []

    fake.embeddings_down = False
    clock.advance(seconds=61)  # past the first retry's backoff
    await worker.run_until_idle()

    [job] = jobs_of(runtime)
    assert job.status == "done"
    assert any(v.source_kind == "turn" for v in vectors_of(runtime, ana))


async def test_history_from_before_embeddings_were_on_is_caught_up(
    start: Any, clock: ManualClock
) -> None:
    before = await start(embedding=False)
    ana = await converse(before, "ana", CAR_LINE)
    await before.episode_worker.run_until_idle()
    assert vectors_of(before) == []

    runtime = await start()
    await runtime.episode_worker.run_until_idle()  # no job: the catch-up pass

    assert {v.source_kind for v in vectors_of(runtime, ana)} == {"turn", "episode"}
    filler = runtime.episode_worker.vectors
    assert isinstance(filler, VectorFiller) and await filler.fill() == 0  # nothing left


async def test_an_open_sessions_lines_are_left_to_its_end_and_embedded_with_the_reply(
    start: Any, fake: FakeOpenAI, clock: ManualClock
) -> None:
    """The catch-up pass skips a session still open: its last line has no line after it
    yet, and would keep a vector of the line alone once the session's own job found it done."""
    runtime = await start()
    chat = Chat(runtime, bot="helper", user="ana")
    assert await chat.say(CAR_LINE) == ["helper: 0 found"]
    ana = await chat.user_id()
    await runtime.episode_worker.run_until_idle()  # the first pass catches up
    assert [v for v in vectors_of(runtime, ana) if v.source_kind == "turn"] == []

    clock.advance(seconds=1)
    await chat.say("/end")
    await runtime.episode_worker.run_until_idle()  # the session's embed_session job

    [hit] = [f for f in await search(runtime, ana, "which car?") if f.text == CAR_LINE]
    assert hit.similarity == pytest.approx(  # its vector holds the reply said after it
        cosine(fake.vector("which car?"), fake.vector(f"{CAR_LINE}\n0 found")), abs=1e-6
    )


async def test_turn_vectors_of_the_line_alone_are_never_compared_and_are_embedded_again(
    start: Any, fake: FakeOpenAI, clock: ManualClock
) -> None:
    """Vectors written before a turn's held the line after it (stored under the bare model
    name) are not read by a search, and the catch-up pass gives those turns new ones."""
    runtime = await start()
    ana = await converse(runtime, "ana", CAR_LINE)
    await runtime.episode_worker.run_until_idle()
    with runtime.db.write() as conn:  # as the vectors were before: the bare model, line alone
        conn.execute(
            update(RECALL_VECTORS)
            .where(RECALL_VECTORS.c.source_kind == "turn")
            .values(model="openai/fake-embed")
        )
    found = await search(runtime, ana, "which car?")
    assert [f for f in found if f.kind == "turn"] == []  # the old vectors are not read

    clock.advance(seconds=301)  # the worker's next catch-up pass is due
    await runtime.episode_worker.run_until_idle()

    turn_models = [v.model for v in vectors_of(runtime, ana) if v.source_kind == "turn"]
    assert sorted(set(turn_models)) == ["openai/fake-embed", "openai/fake-embed#next"]
    turns = [f for f in await search(runtime, ana, "which car?") if f.kind == "turn"]
    assert turns[0].text == CAR_LINE and turns[0].similarity is not None


async def test_the_question_is_embedded_without_the_words_in_many_of_the_persons_lines(
    start: Any, fake: FakeOpenAI
) -> None:
    runtime = await start()
    said = ["I ran a charity race", *[f"Thanks Melanie, {n} more" for n in range(12)]]
    ana = await converse(runtime, "ana", *said)
    fake.clear_requests()

    await search(runtime, ana, "When did Melanie run a charity race?")
    await search(runtime, "nobody-yet", "When did Melanie run a charity race?")

    # ana: "melanie" is in 12 of her 28 lines (the bot's replies and /end count), "charity"
    # in one; a person with no lines: the question whole
    assert fake.embedded() == [
        ["When did run a charity race?"],
        ["When did Melanie run a charity race?"],
    ]


# -- privacy -----------------------------------------------------------------------------------------


async def test_a_search_by_meaning_never_returns_another_persons_line(
    start: Any, clock: ManualClock
) -> None:
    runtime = await start()
    ana = await converse(runtime, "ana", "my automobile is blue")
    bea = await converse(runtime, "bea", "my automobile is green", "the biscuits were fine")
    await runtime.episode_worker.run_until_idle()

    for_ana = await search(runtime, ana, "which car?", limit=50)
    for_bea = await search(runtime, bea, "which car?", limit=50)

    assert "my automobile is blue" in [f.text for f in for_ana]
    assert not {f.text for f in for_ana} & {"my automobile is green", "the biscuits were fine"}
    assert "my automobile is green" in [f.text for f in for_bea]
    assert "my automobile is blue" not in [f.text for f in for_bea]


async def test_vectors_go_with_forget_retention_and_their_rows(
    start: Any, clock: ManualClock
) -> None:
    runtime = await start()
    ana = await converse(runtime, "ana", CAR_LINE)
    bea = await converse(runtime, "bea", "my automobile is green")
    await runtime.episode_worker.run_until_idle()
    assert vectors_of(runtime, ana) and vectors_of(runtime, bea)
    exported = export_user(runtime.db, ana)["recall_vectors"]
    assert exported and all(isinstance(v["vector"], str) for v in exported)  # JSON-ready

    removed = forget_user(runtime.db, ana)

    assert removed["recall_vectors"] > 0
    assert vectors_of(runtime, ana) == []
    assert {v.source_kind for v in vectors_of(runtime, bea)} == {"turn", "episode"}

    clock.advance(days=11)  # past the bot's episodic-memory-retention-days
    assert runtime.janitor.sweep()["episodes"] == 1
    assert {v.source_kind for v in vectors_of(runtime, bea)} == {"turn"}

    with runtime.db.write() as conn:
        conn.execute(delete(TURNS).where(TURNS.c.user_id == bea))
        assert conn.execute(select(func.count()).select_from(EPISODES)).scalar() == 0
    assert vectors_of(runtime) == []
