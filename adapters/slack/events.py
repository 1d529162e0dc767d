"""Slack event or slash command → the runtime's InboundMessage, and which events to leave alone.

Kept apart from the channel because these are pure functions of an event (and of the bot's
own ids): no network, no state, no logging (the channel logs what was ignored and why). How a
thread becomes a ``chat_id``, what a person actually typed once mentions and links are
undone, and which events would start a reply loop are the Slack rules easiest to get wrong,
and the easiest to test alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.authorization import AuthorizeResult

from mnemobot.adapters.bodies import _BadBody, parse_json
from mnemobot.runtime import InboundMessage

__all__ = [
    "IGNORE_RULES",
    "IgnoreRule",
    "body_problem",
    "chat_id_of",
    "command_to_inbound",
    "escape_mrkdwn",
    "plain_text",
    "target_of",
    "to_inbound",
]

_PLAIN_SUBTYPES = (None, "file_share", "thread_broadcast")  # a person wrote this
_LINK = re.compile(r"<((?:https?|mailto):[^>|]+)(?:\|([^>]*))?>")


def escape_mrkdwn(text: str) -> str:
    """Escape Slack's three control characters so text cannot form ``<@U..>``, ``<!here>``
    or ``<url|label>``; Slack shows the entities as the plain characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain_text(text: str, bot_user_id: str | None) -> str:
    """What the person typed: our own mention dropped, links to their text, entities undone."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1).removeprefix("mailto:"), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def chat_id_of(event: dict[str, Any]) -> str:
    """``channel`` for a top-level DM, ``channel:thread_ts`` for anything in a thread.

    A top-level ``app_mention`` opens a thread rooted at the mention itself, so its
    ``chat_id`` already names that thread and a later mention in it finds the same session.
    """
    channel = str(event.get("channel") or "")
    thread = event.get("thread_ts")
    if not thread and event.get("type") == "app_mention":
        thread = event.get("ts")
    return f"{channel}:{thread}" if thread else channel


def target_of(chat_id: str) -> tuple[str, str | None]:
    """The Slack channel and thread to post a reply for ``chat_id`` (see :func:`chat_id_of`)."""
    channel, _, thread = chat_id.partition(":")
    return channel, thread or None


IgnoreRule = Callable[[dict[str, Any], AuthorizeResult | None], str | None]


def _not_a_message(event: dict[str, Any], me: AuthorizeResult | None) -> str | None:
    return None if event.get("type") in ("message", "app_mention") else "not a message"


def _from_myself(event: dict[str, Any], me: AuthorizeResult | None) -> str | None:
    mine = me is not None and (
        (me.bot_user_id and event.get("user") == me.bot_user_id)
        or (me.bot_id and event.get("bot_id") == me.bot_id)
    )
    return "our own message" if mine else None


def _from_a_bot(event: dict[str, Any], me: AuthorizeResult | None) -> str | None:
    botty = event.get("bot_id") or event.get("bot_profile") or event.get("subtype") == "bot_message"
    return "another bot's message" if botty else None


def _not_written_by_a_person(event: dict[str, Any], me: AuthorizeResult | None) -> str | None:
    subtype = event.get("subtype")
    return None if subtype in _PLAIN_SUBTYPES else f"subtype {subtype}"


def _channel_message(event: dict[str, Any], me: AuthorizeResult | None) -> str | None:
    # In channels we answer app_mention only; the same text may also come as a message event.
    if event.get("type") == "message" and event.get("channel_type") != "im":
        return "a channel message without a mention"
    return None


def _no_author(event: dict[str, Any], me: AuthorizeResult | None) -> str | None:
    return None if event.get("user") and event.get("channel") else "no user or channel"


IGNORE_RULES: tuple[IgnoreRule, ...] = (
    _not_a_message,
    _from_myself,
    _from_a_bot,
    _not_written_by_a_person,
    _channel_message,
    _no_author,
)
"""Each rule names why an event is acked without a turn, or returns None to let it pass."""


def to_inbound(
    body: dict[str, Any], *, channel: str, me: AuthorizeResult | None
) -> InboundMessage | str:
    """The neutral message for an ``event_callback`` body, or why it is ignored (a str)."""
    event: dict[str, Any] = body.get("event") or {}
    for rule in IGNORE_RULES:
        reason = rule(event, me)
        if reason is not None:
            return reason
    text = plain_text(str(event.get("text") or ""), me.bot_user_id if me else None)
    if not text:
        return "no text"
    team = event.get("user_team") or event.get("team") or body.get("team_id") or ""
    event_id = body.get("event_id") or f"{event['channel']}:{event.get('ts')}"
    return InboundMessage(
        channel=channel,
        channel_kind="slack",
        external_user_id=f"{team}:{event['user']}",
        chat_id=chat_id_of(event),
        text=text,
        event_id=str(event_id),
        # The envelope minus its (legacy) verification token.
        payload={"event_id": event_id, "team_id": body.get("team_id"), "event": event},
    )


def command_to_inbound(
    body: dict[str, Any], *, channel: str, me: AuthorizeResult | None
) -> InboundMessage | None:
    """A slash command (``/end``) as if typed where it was typed; None when a field is missing.

    Its ``trigger_id`` is the inbox key (``command:<trigger_id>``).
    """
    user, where = body.get("user_id"), body.get("channel_id")
    trigger = body.get("trigger_id")
    if not (user and where and trigger):
        return None
    team = body.get("team_id") or (me.team_id if me else "")
    return InboundMessage(
        channel=channel,
        channel_kind="slack",
        external_user_id=f"{team}:{user}",
        chat_id=str(where),
        text=f"{body.get('command', '')} {body.get('text') or ''}".strip(),
        event_id=f"command:{trigger}",
        payload={"command": body.get("command"), "team_id": team, "channel_id": where},
    )


def body_problem(raw: bytes, content_type: str | None) -> str | None:
    """Why Bolt could not read this request body (None when it can), checked before Bolt
    sees it: a body that is not UTF-8, not JSON, or nested too deep would otherwise end in a
    500 (``RecursionError``, ``UnicodeDecodeError``), which Slack retries.

    Reads the body as Bolt does: JSON when so declared or when it starts with ``{``, else a
    form whose ``payload`` field (if any) is JSON.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"body is not UTF-8 (byte {exc.start})"
    if (content_type or "").split(";")[0].strip() == "application/json" or text.startswith("{"):
        document: str | None = text
    else:
        document = dict(parse_qsl(text, keep_blank_values=True)).get("payload")
    if document is None:
        return None
    try:
        value = parse_json(document)
    except _BadBody as exc:
        return str(exc)
    return None if isinstance(value, dict) else "body is not a JSON object"
