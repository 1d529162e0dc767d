"""``mnemobot init`` and ``mnemobot new-bot``: a working folder, and a bot, to start from.

What they write is the smallest thing that runs and shows the shared memory: a Python bot
that learns your name and a BASIC bot that greets you by it. Nothing is overwritten: a file
that exists already is left as it is and named in the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mnemobot.runtime.errors import ConfigError

__all__ = ["Written", "init_folder", "new_bot"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

CONFIG_TOML = """\
# mnemobot deployment configuration; every value can be overridden from the environment
# as MNEMOBOT_<SECTION>__<KEY> (MNEMOBOT_SESSIONS__TIMEOUT=600). Paths are relative to the
# folder you run mnemobot in.

[database]
url = "sqlite:///data/mnemobot.db"          # or postgresql+psycopg://user@host/db

[bots]
dir = "bots"
default = "{default}"                     # the bot `mnemobot chat` opens without --bot

[sessions]
timeout = 1800                              # seconds of inactivity that end a session

# A model lets bots without code answer, and ctx.llm() / BASIC's LLM ask it:
# [llm]
# default = "openai/gpt-4o-mini"            # any litellm model; the key from OPENAI_API_KEY
"""

BOT_CONFIG = """\
name,value
description,{description}
prompt,You are a friendly assistant. Keep answers short.
"""

PYTHON_BOT = '''\
"""{name}: learns your name once; every bot can read it from user memory."""


async def on_message(ctx):
    name = await ctx.user.memory.get("name")
    if name is not None:
        visits = await ctx.user.memory.increment("visits")
        await ctx.say(f"Welcome back, {{name}}! Visit number {{visits}}.")
    elif await ctx.session.get("asked_name"):  # this message answers the question
        name = ctx.text.strip()
        await ctx.user.memory.set("name", name)
        await ctx.say(f"Nice to meet you, {{name}}!")
    else:  # a first "hi" is a greeting, not a name
        await ctx.session.set("asked_name", True)
        await ctx.say("Hi! I'm {name}. What's your name?")
'''

BASIC_BOT = """\
' {name}: a dialog, run when a session opens. HEAR waits for your next message.
name = GET USER MEMORY("name")
IF name = "" THEN
    TALK "Welcome! What's your name?"
    HEAR name
    SET USER MEMORY "name", name
    TALK "Nice to meet you, " + name + "!"
ELSE
    TALK "Welcome back, " + name + "!"
END IF
"""


@dataclass
class Written:
    """What a scaffolding command wrote, and what it left alone because it existed."""

    created: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)

    def write(self, path: Path, text: str) -> None:
        if path.exists():
            self.kept.append(path)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.created.append(path)


def _bot_files(folder: Path, *, basic: bool, written: Written) -> None:
    name = folder.name
    what = (
        "A BASIC dialog that greets you by name" if basic else "A Python bot that learns your name"
    )
    written.write(folder / "config.csv", BOT_CONFIG.format(description=what))
    if basic:
        written.write(folder / "start.bas", BASIC_BOT.format(name=name))
    else:
        written.write(folder / "bot.py", PYTHON_BOT.format(name=name))


def init_folder(root: Path) -> Written:
    """Write ``config/mnemobot.toml``, ``bots/hello-bot`` (Python) and ``bots/greeter`` (BASIC)."""
    written = Written()
    written.write(root / "config" / "mnemobot.toml", CONFIG_TOML.format(default="hello-bot"))
    _bot_files(root / "bots" / "hello-bot", basic=False, written=written)
    _bot_files(root / "bots" / "greeter", basic=True, written=written)
    return written


def new_bot(bots_dir: Path, name: str, *, basic: bool) -> Written:
    """A new bot folder ``bots_dir/name``; an existing bot of that name is an error."""
    if not _NAME.match(name):
        raise ConfigError(f"bot names use letters, digits, '-', '_' and '.', not {name!r}")
    folder = bots_dir / name
    if folder.exists():
        raise ConfigError(f"{folder} exists already; choose another name")
    written = Written()
    _bot_files(folder, basic=basic, written=written)
    return written
