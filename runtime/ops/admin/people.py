"""Finding people and everything held about them: search, detail, export, forget.

The read side of the admin service, plus the two whole-person operations that are the
CLI's own (:mod:`runtime.privacy`) with an audit record added. Changing one item of what is
held about a person is :mod:`runtime.admin_edits`.
"""

from __future__ import annotations

import json
from array import array
from typing import Any

from sqlalchemy import Connection, String, cast, func, or_, select

from mnemobot.runtime.episodes.facts.extraction import fact_history
from mnemobot.runtime.errors import UnknownUser
from mnemobot.runtime.memory.sensitive import HIDDEN
from mnemobot.runtime.ops.admin.base import Actor, AdminPart, iso
from mnemobot.runtime.ops.audit import AuditRecord
from mnemobot.runtime.people.privacy import export_user, forget_user
from mnemobot.runtime.storage.tables import (
    EPISODES,
    IDENTITIES,
    JOBS,
    SESSION_MEMORY,
    SESSIONS,
    TURNS,
    USER_MEMORY,
    USERS,
)

__all__ = ["People"]

_u = USERS.c
_i = IDENTITIES.c
_um = USER_MEMORY.c
_e = EPISODES.c
_s = SESSIONS.c
_sm = SESSION_MEMORY.c
_t = TURNS.c
_j = JOBS.c

SEARCH_LIMIT = 50
# Keys under which bots keep the name a person told them, the first found naming them.
NAME_KEYS = (
    "name",
    "fact_name",
    "first_name",
    "fact_first_name",
    "full_name",
    "fact_full_name",
    "preferred_name",
    "fact_preferred_name",
)
SUMMARY_JOB = "session_ended"
SESSIONS_SHOWN = 10
SCOPED = ("memory", "context", "temp")  # a session's kinds of rows the inspector shows
EPISODES_SHOWN = 100


def _row(mapping: Any, *columns: str) -> dict[str, Any]:
    return {c: iso(mapping[c]) for c in columns}


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _learned_name(names: dict[str, Any]) -> str | None:
    """The name the bots learned, from a person's NAME_KEYS values (key to value)."""
    for key in NAME_KEYS:
        value = names.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


