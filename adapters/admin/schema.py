"""The admin API's request and answer shapes, as pydantic models.

Requests are parsed with them (a wrong field is a 422 naming it), answers are passed through
them before they leave, and the OpenAPI document is generated from them: the document cannot
drift from what the routes accept and return.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from mnemobot.runtime.memories import (
    MAX_FEEDBACK_CHARS,
    MAX_INPUT_CHARS,
    MAX_TEXT_CHARS,
    MAX_TOPIC_CHARS,
    MAX_TOPICS,
)

__all__ = [
    "AccountLink",
    "AuditAnswer",
    "BotMemoryAnswer",
    "BotsAnswer",
    "Deleted",
    "ErrorAnswer",
    "ExportDocument",
    "ForgetReceipt",
    "KeyWrite",
    "Linked",
    "MemoriesAnswer",
    "MemoriesDeleted",
    "MemoryEdit",
    "MemoryIds",
    "MemoryNote",
    "MemoryNoteWrite",
    "MemoryRow",
    "MemoryWrite",
    "PersonCreated",
    "PersonNew",
    "PromptPreview",
    "PromptRequest",
    "RecallAnswer",
    "SearchAnswer",
    "Unlinked",
    "UserDetail",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class MemoryWrite(_Body):
    """A value for a key of a person's memory."""

    value: JsonValue = Field(
        description="Any JSON value except the empty string (use DELETE to remove a key)."
    )
    ttl: float | None = Field(
        default=None,
        ge=0,
        lt=1e10,
        description="Seconds until the key expires; 0 = never; omitted = the retention policy.",
    )
    memory_type: Literal["preference", "fact", "context"] | None = Field(
        default=None, description="Omitted: from the key's prefix (fact_, ctx_, pref_)."
    )


_TEXT = Field(
    min_length=1,
    max_length=MAX_TEXT_CHARS,
    description="The memory's text (seed 004's `memory`), a sentence or two.",
)
_TOPICS = Field(
    default=None,
    max_length=MAX_TOPICS,
    description=f"Short topic words, at most {MAX_TOPICS} of {MAX_TOPIC_CHARS} characters.",
)


class MemoryNoteWrite(_Body):
    """A new free-text memory about a person."""

    memory: str = _TEXT
    topics: list[str] | None = _TOPICS
    input: str | None = Field(
        default=None, max_length=MAX_INPUT_CHARS, description="What the person said it came from."
    )
    feedback: str | None = Field(default=None, max_length=MAX_FEEDBACK_CHARS)


class MemoryEdit(_Body):
    """A change to a free-text memory; what is left out is kept."""

    memory: str | None = Field(
        default=None, min_length=1, max_length=MAX_TEXT_CHARS, description="The new text."
    )
    topics: list[str] | None = Field(
        default=None, max_length=MAX_TOPICS, description="Replaces the topics."
    )
    input: str | None = Field(default=None, max_length=MAX_INPUT_CHARS)
    feedback: str | None = Field(default=None, max_length=MAX_FEEDBACK_CHARS)


class MemoryIds(_Body):
    """Which memories to delete at once, all or none."""

    ids: list[str] = Field(min_length=1, max_length=1000)


class KeyWrite(_Body):
    """A value for a fact or a key of a bot's memory."""

    value: JsonValue = Field(description="Any JSON value except the empty string.")


class PersonNew(_Body):
    """A person to create before they first write: an e-mail, channel accounts, or both."""

    name: str | None = Field(
        default=None, max_length=255, description="Their name (default: the platform's)."
    )
    email: str | None = Field(default=None, max_length=320)
    accounts: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Channel accounts as kind:external_id: telegram:123456789, "
        "slack:TEAM:USER, console:NAME.",
    )


class AccountLink(_Body):
    """A channel account to tie to a person."""

    account: str = Field(min_length=1, max_length=300, description="kind:external_id")


class PromptRequest(_Body):
    """Which prompt to preview: the bot's, for this person, answering this message."""

    user: str = Field(min_length=1, max_length=300, description="User id or kind:external_id.")
    bot: str = Field(min_length=1, max_length=128)
    message: str = Field(default="Hello!", min_length=1, max_length=8000)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorAnswer(_Out):
    error: str = Field(description="What went wrong and what to do, in one sentence.")
    detail: list[dict[str, Any]] | None = Field(
        default=None, description="For an invalid body: one entry per wrong field."
    )


class IdentityRef(_Out):
    kind: str
    external_id: str


class UserSummary(_Out):
    id: str
    display_name: str
    name: str | None = Field(
        description="The name the bots learned (user memory name, fact_name, ...), else the "
        "display name; what the inspector lists a person by."
    )
    email: str | None
    language: str | None
    created_at: str
    identities: list[IdentityRef]


class SearchAnswer(_Out):
    users: list[UserSummary]


class UserInfo(_Out):
    id: str
    display_name: str
    name: str | None = Field(description="The name the bots learned, else the display name.")
    email: str | None
    language: str | None
    created_at: str


class IdentityRow(_Out):
    id: str = Field(description="Use it to unlink this account.")
    channel_kind: str
    external_id: str
    display_name: str
    created_at: str


class MemoryRow(_Out):
    key: str
    value: JsonValue
    memory_type: str | None
    ttl: str | None = Field(description="When the key expires (UTC), or null for never.")
    created_at: str | None
    updated_at: str


