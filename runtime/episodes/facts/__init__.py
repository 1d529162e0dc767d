"""Agentic fact extraction: after a session, the model proposes changes to the person's facts."""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.episodes.facts.extraction import (
        apply_fact_changes,
        fact_history,
        known_facts,
    )
    from mnemobot.runtime.episodes.facts.prompts import extraction_messages

__all__ = [
    "apply_fact_changes",
    "extraction_messages",
    "fact_history",
    "known_facts",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "apply_fact_changes": "extraction",
        "fact_history": "extraction",
        "known_facts": "extraction",
        "extraction_messages": "prompts",
    },
)
