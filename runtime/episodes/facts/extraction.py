"""Agentic fact extraction: after a session, the model proposes changes to the person's facts.

With ``user-memory-agentic,true`` in a bot's ``config.csv`` the episode worker shows the model
the facts already known (numbered 1..n: small integers are what a model copies reliably, a
UUID is not) and the finished conversation, and asks for JSON::

    {"add": [{"key": "city", "value": "Lisbon"}], "update": [{"id": 2, "value": "Globex"}],
     "delete": [{"id": 3}]}

The answer is validated, then vetted: anything that looks like a secret or payment data
(passwords, PINs, card numbers, API keys and tokens, long opaque strings) is dropped before
anything is written, and a proposal based on a value that changed meanwhile is dropped too.
What survives is applied in one transaction, each change with its provenance in
``fact_history`` (session, bot, model, time). An updated or deleted value is not lost: its
history row is marked ``superseded_at`` and stays until the person is forgotten.

Manual mode, where bot code writes facts with ``SET USER FACT``, stays the default; nothing
here runs unless the bot opts in.

What the model is shown and asked, and the schema its answer must pass, live in
:mod:`runtime.fact_prompts`; this module reads the known facts, and vets and applies the
answer. Asking for valid JSON lives in :mod:`runtime.llm_json`, the secret detectors in
:mod:`runtime.secrets_filter` (the episode worker uses both too).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from mnemobot.runtime.episodes.changes import Changes
from mnemobot.runtime.episodes.facts.prompts import FactProposal, KnownFact
from mnemobot.runtime.errors import InvalidKey, InvalidValue
from mnemobot.runtime.memory.policy import UserMemoryPolicy
from mnemobot.runtime.memory.secrets_filter import secret_reason, strings_in
from mnemobot.runtime.memory.sql import KeyValueSQL
from mnemobot.runtime.memory.values import check_key, check_value
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import FACT_HISTORY, USER_MEMORY, USERS, new_id

__all__ = ["Provenance", "apply_fact_changes", "fact_history", "known_facts"]

logger = logging.getLogger(__name__)


MAX_FACTS_SHOWN = 300
MAX_VALUE_CHARS = 500
_NEW_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_h = FACT_HISTORY.c
_um = USER_MEMORY.c


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a change came from, recorded in ``fact_history``."""

    session_id: str | None
    bot: str
    model: str
    source: str = "extraction"


def known_facts(conn: Connection, user_id: str, now: datetime) -> list[KnownFact]:
    """The person's live facts numbered 1..n by key (the newest ``MAX_FACTS_SHOWN`` of them)."""
    rows = conn.execute(
        select(_um.key, _um.value)
        .where(
            _um.user_id == user_id,
            _um.memory_type == "fact",
            or_(_um.ttl.is_(None), _um.ttl > now),
        )
        .order_by(_um.updated_at.desc(), _um.key)
        .limit(MAX_FACTS_SHOWN)
    ).all()
    ordered = sorted(rows, key=lambda r: r.key)
    return [KnownFact(i, r.key, r.value) for i, r in enumerate(ordered, start=1)]


# -- applying -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Current:
    value: Any
    memory_type: str | None
    updated_at: datetime


def _current_rows(conn: Connection, user_id: str, now: datetime) -> dict[str, _Current]:
    rows = conn.execute(
        select(_um.key, _um.value, _um.memory_type, _um.updated_at).where(
            _um.user_id == user_id, or_(_um.ttl.is_(None), _um.ttl > now)
        )
    ).all()
    return {r.key: _Current(r.value, r.memory_type, r.updated_at) for r in rows}


def _value_problem(key: str, value: Any, policy: UserMemoryPolicy) -> str | None:
    """Why a proposed value may not be written (secret, empty, too big), or None."""
    secret = secret_reason(key, value)
    if secret:
        return secret
    if value == "" or value == []:
        return "the value is empty"
    if any(len(s) > MAX_VALUE_CHARS for s in strings_in(value)):
        return f"the value is longer than {MAX_VALUE_CHARS} characters"
    try:
        check_value(value, policy.max_value_bytes)
    except InvalidValue as exc:
        return str(exc)
    return None


def _new_key(raw: str) -> str | None:
    key = re.sub(r"[\s.-]+", "_", raw.strip().lower())
    if not _NEW_KEY.match(key):
        return None
    try:
        return check_key(key)
    except InvalidKey:
        return None


