"""Who is talking to whom: groups answer only when addressed; bots are never answered."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from telegram import Update, User

from mnemobot.adapters.telegram.updates import to_inbound
from mnemobot.runtime.storage.tables import TURNS

from .conftest import ECHO_CHANNEL, SALES_CHANNEL
from .support import ECHO, Person, inbox_rows

ANA = Person(777, "Ana", "Silva", language_code="pt-br")
BRUNO = Person(888, "Bruno", language_code="es")
GROUP = {"chat_id": -100, "chat_type": "supergroup"}
FAST = {"pacing": {"group_burst": 50}}  # these tests are about addressing, not group pacing
ME = User(333333, "Echo", is_bot=True, username="echo_bot")


async def test_in_a_group_the_bot_answers_only_when_addressed(deploy, echo_bots):
    deployment = await deploy({**ECHO_CHANNEL, **FAST}, bots_dir=echo_bots)
    echo = deployment.line("echo-telegram")

    assert await echo.says(ANA, "hello everyone", **GROUP) == []
    assert await echo.says(ANA, "@echo_bot what time is it?", **GROUP) == ["echo: what time is it?"]
    assert await echo.says(ANA, "and you, @Echo_Bot?", **GROUP) == ["echo: and you,?"]
    bot_said = deployment.tg.sent_messages(ECHO, chat_id=-100)[-1].message_id
    assert await echo.says(BRUNO, "a reply to the bot", reply_to=bot_said, **GROUP) == [
        "echo: a reply to the bot"
    ]
    assert await echo.says(ANA, "/help", **GROUP) == ["echo: /help"]
    assert await echo.says(ANA, "/start@echo_bot go", **GROUP) == ["echo: /start go"]
    assert await echo.says(ANA, "/start@sales_bot", **GROUP) == []
    assert await echo.says(ANA, "@sales_bot hi", **GROUP) == []
    ana_said = echo.push(ANA, "a question for Bruno", **GROUP)["message"]["message_id"]
    assert await echo.says(BRUNO, "my answer to Ana", reply_to=ana_said, **GROUP) == []
    assert len(inbox_rows(deployment.runtime)) == 5  # only what was addressed was stored


async def test_messages_of_bots_edits_and_non_text_are_never_answered(deploy, echo_bots, tg):
    deployment = await deploy(ECHO_CHANNEL, bots_dir=echo_bots)
    echo = deployment.line("echo-telegram")
    other_bot = {"id": 444, "is_bot": True, "first_name": "Other", "username": "other_bot"}
    myself = {"id": 333333, "is_bot": True, "first_name": "Echo", "username": "echo_bot"}
    chat = {"id": 777, "type": "private", "first_name": "Ana"}
    group = {"id": -100, "type": "supergroup", "title": "Team"}
    updates: list[dict[str, Any]] = [
        {"message": _message(other_bot, group, "@echo_bot loop with me")},
        {"message": _message(myself, group, "I said this myself")},
        {"edited_message": _message(_ana(), chat, "edited text")},
        {"message": {**_message(_ana(), chat, ""), "text": None, "photo": []}},
        {"channel_post": _message(None, {"id": -200, "type": "channel", "title": "News"}, "x")},
    ]
    for update in updates:
        tg.push_update(ECHO, update)
    last = tg.push_update(ECHO, {"message": _message(_ana(), chat, "a person")})
    await echo.settle(last)

    assert [m.text for m in tg.sent_messages(ECHO)] == ["echo: a person"]
    assert [r.event_id for r in inbox_rows(deployment.runtime)] == [str(last["update_id"])]


async def test_a_photo_with_a_caption_is_answered_as_its_caption(deploy, echo_bots, tg):
    """Caption mentions count as text mentions do; a photo with no caption is not answered."""
    deployment = await deploy({**ECHO_CHANNEL, **FAST}, bots_dir=echo_bots)
    echo = deployment.line("echo-telegram")
    chat = {"id": 777, "type": "private", "first_name": "Ana"}
    group = {"id": -100, "type": "supergroup", "title": "Team"}
    photo = [{"file_id": "p1", "file_unique_id": "u1", "width": 90, "height": 90}]

    def captioned(where: dict[str, Any], caption: str) -> dict[str, Any]:
        message = {**_message(_ana(), where, caption), "photo": photo}
        message["caption"] = message.pop("text")
        if "entities" in message:
            message["caption_entities"] = message.pop("entities")
        return {"message": message}

    first = tg.push_update(ECHO, captioned(chat, "is this the right cable?"))
    tg.push_update(ECHO, captioned(group, "look at this"))  # not addressed
    tg.push_update(ECHO, {"message": {**_message(_ana(), chat, ""), "text": None, "photo": photo}})
    last = tg.push_update(ECHO, captioned(group, "@echo_bot and this one?"))
    for update in (last, first):  # two conversations: either may finish first
        await echo.settle(update)

    assert sorted((m.chat_id, m.text) for m in tg.sent_messages(ECHO)) == [
        (-100, "echo: and this one?"),
        (777, "echo: is this the right cable?"),
    ]  # two chats: answered side by side, in either order
    said = select(TURNS.c.text).where(TURNS.c.role == "user")
    with deployment.runtime.db.read() as conn:
        assert sorted(conn.execute(said).scalars()) == ["and this one?", "is this the right cable?"]


async def test_a_group_keeps_one_conversation_per_person(deploy):
    deployment = await deploy({**SALES_CHANNEL, **FAST})
    sales = deployment.line("sales-telegram")
    ask_name = ["Hi! I'm the sales bot. What's your name?"]

    assert await sales.says(ANA, "@sales_bot hi", **GROUP) == ask_name
    assert await sales.says(BRUNO, "@sales_bot hola", **GROUP) == ask_name
    (nice,) = await sales.says(ANA, "@sales_bot Ana", **GROUP)
    assert nice.startswith("Nice to meet you, Ana!")
    (nice,) = await sales.says(BRUNO, "@sales_bot Bruno", **GROUP)
    assert nice.startswith("Nice to meet you, Bruno!")


def _ana() -> dict[str, Any]:
    return {"id": 777, "is_bot": False, "first_name": "Ana", "language_code": "pt-br"}


def _message(sender: dict[str, Any] | None, chat: dict[str, Any], text: str) -> dict[str, Any]:
    message: dict[str, Any] = {"message_id": 1, "date": 0, "chat": chat, "text": text}
    if sender is not None:
        message["from"] = sender
    if text.startswith("@"):
        mention = text.split()[0]
        message["entities"] = [{"type": "mention", "offset": 0, "length": len(mention)}]
    return message


def _convert(text: str, chat: dict[str, Any], entities: list[dict[str, Any]] | None = None):
    message = _message(_ana(), chat, text)
    if entities is not None:
        message["entities"] = entities
    update = Update.de_json({"update_id": 7, "message": message}, None)
    return to_inbound(update, channel="echo-telegram", me=ME)


def test_conversion_keeps_who_and_where():
    msg = _convert("hi", {"id": 777, "type": "private"})
    assert msg is not None
    assert (msg.channel_kind, msg.external_user_id, msg.chat_id) == ("telegram", "777", "777")
    assert (msg.display_name, msg.language, msg.event_id) == ("Ana", "pt-br", "7")
    assert msg.payload["message"]["text"] == "hi"


def test_mentions_are_cut_by_utf16_offsets():
    group = {"id": -5, "type": "group", "title": "G"}
    text = "🙂 ok @echo_bot then"  # the emoji is two UTF-16 units
    msg = _convert(text, group, [{"type": "mention", "offset": 6, "length": 9}])
    assert msg is not None and msg.text == "🙂 ok then"
    named = _convert(
        "Echo, help",
        group,
        [{"type": "text_mention", "offset": 0, "length": 4, "user": ME.to_dict()}],
    )
    assert named is not None and named.text == ", help"
    assert _convert("@echo_bot", group, [{"type": "mention", "offset": 0, "length": 9}]) is None
    link = _convert(
        "/link@echo_bot 123456", group, [{"type": "bot_command", "offset": 0, "length": 14}]
    )
    assert link is not None and link.text == "/link 123456"
