"""Linking two accounts of one person: a one-time code, then a merge of the two users.

``/link`` on one account answers a 6-digit code (valid ``link.code_ttl`` seconds, single
use). ``/link CODE`` on another account merges that account's user into the code's owner:
identities, sessions, turns, episodes and facts of both are kept; for a memory key both
hold, the newer ``updated_at`` wins. Wrong codes are counted per user and refused after
``link.max_attempts`` within the code's lifetime, so six digits cannot be guessed.
Every merge is recorded in ``merges``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.errors import LinkError
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import (
    LINK_ATTEMPTS,
    LINK_CODES,
    MERGES,
    PERSONAL_TABLES,
    USER_MEMORY,
    USERS,
    User,
    new_id,
)

__all__ = ["LinkService", "MergeResult"]

_codes = LINK_CODES.c
_attempts = LINK_ATTEMPTS.c
_memory = USER_MEMORY.c
_users = USERS.c

# Tables whose rows simply change owner in a merge (user memory has its own rule).
_MOVED = [t for t in PERSONAL_TABLES if t not in ("users", "user_memory", "link_codes")]


@dataclass(frozen=True, slots=True)
class MergeResult:
    """What a merge did: the surviving user and what moved."""

    into_user_id: str
    from_user_id: str
    keys_moved: int
    keys_replaced: int
    keys_kept: int


class LinkService:
    """Issues and redeems link codes."""

    def __init__(
        self, db: Database, clock: Clock, *, code_ttl: int = 600, max_attempts: int = 5
    ) -> None:
        self.db = db
        self.clock = clock
        self.code_ttl = code_ttl
        self.max_attempts = max_attempts

    def issue(self, user_id: str) -> str:
        """A fresh code for ``user_id``; earlier unused codes of that user stop working."""
        now = self.clock.now()
        with self.db.write() as conn:
            conn.execute(delete(LINK_CODES).where(_codes.user_id == user_id))
            for _ in range(20):
                code = f"{secrets.randbelow(1_000_000):06d}"
                taken = conn.execute(select(_codes.code).where(_codes.code == code)).first()
                if taken is None:
                    conn.execute(
                        insert(LINK_CODES).values(
                            code=code,
                            user_id=user_id,
                            created_at=now,
                            expires_at=now + timedelta(seconds=self.code_ttl),
                        )
                    )
                    return code
        raise LinkError("could not issue a link code right now; try again")

    def redeem(self, user_id: str, code: str) -> MergeResult:
        """Merge ``user_id`` into the owner of ``code``; raise LinkError if it is no good."""
        now = self.clock.now()
        window = now - timedelta(seconds=self.code_ttl)
        code = code.strip()
        with self.db.write() as conn:
            failures = conn.execute(
                select(func.count()).where(
                    _attempts.user_id == user_id,
                    _attempts.ok.is_(False),
                    _attempts.attempted_at > window,
                )
            ).scalar_one()
            if failures >= self.max_attempts:
                raise LinkError(
                    f"too many wrong link codes; wait {self.code_ttl // 60} minutes and "
                    "ask for a new code with /link"
                )
            row = conn.execute(select(LINK_CODES).where(_codes.code == code)).first()
            problem = None
            if row is None or not code.isdigit():
                problem = "that link code is not valid"
            elif row.used_at is not None:
                problem = "that link code was already used"
            elif row.expires_at <= now:
                problem = "that link code has expired; ask for a new one with /link"
            elif row.user_id == user_id:
                problem = "this account is already linked to that one"
            if problem is not None:
                conn.execute(
                    insert(LINK_ATTEMPTS).values(
                        id=new_id(), user_id=user_id, ok=False, attempted_at=now
                    )
                )
        if problem is not None:  # recorded above, committed, then refused
            raise LinkError(problem)
        assert row is not None
        with self.db.write() as conn:
            used = conn.execute(
                update(LINK_CODES)
                .where(_codes.code == code, _codes.used_at.is_(None))
                .values(used_at=now)
            ).rowcount
            if not used:
                raise LinkError("that link code was already used")
            return merge_users(conn, from_user_id=user_id, into_user_id=row.user_id, now=now)


def merge_users(conn: Connection, *, from_user_id: str, into_user_id: str, now: Any) -> MergeResult:
    """Fold ``from_user_id`` into ``into_user_id`` inside the caller's transaction."""
    theirs = {
        r.key: r for r in conn.execute(select(USER_MEMORY).where(_memory.user_id == into_user_id))
    }
    moved = replaced = kept = 0
    for mine in conn.execute(select(USER_MEMORY).where(_memory.user_id == from_user_id)).all():
        other = theirs.get(mine.key)
        if other is None:
            conn.execute(
                update(USER_MEMORY).where(_memory.id == mine.id).values(user_id=into_user_id)
            )
            moved += 1
        elif mine.updated_at > other.updated_at:
            conn.execute(
                update(USER_MEMORY)
                .where(_memory.id == other.id)
                .values(
                    value=mine.value,
                    memory_type=mine.memory_type,
                    ttl=mine.ttl,
                    updated_at=mine.updated_at,
                )
            )
            replaced += 1
        else:
            kept += 1
    conn.execute(delete(USER_MEMORY).where(_memory.user_id == from_user_id))
    meta = User.metadata
    for name in _MOVED:
        table = meta.tables[name]
        conn.execute(
            update(table).where(table.c.user_id == from_user_id).values(user_id=into_user_id)
        )
    conn.execute(delete(LINK_CODES).where(_codes.user_id == from_user_id))
    source = conn.execute(select(USERS).where(_users.id == from_user_id)).one()
    target = conn.execute(select(USERS).where(_users.id == into_user_id)).one()
    conn.execute(
        update(USERS)
        .where(_users.id == into_user_id)
        .values(
            email=target.email or source.email,
            language=target.language or source.language,
        )
    )
    conn.execute(delete(USERS).where(_users.id == from_user_id))
    result = MergeResult(into_user_id, from_user_id, moved, replaced, kept)
    conn.execute(
        insert(MERGES).values(
            id=new_id(),
            from_user_id=from_user_id,
            into_user_id=into_user_id,
            details={"keys_moved": moved, "keys_replaced": replaced, "keys_kept": kept},
            merged_at=now,
        )
    )
    return result
