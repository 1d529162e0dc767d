"""The inspector's person page shows a person's free-text memories and lets an operator add,
edit and delete them (one, or several selected), in headless Chromium over the admin API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from mnemobot.runtime.memories import Origin
from mnemobot.runtime.pipeline.runtime import Runtime
from tests.adapters.web.browser import LiveServer, chromium, live_server, screenshot, wait_until
from tests.adapters.web.test_browser import ADMIN_TOKEN, find_and_open, meet_sales_bot, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),  # the API tests cover both
]


@pytest.fixture
async def server(make_runtime: Callable[..., Awaitable[Runtime]]) -> AsyncIterator[LiveServer]:
    with live_server(await make_runtime(), ADMIN_TOKEN) as live:
        yield live


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def memories_shown(driver: Any) -> list[tuple[str, str]]:
    rows = driver.find_elements("css selector", "#memories tbody tr[data-memory-id]")
    return [
        (cells[1].text, cells[2].text)
        for cells in (row.find_elements("tag name", "td") for row in rows)
    ]


def write(driver: Any, text: str, topics: str) -> None:
    for field, value in (("memory-text", text), ("memory-topics", topics)):
        box = driver.find_element("id", field)
        box.clear()
        box.send_keys(value)
    driver.find_element("id", "save-memory").click()


def test_see_add_edit_and_delete_memories_in_the_inspector(
    server: LiveServer, browser: Any
) -> None:
    visitor = meet_sales_bot(browser, server)
    runtime = server.runtime
    user_id = runtime.identity.find(f"web:{visitor}")
    runtime.memories.add(user_id, "Has a cat", ("pets",), origin=Origin("cli"), limit=10)

    sign_in(browser, server)
    find_and_open(browser, visitor)
    assert memories_shown(browser) == [("Has a cat", "pets")]

    write(browser, "Prefers tea", "drinks, mornings")
    wait_until(browser, lambda d: len(memories_shown(d)) == 2, "the added memory")
    assert ("Prefers tea", "drinks, mornings") in memories_shown(browser)

    browser.find_element("css selector", 'button[aria-label="Edit memory Prefers tea"]').click()
    write(browser, "Prefers green tea", "drinks")
    wait_until(browser, lambda d: ("Prefers green tea", "drinks") in memories_shown(d), "the edit")
    assert len(memories_shown(browser)) == 2  # edited in place
    screenshot(browser, "inspector-memories.png")

    for box in browser.find_elements("css selector", "#memories tbody input[type=checkbox]"):
        box.click()
    browser.find_element("id", "delete-memories").click()
    wait_until(browser, lambda d: memories_shown(d) == [], "both deleted")
    assert "Deleted 2 memories" in browser.find_element("id", "notice").text
    assert runtime.memories.list(user_id) == []
