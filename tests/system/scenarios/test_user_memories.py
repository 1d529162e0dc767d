"""Seed 004's user memories through ``mnemobot chat`` (issue 16), on SQLite and PostgreSQL.

Manual mode: a Python bot's code adds, lists, edits and deletes free-text memories, a BASIC
bot adds and lists them too (the same person's, whatever bot), recall finds them, a failed
turn keeps none, and the operator's commands see, export and forget them. Agentic mode: after
each session the model (the OpenAI-compatible fake) edits them, updating and deleting rather
than piling up, and the bot's own writes are refused. The real console script throughout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mnemobot.runtime.episodes.memories.prompts import EDITING_RULES
from tests.fakes.openai_api import FakeOpenAI
from tests.runtime.cli.test_cli import Cli, _base_env, fails, ok
from tests.support import write_bot

NOTES_BOT = """
async def on_message(ctx):
    text = ctx.text.strip()
    memories = ctx.user.memories
    if text.startswith("remember "):
        note = await memories.add(text.removeprefix("remember "), topics=["chat"], input=text)
        await ctx.say(f"remembered: {note.memory}")
    elif text.startswith("change "):
        old, new = text.removeprefix("change ").split(" => ")
        [found] = [m for m in await memories.list() if m.text == old]
        changed = await memories.upsert(found.id, new)
        await ctx.say(f"changed: {changed.text} (same id: {changed.id == found.id})")
    elif text.startswith("drop "):
        gone = [m.id for m in await memories.list() if text.removeprefix("drop ") in m.text]
        await ctx.say(f"dropped {await memories.delete_many(gone)}")
    elif text == "list":
        await ctx.say("; ".join(m.text for m in await memories.list()) or "nothing")
    elif text.startswith("find "):
        found = await ctx.user.recall(text.removeprefix("find "))
        await ctx.say(" | ".join(h["text"] for h in found if h["kind"] == "memory") or "none")
    elif text == "edit a ghost":
        await memories.upsert("no-such-id", "anything")
    elif text == "boom":
        await memories.add("written by a turn that fails")
        raise RuntimeError("the bot broke after writing")
    elif text == "try write":
        try:
            await memories.add("the code's own memory")
        except Exception as exc:
            await ctx.say(f"refused: {exc}")
    else:
        await ctx.say("ok")
"""

BASIC_NOTES = """
TALK "What should I remember?"
HEAR note
ADD USER MEMORY note, ["basic"]
FOR EACH m IN USER MEMORIES()
    TALK m.text + " [" + JOIN(m.topics, ",") + "]"
NEXT
"""


def _cli(tmp_path: Path, db_url: str, **env: str) -> Cli:
    (tmp_path / "cwd").mkdir(exist_ok=True)
    return Cli(
        cwd=tmp_path / "cwd",
        env={
            **_base_env(),
            "MNEMOBOT_DATABASE_URL": db_url,
            "MNEMOBOT_BOTS_DIR": str(tmp_path / "bots"),
            **env,
        },
    )


def listed(cli: Cli, user: str = "ana") -> list[dict[str, Any]]:
    out = ok(cli("memories", "list", "--user", user, "--json"))
    return [json.loads(line) for line in out.splitlines()]


def test_manual_memories_written_by_bots_seen_by_operators(db_url: str, tmp_path: Path) -> None:
    write_bot(tmp_path / "bots", "notes-bot", bot_py=NOTES_BOT)
    cli = _cli(tmp_path, db_url)
    said = [
        "remember Prefers concise answers",
        "remember Plays the cello on Sundays",
        "remember Has a dog called Rex",
        "change Prefers concise answers => Prefers concise answers, no preamble",
        "drop dog",
        "boom",
        "edit a ghost",
        "find cello",
        "list",
    ]
    chat = cli("chat", "--bot", "notes-bot", "--user", "ana", input="\n".join(said) + "\n")
    assert chat.returncode == 0, chat.stderr
    failures = [line for line in chat.stderr.splitlines() if line.startswith("bot turn failed")]
    assert len(failures) == 2 and "UnknownMemory: user " in failures[1], chat.stderr
    lines = chat.stdout.splitlines()
    assert lines[:5] == [
        "notes-bot: remembered: Prefers concise answers",
        "notes-bot: remembered: Plays the cello on Sundays",
        "notes-bot: remembered: Has a dog called Rex",
        "notes-bot: changed: Prefers concise answers, no preamble (same id: True)",
        "notes-bot: dropped 1",
    ]
    assert lines[5].startswith("notes-bot: Sorry, something went wrong")  # boom: nothing kept
    assert lines[6].startswith("notes-bot: Sorry, something went wrong")  # unknown id
    assert lines[7:] == [
        "notes-bot: Plays the cello on Sundays",
        "notes-bot: Prefers concise answers, no preamble; Plays the cello on Sundays",
    ]
    kept = listed(cli)
    assert [(m["memory"], m["topics"], m["source"], m["bot"]) for m in kept] == [
        ("Prefers concise answers, no preamble", ["chat"], "bot", "notes-bot"),
        ("Plays the cello on Sundays", ["chat"], "bot", "notes-bot"),
    ]
    assert kept[0]["input"] == "remember Prefers concise answers"

    # Another bot, in BASIC, sees the same person's memories and adds one of its own.
    write_bot(tmp_path / "bots", "basic-notes", start_bas=BASIC_NOTES)
    out = ok(cli("chat", "--bot", "basic-notes", "--user", "ana", input="hi\nLives in Lisbon\n"))
    assert out.splitlines() == [
        "basic-notes: What should I remember?",
        "basic-notes: Prefers concise answers, no preamble [chat]",
        "basic-notes: Plays the cello on Sundays [chat]",
        "basic-notes: Lives in Lisbon [basic]",
    ]

    # The prompt carries them as data; export has them; forget removes them.
    prompt = ok(cli("prompt", "--user", "ana", "--bot", "notes-bot", "-m", "hello"))
    assert "DATA: what we remember about the user" in prompt
    assert '"Plays the cello on Sundays"' in prompt
    exported = json.loads(ok(cli("export", "ana")))
    assert sorted(m["memory"] for m in exported["user_memories"]) == [
        "Lives in Lisbon",
        "Plays the cello on Sundays",
        "Prefers concise answers, no preamble",
    ]
    removed = json.loads(ok(cli("forget", "ana", "--yes")))["removed"]
    assert removed["user_memories"] == 3
    assert fails(cli("memories", "list", "--user", "ana")).startswith("error: no user 'ana'")


def _editing(messages: list[dict[str, Any]]) -> str:
    """The fake model's memory editor: it reads what it is shown and answers by number."""
    assert messages[0]["content"] == EDITING_RULES, "only memory edits ask the model here"
    lines = messages[1]["content"].split("\n")
    shown, transcript = json.loads(lines[1]), json.loads(lines[4])
    said = " ".join(line["text"] for line in transcript if line["from"] == "user")
    number = {m["memory"]: m["id"] for m in shown}
    answer: dict[str, list[Any]] = {"add": [], "update": [], "delete": []}
    if "short answers" in said:
        answer["add"].append({"memory": "Prefers short answers.", "topics": ["style"]})
    if "Rex" in said and "Has a dog called Rex." not in number:
        answer["add"].append({"memory": "Has a dog called Rex.", "topics": ["pets"]})
    if "detailed" in said:
        answer["update"].append(
            {"id": number["Prefers short answers."], "memory": "Prefers detailed answers now."}
        )
    if "passed away" in said:
        answer["delete"].append({"id": number["Has a dog called Rex."]})
    return json.dumps(answer)


