"""No configured secret reaches a log line, whoever logs it (issue 14).

The case of the issue: an event is stored but unanswered when the worker is killed; the
worker is started again with the same token but a Bot API address that rejects it. Recovery
sends the stored event's reply before the channel has started, python-telegram-bot raises
``InvalidToken("The token `<TOKEN>` was rejected by the server.")``, and it is logged with its
traceback by code that knows nothing of redaction. Every line the worker wrote is searched for
every secret it was configured with.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.telegram_api import FakeTelegramAPI

from .harness import SECRET, Deployment, Worker

pytestmark = pytest.mark.slow  # worker processes

TOKEN = "7150123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # shaped like a real one
ADMIN_TOKEN = "Ys9-admin-token-qu1te-l0ng-and-random"
MODEL_KEY = "model-key-9f8e7d6c5b4a"  # named by [llm] api_key_env, not *_API_KEY
PERSON = 715_001


def wait_for_line(worker: Worker, needle: str, timeout: float = 60.0) -> str:
    """The worker's output once it holds ``needle`` (or the worker has exited)."""
    deadline = time.monotonic() + timeout
    while needle not in (output := worker.output()):
        if worker.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no {needle!r} in the worker's output:\n{output}")
        time.sleep(0.05)
    return output


async def test_a_rejected_token_during_recovery_is_logged_without_any_secret(
    tmp_path: Path,
) -> None:
    secrets = {
        "telegram token": TOKEN,
        "its URL-encoded form": TOKEN.replace(":", "%3A"),
        "webhook secret": SECRET,
        "admin token": ADMIN_TOKEN,
        "model key": MODEL_KEY,
    }
    db_url = f"sqlite:///{tmp_path / 'mnemobot.db'}"
    with FakeTelegramAPI() as tg, FakeTelegramAPI() as rejecting:
        d = Deployment(
            tmp_path,
            db_url,
            tg,
            token=TOKEN,
            channel="tg-secrets",
            extra_env={
                "MNEMOBOT_ADMIN_TOKEN": ADMIN_TOKEN,
                "MNEMOBOT_LLM__API_KEY_ENV": "WORKER_MODEL_KEY",
                "WORKER_MODEL_KEY": MODEL_KEY,
            },
        )
        try:
            [first] = d.start(1)
            async with httpx.AsyncClient(timeout=30) as client:
                assert await d.post(client, first, d.update(PERSON, "block me")) == 200
            await asyncio.to_thread(d.wait_event, "start", "block me", 30.0)
            d.kill(first)  # stored, unanswered

            d.tg = rejecting  # same token, a Bot API that does not know it: getMe fails
            (tmp_path / "release").touch()
            again = d.launch()
            output = await asyncio.to_thread(wait_for_line, again, "was rejected")
        finally:
            d.stop()
        output = "".join(w.output() for w in d.workers)

    assert "Traceback" in output  # the failure was logged with its traceback...
    assert "[redacted]" in output  # ...and the token in it replaced
    leaks = [
        (what, n, line)
        for n, line in enumerate(output.splitlines(), 1)
        for what, secret in secrets.items()
        if secret in line
    ]
    assert leaks == []
