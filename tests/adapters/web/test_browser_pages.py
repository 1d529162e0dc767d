"""The browser pages a new user meets, in headless Chromium: the home page, a chat that
survives a reload and a change of bot, a handoff the page shows, and the inspector finding a
web visitor by the name the bots learned, saying a summary is pending, and searching what is
remembered. Like test_browser.py, these fail (never skip) without Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from mnemobot.runtime.pipeline.runtime import Runtime
from tests.adapters.web.browser import LiveServer, chromium, live_server, screenshot, wait_until
from tests.adapters.web.test_browser import (
    ADMIN_TOKEN,
    bot_lines,
    meet_sales_bot,
    open_chat,
    say,
    sign_in,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


@pytest.fixture
async def server(make_runtime: Callable[..., Awaitable[Runtime]]) -> AsyncIterator[LiveServer]:
    with live_server(await make_runtime(), ADMIN_TOKEN) as live:
        yield live


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def log_lines(driver: Any) -> list[str]:
    return [
        li.text.replace("\n", ": ", 1) for li in driver.find_elements("css selector", "#log li")
    ]


def picker_label(driver: Any) -> str:
    return str(
        driver.execute_script("return document.getElementById('bot').selectedOptions[0].text")
    )


def pick(driver: Any, bot: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "bot")).select_by_value(bot)


def test_the_home_page_links_to_the_chat_and_the_inspector(
    server: LiveServer, browser: Any
) -> None:
    browser.get(f"{server.url}/")
    links = {
        a.text.split("\n")[0]: a.get_attribute("href")
        for a in browser.find_elements("css selector", "#pages a")
    }
    assert links == {"Web chat": f"{server.url}/chat/", "Memory inspector": f"{server.url}/admin/"}
    icon = httpx.get(f"{server.url}/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert browser.execute_script(  # the icon rendered (CSP allows it: same origin)
        "const i = document.querySelector('h1 img'); return i.complete && i.naturalWidth > 0"
    )
    screenshot(browser, "home.png")
    browser.find_element("partial link text", "Web chat").click()
    wait_until(
        browser,
        lambda d: d.find_element("tag name", "body").get_attribute("data-ready"),
        "the chat",
    )


def test_a_reload_and_a_change_of_bot_keep_the_conversation_and_a_handoff_shows(
    server: LiveServer, browser: Any
) -> None:
    meet_sales_bot(browser, server)
    before = log_lines(browser)
    assert before[-1].startswith("sales-bot: Got it, Ana (en).")

    browser.refresh()  # the open session comes back, in order, once
    open_chat(browser, server, "sales-bot")
    wait_until(browser, lambda d: log_lines(d) == before, "the conversation after a reload")

    open_chat(browser, server, "support-bot")  # another bot: its own (new) conversation
    say(browser, server, "hello", "Hello, Ana!")
    support = log_lines(browser)
    pick(browser, "sales-bot")  # pick sales-bot again
    wait_until(browser, lambda d: log_lines(d) == before, "sales-bot's conversation again")
    pick(browser, "support-bot")
    wait_until(browser, lambda d: log_lines(d) == support, "support-bot's conversation again")

    open_chat(browser, server, "sales-bot")
    assert picker_label(browser) == "sales-bot"
    say(browser, server, "I have a problem with my invoice", "ticket #")
    status = browser.find_element("id", "status").text
    assert picker_label(browser) == "sales-bot → support-bot"
    assert "support-bot is answering" in status, status
    screenshot(browser, "web-chat-handoff.png")

    browser.refresh()  # after a reload the page still knows who answers
    open_chat(browser, server, "sales-bot")
    wait_until(browser, lambda d: picker_label(d) == "sales-bot → support-bot", "the handoff shown")
    assert "support-bot" in browser.find_element("id", "status").text
    assert any("ticket #" in line for line in bot_lines(browser))


def test_the_inspector_finds_a_web_visitor_by_learned_name_and_searches_their_memory(
    server: LiveServer, browser: Any
) -> None:
    visitor = meet_sales_bot(browser, server)
    say(browser, server, "/end", "Conversation ended")
    chat_tab = browser.current_window_handle

    browser.switch_to.new_window("tab")
    sign_in(browser, server)
    browser.find_element("id", "query").send_keys("ana\n")  # the name sales-bot learned
    wait_until(browser, lambda d: d.find_elements("css selector", "#results button"), "a result")
    [found] = [b.text for b in browser.find_elements("css selector", "#results button")]
    assert found == f"Ana — web:{visitor}"  # listed by that name, not by the visitor id
    browser.find_element("css selector", "#results button").click()
    wait_until(browser, lambda d: d.find_element("id", "person").is_displayed(), "the person")
    assert browser.find_element("id", "person-title").text == "Person: Ana"
    heading = browser.find_element("css selector", "#sessions h4").text
    assert "ended" in heading and heading.endswith("summary pending"), heading

    browser.find_element("id", "recall-query").send_keys("English\n")
    wait_until(
        browser, lambda d: d.find_elements("css selector", "#recall tbody tr[data-kind]"), "recall"
    )
    rows = [
        [td.text for td in tr.find_elements("tag name", "td")]
        for tr in browser.find_elements("css selector", "#recall tbody tr")
    ]
    said = [r for r in rows if r[0] == "turn" and r[3] == "English"]
    assert said and "web:sales-bot" in said[0][2] and said[0][1], rows
    screenshot(browser, "inspector-recall.png")

    browser.find_element("id", "recall-query").clear()
    browser.find_element("id", "recall-query").send_keys("zeppelin\n")
    wait_until(
        browser,
        lambda d: "Nothing remembered matches" in d.find_element("id", "recall").text,
        "no match",
    )
    browser.switch_to.window(chat_tab)
