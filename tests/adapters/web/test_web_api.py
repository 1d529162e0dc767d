"""The web chat API over HTTP: the visitor cookie, store-then-answer, the reply stream.

Read like a conversation: a browser posts what the person types, the replies come back on
the ``events`` stream; what reached the browser is marked sent in the outbox.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from mnemobot.adapters.console import ConsoleChannel
from mnemobot.adapters.web.channel import WebChannel
from mnemobot.adapters.web.cookies import COOKIE_NAME, VisitorCookies
from mnemobot.runtime.errors import ConfigError
from mnemobot.runtime.settings import ChannelSettings
from mnemobot.runtime.storage.tables import INBOX, OUTBOX
from tests.adapters.web.conftest import SECRET, parse_events, wait_for


def count(web: WebChannel, table: Any, *where: Any) -> int:
    with web.runtime.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


async def visitor_of(client: httpx.AsyncClient) -> str:
    response = await client.get("/chat/api/me")
    assert response.status_code == 200
    return str(response.json()["visitor"])


async def say(client: httpx.AsyncClient, bot: str, text: str, msg_id: str = "") -> httpx.Response:
    body: dict[str, Any] = {"text": text}
    if msg_id:
        body["id"] = msg_id
    return await client.post(f"/chat/api/{bot}/messages", json=body)


class Stream:
    """One open page's event stream, read whole once the channel closes it."""

    def __init__(self, web: WebChannel, client: httpx.AsyncClient, bot: str) -> None:
        self.web, self.client, self.bot = web, client, bot
        self.task: asyncio.Task[httpx.Response] | None = None

    async def __aenter__(self) -> Stream:
        await visitor_of(self.client)  # as the page does: the cookie first, then the stream
        before = sum(len(s) for s in self.web._streams.values())
        self.task = asyncio.create_task(self.client.get(f"/chat/api/{self.bot}/events"))
        await wait_for(lambda: sum(len(s) for s in self.web._streams.values()) > before)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def close_and_read(self) -> list[tuple[str, dict[str, Any]]]:
        await self.web.delivery.drain()
        await self.web.stop()
        assert self.task is not None
        response = await self.task
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse_events(response.text)


# -- the visitor cookie ---------------------------------------------------------------------------


async def test_the_page_gives_a_new_browser_a_signed_visitor_cookie(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/chat/")
    assert page.status_code == 200
    assert "<title>mnemobot · web chat</title>" in page.text
    cookie = page.cookies[COOKIE_NAME]
    visitor = VisitorCookies(SECRET).verify(cookie)
    assert visitor is not None
    assert "HttpOnly" in page.headers["set-cookie"]
    assert "SameSite=lax" in page.headers["set-cookie"]
    again = await client.get("/chat/api/me")  # the cookie jar sends it back: same visitor
    assert again.json()["visitor"] == visitor
    assert "set-cookie" not in again.headers


@pytest.mark.parametrize(
    "tamper",
    [
        lambda value: value[:-1] + ("0" if value[-1] != "0" else "1"),  # signature changed
        lambda value: "A" * 24 + value[value.rindex(".") :],  # visitor id changed
        lambda value: value.rpartition(".")[0],  # unsigned
        lambda value: "garbage",
    ],
    ids=["bad-signature", "other-visitor", "unsigned", "garbage"],
)
async def test_a_tampered_cookie_is_not_trusted_the_browser_becomes_a_new_visitor(
    client: httpx.AsyncClient, tamper: Any
) -> None:
    first = await visitor_of(client)
    signed = client.cookies[COOKIE_NAME]
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, tamper(signed), domain="mnemobot.test", path="/chat")
    response = await client.get("/chat/api/me")
    assert response.json()["visitor"] != first
    assert (
        VisitorCookies(SECRET).verify(response.cookies[COOKIE_NAME]) == response.json()["visitor"]
    )


async def test_a_cookie_signed_with_another_secret_is_refused(client: httpx.AsyncClient) -> None:
    forged = VisitorCookies(b"someone-elses-secret-32-bytes!!!").sign("B" * 24)
    client.cookies.set(COOKIE_NAME, forged, domain="mnemobot.test", path="/chat")
    assert await visitor_of(client) != "B" * 24


# -- message in, replies out ----------------------------------------------------------------------


async def test_a_message_is_answered_on_the_open_stream_and_marked_sent(
    web: WebChannel, client: httpx.AsyncClient
) -> None:
    visitor = await visitor_of(client)
    async with Stream(web, client, "sales-bot") as page:
        response = await say(client, "sales-bot", "hi", "msg-0001")
        assert response.status_code == 202
        assert response.json() == {"id": "msg-0001", "duplicate": False}
        events = await page.close_and_read()
    assert events[0] == (
        "ready",
        {"visitor": visitor, "bot": "sales-bot", "answering": "sales-bot", "history": []},
    )
    replies = [data for event, data in events if event == "reply"]
    assert [(r["bot"], r["text"]) for r in replies] == [
        ("sales-bot", "Hi! I'm the sales bot. What's your name?")
    ]
    assert count(web, OUTBOX, OUTBOX.c.status == "sent") == 1
    assert count(web, OUTBOX, OUTBOX.c.status == "pending") == 0
    user_id = web.runtime.identity.find(f"web:{visitor}")
    assert user_id


