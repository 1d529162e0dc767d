"""``mnemobot chat --web``: the quick start's browser chat, served and stopped cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import REPO
from tests.support import free_port


def test_chat_web_serves_the_browser_chat_and_remembers_the_browser(tmp_path: Path, db_url: str):
    port = free_port()
    env = {
        **os.environ,
        "MNEMOBOT_DATABASE_URL": db_url,
        "MNEMOBOT_BOTS_DIR": str(REPO / "bots"),
        "MNEMOBOT_SERVER__PORT": str(port),
        "BROWSER": "true",  # webbrowser.open runs `true` instead of opening a window
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mnemobot.runtime.cli",
            "chat",
            "--web",
            "--bot",
            "support-bot",
        ],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        page = None
        while time.monotonic() < deadline:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/chat/?bot=support-bot", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert page is not None and page.status_code == 200
        assert "mnemobot_visitor" in page.headers.get("set-cookie", "")
        bots = httpx.get(f"http://127.0.0.1:{port}/chat/api/bots", cookies=page.cookies).json()
        assert bots["bots"][0]["name"] == "support-bot"
        assert (tmp_path / "data" / "web-secret").is_file()  # kept, so browsers stay known
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert f"web chat at http://127.0.0.1:{port}/chat/?bot=support-bot" in stderr
