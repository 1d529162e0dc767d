"""The schema: one sqlmodel table per thing mnemobot remembers.

Ids are UUID strings (portable across SQLite and PostgreSQL, readable in exports). Times are
naive UTC. JSON values use ``JSON`` on SQLite and ``JSONB`` on PostgreSQL. Every table that
holds something about a person carries ``user_id`` so that forget and export can find it;
``PERSONAL_TABLES`` lists them and a test checks the list is complete.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    LargeBinary,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

__all__ = [
    "AUDIT_LOG",
    "BOT_MEMORY",
    "EPISODES",
    "FACT_HISTORY",
    "IDENTITIES",
    "INBOX",
    "JOBS",
    "LINK_ATTEMPTS",
    "LINK_CODES",
    "LLM_USAGE",
    "MERGES",
    "OUTBOX",
    "PERSONAL_TABLES",
    "RECALL_VECTORS",
    "SESSIONS",
    "SESSION_MEMORY",
    "TURNS",
    "USERS",
    "USER_MEMORIES",
    "USER_MEMORY",
    "AuditEntry",
    "BotMemory",
    "Episode",
    "FactHistory",
    "Identity",
    "InboxEvent",
    "Job",
    "LLMUsage",
    "LinkAttempt",
    "LinkCode",
    "Merge",
    "Outbox",
    "RecallVector",
    "Session",
    "SessionMemory",
    "Turn",
    "User",
    "UserMemory",
    "UserMemoryNote",
    "json_type",
    "new_id",
]


def new_id() -> str:
    """A fresh UUID4 as a string."""
    return str(uuid.uuid4())


def json_type() -> Any:
    """JSON on SQLite, JSONB on PostgreSQL."""
    return JSON().with_variant(JSONB(), "postgresql")


def _json_column(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(json_type(), nullable=nullable))


class User(SQLModel, table=True):
    """A person, whatever channels they write from."""

    __tablename__ = "users"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    display_name: str = Field(default="", max_length=255, index=True)
    email: str | None = Field(default=None, max_length=320)
    language: str | None = Field(default=None, max_length=35)
    created_at: datetime


class Identity(SQLModel, table=True):
    """One channel account of a person: ``(channel_kind, external_id) -> user_id``."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("channel_kind", "external_id"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    channel_kind: str = Field(max_length=32)
    external_id: str = Field(max_length=255)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=36)
    display_name: str = Field(default="", max_length=255)
    created_at: datetime


