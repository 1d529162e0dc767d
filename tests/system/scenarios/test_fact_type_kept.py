"""Seed 002 in BASIC: a fact rewritten with SET USER MEMORY stays a fact (issue 16)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mnemobot.runtime.pipeline.runtime import Runtime
from tests.support import Chat, write_bot

PROGRAM = """
    SET USER FACT "company", "Acme"
    SET USER MEMORY "company", "Acme 2"
    facts = USER FACTS()
    TALK "facts: " + JSON(facts)
"""


async def test_set_user_memory_on_a_fact_keeps_it_in_user_facts(
    make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    write_bot(tmp_path, "crm-bot", start_bas=PROGRAM)
    runtime = await make_runtime(bots_dir=tmp_path)

    replies = await Chat(runtime, bot="crm-bot", user="ana").say("hi")

    assert replies == ['crm-bot: facts: {"company": "Acme 2"}']
