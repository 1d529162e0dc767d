"""Free-text memories about a person (seed 004's ``UserMemory``), a scope beside key/value.

``record`` says what a memory is and what it may hold, ``store`` is its SQL, ``view`` is
``ctx.user.memories`` as a bot's code sees it within a turn.
"""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.memories.record import (
        MAX_FEEDBACK_CHARS,
        MAX_INPUT_CHARS,
        MAX_TEXT_CHARS,
        MAX_TOPIC_CHARS,
        MAX_TOPICS,
        MemoriesMode,
        Memory,
        Origin,
    )
    from mnemobot.runtime.memories.store import Change, MemoriesStore
    from mnemobot.runtime.memories.view import MemoriesView

__all__ = [
    "MAX_FEEDBACK_CHARS",
    "MAX_INPUT_CHARS",
    "MAX_TEXT_CHARS",
    "MAX_TOPICS",
    "MAX_TOPIC_CHARS",
    "Change",
    "MemoriesMode",
    "MemoriesStore",
    "MemoriesView",
    "Memory",
    "Origin",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "MAX_FEEDBACK_CHARS": "record",
        "MAX_INPUT_CHARS": "record",
        "MAX_TEXT_CHARS": "record",
        "MAX_TOPICS": "record",
        "MAX_TOPIC_CHARS": "record",
        "Memory": "record",
        "MemoriesMode": "record",
        "Origin": "record",
        "Change": "store",
        "MemoriesStore": "store",
        "MemoriesView": "view",
    },
)
