"""Creating a person before first contact (seed 004's CRM case), and tying accounts to them.

An operator (``mnemobot people add``, ``POST /admin/api/users``) creates a person with an
e-mail, channel accounts (``telegram:123456789``, ``slack:T024BE7LD:U012AB3CD``) or both,
then gives them memory and facts like anyone's. The accounts are ordinary identity rows, so
when one of them first writes, :class:`~runtime.people.identity.IdentityStore` finds it and
the message is that person's: nothing to match up later.

A person seeded by e-mail alone gets an account in one of two ways: an operator ties it on
(``mnemobot people link``, ``POST /admin/api/users/{user}/identities``), or, with
``[link] by_email``, a platform that verifies e-mails (Slack's profile) joins the account
to the person carrying the same e-mail at its first message. Tying on an account that has
already written (it has a person of its own) merges that person into the seeded one, by
the rule of ``/link`` (:func:`~runtime.people.linking.merge_users`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select

from mnemobot.runtime.errors import AdminConflict, InvalidIdentity
from mnemobot.runtime.people.linking import merge_users
from mnemobot.runtime.storage.tables import IDENTITIES, USERS, new_id

__all__ = ["CHANNEL_KINDS", "LinkedAccount", "add_person_in", "link_account_in", "parse_account"]

CHANNEL_KINDS = ("telegram", "slack", "console", "web")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_SLACK_PART = re.compile(r"[A-Z0-9]+")
_i = IDENTITIES.c
_u = USERS.c


@dataclass(frozen=True, slots=True)
class LinkedAccount:
    """An account tied to a person; ``merged_from`` the person it had before, if any."""

    account: str
    merged_from: str | None = None


def parse_account(text: str) -> tuple[str, str]:
    """``kind:external_id`` as the identity table holds it; InvalidIdentity when malformed.

    Slack's external id is ``TEAM:USER``; ``slack:T1/U1`` is accepted for it too.
    """
    kind, sep, external = text.strip().partition(":")
    kind = kind.lower()
    if not sep or not external.strip():
        raise InvalidIdentity(
            f"{text!r} is not a channel account: write kind:external_id, such as "
            "telegram:123456789 or slack:T024BE7LD:U012AB3CD"
        )
    if kind not in CHANNEL_KINDS:
        close = difflib.get_close_matches(kind, CHANNEL_KINDS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise InvalidIdentity(
            f"unknown channel kind {kind!r} in {text!r}; {hint}known kinds: "
            + ", ".join(CHANNEL_KINDS)
        )
    external = external.strip()
    if kind == "telegram" and not external.isdigit():
        raise InvalidIdentity(
            f"a Telegram account is the person's numeric user id (telegram:123456789), "
            f"not {external!r}"
        )
    if kind == "slack":
        team, _, user = external.replace("/", ":").partition(":")
        if not (_SLACK_PART.fullmatch(team) and _SLACK_PART.fullmatch(user)):
            raise InvalidIdentity(
                f"a Slack account is TEAM:USER (slack:T024BE7LD:U012AB3CD), not {external!r}"
            )
        external = f"{team}:{user}"
    return kind, external


def parse_email(text: str) -> str:
    """The e-mail as given, trimmed; InvalidIdentity when it is not one."""
    email = text.strip()
    if not _EMAIL.fullmatch(email):
        raise InvalidIdentity(f"{text!r} is not an e-mail address")
    return email


def _owner(conn: Connection, kind: str, external: str) -> str | None:
    return conn.execute(
        select(_i.user_id).where(_i.channel_kind == kind, _i.external_id == external)
    ).scalar()


def _insert_identity(
    conn: Connection, user_id: str, kind: str, external: str, now: datetime
) -> None:
    conn.execute(
        insert(IDENTITIES).values(
            id=new_id(),
            channel_kind=kind,
            external_id=external,
            user_id=user_id,
            display_name="",
            created_at=now,
        )
    )


def add_person_in(
    conn: Connection,
    *,
    name: str | None,
    email: str | None,
    accounts: list[str],
    now: datetime,
) -> str:
    """Create a person with these accounts and e-mail, inside the caller's transaction.

    Returns the new user id. Refused (AdminConflict) when an account is someone's already
    or another person carries the e-mail: the seeded person would otherwise be a second,
    unreachable copy. Bad spelling is InvalidIdentity; nothing is written either way.
    """
    parsed = [parse_account(account) for account in accounts]
    address = parse_email(email) if email else None
    if address is None and not parsed:
        raise InvalidIdentity(
            "say who the person is: --email ADDRESS and/or --account kind:external_id"
        )
    if len(set(parsed)) != len(parsed):
        raise InvalidIdentity("the same account is given twice")
    for kind, external in parsed:
        owner = _owner(conn, kind, external)
        if owner is not None:
            raise AdminConflict(
                f"{kind}:{external} is already the account of user {owner}; give them memory "
                "with --user, or tie more accounts to them with `mnemobot people link`"
            )
    if address is not None:
        holder = conn.execute(
            select(_u.id).where(func.lower(_u.email) == address.lower()).limit(1)
        ).scalar()
        if holder is not None:
            raise AdminConflict(
                f"user {holder} already has the e-mail {address}; tie accounts to them with "
                "`mnemobot people link`"
            )
    user_id = new_id()
    conn.execute(
        insert(USERS).values(
            id=user_id,
            display_name=(name or "").strip(),  # empty: the platform's name at first contact
            email=address,
            language=None,
            created_at=now,
        )
    )
    for kind, external in parsed:
        _insert_identity(conn, user_id, kind, external, now)
    return user_id


def link_account_in(conn: Connection, user_id: str, account: str, now: datetime) -> LinkedAccount:
    """Tie ``account`` to the person ``user_id`` (who must exist; the caller checks).

    An account nobody has used becomes theirs; an account that already has a person of its
    own (it wrote first) merges that person into ``user_id``, as ``/link`` would. Tying an
    account the person has already is refused (AdminConflict), so a typo is noticed.
    """
    kind, external = parse_account(account)
    text = f"{kind}:{external}"
    owner = _owner(conn, kind, external)
    if owner == user_id:
        raise AdminConflict(f"{text} is already this person's account")
    if owner is None:
        _insert_identity(conn, user_id, kind, external, now)
        return LinkedAccount(text)
    merge_users(conn, from_user_id=owner, into_user_id=user_id, now=now)
    return LinkedAccount(text, merged_from=owner)
