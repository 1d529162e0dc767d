"""A fake Telegram Bot API server, for running python-telegram-bot against in tests.

Point PTB at it with ``ApplicationBuilder().token(t).base_url(f"{fake.url}/bot")`` (or
``Bot(t, base_url=fake.base_url)``): calls arrive at ``/bot<TOKEN>/<method>``. The test registers
bots, queues incoming updates, injects failures and reads back what was sent::

    with FakeTelegramAPI() as tg:
        tg.add_bot("111:AAA", "sales_bot")
        tg.push_message("111:AAA", chat_id=777, user_id=777, text="hi", first_name="Ann")
        ...  # run the channel against tg.base_url
        assert [m.text for m in tg.sent_messages("111:AAA", chat_id=777)] == ["Hello Ann"]

It answers like the real API where our code depends on it: 401 for an unknown token, the
``getUpdates`` offset/long-poll contract, 409 while a webhook is set or when a second poller
takes over, 400 for empty or over-long texts and unparsable ``parse_mode`` markup, and 429 with
``retry_after`` on demand for one chat only. Leniencies: any chat id may be messaged, and webhook
URLs need not be HTTPS.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from . import FakeHTTPServer, RecordedRequest, Reply

__all__ = ["FakeTelegramAPI", "SentMessage", "render_parse_mode"]

MAX_TEXT = 4096
_INT_PARAMS = {
    "offset",
    "limit",
    "message_id",
    "message_thread_id",
    "reply_to_message_id",
    "max_connections",
}
_BOOL_PARAMS = {
    "disable_notification",
    "protect_content",
    "drop_pending_updates",
    "allow_sending_without_reply",
    "disable_web_page_preview",
}
_JSON_PARAMS = {
    "reply_parameters",
    "entities",
    "reply_markup",
    "allowed_updates",
    "link_preview_options",
}
_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{5,32})?")
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}")


class EntityError(ValueError):
    """Markup that Telegram would refuse with "can't parse entities"."""


@dataclass(frozen=True)
class SentMessage:
    """One message a bot sent through ``sendMessage``, as recorded by the fake."""

    token: str
    chat_id: int | str
    text: str  # as sent, including parse_mode markup
    rendered: str  # what the person sees: the text after parse_mode markup is applied
    parse_mode: str | None
    reply_to_message_id: int | None
    message_id: int
    params: dict[str, Any]
    message: dict[str, Any]  # the Message JSON returned to the bot


@dataclass
class _Failure:
    method: str
    chat_id: int | str | None
    status: int
    retry_after: int | None
    description: str
    times: int


@dataclass
class _Bot:
    token: str
    user: dict[str, Any]
    pending: list[dict[str, Any]] = field(default_factory=list)
    next_update_id: int = 100_000_001
    confirmed_offset: int | None = None
    poll_generation: int = 0
    polls_waiting: int = 0  # long polls waiting for an update right now
    webhook: dict[str, Any] = field(default_factory=dict)
    failures: list[_Failure] = field(default_factory=list)


def _coerce(name: str, value: Any) -> Any:
    """Undo PTB's form encoding: non-string values arrive JSON-encoded (``chat_id`` as "777")."""
    if not isinstance(value, str):
        return value
    if name == "chat_id":
        return int(value) if value.lstrip("-").isdigit() else value
    if name == "timeout":
        return float(value)  # Telegram wants whole seconds; fractions keep tests fast
    if name in _INT_PARAMS:
        return int(value)
    if name in _BOOL_PARAMS:
        return value.lower() == "true"
    if name in _JSON_PARAMS:
        return json.loads(value)
    return value


def _utf16_len(text: str) -> int:
    """Telegram measures entity offsets and lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _auto_entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram itself attaches to a typed message: a leading command, @mentions."""
    entities: list[dict[str, Any]] = []
    if match := _COMMAND.match(text):
        entities.append({"type": "bot_command", "offset": 0, "length": _utf16_len(match[0])})
    for match in _MENTION.finditer(text):
        entities.append(
            {
                "type": "mention",
                "offset": _utf16_len(text[: match.start()]),
                "length": _utf16_len(match[0]),
            }
        )
    return entities