class FactChange(_Out):
    id: str
    value: JsonValue
    action: str = Field(description="add, update or delete.")
    source: str = Field(description="bot (code), extraction (the model) or admin.")
    session_id: str | None
    bot: str | None
    model: str | None
    superseded_at: str | None
    created_at: str


class Fact(_Out):
    key: str
    live: bool = Field(description="False: deleted, only its history remains.")
    value: JsonValue
    ttl: str | None
    created_at: str | None
    updated_at: str | None
    history: list[FactChange]


class EpisodeRow(_Out):
    id: str
    bot: str
    conversation_id: str
    summary: str
    topics: JsonValue
    sentiment: str | None
    resolution: str | None
    created_at: str


class SessionKey(_Out):
    key: str
    value: JsonValue
    updated_at: str


class TurnRow(_Out):
    role: str
    bot: str
    text: str
    created_at: str


class SummaryState(_Out):
    status: str = Field(
        description="pending or running (the episode worker has yet to finish), done, skipped "
        "(too short, or summaries off) or failed"
    )
    reason: str | None = Field(description="Why it was skipped or failed.")


class SessionRow(_Out):
    id: str
    channel: str
    chat_id: str
    active_bot: str
    user_messages: int
    started_at: str
    last_activity_at: str
    ended_at: str | None
    end_reason: str | None
    memory: list[SessionKey] = Field(description="Session scope (SET/GET), while it is open.")
    context: list[SessionKey] = Field(description="Session context (SET CONTEXT).")
    temp: list[SessionKey] = Field(
        description="Temp memory (ctx.temp, SET TEMP) of the dialog or flow running now."
    )
    turns: list[TurnRow] = Field(description="The most recent turns, oldest first.")
    summary: SummaryState | None = Field(
        description="Where this session's episode stands once it ended; null while open."
    )


class MemoryNote(_Out):
    """A free-text memory about a person (seed 004's ``UserMemory``)."""

    id: str
    text: str
    memory: str = Field(description="The text again, under seed 004's name.")
    topics: list[str]
    input: str | None
    feedback: str | None
    source: str = Field(description="Who made the last change: bot, agentic, admin or cli.")
    bot: str | None
    session_id: str | None = Field(description="The session the last change came from.")
    created_at: str
    updated_at: str


class MemoriesAnswer(_Out):
    user_id: str
    memories: list[MemoryNote] = Field(description="Oldest first.")


class MemoriesDeleted(_Out):
    deleted: list[str] = Field(description="The ids deleted.")


class UserDetail(_Out):
    user: UserInfo
    identities: list[IdentityRow]
    memory: list[MemoryRow] = Field(description="User scope, every live key (facts included).")
    facts: list[Fact]
    memories: list[MemoryNote] = Field(description="Free-text memories, oldest first.")
    episodes: list[EpisodeRow]
    sessions: list[SessionRow] = Field(description="Open sessions first, then the latest.")


class BotInfo(_Out):
    name: str
    description: str
    kind: Literal["dialog", "python", "llm"]


class BotsAnswer(_Out):
    bots: list[BotInfo]


class BotMemoryRow(_Out):
    key: str
    value: JsonValue
    created_at: str | None
    updated_at: str


class BotMemoryAnswer(_Out):
    bot: str
    memory: list[BotMemoryRow]


class PersonCreated(_Out):
    id: str = Field(description="The new person's user id.")
    display_name: str
    email: str | None
    accounts: list[str] = Field(description="Their accounts, as kind:external_id.")


class Linked(_Out):
    linked: str = Field(description="The account, as kind:external_id.")
    user_id: str
    merged_from: str | None = Field(
        description="The person the account had (it had written before), merged into this one."
    )


class Deleted(_Out):
    deleted: str


class Unlinked(_Out):
    unlinked: str = Field(description="The account, as kind:external_id.")
    sessions_ended: int


class ForgetReceipt(_Out):
    forgotten: str
    removed: dict[str, int] = Field(description="Rows removed, per table (as `mnemobot forget`).")


class ExportDocument(BaseModel):
    """Everything held about the person, table by table (as `mnemobot export`)."""

    model_config = ConfigDict(extra="allow")
    user_id: str


class RecallResult(_Out):
    kind: Literal["turn", "episode", "fact", "earlier fact", "memory"]
    text: str
    date: str = Field(description="The day of the conversation (turns, episodes) or the write.")
    at: str
    score: float
    bot: str | None = None
    channel: str | None = None
    role: str | None = None
    key: str | None = None
    session_id: str | None = None
    id: str | None = Field(default=None, description="A memory's id (kind memory).")
    similarity: float | None = Field(
        default=None, description="Semantic recall: the cosine to the query."
    )


class RecallAnswer(_Out):
    user_id: str
    query: str
    results: list[RecallResult]


class PromptItemOut(_Out):
    section: str
    label: str
    text: str
    tokens: int
    included: bool
    reason: str
    detail: str = Field(default="", description="Where it came from and its scores.")


class PromptPreview(_Out):
    user_id: str
    bot: str
    session_id: str | None
    tokens: int
    budget: int
    reserve: int
    counted_with: Literal["tokenizer", "estimate"]
    messages: list[dict[str, str]]
    items: list[PromptItemOut]
    report: str = Field(description="The same text `mnemobot prompt` prints.")


class AuditEntryOut(_Out):
    id: int
    at: str
    actor: str
    action: str
    route: str
    user_id: str | None
    bot: str | None
    target: str | None
    details: JsonValue


class AuditAnswer(_Out):
    entries: list[AuditEntryOut]
