"""The janitor keeps handled inbox, outbox and turn-log rows only as long as [janitor] says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.messages import InboundMessage
from mnemobot.runtime.people.privacy import forget_user
from mnemobot.runtime.pipeline.runtime import Runtime
from mnemobot.runtime.storage.tables import INBOX, OUTBOX, TURNS
from tests.support import Chat, write_bot

ECHO_BOT = """
    async def on_message(ctx):
        await ctx.say(f"you said {ctx.text}")
"""

DAY = 86400
AGES = {"inbox_payloads": "1d", "inbox_rows": "3d", "outbox_sent": "2d", "turns": "5d"}


def message(text: str, event_id: str, user: str = "ana") -> InboundMessage:
    """What the console channel of the echo bot sends, with an event id of our choosing."""
    return InboundMessage(
        channel="console:echo",
        channel_kind="console",
        external_user_id=user,
        chat_id=user,
        text=text,
        event_id=event_id,
        display_name=user.title(),
    )


async def say(runtime: Runtime, msg: InboundMessage) -> None:
    result = await runtime.handle(msg)
    assert not result.duplicate and not result.failed
    await runtime.mark_sent(result)


def inbox(runtime: Runtime) -> dict[str, Any]:
    """event id -> (status, payload, conversation)."""
    with runtime.db.read() as conn:
        rows = conn.execute(
            select(INBOX.c.event_id, INBOX.c.status, INBOX.c.payload, INBOX.c.conversation)
        )
        return {r.event_id: (r.status, r.payload, r.conversation) for r in rows}


def count(runtime: Runtime, table: Any, *where: Any) -> int:
    with runtime.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def turn_texts(runtime: Runtime) -> list[str]:
    with runtime.db.read() as conn:
        return sorted(conn.execute(select(TURNS.c.text)).scalars())


def recalled(runtime: Runtime, user_id: str, query: str) -> list[str]:
    return sorted(hit.text for hit in runtime.recall.search(user_id, query) if hit.kind == "turn")


async def test_handled_rows_go_after_their_age_younger_and_unanswered_ones_stay(
    make_runtime, tmp_path: Path, clock: ManualClock
) -> None:
    write_bot(tmp_path, "echo", bot_py=ECHO_BOT)
    runtime = await make_runtime(bots_dir=tmp_path, janitor=AGES)
    Chat(runtime, bot="echo", user="ana")  # binds console:echo
    await say(runtime, message("my cousin lives in zanzibar", "old"))
    user_id = runtime.identity.find("ana")
    old_lines = ["my cousin lives in zanzibar", "you said my cousin lives in zanzibar"]
    assert recalled(runtime, user_id, "zanzibar") == old_lines
    # stored, never answered (its worker died): no age makes it go
    runtime.inbox.receive(message("still waiting", "unanswered", user="cy"))
    # a forgotten person's events are tombstones: they stop a redelivery, then go with age
    await say(runtime, message("forget me later", "bo-1", user="bo"))
    forget_user(runtime.db, runtime.identity.find("bo"), clock.now())
    assert count(runtime, OUTBOX) == 1  # bo's reply went with bo

    clock.advance(DAY - 1)
    swept = runtime.janitor.sweep_all()
    assert [swept[k] for k in AGES] == [0, 0, 0, 0]
    clock.advance(2)  # the first event was handled a day and a second ago
    swept = runtime.janitor.sweep_all()
    assert [swept[k] for k in AGES] == [1, 0, 0, 0]
    clock.advance(60)
    await say(runtime, message("the weather in lisbon", "young"))
    rows = inbox(runtime)
    assert rows["old"] == ("done", None, None)  # what was said, and where, is gone
    # SQL NULL, not JSON null: the row leaves the index of rows still holding a payload
    assert count(runtime, INBOX, INBOX.c.event_id == "old", INBOX.c.payload.is_(None)) == 1
    assert rows["young"][0] == "done" and rows["young"][1]["text"] == "the weather in lisbon"
    assert rows["unanswered"][0] == "received" and rows["unanswered"][1]["text"] == "still waiting"
    assert len(rows) == 4  # the tombstone too

    # A platform redelivering the old event: its row still stops it.
    again = await runtime.handle(message("my cousin lives in zanzibar", "old"))
    assert again.duplicate and again.replies == []
    assert turn_texts(runtime).count("my cousin lives in zanzibar") == 1

    clock.advance(DAY - 60)  # the old reply was sent two days and a second ago
    swept = runtime.janitor.sweep_all()
    assert [swept[k] for k in AGES] == [0, 0, 1, 0]
    with runtime.db.read() as conn:
        assert conn.execute(select(OUTBOX.c.text)).scalars().all() == [
            "you said the weather in lisbon"
        ]

    clock.advance(DAY)  # three days and a second: the old row and the tombstone go
    swept = runtime.janitor.sweep_all()
    assert [swept[k] for k in AGES] == [1, 2, 0, 0]  # and the young event's payload
    assert sorted(inbox(runtime)) == ["unanswered", "young"]
    assert runtime.inbox.receive(message("my cousin lives in zanzibar", "old")).is_new

    clock.advance(2 * DAY)  # five days and a second: the first turn's lines leave the log
    swept = runtime.janitor.sweep_all()
    assert [swept[k] for k in AGES] == [0, 1, 1, 2]  # the young row and reply too
    assert turn_texts(runtime) == ["the weather in lisbon", "you said the weather in lisbon"]
    assert recalled(runtime, user_id, "zanzibar") == []  # its index entries went with it
    assert recalled(runtime, user_id, "lisbon") == turn_texts(runtime)
    assert inbox(runtime)["unanswered"][0] == "received"


async def test_a_large_purge_goes_a_batch_per_transaction(
    make_runtime, tmp_path: Path, clock: ManualClock
) -> None:
    write_bot(tmp_path, "echo", bot_py=ECHO_BOT)
    runtime = await make_runtime(bots_dir=tmp_path, janitor={**AGES, "batch": 3})
    Chat(runtime, bot="echo", user="ana")
    for n in range(4):
        await say(runtime, message(f"line {n}", f"e{n}"))
    clock.advance(6 * DAY)

    first = runtime.janitor.sweep()  # one batch of each kind, each in its own transaction
    assert [first[k] for k in AGES] == [3, 3, 3, 3]
    assert count(runtime, TURNS) == 5
    rest = runtime.janitor.sweep_all()  # repeats while a kind fills its batch
    assert (rest["inbox_rows"], rest["outbox_sent"], rest["turns"]) == (1, 1, 5)
    assert count(runtime, TURNS) == count(runtime, OUTBOX) == count(runtime, INBOX) == 0


async def test_zero_keeps_everything(make_runtime, tmp_path: Path, clock: ManualClock) -> None:
    write_bot(tmp_path, "echo", bot_py=ECHO_BOT)
    keep = {"inbox_payloads": 0, "inbox_rows": 0, "outbox_sent": 0, "turns": 0}
    runtime = await make_runtime(bots_dir=tmp_path, janitor=keep)
    Chat(runtime, bot="echo", user="ana")
    await say(runtime, message("kept for good", "e1"))
    clock.advance(3650 * DAY)
    swept = runtime.janitor.sweep_all()
    assert [swept[k] for k in AGES] == [0, 0, 0, 0]
    assert inbox(runtime)["e1"][1]["text"] == "kept for good"
    assert count(runtime, OUTBOX) == 1 and count(runtime, TURNS) == 2


async def test_an_event_whose_reply_is_unsent_keeps_its_row_and_conversation(
    make_runtime, tmp_path: Path, clock: ManualClock
) -> None:
    write_bot(tmp_path, "echo", bot_py=ECHO_BOT)
    runtime = await make_runtime(bots_dir=tmp_path, janitor=AGES)
    Chat(runtime, bot="echo", user="ana")
    result = await runtime.handle(message("answer me", "e1"))  # the platform is down: unsent
    clock.advance(4 * DAY)
    swept = runtime.janitor.sweep_all()
    assert [swept[k] for k in AGES] == [0, 0, 0, 0]
    status, payload, conversation = inbox(runtime)["e1"]
    assert status == "done"
    assert payload["text"] == "answer me" and conversation == "console:echo|ana|ana"

    await runtime.mark_sent(result)  # sent at last; then it ages like any other
    clock.advance(DAY)
    swept = runtime.janitor.sweep_all()
    assert [swept[k] for k in AGES] == [1, 1, 0, 2]  # the reply just sent stays 2d
    assert inbox(runtime) == {}
