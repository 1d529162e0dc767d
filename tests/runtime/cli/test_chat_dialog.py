"""A dialog waiting at HEAR survives a restart of ``mnemobot chat`` between two messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def chat(tmp_path: Path, db_url: str, text: str) -> list[str]:
    env = {
        **os.environ,
        "MNEMOBOT_DATABASE_URL": db_url,
        "MNEMOBOT_BOTS_DIR": str(REPO / "bots"),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnemobot.runtime.cli",
            "chat",
            "--bot",
            "welcome-bot",
            "--user",
            "mia",
        ],
        input=text,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


def test_hear_resumes_in_a_new_process(tmp_path: Path, db_url: str):
    assert chat(tmp_path, db_url, "hi\n") == ["welcome-bot: Welcome! What's your name?"]
    assert chat(tmp_path, db_url, "Mia\nEnglish\n") == [
        "welcome-bot: Nice to meet you, Mia! Which language do you prefer? (English, Português, Español)",
        "welcome-bot: Hello, Mia! This is visit number 1.",
    ]
