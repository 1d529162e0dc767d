"""The real python-telegram-bot against FakeTelegramAPI, over HTTP on 127.0.0.1.

These prove the fake answers the way PTB expects, so channel tests built on it mean something.
"""

from __future__ import annotations

import asyncio
import html
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest
from telegram import Bot, MessageEntity, Update
from telegram.error import BadRequest, Conflict, InvalidToken, RetryAfter
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters
from telegram.helpers import escape_markdown

from tests.support import eventually

from .telegram_api import FakeTelegramAPI

SALES = "111111:AAA-sales"
SUPPORT = "222222:BBB-support"


@pytest.fixture(autouse=True)
def _local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx honours proxy variables even for 127.0.0.1; PTB_TIMEDELTA avoids a deprecation."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
def tg() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as fake:
        fake.add_bot(SALES, "sales_bot")
        fake.add_bot(SUPPORT, "support_bot", first_name="Support")
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegramAPI) -> AsyncIterator[Bot]:
    async with Bot(SALES, base_url=tg.base_url) as sales_bot:  # initialize() calls getMe
        yield sales_bot


async def test_get_me_answers_each_token_with_its_own_bot(tg: FakeTelegramAPI) -> None:
    async with Bot(SALES, base_url=tg.base_url) as sales, Bot(SUPPORT, base_url=tg.base_url) as sup:
        assert (sales.username, sales.id) == ("sales_bot", 111111)
        assert (sup.username, sup.first_name) == ("support_bot", "Support")
    assert [r.token for r in tg.calls("getMe")] == [SALES, SUPPORT]


async def test_unknown_token_is_refused_like_telegram(tg: FakeTelegramAPI) -> None:
    with pytest.raises(InvalidToken):
        await Bot("999:nope", base_url=tg.base_url).get_me()
    assert tg.calls("getMe")[-1].token == "999:nope"


def test_unknown_token_gets_the_bot_api_401_body(tg: FakeTelegramAPI) -> None:
    response = httpx.post(f"{tg.base_url}999:nope/getMe")
    assert response.status_code == 401
    assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_pushed_message_arrives_as_a_realistic_update(tg: FakeTelegramAPI, bot: Bot) -> None:
    tg.push_message(SALES, 777, 777, "/start hi @support_bot", first_name="Ann", language_code="de")

    (update,) = await bot.get_updates(timeout=0)

    assert update.message is not None and update.effective_user is not None
    assert update.message.text == "/start hi @support_bot"
    assert (update.effective_user.id, update.effective_user.first_name) == (777, "Ann")
    assert update.effective_user.language_code == "de"
    assert update.effective_chat is not None and update.effective_chat.type == "private"
    assert update.message.parse_entities() == {
        MessageEntity(MessageEntity.BOT_COMMAND, 0, 6): "/start",
        MessageEntity(MessageEntity.MENTION, 10, 12): "@support_bot",
    }
    async with Bot(SUPPORT, base_url=tg.base_url) as other:
        assert await other.get_updates(timeout=0) == ()


async def test_group_message_carries_group_chat(tg: FakeTelegramAPI, bot: Bot) -> None:
    tg.push_message(SALES, -100, 777, "hello all", chat_type="group", chat_title="Team")
    (update,) = await bot.get_updates(timeout=0)
    assert update.effective_chat is not None
    assert (update.effective_chat.id, update.effective_chat.type) == (-100, "group")
    assert update.effective_chat.title == "Team"


async def test_offset_confirms_and_drops_earlier_updates(tg: FakeTelegramAPI, bot: Bot) -> None:
    first = tg.push_message(SALES, 1, 1, "one")["update_id"]
    second = tg.push_message(SALES, 1, 1, "two")["update_id"]
    assert second == first + 1

    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [first, second]
    assert [u.update_id for u in await bot.get_updates(offset=second, timeout=0)] == [second]
    assert [u["update_id"] for u in tg.pending_updates(SALES)] == [second]
    assert tg.confirmed_offset(SALES) == second

    assert await bot.get_updates(offset=second + 1, timeout=0) == ()
    assert tg.pending_updates(SALES) == []