class People(AdminPart):
    """Find a person, see everything remembered about them, export it or forget them."""

    def resolve_user(self, ref: str) -> str:
        """A user id from an id or any reference ``mnemobot --user`` accepts; UnknownUser else."""
        return self.runtime.identity.find(ref)

    async def query_vector(self, query: str, user_id: str | None = None) -> array[float] | None:
        """The vector :meth:`recall` fuses in for ``query`` about ``user_id``, as
        ``ctx.user.recall`` does; None when ``[memory] embedding`` is off or the model cannot
        answer now (then: the words)."""
        return await self.runtime.recall.query_vector(query, user_id)

    def recall(
        self,
        user_id: str,
        query: str,
        limit: int = 10,
        query_vector: array[float] | None = None,
    ) -> list[dict[str, Any]]:
        """What recall finds about ``user_id`` for ``query``, best first, each with its source:
        the same search as ``ctx.user.recall``, by meaning too with ``query_vector``."""
        rule = self.runtime.bots.sensitive
        found = self.runtime.recall.search(user_id, query, limit=limit, query_vector=query_vector)
        results = [hit.as_dict() for hit in found]
        for hit in results:
            if rule.key_hidden(hit.get("key")) or rule.text_hidden(hit["text"]):
                hit["text"] = HIDDEN
        return results

    def search(self, q: str, limit: int = SEARCH_LIMIT) -> list[dict[str, Any]]:
        """People whose id, name, e-mail or channel account matches ``q``, by name.

        ``kind:external_id`` and a bare external id match exactly; names and e-mails match
        as a case-insensitive substring: the platform's display name and the name the bots
        learned (user memory ``name``, ``fact_name``, ... see NAME_KEYS), which each result
        carries as ``name``.
        """
        q = q.strip()
        if not q:
            return []
        pattern = _like(q)
        # JSON text as stored: PostgreSQL keeps "Inês", SQLite's JSON "In\u00eas".
        escaped = _like(json.dumps(q.lower())[1:-1])
        kind, _, ext = q.partition(":")
        now = self.clock.now()
        with self.db.read() as conn:
            value_text = func.lower(cast(_um.value, String))
            by_learned_name = select(_um.user_id).where(
                _um.key.in_(NAME_KEYS),
                or_(_um.ttl.is_(None), _um.ttl > now),
                or_(value_text.like(pattern, escape="\\"), value_text.like(escaped, escape="\\")),
            )
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
                            _u.id.in_(by_learned_name),
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
                .order_by(_i.created_at, _i.channel_kind, _i.external_id)
            ).all()
            learned: dict[str, dict[str, Any]] = {i: {} for i in ids}
            for row in conn.execute(
                select(_um.user_id, _um.key, _um.value).where(
                    _um.user_id.in_(ids),
                    _um.key.in_(NAME_KEYS),
                    or_(_um.ttl.is_(None), _um.ttl > now),
                )
            ):
                learned[row.user_id][row.key] = row.value
        accounts: dict[str, list[dict[str, str]]] = {i: [] for i in ids}
        for row in identities:
            accounts[row.user_id].append({"kind": row.channel_kind, "external_id": row.external_id})
        found = [
            {
                **_row(u, "id", "display_name", "email", "language", "created_at"),
                "name": _learned_name(learned[u["id"]]) or u["display_name"] or None,
                "identities": accounts[u["id"]],
            }
            for u in users
        ]
        return sorted(found, key=lambda u: ((u["name"] or "").casefold(), u["id"]))

    def user_detail(self, user_id: str, turns: int = 20) -> dict[str, Any]:
        """Everything remembered about a person, by scope, with metadata and provenance."""
        now = self.clock.now()
        with self.db.read() as conn:
            user = conn.execute(select(USERS).where(_u.id == user_id)).mappings().first()
            if user is None:
                raise UnknownUser(f"no user {user_id!r}")
            identities = conn.execute(
                select(IDENTITIES)
                .where(_i.user_id == user_id)
                .order_by(_i.created_at, _i.channel_kind, _i.external_id)
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
            summaries = self._summaries(conn, user_id, [s["id"] for s in sessions])
        for session in sessions:
            session["summary"] = summaries.get(session["id"])
        history = fact_history(self.db, user_id)
        rule = self.runtime.bots.sensitive  # sensitive-keys/-values: shown as (hidden)
        for row in [*memory, *history, *(r for s in sessions for k in SCOPED for r in s[k])]:
            row["value"] = rule.shown(row["key"], row["value"])
        names = {m["key"]: m["value"] for m in memory if m["key"] in NAME_KEYS}
        names = {k: v for k, v in names.items() if v != HIDDEN}
        return {
            "user": {
                **_row(user, "id", "display_name", "email", "language", "created_at"),
                "name": _learned_name(names) or user["display_name"] or None,
            },
            "identities": identity_rows,
            "memory": memory,
            "facts": self._facts(memory, history),
            "memories": [
                rule.shown_memory(m.as_dict()) for m in self.runtime.memories.list(user_id)
            ],
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
    def _summaries(
        conn: Connection, user_id: str, session_ids: list[str]
    ) -> dict[str, dict[str, Any]]:
        """Where each ended session's summary stands: ``pending`` (the episode worker has yet
        to run), ``running``, ``done``, ``skipped`` (with why) or ``failed``."""
        wanted = set(session_ids)
        found: dict[str, dict[str, Any]] = {}
        for row in conn.execute(
            select(_j.payload, _j.status, _j.last_error)
            .where(_j.user_id == user_id, _j.kind == SUMMARY_JOB)
            .order_by(_j.created_at)
        ):
            payload = row.payload if isinstance(row.payload, dict) else {}
            session_id = str(payload.get("session_id", ""))
            if session_id in wanted:
                found[session_id] = {"status": row.status, "reason": row.last_error}
        return found

    @staticmethod
    def _session(conn: Connection, session: Any, turns: int) -> dict[str, Any]:
        scoped: dict[str, list[dict[str, Any]]] = {kind: [] for kind in SCOPED}
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
            "temp": scoped["temp"],
            "turns": [_row(t, "role", "bot", "text", "created_at") for t in reversed(list(recent))],
        }

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
