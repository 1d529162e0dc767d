"""The README's "What a chat looks like" is a transcript these bots really produce."""

from __future__ import annotations

import re

from tests.conftest import REPO
from tests.support import Chat


def readme_sessions() -> list[tuple[str, str, list[tuple[str, list[str]]]]]:
    """Each ``$ mnemobot chat --bot B --user U`` of the README's chat, as (bot, user, turns)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## What a chat looks like", 1)[1]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    sessions: list[tuple[str, str, list[tuple[str, list[str]]]]] = []
    for line in block.splitlines():
        command = re.match(r"\$ \S*mnemobot chat --bot (\S+) --user (\S+)$", line)
        if command:
            sessions.append((command[1], command[2], []))
        elif line.startswith("you> ") and not line.endswith("^D"):
            sessions[-1][2].append((line.removeprefix("you> "), []))
        elif line.strip() and not line.startswith("you>"):
            sessions[-1][2][-1][1].append(line)
    return sessions


async def test_the_readme_chat_is_what_the_bots_say(make_runtime):
    runtime = await make_runtime()
    sessions = readme_sessions()
    assert [(bot, user) for bot, user, _ in sessions] == [
        ("sales-bot", "ana"),
        ("support-bot", "ana"),
    ]
    for bot, user, turns in sessions:
        chat = Chat(runtime, bot=bot, user=user)
        for said, replies in turns:
            assert await chat.say(said) == replies, said