async def test_long_poll_returns_as_soon_as_an_update_arrives(
    tg: FakeTelegramAPI, bot: Bot
) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await eventually(lambda: tg.polls_waiting(SALES), what="the long poll")
    assert not poll.done()

    tg.push_message(SALES, 1, 1, "wake up")
    updates = await asyncio.wait_for(poll, 2)

    assert [u.message.text for u in updates if u.message] == ["wake up"]
    assert time.monotonic() - started < 2


async def test_long_poll_without_updates_waits_its_timeout(bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=0.3) == ()
    assert 0.25 < time.monotonic() - started < 2


async def test_stopping_the_server_ends_a_long_poll_promptly() -> None:
    fake = FakeTelegramAPI().start()
    fake.add_bot(SALES, "sales_bot")
    async with Bot(SALES, base_url=fake.base_url) as sales:
        poll = asyncio.create_task(sales.get_updates(timeout=30))
        await eventually(lambda: fake.polls_waiting(SALES), what="the long poll")
        started = time.monotonic()
        await asyncio.to_thread(fake.stop)
        assert await asyncio.wait_for(poll, 2) == ()
        assert time.monotonic() - started < 2


async def test_a_second_poller_terminates_the_first(tg: FakeTelegramAPI, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await eventually(lambda: tg.polls_waiting(SALES), what="the first long poll")
    async with Bot(SALES, base_url=tg.base_url) as twin:
        assert await twin.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 2)


async def test_send_message_is_recorded_with_ids_per_chat(tg: FakeTelegramAPI, bot: Bot) -> None:
    sent = [
        await bot.send_message(777, "first"),
        await bot.send_message(888, "elsewhere"),
        await bot.send_message(777, "second"),
    ]

    assert [(m.chat_id, m.message_id, m.text) for m in sent] == [
        (777, 1, "first"),
        (888, 1, "elsewhere"),
        (777, 2, "second"),
    ]
    assert [m.text for m in tg.sent_messages(SALES, chat_id=777)] == ["first", "second"]
    assert [m.text for m in tg.sent_messages()] == ["first", "elsewhere", "second"]
    assert tg.sent_messages(SUPPORT) == []
    assert sent[0].from_user is not None and sent[0].from_user.username == "sales_bot"


async def test_reply_references_the_pushed_message(tg: FakeTelegramAPI, bot: Bot) -> None:
    asked = tg.push_message(SALES, 777, 777, "question?")["message"]["message_id"]

    answer = await bot.send_message(777, "answer", reply_to_message_id=asked)

    assert answer.reply_to_message is not None
    assert answer.reply_to_message.text == "question?"
    assert answer.message_id == asked + 1  # one message sequence per chat, both directions
    assert tg.sent_messages(chat_id=777)[0].reply_to_message_id == asked
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(777, "answer", reply_to_message_id=999)


async def test_markdown_v2_refuses_unescaped_text_and_renders_escaped(
    tg: FakeTelegramAPI, bot: Bot
) -> None:
    said = "*_[ costs 1.5 (really) `x` \\ > #1!"

    with pytest.raises(BadRequest, match=r"(?i)can.t parse entities"):
        await bot.send_message(777, f"*Hi* {said}", parse_mode="MarkdownV2")
    message = await bot.send_message(
        777, f"*Hi* {escape_markdown(said, version=2)}", parse_mode="MarkdownV2"
    )

    assert message.text == f"Hi {said}"
    (recorded,) = tg.sent_messages()
    assert (recorded.rendered, recorded.parse_mode) == (f"Hi {said}", "MarkdownV2")


async def test_html_refuses_raw_markup_and_renders_escaped(tg: FakeTelegramAPI, bot: Bot) -> None:
    said = "<3 & <b>bold</i>"
    with pytest.raises(BadRequest, match=r"(?i)can.t parse entities"):
        await bot.send_message(777, f"<b>Hi</b> {said}", parse_mode="HTML")
    message = await bot.send_message(777, f"<b>Hi</b> {html.escape(said)}", parse_mode="HTML")
    assert message.text == f"Hi {said}"


