"""Rate limits and bad input on the web chat, as a flood or a prober meets them.

Each flood is answered 429 with ``Retry-After`` once it passes its limit, and what was refused
leaves nothing behind: no inbox row, no person, no identity. Time is the runtime's clock
(a ManualClock), moved by the tests; nothing sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from mnemobot.adapters.server import build_app
from mnemobot.adapters.web.channel import WebChannel
from mnemobot.adapters.web.limits import WebLimits
from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.errors import ConfigError
from mnemobot.runtime.pipeline.runtime import Runtime
from mnemobot.runtime.settings import ChannelSettings
from mnemobot.runtime.storage.tables import IDENTITIES, INBOX, USERS
from tests.adapters.web.conftest import BASE_URL, SECRET, wait_for


class Site:
    """A started web channel with the given limits, served as ``mnemobot run`` serves it."""

    def __init__(self, channel: WebChannel) -> None:
        self.channel = channel
        self.app = build_app(channel.routes(), bots=channel.runtime.bots.names())
        self.browsers: list[httpx.AsyncClient] = []

    def browser(self, address: str = "127.0.0.1") -> httpx.AsyncClient:
        """A browser (its own cookie jar) at ``address``."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 50000))
        client = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
        self.browsers.append(client)
        return client

    def count(self, table: Any) -> int:
        with self.channel.runtime.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def open_streams(self) -> int:
        return sum(len(s) for s in self.channel._streams.values())


@pytest.fixture
async def make_site(
    make_runtime: Callable[..., Runtime],
) -> AsyncIterator[Callable[..., Any]]:
    sites: list[Site] = []

    async def factory(**limits: Any) -> Site:
        runtime = await make_runtime()
        channel = WebChannel(
            runtime,
            name="web",
            bots=["sales-bot", "support-bot"],
            cookie_secret=SECRET,
            limits=WebLimits(**limits),
        )
        runtime.bind_channel(channel.name, bot="sales-bot")
        await channel.delivery.recover()
        await channel.start()
        site = Site(channel)
        sites.append(site)
        return site

    yield factory
    for site in sites:
        await site.channel.stop()
        await site.channel.delivery.drain()
        for browser in site.browsers:
            await browser.aclose()


async def say(browser: httpx.AsyncClient, text: str, bot: str = "sales-bot") -> httpx.Response:
    return await browser.post(f"/chat/api/{bot}/messages", json={"text": text})


# -- messages ---------------------------------------------------------------------------------


async def test_a_visitor_past_the_burst_gets_429_with_retry_after_and_nothing_is_stored(
    make_site: Any, clock: ManualClock
) -> None:
    site = await make_site(message_burst=3, messages_per_minute=6)
    ana = site.browser()

    assert [(await say(ana, f"message {n}")).status_code for n in range(3)] == [202] * 3
    refused = await say(ana, "one too many")

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "10"  # 6 a minute: one token every 10 s
    assert refused.json()["error"] == (
        "you are sending messages too fast: please wait 10 s and send it again"
    )
    await site.channel.delivery.drain()
    assert site.count(INBOX) == 3
    clock.advance(9)
    assert (await say(ana, "still too early")).status_code == 429
    clock.advance(1)
    assert (await say(ana, "now it goes")).status_code == 202
    await site.channel.delivery.drain()
    assert site.count(INBOX) == 4
    assert site.count(USERS) == 1


async def test_300_messages_at_once_store_only_the_burst(make_site: Any) -> None:
    site = await make_site()  # the defaults
    ana = site.browser()
    await ana.get("/chat/api/me")  # one visitor: the cookie first, as the page does

    answers = await asyncio.gather(*(say(ana, f"flood {n}") for n in range(300)))

    statuses = [a.status_code for a in answers]
    assert statuses.count(202) == WebLimits().message_burst
    assert statuses.count(429) == 300 - WebLimits().message_burst
    await site.channel.delivery.drain()
    assert site.count(INBOX) == WebLimits().message_burst


async def test_cookie_less_posts_make_people_only_up_to_the_new_visitor_burst(
    make_site: Any, clock: ManualClock
) -> None:
    site = await make_site(new_visitor_burst=5, new_visitors_per_minute=1)
    answers = []
    for n in range(20):
        stranger = site.browser()  # no cookie: a new visitor every time
        answers.append(await say(stranger, f"hello {n}"))

    assert [a.status_code for a in answers] == [202] * 5 + [429] * 15
    assert answers[-1].json()["error"].startswith("too many new visitors from your network")
    assert answers[-1].headers["Retry-After"] == "60"
    await site.channel.delivery.drain()
    assert (site.count(USERS), site.count(IDENTITIES), site.count(INBOX)) == (5, 5, 5)

    # A visitor already admitted keeps talking; another address is not held back.
    assert (await say(site.browsers[0], "me again")).status_code == 202
    assert (await say(site.browser("192.0.2.7"), "hello from elsewhere")).status_code == 202
    clock.advance(60)
    assert (await say(site.browser(), "a new one, a minute later")).status_code == 202


