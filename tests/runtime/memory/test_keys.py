"""Memory keys with control characters are refused on every path that writes one, on SQLite and
PostgreSQL: a key like ``"ctl\\x1b[31mred"`` would colour an operator's terminal in ``mnemobot
memory list``, and ``"nl\\nkey"`` would forge a line in a log or a CLI listing.

The paths: the memory scopes themselves (user, bot, session; direct and inside a turn), a
Python bot's ``ctx`` (memory, facts, bot memory, session, session context), a BASIC dialog
(``SET USER MEMORY``/``SET BOT MEMORY``/``SET``), and ``mnemobot memory set``. The admin API's
own cases are in tests/adapters/admin/test_admin_api.py. Each checks what the writer is told
and that the database holds nothing.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.errors import InvalidKey
from mnemobot.runtime.memory.policy import UserMemoryPolicy
from mnemobot.runtime.memory.store import MemoryScope, MemoryStore, PendingWrites
from mnemobot.runtime.memory.values import check_key
from mnemobot.runtime.pipeline.runtime import APOLOGY, Runtime
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import BOT_MEMORY, SESSION_MEMORY, USER_MEMORY, USERS
from tests.support import Chat, write_bot

BAD_KEYS = {
    "escape": "ctl\x1b[31mred",
    "newline": "nl\nkey",
    "carriage-return": "cr\rkey",
    "tab": "tab\tkey",
    "nul": "nul\x00key",
    "delete": "del\x7fkey",
    "c1": "c1\x85key",
    "line-separator": "ls\u2028key",
    "bidi-override": "rlo\u202ekey",
}
GOOD_KEYS = ["name", "ctx/last topic", "café ☕", "日本語", "a-b_c.d:e", "emoji 👩\u200d💻"]
MEMORY_TABLES = (USER_MEMORY, BOT_MEMORY, SESSION_MEMORY)


def stored_keys(db: Database) -> set[str]:
    with db.read() as conn:
        return {k for table in MEMORY_TABLES for k in conn.execute(select(table.c.key)).scalars()}


def rows(db: Database) -> int:
    with db.read() as conn:
        return sum(
            int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in MEMORY_TABLES
        )


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_check_key_names_the_control_character_and_where_it_is(key: str) -> None:
    with pytest.raises(InvalidKey) as refused:
        check_key(key)
    message = str(refused.value)
    assert "control character" in message
    assert repr(key[:60]) in message  # shown escaped, so the message itself is one safe line
    assert "\n" not in message and "\x1b" not in message


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_printable_keys_of_any_script_still_pass(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("mode", ["direct", "turn"])
async def test_user_and_bot_scopes_refuse_a_control_character_key_and_writes_nothing(
    database: Database, clock: ManualClock, mode: str
) -> None:
    with database.write() as conn:
        conn.execute(insert(USERS).values(id="alice", display_name="alice", created_at=clock.now()))
    store = MemoryStore(database, clock)
    writes = PendingWrites() if mode == "turn" else None
    scopes = [
        MemoryScope(store, store.user_ref("alice", UserMemoryPolicy()), writes),
        MemoryScope(store, store.bot_ref("sales-bot"), writes),
    ]  # session scopes need a session: the bot tests below write to them in a turn
    for scope in scopes:
        for key in BAD_KEYS.values():
            with pytest.raises(InvalidKey, match="control character"):
                await scope.set(key, "v")
            with pytest.raises(InvalidKey, match="control character"):
                await scope.increment(key)
            with pytest.raises(InvalidKey, match="control character"):
                await scope.append(key, 1)
        await scope.set("fine", 1)  # the scope still works
    if writes is not None:
        store.commit(writes)
    assert stored_keys(database) == {"fine"}
    with database.read() as conn:
        assert len(conn.execute(select(USER_MEMORY.c.key)).all()) == 1


KEY_WRITER = """
async def on_message(ctx):
    where, _, key = ctx.text.partition(" ")
    target = {
        "user": ctx.user.memory,
        "fact": ctx.user.facts,
        "bot": ctx.bot.memory,
        "session": ctx.session,
        "context": ctx.session.context,
    }[where]
    await ctx.say("writing")
    await target.set(key, "v")
    await ctx.say("stored " + where)
"""

BASIC_KEY_WRITER = """
TALK "Which key?"
HEAR k
SET USER MEMORY k, "v"
SET BOT MEMORY k, "v"
SET k, "v"
TALK "stored"
"""


@pytest.fixture
def key_bots(tmp_path: Path) -> Path:
    write_bot(tmp_path, "key-writer", bot_py=KEY_WRITER)
    write_bot(tmp_path, "basic-key-writer", start_bas=BASIC_KEY_WRITER)
    return tmp_path


@pytest.mark.parametrize("where", ["user", "fact", "bot", "session", "context"])
async def test_a_python_bot_writing_a_control_character_key_fails_its_turn_whole(
    make_runtime: Callable[..., Runtime],
    key_bots: Path,
    where: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = await make_runtime(bots_dir=key_bots)
    chat = Chat(runtime, bot="key-writer", user="ana")

    with caplog.at_level(logging.WARNING):
        replies = await chat.say(f"{where} nl\nkey")

    assert replies == [f"key-writer: {APOLOGY}"]  # "writing" is dropped with the turn
    assert rows(runtime.db) == 0
    assert "control character '\\n'" in caplog.text  # the operator sees why
    assert await chat.say(f"{where} fine") == ["key-writer: writing", f"key-writer: stored {where}"]
    assert stored_keys(runtime.db) == {"fine"}


async def test_a_basic_dialog_writing_a_control_character_key_stores_nothing(
    make_runtime: Callable[..., Runtime], key_bots: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = await make_runtime(bots_dir=key_bots)
    chat = Chat(runtime, bot="basic-key-writer", user="ana")
    assert await chat.say("hi") == ["basic-key-writer: Which key?"]

    with caplog.at_level(logging.WARNING):
        replies = await chat.say("ctl\x1b[31mred")

    assert "basic-key-writer: stored" not in replies
    assert replies and "Sorry" in replies[-1]
    assert "control character '\\x1b'" in caplog.text
    assert rows(runtime.db) == 0


def test_mnemobot_memory_set_refuses_a_control_character_key(db_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MNEMOBOT_DATABASE_URL": db_url,
        "MNEMOBOT_BOTS_DIR": str(Path(__file__).resolve().parents[3] / "bots"),
        "PYTHONIOENCODING": "utf-8",
    }
    command = ["memory", "set", "nl\nkey", "1", "--bot", "sales-bot"]
    done = subprocess.run(
        [sys.executable, "-m", "mnemobot.runtime.cli", *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert done.returncode != 0, done.stdout
    assert "control character '\\n'" in done.stderr
    assert "Traceback" not in done.stderr
    db = Database(db_url)
    db.start()
    try:
        assert rows(db) == 0
    finally:
        db.stop()