async def test_several_replies_of_one_turn_arrive_one_by_one_in_order(
    web: WebChannel, client: httpx.AsyncClient
) -> None:
    async with Stream(web, client, "sales-bot") as page:
        for n, text in enumerate(["hi", "Ana", "English", "I need support, it is broken"]):
            assert (await say(client, "sales-bot", text, f"msg-000{n}")).status_code == 202
            await web.delivery.drain()
        events = await page.close_and_read()
    texts = [data["text"] for event, data in events if event == "reply"]
    assert texts == [
        "Hi! I'm the sales bot. What's your name?",
        "Nice to meet you, Ana! Which language do you prefer? "
        "(English, Português, Español, Français, Deutsch)",
        "Got it, Ana (en). We sell Basic, Pro and Team plans. "
        "Ask me anything, or say 'support' for help with a problem.",
        "Let me bring in our support bot, Ana.",
        "Hello, Ana! I'm the support bot. How can I help?",
        'Noted, Ana: ticket #1 — "I need support, it is broken".',
    ]


async def test_replies_made_while_no_page_is_open_wait_and_come_with_the_next_page(
    web: WebChannel, client: httpx.AsyncClient
) -> None:
    assert (await say(client, "sales-bot", "hi", "msg-closed1")).status_code == 202
    await web.delivery.drain()
    assert count(web, OUTBOX, OUTBOX.c.status == "pending") == 1  # nobody to take it yet
    async with Stream(web, client, "sales-bot") as page:
        events = await page.close_and_read()
    assert [d["text"] for e, d in events if e == "reply"] == [
        "Hi! I'm the sales bot. What's your name?"
    ]
    assert count(web, OUTBOX, OUTBOX.c.status == "pending") == 0


async def test_a_page_that_opens_shows_the_open_session_once_and_who_answers(
    web: WebChannel, client: httpx.AsyncClient
) -> None:
    assert (await say(client, "sales-bot", "hi", "msg-reload1")).status_code == 202
    await web.delivery.drain()  # no page open: the reply waits in the outbox
    async with Stream(web, client, "sales-bot") as page:
        first = await page.close_and_read()
    ready = first[0][1]
    assert [(h["role"], h["text"]) for h in ready["history"]] == [("user", "hi")]
    assert [d["text"] for e, d in first if e == "reply"] == [  # the pending reply, once
        "Hi! I'm the sales bot. What's your name?"
    ]

    await web.start()  # a reload: the whole open session, from the turn log, in order
    async with Stream(web, client, "sales-bot") as page:
        second = await page.close_and_read()
    assert [e for e, _ in second] == ["ready"]
    assert [(h["role"], h["bot"], h["text"]) for h in second[0][1]["history"]] == [
        ("user", "sales-bot", "hi"),
        ("bot", "sales-bot", "Hi! I'm the sales bot. What's your name?"),
    ]

    await web.start()
    for n, text in enumerate(("Ana", "English", "it is broken, I need support")):
        async with Stream(web, client, "sales-bot") as page:
            await say(client, "sales-bot", text, f"msg-reload{n + 2}")
            await page.close_and_read()
        await web.start()
    async with Stream(web, client, "sales-bot") as page:  # handed over: support-bot answers
        after = await page.close_and_read()
    assert after[0][1]["bot"] == "sales-bot" and after[0][1]["answering"] == "support-bot"
    assert after[0][1]["history"][-1]["bot"] == "support-bot"

    await web.start()
    async with Stream(web, client, "support-bot") as page:  # another bot: nothing open there
        other = await page.close_and_read()
    assert other[0][1]["history"] == [] and other[0][1]["answering"] == "support-bot"


async def test_another_visitors_pending_replies_are_not_shown(
    web: WebChannel, client: httpx.AsyncClient
) -> None:
    await say(client, "sales-bot", "hi", "msg-other01")
    await web.delivery.drain()
    client.cookies.clear()  # another browser
    async with Stream(web, client, "sales-bot") as page:
        events = await page.close_and_read()
    assert [e for e, _ in events] == ["ready"]
    assert count(web, OUTBOX, OUTBOX.c.status == "pending") == 1


async def test_a_retried_post_with_the_same_id_is_handled_once(
    web: WebChannel, client: httpx.AsyncClient
) -> None:
    first = await say(client, "sales-bot", "hi", "retry-0001")
    racing = await say(client, "sales-bot", "hi", "retry-0001")  # while the first turn runs
    await web.delivery.drain()
    late = await say(client, "sales-bot", "hi", "retry-0001")  # after it was answered
    await web.delivery.drain()
    assert (first.status_code, first.json()["duplicate"]) == (202, False)
    assert racing.status_code in (200, 202)  # stored but unanswered: taken, then deduped
    assert (late.status_code, late.json()["duplicate"]) == (200, True)
    assert count(web, INBOX) == 1
    assert count(web, OUTBOX) == 1


