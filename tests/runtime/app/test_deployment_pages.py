"""What `mnemobot run` says about the browser pages it serves, as it starts."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mnemobot.runtime.app.deployment import page_urls
from mnemobot.runtime.settings import load_settings


@dataclass
class FakeChannel:
    name: str
    kind: str


def test_run_names_the_home_page_the_web_chat_and_the_inspector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(None, server={"host": "127.0.0.1", "port": 8099})
    monkeypatch.setenv("MNEMOBOT_ADMIN_TOKEN", "t" * 32)
    channels = [FakeChannel("sales-telegram", "telegram"), FakeChannel("web", "web")]

    assert page_urls(settings, channels) == [
        "home page: http://127.0.0.1:8099/",
        "web chat: http://127.0.0.1:8099/chat/",
        "memory inspector: http://127.0.0.1:8099/admin/",
    ]

    monkeypatch.delenv("MNEMOBOT_ADMIN_TOKEN")
    assert page_urls(settings, channels[:1]) == ["home page: http://127.0.0.1:8099/"]
