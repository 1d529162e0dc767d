"""Real ``mnemobot run`` worker processes on one PostgreSQL, fed through Telegram webhooks.

Why this shape: each worker is the production entry point (``python -m runtime.cli run``
with a config file), so what is exercised is exactly what an operator runs: the webhook
server, the inbox, the advisory locks, the reclaimer ``run_deployment`` starts, and sends
through python-telegram-bot to :class:`FakeTelegramAPI` (which listens on 127.0.0.1 and so
serves every process). A test plays Telegram: it POSTs updates, secret header included, to
whichever worker it likes, as a load balancer would.

The bot (``ledger``) makes ordering and exactly-once visible: it appends each text to the
list ``seen`` in user memory (read, append, write: a lost or doubled turn shows) and answers
``"<index>: <text>"``. ``slow...`` texts take 1.5 s; ``block...`` texts wait for a file.
It writes a start and an end line with pid and time to ``events.jsonl`` for each turn.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from runtime.storage.database import Database
from runtime.storage.tables import IDENTITIES, INBOX, USER_MEMORY
from tests.conftest import REPO
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.support import write_bot

SECRET = "worker-test-secret"
START_TIMEOUT = 30.0

LEDGER_BOT = """
    import asyncio
    import json
    import os
    import time
    from pathlib import Path

    LOG = Path(os.environ["WORKER_TEST_DIR"])


    def record(kind, text):
        line = {"pid": os.getpid(), "kind": kind, "text": text, "t": time.time()}
        with open(LOG / "events.jsonl", "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\\n")


    async def on_message(ctx):
        text = ctx.text
        record("start", text)
        if text.startswith("slow"):
            await asyncio.sleep(1.5)
        if text.startswith("block"):
            while not (LOG / "release").exists():
                await asyncio.sleep(0.05)
        seen = list(await ctx.user.memory.get("seen") or [])
        seen.append(text)
        await ctx.user.memory.set("seen", seen)
        record("end", text)
        await ctx.say(f"{len(seen) - 1}: {text}")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Worker:
    """One ``mnemobot run`` process."""

    index: int
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/telegram/"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@dataclass
class Deployment:
    """Workers sharing one database and one channel, plus what the test needs to check them."""

    root: Path
    db_url: str
    tg: FakeTelegramAPI
    token: str
    channel: str = "tg"
    mode: str = "webhook"
    workers_section: dict[str, Any] = field(
        default_factory=lambda: {"reclaim_interval": 0.3, "reclaim_after": 1.5, "send_lease": 2}
    )
    workers: list[Worker] = field(default_factory=list)
    _db: Database | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_bot(self.root / "bots", "ledger", bot_py=LEDGER_BOT)
        self.tg.add_bot(self.token, f"{self.channel}_ledger_bot")

    # -- processes ------------------------------------------------------------------------

    def _config(self, port: int) -> Path:
        workers = "\n".join(f"{k} = {v}" for k, v in self.workers_section.items())
        path = self.root / f"worker-{port}.toml"
        path.write_text(
            textwrap.dedent(
                f"""
                [database]
                url = "{self.db_url}"
                [bots]
                dir = "{self.root / "bots"}"
                [server]
                host = "127.0.0.1"
                port = {port}
                [workers]
                {{workers}}
                [[channels]]
                name = "{self.channel}"
                kind = "telegram"
                mode = "{self.mode}"
                bot = "ledger"
                token_env = "WORKER_TG_TOKEN"
                webhook_secret_env = "WORKER_TG_SECRET"
                base_url = "{self.tg.base_url}"
                poll_timeout = 1
                """
            ).replace("{workers}", workers),
            encoding="utf-8",
        )
        return path

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MNEMOBOT_")}
        env.update(
            WORKER_TG_TOKEN=self.token,
            WORKER_TG_SECRET=SECRET,
            WORKER_TEST_DIR=str(self.root),
            PYTHONPATH=str(REPO),
        )
        return env

    def launch(self) -> Worker:
        """Start one more worker process (not waiting for it to be ready)."""
        port = free_port()
        index = len(self.workers)
        log = self.root / f"worker-{index}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "runtime.cli", "run", "--config", str(self._config(port))],
                cwd=self.root,
                env=self._env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(index, port, process, log)
        self.workers.append(worker)
        return worker

    def start(self, count: int) -> list[Worker]:
        """Start ``count`` workers and wait until each answers ``/healthz``."""
        started = [self.launch() for _ in range(count)]
        for worker in started:
            self.wait_ready(worker)
        return started

    def wait_ready(self, worker: Worker) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if worker.process.poll() is not None:
                raise AssertionError(f"worker {worker.index} exited:\n{worker.output()}")
            try:
                if httpx.get(f"http://127.0.0.1:{worker.port}/healthz", timeout=1).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"worker {worker.index} not ready:\n{worker.output()}")

    def kill(self, worker: Worker) -> None:
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(10)

    def stop(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.process.wait(15)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(5)
        if self._db is not None:
            self._db.stop()

    # -- playing Telegram ------------------------------------------------------------------

    def update(self, user: int, text: str) -> dict[str, Any]:
        """A private-chat text message from ``user``, as Telegram would POST it."""
        update = self.tg.push_message(self.token, user, user, text, first_name=f"P{user}")
        with self.tg._lock:  # webhook mode: nothing polls this queue; keep it empty
            self.tg._bots[self.token].pending.clear()
        return update

    async def post(self, client: httpx.AsyncClient, worker: Worker, update: dict[str, Any]) -> int:
        response = await client.post(
            worker.webhook + self.channel,
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        return response.status_code

    def replies(self, user: int) -> list[str]:
        return [m.text for m in self.tg.sent_messages(self.token, chat_id=user)]

    def wait_replies(self, user: int, count: int, timeout: float = 20.0) -> list[str]:
        sent = self.tg.wait_for_sent(count, self.token, chat_id=user, timeout=timeout)
        return [m.text for m in sent]

    # -- what the workers left ----------------------------------------------------------

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.db_url)
            self._db.start()
        return self._db

    def seen(self, user: int) -> Any:
        """The ``seen`` list in the user memory of Telegram user ``user``."""
        with self.db.read() as conn:
            return conn.execute(
                select(USER_MEMORY.c.value)
                .join(IDENTITIES, IDENTITIES.c.user_id == USER_MEMORY.c.user_id)
                .where(
                    IDENTITIES.c.channel_kind == "telegram",
                    IDENTITIES.c.external_id == str(user),
                    USER_MEMORY.c.key == "seen",
                )
            ).scalar_one_or_none()

    def inbox(self, user: int) -> list[tuple[str, str]]:
        """(event id, status) of this channel's events from ``user``, in stored order."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(INBOX.c.event_id, INBOX.c.status)
                .where(INBOX.c.conversation == f"{self.channel}|{user}|{user}")
                .order_by(INBOX.c.seq)
            ).all()
        return [(r.event_id, r.status) for r in rows]

    def events(self) -> list[dict[str, Any]]:
        path = self.root / "events.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def wait_event(self, kind: str, text: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event["kind"] == kind and event["text"] == text:
                    return event
            time.sleep(0.02)
        raise AssertionError(f"no {kind} of {text!r}; events: {self.events()}")