class FakeTelegramAPI(FakeHTTPServer):
    """The Bot API for several bots at once, served at ``{url}/bot<TOKEN>/<method>``."""

    def __init__(self) -> None:
        super().__init__()
        self._bots: dict[str, _Bot] = {}
        self._messages: dict[tuple[str, int | str], dict[int, dict[str, Any]]] = {}
        self._chats: dict[tuple[str, int | str], dict[str, Any]] = {}
        self._sent: list[SentMessage] = []

    @property
    def base_url(self) -> str:
        """What to give PTB as ``base_url``: it appends the token itself."""
        return f"{self.url}/bot"

    # -- test-side setup ---------------------------------------------------------------------

    def add_bot(
        self, token: str, username: str, *, first_name: str | None = None, bot_id: int | None = None
    ) -> dict[str, Any]:
        """Register a bot; returns the User JSON that ``getMe`` will answer for its token."""
        if bot_id is None:
            head = token.split(":", 1)[0]
            bot_id = int(head) if head.isdigit() else 5_000_000_000 + len(self._bots)
        user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": first_name or username,
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        with self._lock:
            self._bots[token] = _Bot(token=token, user=user)
        return user

    def push_update(self, token: str, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw Update for ``getUpdates``; an ``update_id`` is assigned if missing."""
        with self._changed:
            bot = self._bots[token]
            update = dict(update)
            if "update_id" not in update:
                update["update_id"] = bot.next_update_id
            bot.next_update_id = max(bot.next_update_id, update["update_id"]) + 1
            bot.pending.append(update)
            self._changed.notify_all()
        return update

    def push_message(
        self,
        token: str,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        first_name: str = "Test",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
        chat_type: str = "private",
        chat_title: str | None = None,
        entities: list[dict[str, Any]] | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """Queue an Update carrying a person's text message, built like Telegram builds it.

        Without ``entities``, a leading ``/command`` and ``@mentions`` get the entities the
        real server adds. The message id continues the chat's sequence shared with the bot's
        own messages, so replies can reference it.
        """
        sender: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            sender["last_name"] = last_name
        if username:
            sender["username"] = username
        if language_code:
            sender["language_code"] = language_code
        if chat_type == "private":
            chat = {k: v for k, v in sender.items() if k in ("first_name", "last_name", "username")}
            chat |= {"id": chat_id, "type": "private"}
        else:
            chat = {"id": chat_id, "type": chat_type, "title": chat_title or "Test group"}
            if chat_type == "group":
                chat["all_members_are_administrators"] = True
        entities = _auto_entities(text) if entities is None else entities
        with self._lock:
            self._chats[(token, chat_id)] = chat
            message: dict[str, Any] = {
                "message_id": self._next_message_id(token, chat_id),
                "from": sender,
                "chat": chat,
                "date": int(time.time()),
                "text": text,
            }
            if entities:
                message["entities"] = entities
            if reply_to_message_id is not None:
                message["reply_to_message"] = self._messages[(token, chat_id)][reply_to_message_id]
            self._messages[(token, chat_id)][message["message_id"]] = message
        return self.push_update(token, {"message": message})

    def fail_next(
        self,
        token: str,
        method: str,
        chat_id: int | str | None = None,
        *,
        status: int = 429,
        retry_after: int = 1,
        times: int = 1,
        description: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (for ``chat_id`` only, if given) fail.

        A 429 answers ``{"ok": false, "error_code": 429, "description": "Too Many Requests:
        retry after N", "parameters": {"retry_after": N}}``, which PTB raises as RetryAfter.
        """
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {retry_after}",
                403: "Forbidden: bot was blocked by the user",
                400: "Bad Request: chat not found",
                502: "Bad Gateway",
            }.get(status, "Internal Server Error")
        with self._lock:
            self._bots[token].failures.append(
                _Failure(
                    method=method,
                    chat_id=_coerce("chat_id", chat_id),
                    status=status,
                    retry_after=retry_after if status == 429 else None,
                    description=description,
                    times=times,
                )
            )

    # -- test-side reading -------------------------------------------------------------------

    def sent_messages(
        self, token: str | None = None, chat_id: int | str | None = None
    ) -> list[SentMessage]:
        """Messages successfully sent, in order, optionally for one bot and/or one chat."""
        with self._lock:
            return [
                m for m in self._sent if token in (None, m.token) and chat_id in (None, m.chat_id)
            ]

    def wait_for_sent(
        self,
        count: int,
        token: str | None = None,
        chat_id: int | str | None = None,
        timeout: float = 5.0,
    ) -> list[SentMessage]:
        """Block until at least ``count`` matching messages were sent; TimeoutError otherwise.

        For bots answering in the background; from async tests use ``asyncio.to_thread``.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(sent := self.sent_messages(token, chat_id)) < count:
                if (remaining := deadline - time.monotonic()) <= 0:
                    raise TimeoutError(f"{len(sent)} of {count} messages sent: {sent}")
                self._changed.wait(remaining)
            return sent

    def calls(self, method: str, token: str | None = None) -> list[RecordedRequest]:
        """Recorded requests to one Bot API method (failed ones included), in arrival order."""
        return [r for r in self.requests(method) if token in (None, r.token)]

    def polls_waiting(self, token: str) -> int:
        """Long polls of ``token`` held open right now: a test waits for one instead of
        sleeping until it has probably begun."""
        with self._lock:
            return self._bots[token].polls_waiting

    def pending_updates(self, token: str) -> list[dict[str, Any]]:
        """Updates queued and not yet confirmed by a ``getUpdates`` offset past them."""
        with self._lock:
            return list(self._bots[token].pending)

    def confirmed_offset(self, token: str) -> int | None:
        """The highest positive ``offset`` a poller has sent: everything below it is gone."""
        with self._lock:
            return self._bots[token].confirmed_offset

    def webhook(self, token: str) -> dict[str, Any]:
        """The webhook settings last given to ``setWebhook`` (empty when none)."""
        with self._lock:
            return dict(self._bots[token].webhook)

    def deliver_webhook(self, token: str, timeout: float = 10) -> list[int]:
        """POST pending updates to the bot's webhook, in order, as Telegram would.

        Sends the ``X-Telegram-Bot-Api-Secret-Token`` header when a secret was set. An update
        is dropped only after a 2xx; on any other answer delivery stops and the update stays
        pending (Telegram retries later). Returns the HTTP statuses seen. This blocks: from
        async tests call it through ``asyncio.to_thread``.
        """
        statuses: list[int] = []
        hook = self.webhook(token)
        for update in self.pending_updates(token):
            headers = {"Content-Type": "application/json"}
            if hook.get("secret_token"):
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
            request = urllib.request.Request(
                hook["url"], data=json.dumps(update).encode(), headers=headers, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
                exc.close()
            statuses.append(status)
            with self._lock:
                bot = self._bots[token]
                if not 200 <= status < 300:
                    bot.webhook["last_error_message"] = f"Wrong response from the webhook: {status}"
                    break
                bot.pending = [u for u in bot.pending if u["update_id"] != update["update_id"]]
        return statuses

    # -- server side -------------------------------------------------------------------------

    def route(
        self, path: str, headers: dict[str, str], params: dict[str, Any]
    ) -> tuple[str, str | None]:
        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", path)
        return (match[2], match[1]) if match else ("", None)

    def handle(self, request: RecordedRequest) -> Reply:
        if not request.api_method or request.token is None:
            return _error(404, "Not Found")
        try:
            params = {k: _coerce(k, v) for k, v in request.params.items()}
        except ValueError as exc:
            return _error(400, f"Bad Request: {exc}")
        with self._lock:
            bot = self._bots.get(request.token)
            if bot is None:
                return _error(401, "Unauthorized")
            failure = self._take_failure(bot, request.api_method, params.get("chat_id"))
        if failure is not None:
            extra = (
                {"parameters": {"retry_after": failure.retry_after}} if failure.retry_after else {}
            )
            return _error(failure.status, failure.description, **extra)
        handler = getattr(self, f"_api_{request.api_method}", None)
        if handler is None:
            return _error(404, "Not Found")
        try:
            result: Reply = handler(bot, params)
        except EntityError as exc:
            return _error(400, f"Bad Request: can't parse entities: {exc}")
        return result

    @staticmethod
    def _take_failure(bot: _Bot, method: str, chat_id: Any) -> _Failure | None:
        for failure in bot.failures:
            if failure.method == method and failure.chat_id in (None, chat_id):
                failure.times -= 1
                if failure.times <= 0:
                    bot.failures.remove(failure)
                return failure
        return None

    def _next_message_id(self, token: str, chat_id: int | str) -> int:
        messages = self._messages.setdefault((token, chat_id), {})
        return max(messages, default=0) + 1

    def _api_getMe(self, bot: _Bot, params: dict[str, Any]) -> Reply:
        return _ok(bot.user)

    def _api_getUpdates(self, bot: _Bot, params: dict[str, Any]) -> Reply:
        """Long poll: answer as soon as an update is pending, or empty after ``timeout``."""
        offset, limit = params.get("offset"), params.get("limit") or 100
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        with self._changed:
            if bot.webhook.get("url"):
                return _error(
                    409,
                    "Conflict: can't use getUpdates method while webhook is "
                    "active; use deleteWebhook to delete the webhook first",
                )
            if offset is not None and offset > 0:
                bot.pending = [u for u in bot.pending if u["update_id"] >= offset]
                bot.confirmed_offset = max(offset, bot.confirmed_offset or 0)
            elif offset is not None and offset < 0:
                bot.pending = bot.pending[offset:]
            bot.poll_generation += 1  # a poll already waiting for this bot now loses
            generation = bot.poll_generation
            self._changed.notify_all()
            bot.polls_waiting += 1
            while (
                not bot.pending
                and not self.stopping.is_set()
                and generation == bot.poll_generation
                and (remaining := deadline - time.monotonic()) > 0
            ):
                self._changed.wait(remaining)
            bot.polls_waiting -= 1
            if generation != bot.poll_generation:
                return _error(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure "
                    "that only one bot instance is running",
                )
            return _ok(bot.pending[:limit])

    def _api_sendMessage(self, bot: _Bot, params: dict[str, Any]) -> Reply:
        chat_id, text = params.get("chat_id"), params.get("text") or ""
        if chat_id in (None, ""):
            return _error(400, "Bad Request: chat_id is empty")
        if not text.strip():
            return _error(400, "Bad Request: message text is empty")
        rendered = render_parse_mode(text, params.get("parse_mode"))
        if len(rendered) > MAX_TEXT:
            return _error(400, "Bad Request: message is too long")
        reply = params.get("reply_parameters") or {}
        reply_to = reply.get("message_id", params.get("reply_to_message_id"))
        with self._changed:
            key = (bot.token, chat_id)
            chat = self._chats.get(key) or _unseen_chat(chat_id)
            message: dict[str, Any] = {
                "message_id": self._next_message_id(*key),
                "from": bot.user,
                "chat": chat,
                "date": int(time.time()),
                "text": rendered,
            }
            if reply_to is not None:
                original = self._messages[key].get(reply_to)
                if original is None and not (
                    reply.get("allow_sending_without_reply")
                    or params.get("allow_sending_without_reply")
                ):
                    return _error(400, "Bad Request: message to be replied not found")
                if original is not None:
                    message["reply_to_message"] = original
            if params.get("message_thread_id") is not None:
                message["message_thread_id"] = params["message_thread_id"]
            self._messages[key][message["message_id"]] = message
            self._sent.append(
                SentMessage(
                    token=bot.token,
                    chat_id=chat_id,
                    text=text,
                    rendered=rendered,
                    parse_mode=params.get("parse_mode"),
                    reply_to_message_id=reply_to if "reply_to_message" in message else None,
                    message_id=message["message_id"],
                    params=params,
                    message=message,
                )
            )
            self._changed.notify_all()
        return _ok(message)

    def _api_setWebhook(self, bot: _Bot, params: dict[str, Any]) -> Reply:
        if not params.get("url"):
            return self._api_deleteWebhook(bot, params)
        with self._changed:
            if params.get("drop_pending_updates"):
                bot.pending.clear()
            bot.webhook = {
                k: params[k]
                for k in ("url", "secret_token", "allowed_updates", "max_connections")
                if params.get(k) is not None
            }
            bot.poll_generation += 1  # a long poll in progress ends, as on the real server
            self._changed.notify_all()
        return _ok(True, description="Webhook was set")

    def _api_deleteWebhook(self, bot: _Bot, params: dict[str, Any]) -> Reply:
        with self._lock:
            had_webhook = bool(bot.webhook.get("url"))
            bot.webhook = {}
            if params.get("drop_pending_updates"):
                bot.pending.clear()
        return _ok(
            True, description="Webhook was deleted" if had_webhook else "Webhook is already deleted"
        )

    def _api_getWebhookInfo(self, bot: _Bot, params: dict[str, Any]) -> Reply:
        with self._lock:
            info: dict[str, Any] = {
                "url": bot.webhook.get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": len(bot.pending),
            }
            if bot.webhook.get("url"):
                info |= {
                    "max_connections": bot.webhook.get("max_connections", 40),
                    "ip_address": "127.0.0.1",
                }
                for key in ("allowed_updates", "last_error_message"):
                    if key in bot.webhook:
                        info[key] = bot.webhook[key]
                if "last_error_message" in info:
                    info["last_error_date"] = int(time.time())
        return _ok(info)


def _unseen_chat(chat_id: int | str) -> dict[str, Any]:
    """A chat nobody has pushed a message from: positive ids are people, others groups."""
    if isinstance(chat_id, int) and chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Test"}
    return {"id": chat_id, "type": "supergroup", "title": "Test group"}


def _ok(result: Any, **extra: Any) -> Reply:
    return Reply(200, {"ok": True, "result": result, **extra})


def _error(status: int, description: str, **extra: Any) -> Reply:
    return Reply(status, {"ok": False, "error_code": status, "description": description, **extra})


# -- parse_mode -----------------------------------------------------------------------------
# Just enough of Telegram's entity parser to refuse what it refuses (so tests catch unescaped
# user text) and to know what the person sees. Entities themselves are not reported back.

_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_TOGGLES = [
    ("||", "Spoiler"),
    ("__", "Underline"),
    ("*", "Bold"),
    ("_", "Italic"),
    ("~", "Strikethrough"),
]
_HTML_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
}
_HTML_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
_HTML_TAG = re.compile(r"<(/?)([a-z-]+)(?:\s[^<>]*)?>")
_HTML_CHARS = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def render_parse_mode(text: str, parse_mode: str | None) -> str:
    """The text a person sees once ``parse_mode`` markup is applied; EntityError if invalid."""
    mode = (parse_mode or "").lower()
    if mode == "markdownv2":
        return _render_markdown_v2(text)
    if mode == "html":
        return _render_html(text)
    if mode == "markdown":
        return _render_markdown_legacy(text)
    return text


def _offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _until(text: str, start: int, closing: str, kind: str, opened_at: int) -> tuple[str, int]:
    """Read escaped text up to ``closing``; return it unescaped and the index after it."""
    out, i = [], start
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif text.startswith(closing, i):
            return "".join(out), i + len(closing)
        else:
            out.append(text[i])
            i += 1
    raise EntityError(f"Can't find end of {kind} entity at byte offset {_offset(text, opened_at)}")


def _render_markdown_v2(text: str) -> str:
    out: list[str] = []
    stack: list[tuple[str, str, int]] = []  # (marker, entity name, index opened)
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            if i + 1 >= len(text) or not 1 <= ord(text[i + 1]) <= 126:
                raise EntityError(
                    "Character '\\' is reserved and must be escaped with the preceding '\\'"
                )
            out.append(text[i + 1])
            i += 2
            continue
        if text.startswith("```", i):
            body, i = _until(text, i + 3, "```", "Pre", i)
            out.append(body.split("\n", 1)[1] if "\n" in body else body)
            continue
        if char == "`":
            body, i = _until(text, i + 1, "`", "Code", i)
            out.append(body)
            continue
        if char == "[":
            stack.append(("[", "TextUrl", i))
            i += 1
            continue
        if char == "]" and stack and stack[-1][0] == "[":
            stack.pop()
            if not text.startswith("(", i + 1):
                raise EntityError(
                    "Character ']' is reserved and must be escaped with the preceding '\\'"
                )
            _, i = _until(text, i + 2, ")", "TextUrl", i)
            continue
        if char == ">" and (i == 0 or text[i - 1] == "\n"):
            i += 1  # a blockquote line
            continue
        toggle = next(((m, name) for m, name in _MDV2_TOGGLES if text.startswith(m, i)), None)
        if toggle is not None:
            marker, name = toggle
            if stack and stack[-1][0] == marker:
                stack.pop()
            elif any(m == marker for m, _, _ in stack):
                raise EntityError(
                    f"Can't find end of {name} entity at byte offset "
                    f"{_offset(text, next(j for m, _, j in stack if m == marker))}"
                )
            else:
                stack.append((marker, name, i))
            i += len(marker)
            continue
        if char in _MDV2_RESERVED:
            raise EntityError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        out.append(char)
        i += 1
    if stack:
        _, name, opened = stack[-1]
        raise EntityError(f"Can't find end of {name} entity at byte offset {_offset(text, opened)}")
    return "".join(out)


def _render_markdown_legacy(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in "_*`[":
            out.append(text[i + 1])
            i += 2
        elif text.startswith("```", i) or char in "_*`[":
            marker = "```" if text.startswith("```", i) else char
            closing = "]" if marker == "[" else marker
            end = text.find(closing, i + len(marker))
            if end < 0:
                raise EntityError(
                    f"Can't find end of the entity starting at byte offset {_offset(text, i)}"
                )
            out.append(text[i + len(marker) : end])
            i = end + len(closing)
            if marker == "[" and text.startswith("(", i):
                i = text.find(")", i) + 1 or len(text)
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _render_html(text: str) -> str:
    out: list[str] = []
    open_tags: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "<":
            match = _HTML_TAG.match(text, i)
            if match is None or match[2] not in _HTML_TAGS:
                name = match[2] if match else text[i + 1 : i + 2]
                raise EntityError(
                    f'Unsupported start tag "{name}" at byte offset {_offset(text, i)}'
                )
            if not match[1]:
                open_tags.append(match[2])
            elif not open_tags or open_tags[-1] != match[2]:
                expected = f'"</{open_tags[-1]}>"' if open_tags else "no end tag"
                raise EntityError(
                    f"Unmatched end tag at byte offset {_offset(text, i)}, "
                    f'expected {expected}, found "</{match[2]}>"'
                )
            else:
                open_tags.pop()
            i = match.end()
        elif char == "&":
            entity = _HTML_ENTITY.match(text, i)
            if entity is None:
                raise EntityError(f"Unsupported HTML entity at byte offset {_offset(text, i)}")
            name = entity[1]
            out.append(
                _HTML_CHARS.get(name) or chr(int(name[2:], 16) if name[1] == "x" else int(name[1:]))
            )
            i = entity.end()
        elif char == ">":
            raise EntityError(f"Unsupported character '>' at byte offset {_offset(text, i)}")
        else:
            out.append(char)
            i += 1
    if open_tags:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{open_tags[-1]}"')
    return "".join(out)
