"""People created before first contact, found by any reference, accounts tied on (issue 16).

Every test runs on SQLite and PostgreSQL; the CLI and Telegram walk is in
tests/system/scenarios/test_seeded_person.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from mnemobot.runtime.errors import AdminConflict, InvalidIdentity, UnknownUser
from mnemobot.runtime.memory.policy import UserMemoryPolicy
from mnemobot.runtime.memory.store import MemoryScope
from mnemobot.runtime.people.seeding import add_person_in, link_account_in, parse_account
from mnemobot.runtime.storage.tables import IDENTITIES, USERS
from tests.support import Chat


def add(runtime: Any, *accounts: str, email: str | None = None, name: str | None = None) -> str:
    with runtime.db.write() as conn:
        return add_person_in(
            conn, name=name, email=email, accounts=list(accounts), now=runtime.clock.now()
        )


def link(runtime: Any, user_id: str, account: str) -> Any:
    with runtime.db.write() as conn:
        return link_account_in(conn, user_id, account, runtime.clock.now())


def users(runtime: Any) -> int:
    with runtime.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(USERS)).scalar_one())


def memory_of(runtime: Any, user_id: str) -> MemoryScope:
    return MemoryScope(runtime.memory, runtime.memory.user_ref(user_id, UserMemoryPolicy()))


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("telegram:123456789", ("telegram", "123456789")),
        ("Telegram: 42 ", ("telegram", "42")),
        ("slack:T024BE7LD:U012AB3CD", ("slack", "T024BE7LD:U012AB3CD")),
        ("slack:T1/U1", ("slack", "T1:U1")),
        ("console:ana", ("console", "ana")),
        ("web:4f2a", ("web", "4f2a")),
    ],
)
def test_accounts_are_spelled_kind_colon_id(text: str, parsed: tuple[str, str]) -> None:
    assert parse_account(text) == parsed


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("telgram:1", "unknown channel kind 'telgram' in 'telgram:1'; did you mean telegram?"),
        ("telegram:ana", "a Telegram account is the person's numeric user id"),
        ("slack:U012AB3CD", "a Slack account is TEAM:USER"),
        ("slack:T1:", "a Slack account is TEAM:USER"),
        ("telegram", "'telegram' is not a channel account: write kind:external_id"),
        ("console:", "is not a channel account"),
    ],
)
def test_a_malformed_account_is_refused_saying_why(text: str, problem: str) -> None:
    with pytest.raises(InvalidIdentity, match=problem.replace("?", r"\?")):
        parse_account(text)


async def test_a_seeded_account_is_the_person_at_first_contact(make_runtime) -> None:
    runtime = await make_runtime()
    ana = add(runtime, "console:ana", "telegram:5550001", email="Ana@Acme.test", name="Ana S.")
    await memory_of(runtime, ana).set("company", "Acme", memory_type="fact")

    # every way of naming her finds her: id, accounts, e-mail in any case, her name
    for ref in (ana, "telegram:5550001", "ana", "console:ana", "ana@acme.test", "Ana S."):
        assert runtime.identity.find(ref) == ana
    # her first message (console account "ana") is hers: no new person, the fact is there
    resolved = runtime.identity.resolve("console", "ana", "Ana Souza")
    assert (resolved.user_id, resolved.created) == (ana, False)
    assert users(runtime) == 1
    replies = await Chat(runtime, bot="support-bot", user="ana").say("hello")
    assert replies and users(runtime) == 1
    assert await memory_of(runtime, ana).get("company") == "Acme"
    with runtime.db.read() as conn:
        name = conn.execute(select(USERS.c.display_name).where(USERS.c.id == ana)).scalar()
    assert name == "Ana S."  # the operator's name is kept over the platform's


async def test_seeding_refuses_what_would_make_a_second_copy_and_writes_nothing(
    make_runtime,
) -> None:
    runtime = await make_runtime()
    ana = add(runtime, "telegram:5550001", email="ana@acme.test")

    with pytest.raises(
        AdminConflict, match=f"telegram:5550001 is already the account of user {ana}"
    ):
        add(runtime, "slack:T1:U1", "telegram:5550001")
    with pytest.raises(AdminConflict, match=f"user {ana} already has the e-mail ANA@acme.test"):
        add(runtime, email="ANA@acme.test")
    with pytest.raises(InvalidIdentity, match="say who the person is"):
        add(runtime, name="Nobody")
    with pytest.raises(InvalidIdentity, match="'ana@' is not an e-mail address"):
        add(runtime, "slack:T1:U1", email="ana@")
    with pytest.raises(InvalidIdentity, match="the same account is given twice"):
        add(runtime, "slack:T1:U1", "slack:T1/U1")
    assert users(runtime) == 1
    with runtime.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(IDENTITIES)).scalar_one() == 1


async def test_find_says_when_nothing_or_several_match(make_runtime) -> None:
    runtime = await make_runtime()
    add(runtime, "console:x1", name="Sam")
    add(runtime, "console:x2", name="Sam")

    with pytest.raises(UnknownUser, match="2 users have the name or e-mail 'Sam'"):
        runtime.identity.find("Sam")
    with pytest.raises(UnknownUser, match=r"no user 'z1' \(give a user id, an e-mail"):
        runtime.identity.find("z1")
    with pytest.raises(InvalidIdentity, match="a Telegram account is the person's numeric"):
        runtime.identity.find("telegram:ana")


async def test_an_account_tied_on_later_is_theirs_and_one_that_wrote_is_merged_in(
    make_runtime,
) -> None:
    runtime = await make_runtime()
    bob = add(runtime, email="bob@acme.test")
    await memory_of(runtime, bob).set("company", "Initech", memory_type="fact")

    # an account nobody has used: tied on, no merge
    assert link(runtime, bob, "slack:T1/U2").merged_from is None
    assert runtime.identity.find("slack:T1:U2") == bob

    # an account that wrote first (a person of its own, with memory): merged into Bob
    stranger = runtime.identity.resolve("telegram", "5550002", "Bob").user_id
    await memory_of(runtime, stranger).set("language", "en")
    linked = link(runtime, bob, "telegram:5550002")
    assert (linked.account, linked.merged_from) == ("telegram:5550002", stranger)
    assert runtime.identity.find("telegram:5550002") == bob
    assert await memory_of(runtime, bob).items() == {"company": "Initech", "language": "en"}
    assert users(runtime) == 1

    with pytest.raises(AdminConflict, match="telegram:5550002 is already this person's account"):
        link(runtime, bob, "telegram:5550002")


async def test_seeded_by_e_mail_a_slack_account_with_it_joins_at_first_contact(
    make_runtime,
) -> None:
    # [link] by_email: a platform-verified e-mail (Slack's profile) ties the account on
    runtime = await make_runtime()
    ana = add(runtime, email="Ana@Acme.test")
    await memory_of(runtime, ana).set("company", "Acme", memory_type="fact")

    first = runtime.identity.resolve(
        "slack", "T1:U1", "Ana", email="ana@acme.test", link_by_email=True
    )

    assert first.user_id == ana
    assert runtime.identity.find("slack:T1:U1") == ana
    assert users(runtime) == 1
    assert await memory_of(runtime, ana).get("company") == "Acme"
