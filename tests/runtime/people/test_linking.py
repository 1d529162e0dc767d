"""Identity on first contact, and linking two accounts of one person with /link."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert, select

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.messages import InboundMessage
from mnemobot.runtime.storage.tables import EPISODES, IDENTITIES, MERGES, USER_MEMORY, USERS, new_id
from tests.support import Chat, write_bot

MEMO_BOT = """
    async def on_message(ctx):
        key, _, value = ctx.text.partition("=")
        if value:
            await ctx.user.memory.set(key.strip(), value.strip())
            await ctx.say("ok")
        else:
            await ctx.say(repr(await ctx.user.memory.get(key.strip())))
"""


def account(channel: str, kind: str, external: str, text: str, event: str) -> InboundMessage:
    return InboundMessage(
        channel=channel,
        channel_kind=kind,
        external_user_id=external,
        chat_id=external,
        text=text,
        event_id=event,
        display_name=external.title(),
    )


async def test_first_contact_creates_a_user_once_and_keeps_the_display_name(make_runtime):
    runtime = await make_runtime()
    first = runtime.identity.resolve("telegram", "123456789", "Ana Souza")
    again = runtime.identity.resolve("telegram", "123456789", "Ana Souza")
    other = runtime.identity.resolve("slack", "T024BE7LD:U012AB3CD", "Ana")
    assert first.created and not again.created
    assert first.user_id == again.user_id != other.user_id
    with runtime.db.read() as conn:
        names = conn.execute(select(USERS.c.display_name).order_by(USERS.c.display_name)).scalars()
        assert list(names) == ["Ana", "Ana Souza"]


async def test_link_merges_two_accounts_newer_write_wins_and_both_keep_their_facts(
    make_runtime, tmp_path: Path, clock: ManualClock
):
    write_bot(tmp_path, "memo", bot_py=MEMO_BOT)
    runtime = await make_runtime(bots_dir=tmp_path)
    runtime.bind_channel("tg", bot="memo")
    runtime.bind_channel("sl", bot="memo")

    await runtime.handle(account("tg", "telegram", "111", "language=pt-BR", "t1"))
    await runtime.handle(account("tg", "telegram", "111", "timezone=America/Sao_Paulo", "t2"))
    clock.advance(60)
    await runtime.handle(account("sl", "slack", "T1:U1", "language=en", "s1"))  # newer
    await runtime.handle(account("sl", "slack", "T1:U1", "team=billing", "s2"))
    await runtime.handle(account("sl", "slack", "T1:U1", "plan=basic", "s2b"))
    clock.advance(60)
    await runtime.handle(account("tg", "telegram", "111", "plan=pro", "t2b"))  # newer again
    tg_user = runtime.identity.find("telegram:111")
    slack_user = runtime.identity.find("slack:T1:U1")
    with runtime.db.write() as conn:  # an episode on each side (the episode worker's job)
        for user_id in (tg_user, slack_user):
            conn.execute(
                insert(EPISODES).values(
                    id=new_id(),
                    user_id=user_id,
                    conversation_id=new_id(),
                    bot="memo",
                    summary=f"episode of {user_id}",
                    topics=[],
                    created_at=clock.now(),
                )
            )

    code_reply = await runtime.handle(account("tg", "telegram", "111", "/link", "t3"))
    code = code_reply.replies[0].text.split("code is ")[1][:6]
    assert code.isdigit() and len(code) == 6
    linked = await runtime.handle(account("sl", "slack", "T1:U1", f"/link {code}", "s3"))
    assert linked.replies[0].text.startswith("Linked!")

    assert runtime.identity.find("slack:T1:U1") == tg_user  # the code's owner survives
    with runtime.db.read() as conn:
        memory = dict(
            conn.execute(
                select(USER_MEMORY.c.key, USER_MEMORY.c.value).where(
                    USER_MEMORY.c.user_id == tg_user
                )
            ).all()
        )
        identities = conn.execute(
            select(IDENTITIES.c.channel_kind).where(IDENTITIES.c.user_id == tg_user)
        ).scalars()
        episodes = conn.execute(select(EPISODES.c.user_id)).scalars().all()
        merge = conn.execute(select(MERGES)).one()
        gone = conn.execute(select(USERS.c.id).where(USERS.c.id == slack_user)).first()
    assert memory == {
        "language": "en",  # written later on Slack: the newer write wins
        "timezone": "America/Sao_Paulo",
        "team": "billing",
        "plan": "pro",  # written later on Telegram: kept
    }
    assert sorted(identities) == ["slack", "telegram"]
    assert episodes == [tg_user, tg_user]
    assert (merge.from_user_id, merge.into_user_id) == (slack_user, tg_user)
    assert merge.details == {"keys_moved": 1, "keys_replaced": 1, "keys_kept": 1}
    assert gone is None

    # from now on both accounts read the same memory
    reply = await runtime.handle(account("sl", "slack", "T1:U1", "timezone", "s4"))
    assert reply.replies[0].text == "'America/Sao_Paulo'"


async def test_a_link_code_is_single_use_and_expires(make_runtime, clock: ManualClock):
    runtime = await make_runtime()
    owner = Chat(runtime, bot="support-bot", user="owner")
    other = Chat(runtime, bot="support-bot", user="other")
    third = Chat(runtime, bot="support-bot", user="third")

    code = (await owner.say("/link"))[0].split("code is ")[1][:6]
    clock.advance(601)
    assert await other.say(f"/link {code}") == [
        "support-bot: Couldn't link: that link code has expired; ask for a new one with /link."
    ]
    code = (await owner.say("/link"))[0].split("code is ")[1][:6]
    assert (await other.say(f"/link {code}"))[0].startswith("support-bot: Linked!")
    assert await third.say(f"/link {code}") == [
        "support-bot: Couldn't link: that link code was already used."
    ]


async def test_guessing_codes_is_cut_off_after_the_attempt_limit(make_runtime, clock: ManualClock):
    runtime = await make_runtime(link={"max_attempts": 3})
    owner = Chat(runtime, bot="support-bot", user="owner")
    guesser = Chat(runtime, bot="support-bot", user="guesser")
    code = (await owner.say("/link"))[0].split("code is ")[1][:6]
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(3):
        assert await guesser.say(f"/link {wrong}") == [
            "support-bot: Couldn't link: that link code is not valid."
        ]
    refused = await guesser.say(f"/link {code}")  # even the right code, once over the limit
    assert refused == [
        "support-bot: Couldn't link: too many wrong link codes; wait 10 minutes and ask for "
        "a new code with /link."
    ]
    assert runtime.identity.find("guesser") != runtime.identity.find("owner")
    clock.advance(601)
    code = (await owner.say("/link"))[0].split("code is ")[1][:6]
    assert (await guesser.say(f"/link {code}"))[0].startswith("support-bot: Linked!")
    assert runtime.identity.find("guesser") == runtime.identity.find("owner")


async def test_forget_asks_for_confirmation_then_removes_the_person(make_runtime, clock):
    from mnemobot.runtime.people.privacy import export_user

    runtime = await make_runtime()
    ana = Chat(runtime, bot="sales-bot", user="ana")
    bob = Chat(runtime, bot="sales-bot", user="bob")
    for chat, name in ((ana, "Ana"), (bob, "Bob")):
        for line in ("hi", name, "English"):
            await chat.say(line)
    bob_before = export_user(runtime.db, await bob.user_id())

    assert await ana.say("/forget yes") == ["sales-bot: Nothing to confirm: send /forget first."]
    assert await ana.say("/forget") == [
        "sales-bot: This deletes everything every bot here remembers about you: memory, facts, "
        "conversations and linked accounts. To confirm, send /forget yes within 5 minutes."
    ]
    clock.advance(301)
    assert await ana.say("/forget yes") == ["sales-bot: Nothing to confirm: send /forget first."]
    await ana.say("/forget")
    assert await ana.say("/forget yes") == [
        "sales-bot: Done: every bot here has forgotten everything about you "
        "(memory, facts, conversations and linked accounts)."
    ]
    with runtime.db.read() as conn:
        names = conn.execute(select(USERS.c.display_name)).scalars().all()
    assert names == ["bob"]
    assert export_user(runtime.db, await bob.user_id()) == bob_before
    # talking again starts from nothing
    assert await ana.say("hi") == ["sales-bot: Hi! I'm the sales bot. What's your name?"]


async def test_accounts_with_the_same_verified_email_are_one_person_when_enabled(
    make_runtime, tmp_path
):
    write_bot(tmp_path, "memo", bot_py=MEMO_BOT)
    runtime = await make_runtime(bots_dir=tmp_path, link={"by_email": True})
    runtime.bind_channel("sl", bot="memo")
    runtime.bind_channel("tg", bot="memo")

    def from_slack(ext: str, text: str, event: str, email: str | None) -> InboundMessage:
        return InboundMessage(
            channel="sl",
            channel_kind="slack",
            external_user_id=ext,
            chat_id=ext,
            text=text,
            event_id=event,
            display_name="Ana",
            email=email,
        )

    await runtime.handle(account("tg", "telegram", "111", "language=pt-BR", "t1"))
    await runtime.handle(from_slack("T1:U1", "plan=pro", "s1", "ana@example.com"))
    await runtime.handle(
        from_slack("T2:U9", "language", "s2", "ana@example.com")
    )  # another workspace
    reply = await runtime.handle(from_slack("T2:U9", "plan", "s3", "ana@example.com"))
    assert reply.replies[0].text == "'pro'"
    assert runtime.identity.find("slack:T1:U1") == runtime.identity.find("slack:T2:U9")
    assert runtime.identity.find("telegram:111") != runtime.identity.find(
        "slack:T1:U1"
    )  # no e-mail
    other = await runtime.handle(from_slack("T1:U7", "plan", "s4", "bob@example.com"))
    assert other.replies[0].text == "None"


async def test_email_is_kept_but_never_links_unless_enabled(make_runtime, tmp_path):
    write_bot(tmp_path, "memo", bot_py=MEMO_BOT)
    runtime = await make_runtime(bots_dir=tmp_path)
    runtime.bind_channel("sl", bot="memo")
    for ext, event in (("T1:U1", "a"), ("T2:U9", "b")):
        await runtime.handle(
            InboundMessage(
                channel="sl",
                channel_kind="slack",
                external_user_id=ext,
                chat_id=ext,
                text="x=1",
                event_id=event,
                display_name="Ana",
                email="ana@example.com",
            )
        )
    assert runtime.identity.find("slack:T1:U1") != runtime.identity.find("slack:T2:U9")
    with runtime.db.read() as conn:
        emails = conn.execute(select(USERS.c.email)).scalars().all()
    assert emails == ["ana@example.com", "ana@example.com"]
