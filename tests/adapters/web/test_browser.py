"""The web chat and the memory inspector in headless Chromium, as a person would use them.

A real uvicorn serves the pages, the chat API and the admin API over a real runtime with
the example bots; Selenium drives Debian's Chromium. Screenshots go to tests/artifacts/.
These tests fail (never skip) when Chromium is missing: ``.ci/run`` installs it.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.pipeline.runtime import Runtime
from tests.adapters.web.browser import LiveServer, chromium, live_server, screenshot, wait_until

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),  # the API tests cover both
]

ADMIN_TOKEN = "inspector-test-token-0123456789"


@pytest.fixture
async def server(make_runtime: Callable[..., Awaitable[Runtime]]) -> AsyncIterator[LiveServer]:
    with live_server(await make_runtime(), ADMIN_TOKEN) as live:
        yield live


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


# -- small steps, named as a person would say them ---------------------------------------------


def open_chat(driver: Any, server: LiveServer, bot: str) -> None:
    driver.get(f"{server.url}/chat/?bot={bot}")
    wait_until(
        driver,
        lambda d: d.find_element("tag name", "body").get_attribute("data-ready") == bot,
        f"the chat with {bot} to connect",
    )


def bot_lines(driver: Any) -> list[str]:
    return [li.text for li in driver.find_elements("css selector", "#log li.bot")]


def say(driver: Any, server: LiveServer, text: str, expect: str) -> str:
    """Type ``text``, press Enter, and wait for a bot reply containing ``expect``.

    The test clock moves a second first, so the turn log keeps the order of the turns.
    """
    assert isinstance(server.runtime.clock, ManualClock)
    server.runtime.clock.advance(1)
    before = len(bot_lines(driver))
    box = driver.find_element("id", "message")
    box.send_keys(text)
    box.send_keys("\n")
    wait_until(
        driver,
        lambda d: any(expect in line for line in bot_lines(d)[before:]),
        f"a reply containing {expect!r} after {text!r}",
    )
    return next(line for line in bot_lines(driver)[before:] if expect in line)


def visitor_id(driver: Any) -> str:
    wait_until(driver, lambda d: d.find_element("id", "visitor").text not in ("", "…"), "visitor")
    return str(driver.find_element("id", "visitor").text)


def meet_sales_bot(driver: Any, server: LiveServer) -> str:
    """Tell sales-bot your name and language through the web chat; returns the visitor id."""
    open_chat(driver, server, "sales-bot")
    say(driver, server, "hi", "What's your name?")
    say(driver, server, "Ana", "Nice to meet you, Ana!")
    say(driver, server, "English", "Got it, Ana (en).")
    return visitor_id(driver)


def sign_in(driver: Any, server: LiveServer) -> None:
    driver.get(f"{server.url}/admin/")
    driver.find_element("id", "token").send_keys(ADMIN_TOKEN + "\n")
    wait_until(driver, lambda d: d.find_element("id", "search").is_displayed(), "signed in")


def find_and_open(driver: Any, query: str) -> None:
    box = driver.find_element("id", "query")
    box.clear()
    box.send_keys(query + "\n")
    wait_until(driver, lambda d: d.find_elements("css selector", "#results button"), "a result")
    driver.find_element("css selector", "#results button").click()
    wait_until(driver, lambda d: d.find_element("id", "person").is_displayed(), "the person")


def memory_value(driver: Any, key: str) -> str | None:
    rows = driver.find_elements("css selector", f'#memory tbody tr[data-key="{key}"]')
    return rows[0].find_elements("tag name", "td")[1].text if rows else None


# -- the tests ---------------------------------------------------------------------------------


def test_chat_in_the_browser_then_come_back_and_be_recognised(
    server: LiveServer, browser: Any
) -> None:
    visitor = meet_sales_bot(browser, server)
    screenshot(browser, "web-chat.png")

    browser.refresh()  # the same browser comes back: the signed cookie says who it is
    open_chat(browser, server, "sales-bot")
    assert visitor_id(browser) == visitor
    assert "Ana" in say(browser, server, "hello again", "Ana")

    open_chat(browser, server, "support-bot")  # another bot knows Ana too
    assert (
        say(browser, server, "hi", "Hello, Ana!")
        == "support-bot\nHello, Ana! I'm the support bot. How can I help?"
    )
    screenshot(browser, "web-chat-support.png")

    runtime = server.runtime
    user_id = runtime.identity.find(f"web:{visitor}")
    assert runtime.identity.find(user_id) == user_id


def test_see_and_correct_a_person_in_the_inspector_then_forget_them(
    server: LiveServer, browser: Any
) -> None:
    visitor = meet_sales_bot(browser, server)
    chat_tab = browser.current_window_handle

    browser.switch_to.new_window("tab")
    sign_in(browser, server)
    find_and_open(browser, visitor)
    assert browser.find_element("id", "person-title").text == "Person: Ana"
    assert memory_value(browser, "name") == '"Ana"'
    assert memory_value(browser, "language") == '"en"'
    transcript = browser.find_element("id", "sessions").text
    assert "person: Ana" in transcript and "sales-bot: Got it, Ana (en)." in transcript

    browser.find_element("css selector", 'button[aria-label="Edit language"]').click()
    value = browser.find_element("id", "key-value")
    value.clear()
    value.send_keys('"es"')
    browser.find_element("id", "save-key").click()
    wait_until(browser, lambda d: memory_value(d, "language") == '"es"', "language = es")

    browser.find_element("id", "prompt-message").clear()
    browser.find_element("id", "prompt-message").send_keys("¿Tienen planes para equipos?")
    browser.find_element("css selector", "#prompt-form button").click()
    wait_until(browser, lambda d: "Ana" in d.find_element("id", "prompt").text, "the prompt")
    screenshot(browser, "inspector.png")

    browser.switch_to.window(chat_tab)  # the next answer follows the correction
    open_chat(browser, server, "support-bot")
    assert say(browser, server, "hola", "¡Hola, Ana!") == (
        "support-bot\n¡Hola, Ana! Soy el bot de soporte. ¿En qué puedo ayudarte?"
    )

    browser.switch_to.window(browser.window_handles[-1])
    browser.find_element("id", "forget").click()
    wait_until(browser, lambda d: d.find_element("id", "confirm-forget").is_displayed(), "confirm")
    assert "Ana" in browser.find_element("id", "confirm-who").text
    browser.find_element("id", "confirm-yes").click()
    wait_until(browser, lambda d: "Forgotten" in d.find_element("id", "notice").text, "forgotten")
    assert not browser.find_element("id", "person").is_displayed()
    screenshot(browser, "inspector-forgotten.png")

    browser.find_element("id", "query").send_keys(visitor + "\n")
    wait_until(
        browser,
        lambda d: "Nobody matches" in d.find_element("id", "results").text,
        "an empty search",
    )
    with pytest.raises(Exception, match="no user"):
        server.runtime.identity.find(f"web:{visitor}")


# -- framing ------------------------------------------------------------------------------------


FOREIGN_PAGE = """<!doctype html>
<title>someone else's site</title>
<iframe id="inspector" src="{target}/admin/" width="600" height="300"></iframe>
<iframe id="chat" src="{target}/chat/" width="600" height="300"></iframe>
<iframe id="own" src="/own.html" width="600" height="100"></iframe>
"""


@contextmanager
def foreign_site(target: str) -> Iterator[str]:
    """Another origin (127.0.0.1 on a port of its own) whose page frames ``target``'s pages,
    and one of its own (the control: framing itself works, and the test can see into it)."""
    pages = {
        "/": FOREIGN_PAGE.format(target=target),
        "/own.html": '<!doctype html><p id="mark">framed fine</p>',
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write((body or "").encode())

        def log_message(self, *_: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def frame_document(driver: Any, frame_id: str) -> tuple[str, bool, bool]:
    """(the framed document's URL, whether it finished loading, whether ``#token-form``
    (the inspector's sign-in) or ``#composer`` (the chat's) is in it)."""
    driver.switch_to.default_content()
    driver.switch_to.frame(driver.find_element("id", frame_id))
    try:
        url, state, ours = driver.execute_script(
            "return [location.href, document.readyState,"
            " !!document.querySelector('#token-form, #composer, #mark')]"
        )
    finally:
        driver.switch_to.default_content()
    return str(url), state == "complete" and url != "about:blank", bool(ours)


def test_a_foreign_page_cannot_frame_the_inspector_or_the_chat(
    server: LiveServer, browser: Any
) -> None:
    with foreign_site(server.url) as foreign:
        browser.get(foreign)
        wait_until(browser, lambda d: frame_document(d, "own")[2], "the foreign page's own frame")
        for frame in ("inspector", "chat"):
            wait_until(browser, lambda d, f=frame: frame_document(d, f)[1], f"the {frame} frame")
        screenshot(browser, "framed-by-a-foreign-page.png")

        for frame, path in (("inspector", "/admin/"), ("chat", "/chat/")):
            url, _, ours = frame_document(browser, frame)
            assert not ours, f"the {frame} rendered inside a foreign page"
            assert url != f"{server.url}{path}", url  # Chromium shows its error page instead

    browser.get(f"{server.url}/admin/")  # not framed, the inspector loads as ever
    wait_until(
        browser,
        lambda d: d.find_element("id", "token-form").is_displayed(),
        "the inspector's sign-in form",
    )
