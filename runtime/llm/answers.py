"""Asking a bot's model: gather what is remembered, assemble the prompt, record the call.

The same assembly serves a live turn (``ctx.llm``, BASIC ``LLM``) and ``mnemobot prompt``,
so what the command shows is what the model would be sent.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import cast

from sqlalchemy import bindparam, select

from mnemobot.runtime.bots.registry import Bot
from mnemobot.runtime.llm.client import LLM, estimate_tokens
from mnemobot.runtime.llm.prompt import (
    BuiltPrompt,
    PromptAssembler,
    RememberedFact,
    RememberedNote,
    TurnLine,
)
from mnemobot.runtime.memories.view import MemoriesView
from mnemobot.runtime.memory.sensitive import SensitiveRule
from mnemobot.runtime.memory.store import MemoryScope
from mnemobot.runtime.recall.search import Recall, Recalled, RecallSet, window_for
from mnemobot.runtime.settings import LLMSettings
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.prepared import Prepared
from mnemobot.runtime.storage.tables import SESSIONS, TURNS

__all__ = ["assemble_prompt", "latest_session", "recent_turns"]

ABOUT_THE_USER = ("fact", "preference")
FACTS_READ = 200  # the most recently written keys the prompt ranks; older ones rank by key match
MEMORIES_READ = 200  # the most recently changed free-text memories; older ones only if recalled


_RECENT_TURNS = Prepared(
    select(TURNS.c.role, TURNS.c.text, TURNS.c.bot, TURNS.c.id)
    .where(TURNS.c.session_id == bindparam("session_id"))
    .order_by(TURNS.c.created_at.desc(), TURNS.c.line.desc(), TURNS.c.seq.desc())
    .limit(bindparam("limit"))
)


@functools.lru_cache(maxsize=16_384)
def _counted(llm: Hashable, model: str, text: str) -> int:
    """Tokens of ``text``, remembered: a person's recalled lines come back prompt after prompt,
    and a tokenizer call through litellm costs more than the rest of a line's handling."""
    return cast(LLM, llm).count_tokens(text, model=model)


def recent_turns(db: Database, session_id: str, limit: int = 20) -> list[TurnLine]:
    """This session's last ``limit`` turns, oldest first."""
    rows = db.read_all(_RECENT_TURNS, {"session_id": session_id, "limit": limit})
    return [TurnLine(role, text, bot, id) for role, text, bot, id in reversed(rows)]


def latest_session(db: Database, user_id: str, bot: str) -> str | None:
    """The person's open session with ``bot`` active, if any (for ``mnemobot prompt``)."""
    with db.read() as conn:
        return conn.execute(
            select(SESSIONS.c.id)
            .where(
                SESSIONS.c.user_id == user_id,
                SESSIONS.c.active_bot == bot,
                SESSIONS.c.ended_at.is_(None),
            )
            .order_by(SESSIONS.c.last_activity_at.desc())
            .limit(1)
        ).scalar()


async def assemble_prompt(
    *,
    db: Database,
    llm: LLM | None,
    llm_settings: LLMSettings,
    bot: Bot,
    user_memory: MemoryScope,
    context: MemoryScope | None,
    session_id: str | None,
    recall: Recall | None,
    user_id: str,
    memory_budget: int,
    question: str,
    memories: MemoriesView | None = None,
    sensitive: SensitiveRule | None = None,
) -> BuiltPrompt:
    """The prompt ``bot`` would send for ``question``, from the person's memory.

    ``recall`` None leaves out everything said before; a bot whose user memory is off
    (``user-memory-enabled,false``) gets neither facts nor recall. ``memories`` (free-text,
    ``ctx.user.memories``) go in unless the bot's ``user-memories`` is ``off``: all of them
    for a person with few, else those recall finds for the question, then the newest.
    What ``sensitive`` (else the bot's own sensitive-keys/values) names is kept out.
    """
    model = bot.options.model
    remembers = bot.options.user_memory_enabled

    def count(text: str) -> int:
        return _counted(cast(Hashable, llm), model, text) if llm else estimate_tokens(text)

    rows = await user_memory.rows(newest=FACTS_READ) if remembers else []
    facts = [
        RememberedFact(r.key, r.value, r.updated_at)
        for r in rows
        if (r.memory_type or "preference") in ABOUT_THE_USER
    ]
    notes = []
    if memories is not None and remembers and memories.mode != "off":
        notes = [
            RememberedNote(m.id, m.text, m.updated_at) for m in await memories.recent(MEMORIES_READ)
        ]
    turns = await db.run(recent_turns, db, session_id, 20) if session_id is not None else []
    found = None
    if recall is not None and remembers and memory_budget > 0:
        vector = await recall.query_vector(question, user_id)  # None: off, or the model down
        window = window_for(memory_budget, by_meaning=vector is not None)
        found = await db.run_search(
            recall.gather, user_id, question, window=window, query_vector=vector
        )
    assembler = PromptAssembler(
        count,
        budget=llm_settings.prompt_budget,
        reserve=llm_settings.answer_reserve,
        memory_budget=memory_budget,
        bot=bot.name,
    )
    options = bot.options
    rule = options.sensitive if sensitive is None else sensitive
    shared = await context.items() if context is not None else {}
    before = len(facts) + len(notes) + len(shared)
    facts = [f for f in facts if not rule.hides(f.key, f.value)]
    notes = [n for n in notes if not rule.hides(None, n.text)]
    shared = {k: v for k, v in shared.items() if not rule.hides(k, v)}
    kept_out = before - len(facts) - len(notes) - len(shared)
    if found is not None and rule:
        kept_out += _recall_without_sensitive(found, rule)
    built = assembler.build(
        persona=options.prompt,
        question=question,
        facts=facts,
        memories=notes,
        context=shared,
        recalled=found,
        max_episodes=options.episodic_memory_history if options.episodic_memory_enabled else 0,
        turns=turns,
    )
    built.kept_out = kept_out
    return built


def _recall_without_sensitive(found: RecallSet, rule: SensitiveRule) -> int:
    """Drop from ``found`` the facts with a sensitive key and anything holding a sensitive
    value; returns how many were dropped."""
    dropped = 0
    for source in ("turns", "episodes", "facts", "earlier_facts", "memories"):
        hits: list[Recalled] = getattr(found, source)
        kept = [h for h in hits if not (rule.key_hidden(h.key) or rule.text_hidden(h.text))]
        dropped += len(hits) - len(kept)
        setattr(found, source, kept)
    return dropped