async def test_texts_over_4096_characters_are_refused(tg: FakeTelegramAPI, bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(777, "a" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(777, " ")
    await bot.send_message(777, "a" * 4096)
    assert [len(m.text) for m in tg.sent_messages()] == [4096]


async def test_429_on_one_chat_while_another_flows(tg: FakeTelegramAPI, bot: Bot) -> None:
    tg.fail_next(SALES, "sendMessage", chat_id=1, retry_after=7)

    await bot.send_message(2, "other chat flows")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(1, "too fast")
    await bot.send_message(1, "after waiting")

    assert caught.value.retry_after == timedelta(seconds=7)
    assert [m.text for m in tg.sent_messages(chat_id=1)] == ["after waiting"]
    assert [m.text for m in tg.sent_messages(chat_id=2)] == ["other chat flows"]
    assert len(tg.calls("sendMessage")) == 3


def test_429_body_matches_the_bot_api(tg: FakeTelegramAPI) -> None:
    tg.fail_next(SALES, "sendMessage", status=429, retry_after=3, times=2)
    for _ in range(2):
        response = httpx.post(f"{tg.base_url}{SALES}/sendMessage", json={"chat_id": 5, "text": "x"})
        assert response.status_code == 429
        assert response.json() == {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 3",
            "parameters": {"retry_after": 3},
        }
    other_bot = httpx.post(
        f"{tg.base_url}{SUPPORT}/sendMessage", data={"chat_id": "5", "text": "x"}
    )
    assert other_bot.json()["ok"] is True
    assert (
        httpx.post(f"{tg.base_url}{SALES}/sendMessage", json={"chat_id": 5, "text": "x"}).json()[
            "result"
        ]["chat"]["id"]
        == 5
    )


async def test_webhook_lifecycle_blocks_polling(tg: FakeTelegramAPI, bot: Bot) -> None:
    tg.push_message(SALES, 1, 1, "waiting")
    assert await bot.set_webhook("http://127.0.0.1:9/hook", secret_token="s3cret")

    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == ("http://127.0.0.1:9/hook", 1)
    assert tg.webhook(SALES)["secret_token"] == "s3cret"
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates(timeout=0)

    assert await bot.delete_webhook(drop_pending_updates=True)
    assert (await bot.get_webhook_info()).url == ""
    assert await bot.get_updates(timeout=0) == ()


class _Receiver(BaseHTTPRequestHandler):
    """A webhook endpoint that answers 200, then 500, and keeps what it was sent."""

    received: ClassVar[list[tuple[str | None, dict[str, object]]]] = []
    statuses: ClassVar[list[int]] = [200, 500]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((self.headers.get("X-Telegram-Bot-Api-Secret-Token"), body))
        self.send_response(self.statuses[len(self.received) - 1])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


async def test_deliver_webhook_posts_in_order_and_keeps_failures(
    tg: FakeTelegramAPI, bot: Bot
) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, args=(0.05,), daemon=True).start()
    try:
        host, port = receiver.server_address[:2]
        await bot.set_webhook(f"http://{host!s}:{port}/hook", secret_token="s3cret")
        first = tg.push_message(SALES, 1, 1, "one")
        second = tg.push_message(SALES, 1, 1, "two")

        assert await asyncio.to_thread(tg.deliver_webhook, SALES) == [200, 500]
    finally:
        receiver.shutdown()
        receiver.server_close()

    assert _Receiver.received == [("s3cret", first), ("s3cret", second)]
    assert tg.pending_updates(SALES) == [second]
    info = await bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 500"


async def test_application_polls_and_replies_end_to_end(tg: FakeTelegramAPI) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(f"echo: {update.message.text}")

    app = ApplicationBuilder().token(SUPPORT).base_url(tg.base_url).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    async with app:
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        await app.start()
        tg.push_message(SUPPORT, 42, 42, "ping")
        await asyncio.to_thread(tg.wait_for_sent, 1, SUPPORT)
        await app.updater.stop()
        await app.stop()

    assert [(m.chat_id, m.text) for m in tg.sent_messages(SUPPORT)] == [(42, "echo: ping")]
    assert tg.pending_updates(SUPPORT) == []  # the Updater confirmed it on the way out