class _Apply:
    """One application of a proposal, inside the caller's transaction."""

    def __init__(
        self,
        conn: Connection,
        sql: KeyValueSQL,
        policy: UserMemoryPolicy,
        user_id: str,
        provenance: Provenance,
        now: datetime,
    ) -> None:
        self.conn, self.sql, self.policy = conn, sql, policy
        self.user_id, self.prov, self.now = user_id, provenance, now
        self.current = _current_rows(conn, user_id, now)
        self.touched: set[str] = set()
        self.changes = Changes()

    def refuse(self, what: str, why: str) -> None:
        self.changes.rejected.append(f"{what}: {why}")

    def _history(self, key: str, value: Any, action: str) -> None:
        """Close the key's open history rows and record this change as the current one."""
        old = self.current.get(key)
        open_rows = self.conn.execute(
            select(_h.action, _h.value).where(
                _h.user_id == self.user_id, _h.key == key, _h.superseded_at.is_(None)
            )
        ).all()
        recorded = old is not None and any(
            r.action != "delete" and r.value == old.value for r in open_rows
        )
        self.conn.execute(
            update(FACT_HISTORY)
            .where(_h.user_id == self.user_id, _h.key == key, _h.superseded_at.is_(None))
            .values(superseded_at=self.now)
        )
        if old is not None and not recorded:  # written by code, which keeps no history
            self._insert_history(key, old.value, "add", "bot", None, None, old.updated_at, True)
        self._insert_history(
            key, value, action, self.prov.source, self.prov.session_id, self.prov.model, self.now
        )

    def _insert_history(
        self,
        key: str,
        value: Any,
        action: str,
        source: str,
        session_id: str | None,
        model: str | None,
        created_at: datetime,
        superseded: bool = False,
    ) -> None:
        self.conn.execute(
            insert(FACT_HISTORY).values(
                id=new_id(),
                user_id=self.user_id,
                key=key,
                value=value,
                action=action,
                source=source,
                session_id=session_id,
                bot=self.prov.bot if source == self.prov.source else None,
                model=model,
                superseded_at=self.now if superseded else None,
                created_at=created_at,
            )
        )

    def _write(self, key: str, value: Any, action: str) -> None:
        self.sql.set(
            self.conn,
            {"user_id": self.user_id},
            key,
            value,
            self.now,
            memory_type="fact",
            ttl=self.policy.expiry(key, None, self.now),
        )
        self._history(key, value, action)
        self.current[key] = _Current(value, "fact", self.now)
        self.touched.add(key)
        (self.changes.added if action == "add" else self.changes.updated).append(key)

    def _still_as_shown(self, fact: KnownFact, what: str) -> bool:
        current = self.current.get(fact.key)
        if fact.key in self.touched:
            self.refuse(what, "the fact was already changed by this proposal")
        elif current is None or current.memory_type != "fact" or current.value != fact.value:
            self.refuse(what, "the fact changed after the model read it")
        else:
            return True
        return False

    def delete(self, fact: KnownFact) -> None:
        what = f"delete #{fact.id} ({fact.key!r})"
        if not self._still_as_shown(fact, what):
            return
        self.sql.delete(self.conn, {"user_id": self.user_id}, fact.key)
        self._history(fact.key, None, "delete")
        del self.current[fact.key]
        self.touched.add(fact.key)
        self.changes.deleted.append(fact.key)

    def update(self, fact: KnownFact, value: Any) -> None:
        what = f"update #{fact.id} ({fact.key!r})"
        problem = _value_problem(fact.key, value, self.policy)
        if problem:
            self.refuse(what, problem)
        elif value == fact.value:
            return
        elif self._still_as_shown(fact, what):
            self._write(fact.key, value, "update")

    def add(self, raw_key: str, value: Any) -> None:
        key = _new_key(raw_key)
        what = f"add {raw_key[:64]!r}"
        if key is None:
            self.refuse(what, "the key is not a short snake_case name")
            return
        problem = _value_problem(key, value, self.policy)
        if problem:
            self.refuse(what, problem)
            return
        current = self.current.get(key)
        if key in self.touched:
            self.refuse(what, "the key was already changed by this proposal")
        elif current is not None and current.memory_type != "fact":
            self.refuse(what, "the key holds user memory that is not a fact (written by a bot)")
        elif current is not None:
            if current.value != value:
                self._write(key, value, "update")
        elif len(self.current) >= self.policy.max_keys:
            self.refuse(what, f"user memory is full ({self.policy.max_keys} keys)")
        else:
            self._write(key, value, "add")


def apply_fact_changes(
    conn: Connection,
    sql: KeyValueSQL,
    policy: UserMemoryPolicy,
    *,
    user_id: str,
    shown: Sequence[KnownFact],
    proposal: FactProposal,
    provenance: Provenance,
    now: datetime,
) -> Changes:
    """Vet ``proposal`` and apply what passes, on ``conn`` (inside the caller's transaction).

    Deletes go first, then updates, then adds; each key changes at most once. Secrets,
    unknown numbers, values that changed since the model saw them, keys that belong to
    non-fact memory and adds past ``user-memory-max-keys`` are refused, not written.
    """
    # Serialise with turns writing this user's memory.
    locked = sql.dialect.lock_rows(select(USERS.c.id).where(USERS.c.id == user_id))
    if conn.execute(locked).first() is None:
        return Changes(rejected=["the user no longer exists"])
    run = _Apply(conn, sql, policy, user_id, provenance, now)
    by_id = {fact.id: fact for fact in shown}
    for removed in proposal.delete:
        if removed.id in by_id:
            run.delete(by_id[removed.id])
        else:
            run.refuse(f"delete #{removed.id}", "no known fact has that number")
    for changed in proposal.update:
        if changed.id in by_id:
            run.update(by_id[changed.id], changed.value)
        else:
            run.refuse(f"update #{changed.id}", "no known fact has that number")
    for new in proposal.add:
        run.add(new.key, new.value)
    return run.changes


def fact_history(db: Database, user_id: str, key: str | None = None) -> list[dict[str, Any]]:
    """Every recorded change to the person's facts (one key, or all), oldest first per key.

    For an admin API or ``mnemobot memory``: each row says the value, the action, where it
    came from (session, bot, model, source) and, once replaced, when (``superseded_at``).
    """
    query = select(FACT_HISTORY).where(_h.user_id == user_id)
    if key is not None:
        query = query.where(_h.key == key)
    with db.read() as conn:
        rows = conn.execute(query.order_by(_h.key, _h.created_at)).mappings().all()
    return [
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
        for row in rows
    ]
