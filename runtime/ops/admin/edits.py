"""Correcting what is held about one person, item by item, each change audited.

Memory keys, facts (with their ``fact_history``, source ``admin``), episodes and linked
accounts; and people created before they first write (:mod:`runtime.people.seeding`).
Every write first checks that the person still exists (on PostgreSQL it holds them till
commit) and runs in one transaction together with its audit record.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from mnemobot.runtime.errors import InvalidValue, MemoryFull
from mnemobot.runtime.memory.policy import UserMemoryPolicy
from mnemobot.runtime.memory.values import check_key, check_value, memory_type_for
from mnemobot.runtime.ops.admin.base import Actor, AdminConflict, AdminNotFound, AdminPart, iso
from mnemobot.runtime.ops.audit import AuditRecord
from mnemobot.runtime.people.hold import hold_person_in
from mnemobot.runtime.people.seeding import add_person_in, link_account_in
from mnemobot.runtime.storage.tables import (
    EPISODES,
    FACT_HISTORY,
    IDENTITIES,
    SESSIONS,
    USER_MEMORY,
    USERS,
    new_id,
)

__all__ = ["PersonEdits"]

_u = USERS.c
_i = IDENTITIES.c
_um = USER_MEMORY.c
_h = FACT_HISTORY.c
_e = EPISODES.c
_s = SESSIONS.c


class PersonEdits(AdminPart):
    """Set and delete a person's memory keys and facts; delete episodes; unlink accounts."""

    def policy(self) -> UserMemoryPolicy:
        """The rules of an operator's user-memory write: the CLI's (no bot's own limits)."""
        memory = self.runtime.settings.memory
        return UserMemoryPolicy(max_value_bytes=memory.max_value_bytes, retention=memory.retention)

    def user_key(self, user_id: str, key: str) -> dict[str, Any] | None:
        rows = self.runtime.memory.read_rows(self.runtime.memory.user_ref(user_id, self.policy()))
        for r in rows:
            if r.key == key:
                return {
                    "key": r.key,
                    "value": self.runtime.bots.sensitive.shown(r.key, r.value),
                    "memory_type": r.memory_type,
                    "ttl": iso(r.ttl),
                    "created_at": iso(r.created_at),
                    "updated_at": iso(r.updated_at),
                }
        return None

    def set_user_key(
        self,
        actor: Actor,
        user_id: str,
        key: str,
        value: Any,
        *,
        ttl: float | None = None,
        memory_type: str | None = None,
        action: str = "memory.set",
    ) -> dict[str, Any]:
        """Store ``value`` under ``key`` in the person's memory; returns the stored row."""
        check_key(key)
        if value == "":
            raise InvalidValue("an empty string is not stored; use DELETE to remove a key")
        policy = self.policy()
        parsed = json.loads(check_value(value, policy.max_value_bytes))
        kind = memory_type_for(key, memory_type)
        with self.db.write() as conn:
            hold_person_in(conn, user_id)
            now = self.clock.now()
            old = self._current(conn, user_id, key, now)
            kind = kind or (old["memory_type"] if old is not None else "preference")
            sql = self.runtime.memory.user_sql
            created = sql.set(
                conn,
                {"user_id": user_id},
                key,
                parsed,
                now,
                memory_type=kind,
                ttl=policy.expiry(key, ttl, now),
            )
            if created and sql.count(conn, {"user_id": user_id}, now) > policy.max_keys:
                raise MemoryFull(policy.max_keys)
            if kind == "fact" or (old is not None and old["memory_type"] == "fact"):
                was_fact = old is not None and old["memory_type"] == "fact"
                self._history(
                    conn,
                    user_id,
                    key,
                    old,
                    parsed if kind == "fact" else None,
                    ("update" if was_fact else "add") if kind == "fact" else "delete",
                    now,
                )
            self.audit.record_in(
                conn, AuditRecord(actor.name, action, actor.route, user_id=user_id, target=key)
            )
        stored = self.user_key(user_id, key)
        assert stored is not None
        return stored

    def delete_user_key(
        self, actor: Actor, user_id: str, key: str, *, only_facts: bool = False
    ) -> dict[str, Any]:
        """Remove a key (or, with ``only_facts``, a fact); AdminNotFound when there is none."""
        check_key(key)
        with self.db.write() as conn:
            hold_person_in(conn, user_id)
            now = self.clock.now()
            old = self._current(conn, user_id, key, now)
            what = "fact" if only_facts else "key"
            if old is None:
                raise AdminNotFound(f"user {user_id} has no {what} {key!r}")
            if only_facts and old["memory_type"] != "fact":
                raise AdminConflict(
                    f"{key!r} is {old['memory_type']} memory, not a fact; delete it under /memory/"
                )
            conn.execute(delete(USER_MEMORY).where(_um.user_id == user_id, _um.key == key))
            if old["memory_type"] == "fact":
                self._history(conn, user_id, key, old, None, "delete", now)
            self.audit.record_in(
                conn,
                AuditRecord(
                    actor.name,
                    "fact.delete" if only_facts else "memory.delete",
                    actor.route,
                    user_id=user_id,
                    target=key,
                ),
            )
        return {"deleted": key}

    def set_fact(self, actor: Actor, user_id: str, key: str, value: Any) -> dict[str, Any]:
        """Write a fact (``memory_type = fact``) with an ``admin`` history row."""
        return self.set_user_key(actor, user_id, key, value, memory_type="fact", action="fact.set")

    @staticmethod
    def _current(conn: Connection, user_id: str, key: str, now: datetime) -> dict[str, Any] | None:
        row = (
            conn.execute(
                select(_um.value, _um.memory_type, _um.updated_at).where(
                    _um.user_id == user_id,
                    _um.key == key,
                    or_(_um.ttl.is_(None), _um.ttl > now),
                )
            )
            .mappings()
            .first()
        )
        return dict(row) if row is not None else None

    @staticmethod
    def _history(
        conn: Connection,
        user_id: str,
        key: str,
        old: dict[str, Any] | None,
        value: Any,
        action: str,
        now: datetime,
    ) -> None:
        """Close the key's open history and record this change (source ``admin``).

        A fact a bot wrote in code has no history yet: its value is recorded first, as the
        extraction does, so the history shows what the operator replaced.
        """
        open_rows = conn.execute(
            select(_h.action, _h.value).where(
                _h.user_id == user_id, _h.key == key, _h.superseded_at.is_(None)
            )
        ).all()
        conn.execute(
            update(FACT_HISTORY)
            .where(_h.user_id == user_id, _h.key == key, _h.superseded_at.is_(None))
            .values(superseded_at=now)
        )
        rows = []
        if (
            old is not None
            and old["memory_type"] == "fact"
            and not any(r.action != "delete" and r.value == old["value"] for r in open_rows)
        ):
            rows.append(
                {
                    "value": old["value"],
                    "action": "add",
                    "source": "bot",
                    "superseded_at": now,
                    "created_at": old["updated_at"],
                }
            )
        rows.append(
            {
                "value": value,
                "action": action,
                "source": "admin",
                "superseded_at": None,
                "created_at": now,
            }
        )
        for row in rows:
            conn.execute(
                insert(FACT_HISTORY).values(
                    id=new_id(),
                    user_id=user_id,
                    key=key,
                    session_id=None,
                    bot=None,
                    model=None,
                    **row,
                )
            )

    def create_person(
        self, actor: Actor, *, name: str | None, email: str | None, accounts: list[str]
    ) -> dict[str, Any]:
        """A person created before first contact (``mnemobot people add``); their accounts'
        first messages are theirs."""
        with self.db.write() as conn:
            user_id = add_person_in(
                conn, name=name, email=email, accounts=accounts, now=self.clock.now()
            )
            self.audit.record_in(
                conn, AuditRecord(actor.name, "user.create", actor.route, user_id=user_id)
            )
            user = conn.execute(select(USERS).where(_u.id == user_id)).mappings().one()
            held = conn.execute(
                select(_i.channel_kind, _i.external_id).where(_i.user_id == user_id)
            ).all()
        return {
            "id": user_id,
            "display_name": user["display_name"],
            "email": user["email"],
            "accounts": sorted(f"{r.channel_kind}:{r.external_id}" for r in held),
        }

    def link_account(self, actor: Actor, user_id: str, account: str) -> dict[str, Any]:
        """Tie ``account`` to the person (``mnemobot people link``); an account that wrote
        before has its person merged into this one."""
        with self.db.write() as conn:
            hold_person_in(conn, user_id)
            linked = link_account_in(conn, user_id, account, self.clock.now())
            self.audit.record_in(
                conn,
                AuditRecord(
                    actor.name,
                    "identity.link",
                    actor.route,
                    user_id=user_id,
                    target=linked.account,
                    details={"merged_from": linked.merged_from},
                ),
            )
        return {"linked": linked.account, "user_id": user_id, "merged_from": linked.merged_from}

    def delete_episode(self, actor: Actor, user_id: str, episode_id: str) -> dict[str, Any]:
        with self.db.write() as conn:
            hold_person_in(conn, user_id)
            gone = conn.execute(
                delete(EPISODES).where(_e.id == episode_id, _e.user_id == user_id)
            ).rowcount
            if not gone:
                raise AdminNotFound(f"user {user_id} has no episode {episode_id!r}")
            self.audit.record_in(
                conn,
                AuditRecord(
                    actor.name, "episode.delete", actor.route, user_id=user_id, target=episode_id
                ),
            )
        return {"deleted": episode_id}

    def unlink_identity(self, actor: Actor, user_id: str, identity_id: str) -> dict[str, Any]:
        """Detach one channel account from the person; its next message starts a new person.

        The last account is refused (AdminConflict): a person with no account can never be
        reached or speak again, so their memory would sit orphaned; forget them instead.
        The person's open sessions in that account's conversations are ended, so nothing of
        the session (its context, its dialog) carries over to whoever writes next from it.
        """
        with self.db.write() as conn:
            hold_person_in(conn, user_id)
            identity = (
                conn.execute(select(IDENTITIES).where(_i.id == identity_id, _i.user_id == user_id))
                .mappings()
                .first()
            )
            if identity is None:
                raise AdminNotFound(f"user {user_id} has no identity {identity_id!r}")
            count = conn.execute(
                select(func.count()).select_from(IDENTITIES).where(_i.user_id == user_id)
            ).scalar_one()
            if count <= 1:
                raise AdminConflict(
                    "this is the person's only account: unlinking it would leave their memory "
                    "unreachable; forget the person instead (DELETE /admin/api/users/ID)"
                )
            conn.execute(delete(IDENTITIES).where(_i.id == identity_id))
            suffix = f"|{identity['external_id']}"
            now = self.clock.now()
            ended = 0
            for session in conn.execute(
                select(_s.id, _s.conversation).where(_s.user_id == user_id, _s.ended_at.is_(None))
            ).all():
                if session.conversation.endswith(suffix):
                    ended += self.runtime.sessions.end_in(conn, session.id, "unlinked", now)
            account = f"{identity['channel_kind']}:{identity['external_id']}"
            self.audit.record_in(
                conn,
                AuditRecord(
                    actor.name,
                    "identity.unlink",
                    actor.route,
                    user_id=user_id,
                    target=account,
                    details={"sessions_ended": ended},
                ),
            )
        return {"unlinked": account, "sessions_ended": ended}
