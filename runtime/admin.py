"""See and correct what the bots remember about a person: the core behind the admin API.

The HTTP layer (``adapters/admin_api.py``) only parses requests and shapes answers; every
read and every correction lives here, so the same rules hold whoever calls them:

* every write runs in one transaction together with its audit record
  (:mod:`runtime.audit`): it happens whole, recorded, or not at all;
* values are checked as bots' writes are (:func:`check_key`, :func:`check_value`, the
  user-memory limits), so an operator cannot store what a bot could not read back;
* a fact written or deleted here gets a ``fact_history`` row with ``source = "admin"``,
  and any user-memory change that touches a fact does too, so provenance stays complete;
* forget and export are exactly the CLI's (:mod:`runtime.privacy`), plus an audit record
  that outlives the person's data and names them by id only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from runtime.answers import EPISODES_CONSIDERED, assemble_prompt, latest_session
from runtime.audit import AuditLog, AuditRecord
from runtime.errors import InvalidValue, MemoryFull, MnemobotError, UnknownUser
from runtime.facts import fact_history
from runtime.memory.policy import UserMemoryPolicy
from runtime.memory.store import MemoryScope
from runtime.memory.values import check_key, check_value, memory_type_for
from runtime.privacy import export_user, forget_user
from runtime.storage.tables import (
    EPISODES,
    FACT_HISTORY,
    IDENTITIES,
    SESSION_MEMORY,
    SESSIONS,
    TURNS,
    USER_MEMORY,
    USERS,
    new_id,
)

if TYPE_CHECKING:
    from runtime.pipeline import Runtime

__all__ = ["Actor", "Admin", "AdminConflict", "AdminNotFound"]

_u = USERS.c
_i = IDENTITIES.c
_um = USER_MEMORY.c
_h = FACT_HISTORY.c
_e = EPISODES.c
_s = SESSIONS.c
_sm = SESSION_MEMORY.c
_t = TURNS.c

SEARCH_LIMIT = 50
SESSIONS_SHOWN = 10
EPISODES_SHOWN = 100


class AdminNotFound(MnemobotError):
    """The key, fact, episode or identity named does not exist (for that person or bot)."""


class AdminConflict(MnemobotError):
    """The change asked for is refused as it stands (e.g. unlinking someone's last account)."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change, and through which route (both go to the audit log)."""

    name: str
    route: str


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _row(mapping: Any, *columns: str) -> dict[str, Any]:
    return {c: _iso(mapping[c]) for c in columns}


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Admin:
    """Inspection and correction of people's and bots' memory, on a started runtime.

    Args:
        runtime: the started runtime (its stores, bots, settings and clock are used).
        audit: where writes are recorded.
    """

    def __init__(self, runtime: Runtime, audit: AuditLog) -> None:
        self.runtime = runtime
        self.db = runtime.db
        self.clock = runtime.clock
        self.audit = audit

    # -- helpers ------------------------------------------------------------------------

    def policy(self) -> UserMemoryPolicy:
        """The rules of an operator's user-memory write: the CLI's (no bot's own limits)."""
        memory = self.runtime.settings.memory
        return UserMemoryPolicy(max_value_bytes=memory.max_value_bytes, retention=memory.retention)

    def resolve_user(self, ref: str) -> str:
        """A user id from an id or any reference ``mnemobot --user`` accepts; UnknownUser else."""
        return self.runtime.identity.find(ref)

    def _lock_user(self, conn: Connection, user_id: str) -> None:
        """Fail with UnknownUser if the person is gone; on PostgreSQL hold them till commit."""
        query = select(_u.id).where(_u.id == user_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        if conn.execute(query).first() is None:
            raise UnknownUser(f"no user {user_id!r} (forgotten meanwhile?)")

    def _check_bot(self, bot: str) -> str:
        return self.runtime.bots.get(bot).name

    # -- reading ------------------------------------------------------------------------

    def search(self, q: str, limit: int = SEARCH_LIMIT) -> list[dict[str, Any]]:
        """People whose id, display name, e-mail or channel account matches ``q``.

        ``kind:external_id`` and a bare external id match exactly; names and e-mails match
        as a case-insensitive substring.
        """
        q = q.strip()
        if not q:
            return []
        pattern = _like(q)
        kind, _, ext = q.partition(":")
        with self.db.read() as conn:
            by_identity = select(_i.user_id).where(
                or_(
                    _i.external_id == q,
                    (_i.channel_kind == kind) & (_i.external_id == ext),
                    func.lower(_i.display_name).like(pattern, escape="\\"),
                )
            )
            users = (
                conn.execute(
                    select(USERS)
                    .where(
                        or_(
                            _u.id == q,
                            func.lower(_u.display_name).like(pattern, escape="\\"),
                            func.lower(func.coalesce(_u.email, "")).like(pattern, escape="\\"),
                            _u.id.in_(by_identity),
                        )
                    )
                    .order_by(_u.display_name, _u.id)
                    .limit(max(1, min(limit, SEARCH_LIMIT)))
                )
                .mappings()
                .all()
            )
            ids = [u["id"] for u in users]
            identities = conn.execute(
                select(_i.user_id, _i.channel_kind, _i.external_id)
                .where(_i.user_id.in_(ids))
                .order_by(_i.created_at)
            ).all()
        accounts: dict[str, list[dict[str, str]]] = {i: [] for i in ids}
        for row in identities:
            accounts[row.user_id].append({"kind": row.channel_kind, "external_id": row.external_id})
        return [
            {
                **_row(u, "id", "display_name", "email", "language", "created_at"),
                "identities": accounts[u["id"]],
            }
            for u in users
        ]

    def user_detail(self, user_id: str, turns: int = 20) -> dict[str, Any]:
        """Everything remembered about a person, by scope, with metadata and provenance."""
        now = self.clock.now()
        with self.db.read() as conn:
            user = conn.execute(select(USERS).where(_u.id == user_id)).mappings().first()
            if user is None:
                raise UnknownUser(f"no user {user_id!r}")
            identities = conn.execute(
                select(IDENTITIES).where(_i.user_id == user_id).order_by(_i.created_at)
            ).mappings()
            identity_rows = [
                _row(r, "id", "channel_kind", "external_id", "display_name", "created_at")
                for r in identities
            ]
            memory = [
                _row(r, "key", "value", "memory_type", "ttl", "created_at", "updated_at")
                for r in conn.execute(
                    select(USER_MEMORY)
                    .where(_um.user_id == user_id, or_(_um.ttl.is_(None), _um.ttl > now))
                    .order_by(_um.key)
                ).mappings()
            ]
            episodes = [
                _row(
                    r,
                    "id",
                    "bot",
                    "conversation_id",
                    "summary",
                    "topics",
                    "sentiment",
                    "resolution",
                    "created_at",
                )
                for r in conn.execute(
                    select(EPISODES)
                    .where(_e.user_id == user_id)
                    .order_by(_e.created_at.desc())
                    .limit(EPISODES_SHOWN)
                ).mappings()
            ]
            sessions = [
                self._session(conn, s, turns)
                for s in conn.execute(
                    select(SESSIONS)
                    .where(_s.user_id == user_id)
                    .order_by(_s.ended_at.is_not(None), _s.last_activity_at.desc())
                    .limit(SESSIONS_SHOWN)
                ).mappings()
            ]
        history = fact_history(self.db, user_id)
        return {
            "user": _row(user, "id", "display_name", "email", "language", "created_at"),
            "identities": identity_rows,
            "memory": memory,
            "facts": self._facts(memory, history),
            "episodes": episodes,
            "sessions": sessions,
        }

    @staticmethod
    def _facts(memory: list[dict[str, Any]], history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Live facts and facts that only history still knows, each with its changes."""
        changes: dict[str, list[dict[str, Any]]] = {}
        for change in history:
            entry = {k: v for k, v in change.items() if k not in ("user_id", "key")}
            changes.setdefault(change["key"], []).append(entry)
        live = {m["key"]: m for m in memory if m["memory_type"] == "fact"}
        facts = []
        for key in sorted(set(live) | set(changes)):
            row = live.get(key)
            facts.append(
                {
                    "key": key,
                    "live": row is not None,
                    "value": row["value"] if row else None,
                    "ttl": row["ttl"] if row else None,
                    "created_at": row["created_at"] if row else None,
                    "updated_at": row["updated_at"] if row else None,
                    "history": changes.get(key, []),
                }
            )
        return facts

    @staticmethod
    def _session(conn: Connection, session: Any, turns: int) -> dict[str, Any]:
        scoped: dict[str, list[dict[str, Any]]] = {"memory": [], "context": []}
        for r in conn.execute(
            select(SESSION_MEMORY).where(_sm.session_id == session["id"]).order_by(_sm.key)
        ).mappings():
            scoped.setdefault(r["kind"], []).append(_row(r, "key", "value", "updated_at"))
        recent = conn.execute(
            select(_t.role, _t.bot, _t.text, _t.created_at)
            .where(_t.session_id == session["id"])
            .order_by(_t.created_at.desc(), _t.seq.desc())
            .limit(max(0, turns))
        ).mappings()
        return {
            **_row(
                session,
                "id",
                "channel",
                "chat_id",
                "active_bot",
                "user_messages",
                "started_at",
                "last_activity_at",
                "ended_at",
                "end_reason",
            ),
            "memory": scoped["memory"],
            "context": scoped["context"],
            "turns": [_row(t, "role", "bot", "text", "created_at") for t in reversed(list(recent))],
        }

    def bots(self) -> list[dict[str, Any]]:
        """The loaded bots, for a page that lets the operator pick one."""
        return [
            {
                "name": bot.name,
                "description": bot.options.description,
                "kind": "dialog"
                if bot.dialog
                else ("python" if bot.on_message or bot.on_transfer else "llm"),
            }
            for bot in self.runtime.bots
        ]

    def bot_memory(self, bot: str) -> list[dict[str, Any]]:
        """Every key of a bot's own memory (shared by all the people it talks to)."""
        store = self.runtime.memory
        rows = store.read_rows(store.bot_ref(self._check_bot(bot)))
        return [
            {
                "key": r.key,
                "value": r.value,
                "created_at": _iso(r.created_at),
                "updated_at": _iso(r.updated_at),
            }
            for r in rows
        ]

    def user_key(self, user_id: str, key: str) -> dict[str, Any] | None:
        rows = self.runtime.memory.read_rows(self.runtime.memory.user_ref(user_id, self.policy()))
        for r in rows:
            if r.key == key:
                return {
                    "key": r.key,
                    "value": r.value,
                    "memory_type": r.memory_type,
                    "ttl": _iso(r.ttl),
                    "created_at": _iso(r.created_at),
                    "updated_at": _iso(r.updated_at),
                }
        return None

    # -- correcting: user memory and facts ----------------------------------------------

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
            self._lock_user(conn, user_id)
            now = self.clock.now()
            old = self._current(conn, user_id, key, now)
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
            self._lock_user(conn, user_id)
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

    # -- correcting: bot memory, episodes, identities ----------------------------------------

    def set_bot_key(self, actor: Actor, bot: str, key: str, value: Any) -> dict[str, Any]:
        """Store ``value`` under ``key`` in a bot's own memory."""
        name = self._check_bot(bot)
        check_key(key)
        if value == "":
            raise InvalidValue("an empty string is not stored; use DELETE to remove a key")
        store = self.runtime.memory
        parsed = json.loads(check_value(value, store.max_value_bytes))
        with self.db.write() as conn:
            store.bot_sql.set(conn, {"bot": name}, key, parsed, self.clock.now())
            self.audit.record_in(
                conn, AuditRecord(actor.name, "bot_memory.set", actor.route, bot=name, target=key)
            )
        return next(r for r in self.bot_memory(name) if r["key"] == key)

    def delete_bot_key(self, actor: Actor, bot: str, key: str) -> dict[str, Any]:
        name = self._check_bot(bot)
        check_key(key)
        with self.db.write() as conn:
            if not self.runtime.memory.bot_sql.delete(conn, {"bot": name}, key):
                raise AdminNotFound(f"bot {name} has no key {key!r}")
            self.audit.record_in(
                conn,
                AuditRecord(actor.name, "bot_memory.delete", actor.route, bot=name, target=key),
            )
        return {"deleted": key}

    def delete_episode(self, actor: Actor, user_id: str, episode_id: str) -> dict[str, Any]:
        with self.db.write() as conn:
            self._lock_user(conn, user_id)
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
            self._lock_user(conn, user_id)
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

    # -- the whole person ----------------------------------------------------------------

    def forget(self, actor: Actor, user_id: str) -> dict[str, Any]:
        """The CLI's forget (:func:`forget_user`), then its audit record; returns the receipt.

        The audit record is written after the purge commits: a purge that fails is not
        recorded as done, and the record (user id and counts only) survives the purge.
        """
        removed = forget_user(self.db, user_id)
        with self.db.write() as conn:
            self.audit.record_in(
                conn,
                AuditRecord(
                    actor.name, "user.forget", actor.route, user_id=user_id, details=removed
                ),
            )
        return {"forgotten": user_id, "removed": removed}

    def export(self, actor: Actor, user_id: str) -> dict[str, Any]:
        """The CLI's export document; the export itself is audited (it discloses everything)."""
        document = export_user(self.db, user_id)
        with self.db.write() as conn:
            self.audit.record_in(
                conn, AuditRecord(actor.name, "user.export", actor.route, user_id=user_id)
            )
        return document

    async def prompt_preview(self, user_id: str, bot: str, message: str) -> dict[str, Any]:
        """The prompt ``bot`` would send its model for ``message`` (as ``mnemobot prompt``).

        Read-only: unlike the CLI it neither sweeps idle sessions nor runs the episode worker,
        which the running deployment does on its own schedule.
        """
        runtime = self.runtime
        chosen = runtime.bots.get(bot)
        if not await self.db.run(runtime.identity.exists, user_id):
            raise UnknownUser(f"no user {user_id!r}")
        session_id = await self.db.run(latest_session, self.db, user_id, chosen.name)
        memory = runtime.memory
        built = await assemble_prompt(
            db=self.db,
            llm=runtime.llm,
            llm_settings=runtime.settings.llm,
            bot=chosen,
            user_memory=MemoryScope(memory, memory.user_ref(user_id, runtime.user_policy(chosen))),
            context=(
                MemoryScope(memory, memory.session_ref(session_id, user_id, "context"))
                if session_id
                else None
            ),
            session_id=session_id,
            episodes=await self.db.run(runtime.episodes.recent, user_id, EPISODES_CONSIDERED),
            question=message,
        )
        return {
            "user_id": user_id,
            "bot": chosen.name,
            "session_id": session_id,
            "tokens": built.tokens,
            "budget": built.budget,
            "reserve": built.reserve,
            "counted_with": "tokenizer" if runtime.llm is not None else "estimate",
            "messages": built.messages,
            "items": [
                {
                    "section": i.section,
                    "label": i.label,
                    "text": i.rendered(),
                    "tokens": i.tokens,
                    "included": i.included,
                    "reason": i.reason,
                }
                for i in built.items
            ],
            "report": built.report(),
        }
