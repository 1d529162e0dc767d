"""Agentic free-text memories: after a session, the model edits the person's memories."""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.episodes.memories.editing import (
        apply_memory_edits,
        shown_memories,
    )
    from mnemobot.runtime.episodes.memories.prompts import MemoryEdits, editing_messages

__all__ = [
    "MemoryEdits",
    "apply_memory_edits",
    "editing_messages",
    "shown_memories",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "apply_memory_edits": "editing",
        "shown_memories": "editing",
        "MemoryEdits": "prompts",
        "editing_messages": "prompts",
    },
)