@pytest.fixture
def model():
    with FakeOpenAI(rule=_editing) as server:
        yield server


def test_agentic_memories_are_edited_by_the_model_after_each_session(
    db_url: str, tmp_path: Path, model: FakeOpenAI
) -> None:
    write_bot(
        tmp_path / "bots",
        "notes-bot",
        bot_py=NOTES_BOT,
        config="name,value\nuser-memories,agentic\nepisodic-memory-enabled,false\n",
    )
    cli = _cli(
        tmp_path,
        db_url,
        MNEMOBOT_LLM__DEFAULT="openai/fake-model",
        MNEMOBOT_LLM__FAST="openai/fake-model",
        MNEMOBOT_LLM__API_BASE=model.api_base,
        MNEMOBOT_LLM__API_KEY_ENV="FAKE_MODEL_KEY",
        FAKE_MODEL_KEY="not-a-secret",
    )

    first = "I like short answers\nmy dog Rex says hi\ntry write\n/end\n"
    out = ok(cli("chat", "--bot", "notes-bot", "--user", "ana", input=first))
    refused = [line for line in out.splitlines() if "refused" in line]
    assert refused == [
        "notes-bot: refused: user memories are written by the model after each session for "
        "this bot (user-memories,agentic in config.csv); the bot's own writes are refused so "
        "the two never overwrite each other. Set user-memories to manual to write them in code"
    ]
    ok(cli("prompt", "--user", "ana", "--bot", "notes-bot"))  # runs the worker until idle
    kept = {m["memory"]: m for m in listed(cli)}
    assert sorted(kept) == ["Has a dog called Rex.", "Prefers short answers."]
    assert {(m["source"], m["bot"]) for m in kept.values()} == {("agentic", "notes-bot")}
    first_session = kept["Prefers short answers."]["session_id"]
    assert first_session and kept["Has a dog called Rex."]["session_id"] == first_session

    second = "actually I want detailed answers\nRex passed away last week\n/end\n"
    ok(cli("chat", "--bot", "notes-bot", "--user", "ana", input=second))
    prompt = ok(cli("prompt", "--user", "ana", "--bot", "notes-bot", "-m", "how?"))

    [now] = listed(cli)
    assert now["id"] == kept["Prefers short answers."]["id"]  # updated in place
    assert (now["memory"], now["topics"]) == ("Prefers detailed answers now.", ["style"])
    assert now["session_id"] not in (None, first_session)  # the change's own session
    assert '"Prefers detailed answers now."' in prompt
    assert "Rex" not in prompt.split("DATA: what we remember about the user")[1].split(">>>")[0]
    assert len(model.chats()) == 2  # one structured call per session
