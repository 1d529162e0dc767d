"""Who is talking: ``(channel_kind, external_id) -> user_id``, created on first contact."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, func, insert, or_, select, update

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.errors import UnknownUser
from mnemobot.runtime.people.seeding import (
    CHANNEL_KINDS,
    add_person_in,
    parse_account,
    parse_email,
)
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.prepared import Prepared
from mnemobot.runtime.storage.tables import IDENTITIES, USERS, new_id

__all__ = ["IdentityStore", "ResolvedUser"]

_users = USERS.c
_identities = IDENTITIES.c


@dataclass(frozen=True, slots=True)
class ResolvedUser:
    """The person behind an account."""

    user_id: str
    display_name: str
    created: bool


class IdentityStore:
    """Finds or creates the user of a channel account; resolves names for the CLI."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._find = select(_identities.user_id, _identities.display_name).where(
            _identities.channel_kind == bindparam("kind"),
            _identities.external_id == bindparam("ext"),
        )
        self._find_one = Prepared(self._find)
        self._insert_identity = (
            db.dialect.insert(IDENTITIES)
            .values(
                id=bindparam("id"),
                channel_kind=bindparam("kind"),
                external_id=bindparam("ext"),
                user_id=bindparam("user_id"),
                display_name=bindparam("name"),
                created_at=bindparam("now"),
            )
            .on_conflict_do_nothing(index_elements=["channel_kind", "external_id"])
            .returning(_identities.id)
        )

    def resolve(
        self,
        kind: str,
        external_id: str,
        display_name: str = "",
        *,
        language: str | None = None,
        email: str | None = None,
        link_by_email: bool = False,
    ) -> ResolvedUser:
        """The user of this account, creating user and identity on first contact.

        Safe under concurrency: two first messages from one account create one user.
        ``email`` must be verified by the platform (Slack's profile e-mail is); with
        ``link_by_email`` an account carrying the e-mail of an existing user joins that user.
        """
        params = {"kind": kind, "ext": external_id}
        row = self.db.read_one(self._find_one, params)
        unchanged = row is not None and (not display_name or row[1] == display_name)
        if unchanged and not email:
            assert row is not None
            return ResolvedUser(row[0], row[1], created=False)
        with self.db.write() as conn:
            resolved = self._resolve_in(conn, kind, external_id, display_name, language, email)
            if email and link_by_email:
                return self._join_by_email(conn, resolved, email)
            return resolved

    def _join_by_email(self, conn: Connection, resolved: ResolvedUser, email: str) -> ResolvedUser:
        """Merge ``resolved`` into the oldest other user with the same verified e-mail."""
        from mnemobot.runtime.people.linking import merge_users

        owner = conn.execute(
            select(_users.id)
            .where(func.lower(_users.email) == email.lower(), _users.id != resolved.user_id)
            .order_by(_users.created_at)
            .limit(1)
        ).scalar()
        if owner is None:
            return resolved
        merge_users(conn, from_user_id=resolved.user_id, into_user_id=owner, now=self.clock.now())
        return ResolvedUser(owner, resolved.display_name, created=False)

    def _resolve_in(
        self,
        conn: Connection,
        kind: str,
        external_id: str,
        display_name: str,
        language: str | None,
        email: str | None,
    ) -> ResolvedUser:
        now = self.clock.now()
        params = {"kind": kind, "ext": external_id}
        row = conn.execute(self._find, params).first()
        if row is not None:
            conn.execute(
                update(IDENTITIES)
                .where(_identities.channel_kind == kind, _identities.external_id == external_id)
                .values(display_name=display_name)
            )
            conn.execute(
                update(USERS)
                .where(_users.id == row.user_id, _users.display_name == "")
                .values(display_name=display_name)
            )
            if email:
                conn.execute(
                    update(USERS)
                    .where(_users.id == row.user_id, _users.email.is_(None))
                    .values(email=email)
                )
            return ResolvedUser(row.user_id, display_name, created=False)
        user_id = new_id()
        conn.execute(
            insert(USERS).values(
                id=user_id,
                display_name=display_name or external_id,
                language=language,
                email=email,
                created_at=now,
            )
        )
        inserted = conn.execute(
            self._insert_identity,
            {**params, "id": new_id(), "user_id": user_id, "name": display_name, "now": now},
        ).first()
        if inserted is None:  # another worker created it first: use theirs, drop ours
            conn.execute(USERS.delete().where(_users.id == user_id))
            row = conn.execute(self._find, params).one()
            return ResolvedUser(row.user_id, row.display_name, created=False)
        return ResolvedUser(user_id, display_name or external_id, created=True)

    def exists(self, user_id: str) -> bool:
        with self.db.read() as conn:
            return conn.execute(select(_users.id).where(_users.id == user_id)).first() is not None

    def find(self, ref: str) -> str:
        """A user id from a user id, ``kind:external_id``, a console name, or an e-mail or
        display name that one person has.

        The CLI's ``--user alice`` means the console account ``alice`` first, as that is
        what ``mnemobot chat --user alice`` created. A malformed account of a known kind
        (``telegram:abc``) is InvalidIdentity; no match, or several, is UnknownUser.
        """
        found = self._lookup(ref)
        if found is None:
            raise UnknownUser(
                f"no user {ref!r} (give a user id, an e-mail, a console name, or kind:external_id "
                "such as telegram:123456789; `mnemobot people add` creates a person before they "
                "write)"
            )
        return found

    def find_or_add(self, ref: str) -> tuple[str, bool]:
        """The person ``ref`` names, created when nobody has that account yet; and whether.

        The memory commands may name a person who has not written yet (DESIGN: command
        line): an operator seeds ``telegram:123``, ``ana@example.com`` or the console name
        ``ana`` with memory, and that account's first message is theirs. A user id that
        does not exist, or a name several people share, is still UnknownUser: neither says
        who to create.
        """
        found = self._lookup(ref)
        if found is not None:
            return found, False
        email: str | None = None
        accounts: list[str] = []
        if ":" in ref:
            kind, external = parse_account(ref)  # InvalidIdentity when malformed
            accounts.append(f"{kind}:{external}")
        elif "@" in ref:
            email = parse_email(ref)
        elif _is_uuid(ref):
            raise UnknownUser(f"no user with the id {ref!r}")
        elif ref.strip() != ref or not ref:
            raise UnknownUser(f"no user {ref!r}")
        else:
            accounts.append(f"console:{ref}")
        with self.db.write() as conn:
            user_id = add_person_in(
                conn, name=None, email=email, accounts=accounts, now=self.clock.now()
            )
        return user_id, True

    def _lookup(self, ref: str) -> str | None:
        """find's search: None when nothing matches; several people is UnknownUser."""
        candidates: list[tuple[str, str]] = [("console", ref)]
        kind = ref.partition(":")[0].lower()
        if kind in CHANNEL_KINDS:
            candidates.insert(0, parse_account(ref))
        elif ":" in ref:
            kind, _, ext = ref.partition(":")
            candidates.insert(0, (kind, ext))
        with self.db.read() as conn:
            if conn.execute(select(_users.id).where(_users.id == ref)).first():
                return ref
            for kind, ext in candidates:
                row = conn.execute(self._find, {"kind": kind, "ext": ext}).first()
                if row is not None:
                    return str(row.user_id)
            named = conn.execute(
                select(_users.id).where(
                    or_(_users.display_name == ref, func.lower(_users.email) == ref.lower())
                )
            ).all()
        if len(named) == 1:
            return str(named[0].id)
        if len(named) > 1:
            raise UnknownUser(
                f"{len(named)} users have the name or e-mail {ref!r}; give a user id instead"
            )
        return None


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
