"""The inspector's person page shows the temp memory of an open session with its other
rows, and a sensitive key (sensitive-keys) as (hidden), in headless Chromium (issue 16)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mnemobot.runtime.pipeline.runtime import Runtime
from tests.adapters.web.browser import LiveServer, chromium, live_server, screenshot, wait_until
from tests.adapters.web.test_browser import (
    ADMIN_TOKEN,
    find_and_open,
    memory_value,
    open_chat,
    say,
    sign_in,
    visitor_id,
)
from tests.support import write_bot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),  # the API tests cover both
]

DIALOG = """
SET TEMP "step", "asked colour"
SET USER MEMORY "password", "hunter2-Secret"
SET USER MEMORY "name", "Ana"
TALK "What is your favourite colour?"
HEAR colour
TALK "Nice: " + colour
"""


@pytest.fixture
async def server(
    make_runtime: Callable[..., Awaitable[Runtime]], tmp_path: Path
) -> AsyncIterator[LiveServer]:
    write_bot(tmp_path, "ask-bot", start_bas=DIALOG, config="sensitive-keys,password\n")
    with live_server(await make_runtime(bots_dir=tmp_path), ADMIN_TOKEN) as live:
        yield live


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def test_temp_shown_with_its_session_and_a_sensitive_key_hidden(
    server: LiveServer, browser: Any
) -> None:
    open_chat(browser, server, "ask-bot")
    say(browser, server, "hi", "favourite colour")
    visitor = visitor_id(browser)

    browser.switch_to.new_window("tab")
    sign_in(browser, server)
    find_and_open(browser, visitor)
    wait_until(browser, lambda d: "(temp)" in d.find_element("id", "sessions").text, "temp")
    assert '(temp) step = "asked colour"' in browser.find_element("id", "sessions").text
    assert memory_value(browser, "name") == '"Ana"'
    assert memory_value(browser, "password") == '"(hidden)"'
    assert "hunter2" not in browser.page_source
    screenshot(browser, "inspector-temp-hidden.png")