async def test_the_same_message_id_from_two_visitors_is_two_messages(
    web: WebChannel, client: httpx.AsyncClient
) -> None:
    await say(client, "sales-bot", "hi", "same-id-01")
    client.cookies.clear()
    again = await say(client, "sales-bot", "hi", "same-id-01")
    await web.delivery.drain()
    assert again.status_code == 202
    assert count(web, INBOX) == 2


async def test_an_oversized_message_is_refused_clearly_and_nothing_is_stored(
    web: WebChannel, client: httpx.AsyncClient
) -> None:
    limit = web.runtime.settings.messages.max_chars
    response = await say(client, "sales-bot", "x" * (limit + 1))
    assert response.status_code == 413
    assert response.json()["error"] == (
        f"message too long ({limit + 1} characters; the limit is {limit} characters): "
        "please send it in shorter parts"
    )
    huge = await client.post(
        "/chat/api/sales-bot/messages",
        content=b'{"text": "' + b"y" * (limit * 4 + 2048) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert "message too long" in huge.json()["error"]
    assert count(web, INBOX) == 0


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/chat/api/no-such-bot/messages", {"text": "hi"}, 404, "no bot 'no-such-bot'"),
        ("/chat/api/sales-bot/messages", {"text": "   "}, 400, "the message is empty"),
        ("/chat/api/sales-bot/messages", {"txt": "hi"}, 400, "send JSON"),
        ("/chat/api/sales-bot/messages", {"text": "hi", "id": "bad id!"}, 400, "id must be"),
    ],
)
async def test_bad_requests_get_a_clear_error(
    web: WebChannel,
    client: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    status: int,
    error: str,
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == status
    assert error in response.json()["error"]
    assert count(web, INBOX) == 0


async def test_not_json_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/api/sales-bot/messages", content=b"hello")
    assert response.status_code == 400
    assert "send JSON" in response.json()["error"]


async def test_the_bot_list_offers_the_configured_bots_with_their_descriptions(
    client: httpx.AsyncClient,
) -> None:
    listing = (await client.get("/chat/api/bots")).json()
    assert [bot["name"] for bot in listing["bots"]] == ["sales-bot", "support-bot", "welcome-bot"]
    assert listing["bots"][0]["description"].startswith("Learns your name")


# -- the person behind the cookie -----------------------------------------------------------------


async def test_a_returning_browser_is_the_same_person_for_every_bot(
    web: WebChannel, client: httpx.AsyncClient
) -> None:
    for n, text in enumerate(["hi", "Ana", "Español"]):
        await say(client, "sales-bot", text, f"msg-ret{n:03d}")
        await web.delivery.drain()
    async with Stream(web, client, "support-bot") as page:
        await say(client, "support-bot", "hola", "msg-ret100")
        events = await page.close_and_read()
    assert [d["text"] for e, d in events if e == "reply"] == [
        "¡Hola, Ana! Soy el bot de soporte. ¿En qué puedo ayudarte?"
    ]


async def test_a_web_visitor_links_to_their_console_account_with_link(
    web: WebChannel, client: httpx.AsyncClient
) -> None:
    runtime = web.runtime
    console = ConsoleChannel(runtime, bot="sales-bot", user="ana")
    console.start()
    await console.say("hi")
    await console.say("Ana")
    await console.say("English")
    visitor = await visitor_of(client)
    await say(client, "support-bot", "/link", "link-00001")
    await web.delivery.drain()
    pending = await runtime.db.run(runtime.outbox.pending, "web:support-bot")
    code = next(word for word in pending[0].text.split() if word.isdigit() and len(word) == 6)
    printed = await console.say(f"/link {code}")
    assert "linked" in printed[0].lower()
    assert runtime.identity.find(f"web:{visitor}") == runtime.identity.find("ana")


# -- configuration --------------------------------------------------------------------------------


async def test_from_settings_reads_the_cookie_secret_from_the_named_variable(
    make_runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = await make_runtime()
    settings = ChannelSettings(
        name="web", kind="web", bot="support-bot", cookie_secret_env="WEB_COOKIE_SECRET"
    )
    with pytest.raises(ConfigError, match="WEB_COOKIE_SECRET must hold the cookie secret"):
        WebChannel.from_settings(settings, runtime)
    monkeypatch.setenv("WEB_COOKIE_SECRET", "0123456789abcdef0123")
    channel = WebChannel.from_settings(settings, runtime)
    assert channel.bots[0] == "support-bot"  # the entry bot comes first
    assert set(channel.bots) == set(runtime.bots.names())
    assert channel.cookies.verify(VisitorCookies(b"0123456789abcdef0123").sign("C" * 24))
    assert "0123456789abcdef" not in repr(channel) + repr(channel.cookies)


async def test_from_settings_refuses_an_unknown_bot(make_runtime: Any) -> None:
    settings = ChannelSettings(name="web", kind="web", bot="sales-bot", bots=["nobody-bot"])
    runtime = await make_runtime()
    with pytest.raises(ConfigError, match="nobody-bot"):
        WebChannel.from_settings(settings, runtime)