async def test_signed_cookies_collected_in_advance_do_not_get_past_the_new_visitor_limit(
    make_site: Any,
) -> None:
    site = await make_site(new_visitor_burst=3)
    browsers = [site.browser() for _ in range(6)]
    for browser in browsers:  # GET /chat/api/me hands out a signed cookie and stores nothing
        assert (await browser.get("/chat/api/me")).status_code == 200
    assert site.count(USERS) == 0

    statuses = [(await say(b, "hi")).status_code for b in browsers]

    assert statuses == [202] * 3 + [429] * 3
    await site.channel.delivery.drain()
    assert site.count(USERS) == 3


async def test_one_address_is_limited_across_its_visitors(make_site: Any) -> None:
    site = await make_site(address_message_burst=4, address_messages_per_minute=60)
    office = [site.browser("198.51.100.1") for _ in range(3)]

    statuses = [(await say(b, f"hi {n}")).status_code for n in range(2) for b in office]

    assert statuses == [202] * 4 + [429] * 2
    refused = await say(office[0], "again")
    assert refused.json()["error"].startswith("too many messages from your network")
    assert refused.headers["Retry-After"] == "1"
    assert (await say(site.browser("198.51.100.2"), "next door")).status_code == 202


# -- event streams ----------------------------------------------------------------------------


class Page:
    """An open event stream (a chat tab) of one browser."""

    def __init__(self, site: Site, browser: httpx.AsyncClient, bot: str = "sales-bot") -> None:
        self.site, self.browser, self.bot = site, browser, bot
        self.task: asyncio.Task[httpx.Response] | None = None

    async def open(self) -> Page:
        before = self.site.open_streams()
        self.task = asyncio.create_task(self.browser.get(f"/chat/api/{self.bot}/events"))
        await wait_for(lambda: self.site.open_streams() > before)
        return self

    async def close(self) -> None:
        assert self.task is not None
        before = self.site.open_streams()
        self.task.cancel()
        await wait_for(lambda: self.site.open_streams() < before)


async def test_a_visitor_may_hold_only_max_streams_pages_open(make_site: Any) -> None:
    site = await make_site(max_streams=2)
    ana = site.browser()
    await ana.get("/chat/api/me")
    first = await Page(site, ana, "sales-bot").open()
    await Page(site, ana, "support-bot").open()  # the cap counts every bot together

    refused = await ana.get("/chat/api/sales-bot/events")

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "5"
    assert "too many open chat pages (2)" in refused.json()["error"]
    assert site.open_streams() == 2
    bob = site.browser()  # another visitor (same address) is not affected
    await bob.get("/chat/api/me")
    await Page(site, bob).open()
    await first.close()
    await Page(site, ana).open()  # a closed page frees its place
    assert site.open_streams() == 3


async def test_cookie_less_streams_are_capped_per_address(make_site: Any) -> None:
    site = await make_site(max_address_streams=3)
    for _ in range(3):
        await Page(site, site.browser("203.0.113.9")).open()

    refused = await site.browser("203.0.113.9").get("/chat/api/sales-bot/events")

    assert refused.status_code == 429 and refused.headers["Retry-After"] == "30"
    assert site.open_streams() == 3
    await Page(site, site.browser("203.0.113.10")).open()


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[" * 4000 + b"]" * 4000, "JSON nested deeper than 100 levels"),
        (b'{"text": ' + b"[" * 4000 + b"]" * 4000 + b"}", "JSON nested deeper"),
        (b'{"text": "caf\xe9"}', "body is not UTF-8"),
    ],
    ids=["deep-array", "deep-in-text", "latin-1"],
)
async def test_a_body_no_json_reader_should_take_is_a_400_and_stores_nothing(
    make_site: Any, body: bytes, says: str
) -> None:
    site = await make_site()
    ana = site.browser()

    answer = await ana.post(
        "/chat/api/sales-bot/messages",
        content=body,
        headers={"Content-Type": "application/json"},
    )

    assert answer.status_code == 400
    assert answer.json()["error"].startswith(says)
    assert (site.count(INBOX), site.count(USERS), site.count(IDENTITIES)) == (0, 0, 0)


# -- configuration ----------------------------------------------------------------------------


async def test_limits_are_read_from_the_channel_settings(make_runtime: Any) -> None:
    runtime = await make_runtime()
    settings = ChannelSettings(
        name="web",
        kind="web",
        bot="sales-bot",
        limits={"messages_per_minute": 30, "message_burst": 5, "max_streams": 3},
    )
    channel = WebChannel.from_settings(settings, runtime)
    assert channel.limiter.limits == WebLimits(
        messages_per_minute=30.0, message_burst=5, max_streams=3
    )
    default = WebChannel.from_settings(
        ChannelSettings(name="web", kind="web", bot="sales-bot"), runtime
    )
    assert default.limiter.limits == WebLimits()


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"mesages_per_minute": 5}, "unknown limit `mesages_per_minute` (did you mean "),
        ({"message_burst": 2.5}, "limits.message_burst must be a whole number above 0"),
        ({"max_streams": 0}, "limits.max_streams must be a whole number above 0"),
        ({"messages_per_minute": "fast"}, "limits.messages_per_minute must be a number above 0"),
        ({"messages_per_minute": True}, "must be a number above 0"),
        (5, "limits must be a table of numbers"),
    ],
)
def test_a_bad_limit_stops_start_up_naming_the_key(table: Any, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        WebLimits.from_settings("web", table)
    assert problem in str(refused.value)
    assert str(refused.value).startswith("channel 'web': ")