class UserMemory(SQLModel, table=True):
    """User scope and user facts: per person, shared by every bot."""

    __tablename__ = "user_memory"
    __table_args__ = (
        UniqueConstraint("user_id", "key"),
        Index("ix_user_memory_recent", "user_id", "updated_at"),  # the prompt's newest keys
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    user_id: str = Field(foreign_key="users.id", max_length=36)
    key: str = Field(max_length=255)
    value: Any = _json_column()
    memory_type: str = Field(default="preference", max_length=50)
    ttl: datetime | None = Field(default=None, index=True)
    created_at: datetime
    updated_at: datetime


class UserMemoryNote(SQLModel, table=True):
    """A free-text memory about a person (seed 004's ``UserMemory``), beside key/value memory.

    ``memory`` is the text, named as the seed names it; ``input`` is what it was learnt from,
    ``feedback`` an optional remark on it. ``source``, ``bot`` and ``session_id`` say where
    the last change came from (a bot's code, the model after a session, an operator).
    """

    __tablename__ = "user_memories"
    __table_args__ = (Index("ix_user_memories_recent", "user_id", "updated_at"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    user_id: str = Field(foreign_key="users.id", max_length=36)
    memory: str
    topics: Any = _json_column()
    input: str | None = None
    feedback: str | None = None
    source: str = Field(default="bot", max_length=32)  # bot, agentic, admin, cli
    bot: str | None = Field(default=None, max_length=128)
    session_id: str | None = Field(default=None, max_length=36)
    created_at: datetime
    updated_at: datetime


class BotMemory(SQLModel, table=True):
    """Bot scope: per bot, shared by every person."""

    __tablename__ = "bot_memory"
    __table_args__ = (UniqueConstraint("bot", "key"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    bot: str = Field(max_length=128)
    key: str = Field(max_length=255)
    value: Any = _json_column()
    created_at: datetime
    updated_at: datetime


class Session(SQLModel, table=True):
    """One stretch of conversation; ends after inactivity or explicitly."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_open", "conversation", "ended_at"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    conversation: str = Field(max_length=600)
    channel: str = Field(max_length=128)
    chat_id: str = Field(max_length=255)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=36)
    active_bot: str = Field(max_length=128)
    dialog_state: Any = _json_column()
    user_messages: int = 0
    started_at: datetime
    last_activity_at: datetime
    ended_at: datetime | None = None
    end_reason: str | None = Field(default=None, max_length=32)


class SessionMemory(SQLModel, table=True):
    """Session scope (``SET``/``GET``) and session context (``SET CONTEXT``)."""

    __tablename__ = "session_memory"
    __table_args__ = (UniqueConstraint("session_id", "kind", "key"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    session_id: str = Field(foreign_key="sessions.id", max_length=36)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=36)
    kind: str = Field(default="memory", max_length=16)  # "memory" or "context"
    key: str = Field(max_length=255)
    value: Any = _json_column()
    updated_at: datetime


class Turn(SQLModel, table=True):
    """The turn log: who said what, when, to which bot."""

    __tablename__ = "turns"
    __table_args__ = (
        Index("ix_turns_session", "session_id", "created_at"),
        Index("ix_turns_created_at", "created_at"),  # the janitor's age limit (0007)
        Index("ix_turns_session_line", "session_id", "line"),  # a line's neighbours (0011)
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    session_id: str = Field(foreign_key="sessions.id", max_length=36)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=36)
    bot: str = Field(max_length=128)
    role: str = Field(max_length=16)  # "user" or "bot"
    seq: int = 0  # order within one turn (its rows share created_at)
    text: str
    event_id: str | None = Field(default=None, max_length=255)
    created_at: datetime
    # its place in its session, from 0 in the order said (None: written before 0011 numbered
    # lines, by an older worker); recall reads a hit's neighbours by it (recall.around)
    line: int | None = None


class Episode(SQLModel, table=True):
    """A summary of one finished conversation (filled by the episode worker)."""

    __tablename__ = "episodes"
    __table_args__ = (Index("ix_episodes_recent", "user_id", "created_at"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=36)
    conversation_id: str = Field(max_length=36)
    bot: str = Field(max_length=128)
    summary: str = ""
    topics: Any = _json_column()
    sentiment: str | None = Field(default=None, max_length=32)
    resolution: str | None = Field(default=None, max_length=32)
    details: Any = _json_column()
    created_at: datetime


class FactHistory(SQLModel, table=True):
    """Every change to a fact, with where it came from; superseded values stay until forget."""

    __tablename__ = "fact_history"
    __table_args__ = (Index("ix_fact_history_user_key", "user_id", "key", "created_at"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    user_id: str = Field(foreign_key="users.id", max_length=36)
    key: str = Field(max_length=255)
    value: Any = _json_column()
    action: str = Field(max_length=16)  # add, update, delete
    source: str = Field(default="bot", max_length=32)  # bot (code), extraction (the LLM), admin
    session_id: str | None = Field(default=None, max_length=36)
    bot: str | None = Field(default=None, max_length=128)
    model: str | None = Field(default=None, max_length=255)
    superseded_at: datetime | None = None
    created_at: datetime


class LLMUsage(SQLModel, table=True):
    """Tokens and cost of each model call, per bot and person."""

    __tablename__ = "llm_usage"
    __table_args__ = (Index("ix_llm_usage_bot", "bot", "created_at"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    user_id: str | None = Field(default=None, foreign_key="users.id", index=True, max_length=36)
    bot: str = Field(max_length=128)
    purpose: str = Field(default="answer", max_length=32)  # answer, episode, facts
    model: str = Field(max_length=255)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_ms: int = 0
    ok: bool = True
    created_at: datetime


class Job(SQLModel, table=True):
    """A durable unit of deferred work, e.g. ``session_ended`` for the episode worker."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_due", "status", "run_after"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    kind: str = Field(max_length=64)
    user_id: str | None = Field(default=None, index=True, max_length=36)
    payload: Any = _json_column()
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    last_error: str | None = None
    run_after: datetime
    created_at: datetime


class InboxEvent(SQLModel, table=True):
    """A platform event, stored before it is handled; the dedupe point."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("channel", "event_id"),
        Index("ix_inbox_conversation", "conversation", "status", "seq"),
        Index("ix_inbox_unfinished", "status", "received_at"),
        # Rows still holding a payload, by age: the janitor clears them (0007).
        Index(
            "ix_inbox_payload_kept",
            "handled_at",
            sqlite_where=text("payload IS NOT NULL"),
            postgresql_where=text("payload IS NOT NULL"),
        ),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    channel: str = Field(max_length=128)
    event_id: str = Field(max_length=255)
    user_id: str | None = Field(default=None, index=True, max_length=36)
    payload: Any = _json_column()
    status: str = Field(default="received", max_length=16)  # received, done, failed
    error: str | None = None
    received_at: datetime
    handled_at: datetime | None = None
    # The order events were stored in, across worker processes (a sequence on PostgreSQL):
    # the turn holding a conversation answers its earlier unanswered events first.
    conversation: str | None = Field(default=None, max_length=1024)
    seq: int | None = Field(default=None, sa_type=BigInteger)
    claimed_at: datetime | None = None  # a reclaimer took this event over at this time


class Outbox(SQLModel, table=True):
    """Replies committed with their turn; each is sent once and marked sent."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "created_at"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    inbox_id: str | None = Field(default=None, max_length=36)
    channel: str = Field(max_length=128)
    chat_id: str = Field(max_length=255)
    user_id: str | None = Field(default=None, index=True, max_length=36)
    bot: str = Field(max_length=128)
    seq: int = 0
    text: str
    status: str = Field(default="pending", max_length=16)  # pending, sent
    created_at: datetime
    sent_at: datetime | None = None
    claimed_at: datetime | None = None  # a worker is sending it since; None: free to take


class LinkCode(SQLModel, table=True):
    """A one-time code that lets another account join this user."""

    __tablename__ = "link_codes"
    code: str = Field(primary_key=True, max_length=6)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=36)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class LinkAttempt(SQLModel, table=True):
    """Each ``/link CODE`` try, so guessing codes can be rate-limited."""

    __tablename__ = "link_attempts"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=36)
    ok: bool = False
    attempted_at: datetime


class Merge(SQLModel, table=True):
    """The record of two users becoming one; kept for audit (user ids only, no content)."""

    __tablename__ = "merges"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    from_user_id: str = Field(max_length=36, index=True)
    into_user_id: str = Field(max_length=36, index=True)
    details: Any = _json_column()
    merged_at: datetime


class AuditEntry(SQLModel, table=True):
    """One write made through the admin API: who, when, what (never a value or a token).

    Not a personal table: forgetting a person keeps these rows, so the record that they were
    forgotten, and by whom, survives. A row names the person by id only
    (``subject_user_id``, like ``merges``) and holds no memory value, no message text.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)
    id: int | None = Field(default=None, primary_key=True)  # increasing: the order of writes
    at: datetime
    actor: str = Field(max_length=128)  # the name given with the admin token, or "admin"
    action: str = Field(max_length=64)  # e.g. memory.set, fact.delete, user.forget
    route: str = Field(max_length=255)  # method and path template of the request
    subject_user_id: str | None = Field(default=None, max_length=36, index=True)
    bot: str | None = Field(default=None, max_length=128)
    target: str | None = Field(default=None, max_length=255)  # a key, an episode or identity id
    details: Any = _json_column()  # counts only (e.g. forget's rows removed per table)


class RecallVector(SQLModel, table=True):
    """The embedding of one turn, episode, fact, earlier fact value or free-text memory, for
    semantic recall (``[memory] embedding``; ``storage.vectors.VectorKind``).

    Computed by the episode worker (after a session ends, and in catch-up passes), never on
    the turn path. The vector is little-endian float32, normalised to length 1 (a dot product
    is the cosine), so any process can compare it without an extension; ``dims`` and
    ``model`` say what it is, so changing the model leaves the old vectors unused, not mixed
    in (``dims`` 0: a sensitive row kept from the model). Deleted with its source row, or
    when the row's text changes, by triggers (migrations 0006 and 0009), whatever deletes
    it: forget, retention, roll-up, TTL expiry.
    """

    __tablename__ = "recall_vectors"
    __table_args__ = (Index("ix_recall_vectors_person", "user_id", "model", "source_kind"),)
    source_kind: str = Field(primary_key=True, max_length=16)  # "turn", "fact", "memory"...
    source_id: str = Field(primary_key=True, max_length=36)
    model: str = Field(primary_key=True, max_length=255)
    user_id: str = Field(max_length=36)
    dims: int
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime


# Tables whose rows belong to one person, with the column naming them. Forget deletes from
# each, export reads each; tests/storage/test_privacy.py fails if a new table is forgotten here.
PERSONAL_TABLES: dict[str, str] = {
    "user_memory": "user_id",
    "user_memories": "user_id",
    "session_memory": "user_id",
    "turns": "user_id",
    "episodes": "user_id",
    "jobs": "user_id",
    "inbox": "user_id",
    "outbox": "user_id",
    "link_codes": "user_id",
    "link_attempts": "user_id",
    "fact_history": "user_id",
    "llm_usage": "user_id",
    "sessions": "user_id",
    "identities": "user_id",
    "recall_vectors": "user_id",
    "users": "id",
}


def _table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


# The Core tables, for statements built once (sqlmodel does not type ``Model.__table__``).
USERS = _table("users")
IDENTITIES = _table("identities")
USER_MEMORY = _table("user_memory")
USER_MEMORIES = _table("user_memories")
BOT_MEMORY = _table("bot_memory")
SESSIONS = _table("sessions")
SESSION_MEMORY = _table("session_memory")
TURNS = _table("turns")
EPISODES = _table("episodes")
JOBS = _table("jobs")
INBOX = _table("inbox")
OUTBOX = _table("outbox")
LINK_CODES = _table("link_codes")
LINK_ATTEMPTS = _table("link_attempts")
MERGES = _table("merges")
FACT_HISTORY = _table("fact_history")
LLM_USAGE = _table("llm_usage")
AUDIT_LOG = _table("audit_log")
RECALL_VECTORS = _table("recall_vectors")
