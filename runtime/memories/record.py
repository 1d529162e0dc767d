"""What one free-text memory is, and what it may hold.

A memory is a short text about a person ("Prefers concise answers, no preamble."), seed 004's
``UserMemory``: an id, the text (``memory`` as the seed names it, ``text`` as ours does),
topics, the input it was learnt from, optional feedback, when it was made and last changed,
and where that change came from. Every writer (a bot's code, the model after a session, an
operator) passes its values through the checks here, so all of them refuse the same things
with the same words, before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from mnemobot.runtime.errors import InvalidValue

__all__ = [
    "MAX_FEEDBACK_CHARS",
    "MAX_INPUT_CHARS",
    "MAX_TEXT_CHARS",
    "MAX_TOPICS",
    "MAX_TOPIC_CHARS",
    "MemoriesMode",
    "Memory",
    "Origin",
    "Source",
    "check_id",
    "check_ids",
    "check_note",
    "check_text",
    "check_topics",
]

MemoriesMode = Literal["off", "manual", "agentic"]  # config.csv user-memories
Source = Literal["bot", "agentic", "admin", "cli"]

MAX_TEXT_CHARS = 2000  # a memory is a sentence or two, not a document
MAX_TOPICS = 20
MAX_TOPIC_CHARS = 64
MAX_INPUT_CHARS = 20_000  # the longest message a person may send ([messages] max_chars)
MAX_FEEDBACK_CHARS = 2000
MAX_ID_CHARS = 64
MAX_IDS = 1000  # one delete_many


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a change comes from, recorded on the memory it changes."""

    source: Source
    bot: str | None = None
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class Memory:
    """One free-text memory about a person, as bots, operators and exports see it."""

    id: str
    text: str
    topics: tuple[str, ...]
    input: str | None
    feedback: str | None
    created_at: datetime
    updated_at: datetime
    source: str
    bot: str | None = None
    session_id: str | None = None

    @property
    def memory(self) -> str:
        """The text, under the name seed 004 (Agno's ``UserMemory.memory``) gives it."""
        return self.text

    @property
    def memory_id(self) -> str:
        """The id, under Agno's name."""
        return self.id

    def as_dict(self) -> dict[str, Any]:
        """JSON values only: what BASIC, the CLI and the admin API show."""
        return {
            "id": self.id,
            "text": self.text,
            "memory": self.text,
            "topics": list(self.topics),
            "input": self.input,
            "feedback": self.feedback,
            "source": self.source,
            "bot": self.bot,
            "session_id": self.session_id,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def check_text(text: Any, what: str = "a memory's text") -> str:
    """The text, stripped; InvalidValue when it is not text, empty or too long."""
    if not isinstance(text, str):
        raise InvalidValue(f"{what} must be a string, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise InvalidValue(f"{what} is empty; say what to remember")
    if len(stripped) > MAX_TEXT_CHARS:
        raise InvalidValue(
            f"{what} is {len(stripped)} characters; at most {MAX_TEXT_CHARS} are kept "
            "(a memory is a sentence or two)"
        )
    return stripped


def check_topics(topics: Any) -> tuple[str, ...]:
    """Topics as a tuple of distinct short strings; None is none."""
    if topics is None:
        return ()
    if isinstance(topics, str) or not isinstance(topics, Sequence):
        raise InvalidValue(
            f'topics must be a list of strings (["work", "family"]), got {type(topics).__name__}'
        )
    if len(topics) > MAX_TOPICS:
        raise InvalidValue(f"at most {MAX_TOPICS} topics, got {len(topics)}")
    kept: dict[str, None] = {}
    for topic in topics:
        if not isinstance(topic, str):
            raise InvalidValue(f"each topic must be a string, got {type(topic).__name__}")
        name = " ".join(topic.split())
        if not name:
            raise InvalidValue("a topic is empty")
        if len(name) > MAX_TOPIC_CHARS:
            raise InvalidValue(f"a topic is longer than {MAX_TOPIC_CHARS} characters")
        kept[name] = None
    return tuple(kept)


def check_note(value: Any, what: str, limit: int) -> str | None:
    """An optional text field (``input``, ``feedback``): None, or a string of at most ``limit``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValue(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidValue(f"{what} is {len(value)} characters; at most {limit} are kept")
    return value or None


def check_id(memory_id: Any) -> str:
    """A memory id as given: a non-empty string of sensible length."""
    if not isinstance(memory_id, str) or not memory_id.strip():
        raise InvalidValue(f"a memory id must be a non-empty string, got {memory_id!r:.80}")
    if len(memory_id) > MAX_ID_CHARS:
        raise InvalidValue(f"a memory id is at most {MAX_ID_CHARS} characters")
    return memory_id.strip()


def check_ids(ids: Any) -> list[str]:
    """A list of memory ids (``delete_many``), each checked, duplicates dropped."""
    if isinstance(ids, str) or not isinstance(ids, Sequence):
        raise InvalidValue(f"ids must be a list of memory ids, got {type(ids).__name__}")
    if len(ids) > MAX_IDS:
        raise InvalidValue(f"at most {MAX_IDS} ids at once, got {len(ids)}")
    return list(dict.fromkeys(check_id(i) for i in ids))
