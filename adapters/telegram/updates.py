"""Telegram Update → the runtime's neutral InboundMessage: the intake half of the adapter.

Kept apart from the channel because it is a pure function of the update and the bot's own
user (no network, no state), and because who is addressed in a group, and where a mention
sits in UTF-16 offsets, are the Telegram rules easiest to get wrong and to test alone.
"""

from __future__ import annotations

import re
from typing import Any

from telegram import Message, MessageEntity, Update, User
from telegram.constants import ChatType

from mnemobot.runtime import InboundMessage

__all__ = ["to_inbound"]

_COMMAND = re.compile(r"^(/[A-Za-z0-9_]+)@([A-Za-z0-9_]+)")


def _utf16_index(text: str, offset: int) -> int:
    """The str index of a UTF-16 offset (Telegram measures entities in UTF-16 code units)."""
    units = 0
    for index, char in enumerate(text):
        if units >= offset:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(text)


def _without(text: str, spans: list[MessageEntity]) -> str:
    """``text`` with the given entities (mentions of the bot) cut out, with one adjacent space."""
    for entity in sorted(spans, key=lambda e: e.offset, reverse=True):
        start = _utf16_index(text, entity.offset)
        end = _utf16_index(text, entity.offset + entity.length)
        if text[end : end + 1] == " ":
            end += 1
        elif text[start - 1 : start] == " ":
            start -= 1
        text = text[:start] + text[end:]
    return text.strip()


def _addressed(message: Message, me: User) -> tuple[bool, list[MessageEntity]]:
    """Whether a group message is meant for this bot, and the entities that name it (in its
    text, or in its caption when it is a photo, video or file)."""
    username = (me.username or "").lower()
    entities = message.parse_entities() if message.text else message.parse_caption_entities()
    naming = [
        e
        for e, said in entities.items()
        if (e.type == MessageEntity.MENTION and said.lower() == f"@{username}")
        or (e.type == MessageEntity.TEXT_MENTION and e.user is not None and e.user.id == me.id)
    ]
    command = next(
        (
            said
            for e, said in entities.items()
            if e.type == MessageEntity.BOT_COMMAND and not e.offset
        ),
        None,
    )
    if command is not None and "@" in command:
        return command.split("@", 1)[1].lower() == username, naming
    replied = message.reply_to_message
    to_me = replied is not None and replied.from_user is not None and replied.from_user.id == me.id
    return bool(naming) or to_me or command is not None, naming


def to_inbound(
    update: Update, *, channel: str, me: User, payload: dict[str, Any] | None = None
) -> InboundMessage | None:
    """The neutral message for ``update``, or None when the bot should not answer it.

    A photo, video or file sent with a caption is answered as its caption, as Slack answers
    a file shared with a message: a person who asks about a picture gets an answer, not
    silence. Ignored: edits, stickers, media without a caption, service messages, messages
    of bots (this one included, so two bots never loop), channels, and group messages not
    addressed to this bot. Mentions of the bot are cut from the text and
    ``/command@thisbot`` becomes ``/command``, so the runtime's commands work in groups.
    """
    message = update.message
    said = None if message is None else message.text or message.caption
    if message is None or not said:
        return None
    sender = message.from_user
    if sender is None or sender.is_bot or message.sender_chat is not None:
        return None
    if message.chat.type == ChatType.PRIVATE:
        _, naming = _addressed(message, me)
    elif message.chat.type in (ChatType.GROUP, ChatType.SUPERGROUP):
        addressed, naming = _addressed(message, me)
        if not addressed:
            return None
    else:
        return None
    text = _without(said, naming)
    match = _COMMAND.match(text)
    if match and match[2].lower() == (me.username or "").lower():
        text = match[1] + text[match.end() :]
    if not text:
        return None
    return InboundMessage(
        channel=channel,
        channel_kind="telegram",
        external_user_id=str(sender.id),
        chat_id=str(message.chat.id),
        text=text,
        event_id=str(update.update_id),
        display_name=sender.full_name,
        language=sender.language_code,
        payload=payload if payload is not None else update.to_dict(),
    )
