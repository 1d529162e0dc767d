"""Real ``mnemobot run`` worker processes on one PostgreSQL, fed through Telegram webhooks
and (optionally) Slack HTTP events.

Why this shape: each worker is the production entry point (``python -m runtime.cli run``
with a config file), so what is exercised is exactly what an operator runs: the webhook
server, the inbox, the advisory locks, the reclaimer ``run_deployment`` starts, and sends
through python-telegram-bot to :class:`FakeTelegramAPI` and through slack_sdk to
:class:`FakeSlackAPI` (both listen on 127.0.0.1 and so serve every process). A test plays
Telegram and Slack: it POSTs updates (secret header included) and signed Events API
requests to whichever worker it likes, as a load balancer would.

The bot (``ledger``) makes ordering and exactly-once visible: it appends each text to the
list ``seen`` in user memory (read, append, write: a lost or doubled turn shows), counts its
turns with ``increment("turns")`` and answers ``"<index>: <text>"``. ``slow...`` texts take
1.5 s; ``block...`` texts wait for a file. It writes a start and an end line with pid and
time to ``events.jsonl`` for each turn. A test may give a bot of its own (``bot_py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import IDENTITIES, INBOX, OUTBOX, USER_MEMORY
from tests.conftest import REPO
from tests.fakes.slack_api import (
    DEFAULT_TEAM,
    FakeSlackAPI,
    message_event,
    signed_event_request,
)
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.support import free_port, write_bot

SECRET = "worker-test-secret"
SLACK_SIGNING_SECRET = "worker-test-slack-signing-secret"

# What every test bot of a worker process starts with: ``record`` appends one event of the
# turn to events.jsonl in the test's folder, so the test reads what each process did.
RECORDING_BOT = """
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

"""

LEDGER_BOT = (
    RECORDING_BOT
    + """

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
        await ctx.user.memory.increment("turns")
        record("end", text)
        await ctx.say(f"{len(seen) - 1}: {text}")
"""
)


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

    @property
    def slack_webhook(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/slack/"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _toml_table(values: dict[str, Any]) -> str:
    return "{ " + ", ".join(f"{k} = {v!r}" for k, v in values.items()) + " }"


@dataclass
class Deployment:
    """Workers sharing one database, one Telegram channel and, when ``slack`` is given, one
    Slack channel (HTTP mode), plus what the test needs to check them.

    ``bot``/``bot_py`` replace the ledger bot; ``pacing`` is the Telegram channel's
    ``pacing`` table (the fake has no flood limits, so a load test may raise them).
    """

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
    bot: str = "ledger"
    bot_py: str = LEDGER_BOT
    pacing: dict[str, float] | None = None
    slack: FakeSlackAPI | None = None
    slack_token: str = "xoxb-worker-test"
    slack_channel: str = "slack"
    extra_env: dict[str, str] = field(default_factory=dict)  # more of the workers' environment
    _db: Database | None = None
    _slack_bot_user: str = field(default="", init=False)
    _slack_people: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_bot(self.root / "bots", self.bot, bot_py=self.bot_py)
        self.tg.add_bot(self.token, self.tg_username)
        if self.slack is not None:
            auth = self.slack.add_bot(self.slack_token, name=f"{self.bot}-bot")
            self._slack_bot_user = str(auth["user_id"])

    @property
    def tg_username(self) -> str:
        """The Telegram bot's @username (without the @)."""
        return f"{self.channel}_{self.bot}_bot".replace("-", "_")

    # -- processes ------------------------------------------------------------------------

    def _config(self, port: int) -> Path:
        workers = "\n".join(f"{k} = {v}" for k, v in self.workers_section.items())
        config = textwrap.dedent(
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
            bot = "{self.bot}"
            token_env = "WORKER_TG_TOKEN"
            webhook_secret_env = "WORKER_TG_SECRET"
            base_url = "{self.tg.base_url}"
            poll_timeout = 1
            """
        ).replace("{workers}", workers)
        if self.pacing is not None:
            config += f"pacing = {_toml_table(self.pacing)}\n"
        if self.slack is not None:
            config += textwrap.dedent(
                f"""
                [[channels]]
                name = "{self.slack_channel}"
                kind = "slack"
                mode = "http"
                bot = "{self.bot}"
                token_env = "WORKER_SLACK_TOKEN"
                signing_secret_env = "WORKER_SLACK_SIGNING_SECRET"
                api_url = "{self.slack.base_url}"
                """
            )
        path = self.root / f"worker-{port}.toml"
        path.write_text(config, encoding="utf-8")
        return path

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MNEMOBOT_")}
        env.update(
            WORKER_TG_TOKEN=self.token,
            WORKER_TG_SECRET=SECRET,
            WORKER_SLACK_TOKEN=self.slack_token,
            WORKER_SLACK_SIGNING_SECRET=SLACK_SIGNING_SECRET,
            WORKER_TEST_DIR=str(self.root),
            PYTHONPATH=str(REPO),
        )
        env.update(self.extra_env)
        return env

    def launch(self) -> Worker:
        """Start one more worker process (not waiting for it to be ready)."""
        port = free_port()
        index = len(self.workers)
        log = self.root / f"worker-{index}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mnemobot.runtime.cli",
                    "run",
                    "--config",
                    str(self._config(port)),
                ],
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
        """Wait until the worker answers ``/healthz``, however long a busy machine takes to
        start it; fail at once if it exits. A worker that hangs is the per-test timeout's
        (pytest-timeout, pyproject.toml) to report."""
        while True:
            if worker.process.poll() is not None:
                raise AssertionError(f"worker {worker.index} exited:\n{worker.output()}")
            try:
                if httpx.get(f"http://127.0.0.1:{worker.port}/healthz", timeout=5).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)

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
            self._db = None  # reading after stop() opens it again

    # -- playing Telegram ------------------------------------------------------------------

    def update(self, user: int, text: str) -> dict[str, Any]:
        """A private-chat text message from ``user``, as Telegram would POST it."""
        update = self.tg.push_message(self.token, user, user, text, first_name=f"P{user}")
        with self.tg._lock:  # webhook mode: nothing polls this queue; keep it empty
            self.tg._bots[self.token].pending.clear()
        return update

    def group_update(self, chat: int, user: int, text: str) -> dict[str, Any]:
        """``@<bot> text`` from ``user`` in the group ``chat`` (a negative id), as Telegram
        would POST it; the bot answers in the group, and the conversation is (group, user)."""
        update = self.tg.push_message(
            self.token,
            chat,
            user,
            f"@{self.tg_username} {text}",
            first_name=f"P{user}",
            chat_type="supergroup",
            chat_title=f"Group {chat}",
        )
        with self.tg._lock:
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

    def replies_by_chat(self) -> dict[int | str, list[str]]:
        """Every Telegram message the bot sent, in order, per chat id."""
        by_chat: dict[int | str, list[str]] = {}
        for message in self.tg.sent_messages(self.token):
            by_chat.setdefault(message.chat_id, []).append(message.text)
        return by_chat

    def wait_replies(self, user: int, count: int, timeout: float = 20.0) -> list[str]:
        sent = self.tg.wait_for_sent(count, self.token, chat_id=user, timeout=timeout)
        return [m.text for m in sent]

    # -- playing Slack ---------------------------------------------------------------------

    @property
    def _slack_api(self) -> FakeSlackAPI:
        assert self.slack is not None, "this deployment has no Slack channel"
        return self.slack

    @staticmethod
    def slack_dm(user: str) -> str:
        """The id of the DM between ``user`` (``U...``) and the bot."""
        return "D" + user.removeprefix("U")

    @staticmethod
    def slack_account(user: str) -> str:
        """The external id the Slack channel gives ``user``: ``<team>:<user>``."""
        return f"{DEFAULT_TEAM}:{user}"

    def slack_conversation(self, user: str) -> str:
        return f"{self.slack_channel}|{self.slack_dm(user)}|{self.slack_account(user)}"

    def slack_event(self, user: str, text: str) -> dict[str, Any]:
        """A DM ``text`` from ``user``: the Events API payload (sign it with ``post_slack``).

        The person is registered with the fake on first use, so ``users.info`` finds them.
        """
        slack = self._slack_api
        if user not in self._slack_people:
            slack.add_user(user, f"Person {user}")
            self._slack_people.add(user)
        return message_event(
            channel=self.slack_dm(user), user=user, text=text, bot_user_id=self._slack_bot_user
        )

    async def post_slack(
        self,
        client: httpx.AsyncClient,
        worker: Worker,
        event: dict[str, Any],
        *,
        retry_num: int | None = None,
    ) -> int:
        """POST ``event`` signed now, as Slack does (``retry_num`` for a redelivery)."""
        body, headers = signed_event_request(SLACK_SIGNING_SECRET, event, retry_num=retry_num)
        response = await client.post(
            worker.slack_webhook + self.slack_channel, content=body, headers=headers
        )
        return response.status_code

    def slack_replies(self, user: str) -> list[str]:
        return [m.text for m in self._slack_api.posted_messages(self.slack_dm(user))]

    def slack_replies_by_channel(self) -> dict[str, list[str]]:
        """Every Slack message the bot posted, in order, per Slack channel (a DM here)."""
        by_channel: dict[str, list[str]] = {}
        for message in self._slack_api.posted_messages():
            if message.token == self.slack_token:
                by_channel.setdefault(message.channel, []).append(message.text)
        return by_channel

    # -- what the workers left ----------------------------------------------------------

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.db_url)
            self._db.start()
        return self._db

    def seen(self, user: int) -> Any:
        """The ``seen`` list in the user memory of Telegram user ``user``."""
        return self.memory("telegram", str(user), "seen")

    def memory(self, channel_kind: str, external_id: str, key: str) -> Any:
        """``key`` in the user memory of the person with this account (None if unset)."""
        with self.db.read() as conn:
            return conn.execute(
                select(USER_MEMORY.c.value)
                .join(IDENTITIES, IDENTITIES.c.user_id == USER_MEMORY.c.user_id)
                .where(
                    IDENTITIES.c.channel_kind == channel_kind,
                    IDENTITIES.c.external_id == external_id,
                    USER_MEMORY.c.key == key,
                )
            ).scalar_one_or_none()

    def memory_of_all(self, key: str) -> dict[tuple[str, str], Any]:
        """``key`` in user memory per account ``(channel kind, external id)`` that has it."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(IDENTITIES.c.channel_kind, IDENTITIES.c.external_id, USER_MEMORY.c.value)
                .join(IDENTITIES, IDENTITIES.c.user_id == USER_MEMORY.c.user_id)
                .where(USER_MEMORY.c.key == key)
            ).all()
        return {(r.channel_kind, r.external_id): r.value for r in rows}

    def inbox(self, user: int) -> list[tuple[str, str]]:
        """(event id, status) of this channel's events from ``user``, in stored order."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(INBOX.c.event_id, INBOX.c.status)
                .where(INBOX.c.conversation == f"{self.channel}|{user}|{user}")
                .order_by(INBOX.c.seq)
            ).all()
        return [(r.event_id, r.status) for r in rows]

    def inbox_by_conversation(self, channel: str) -> dict[str, list[str]]:
        """The statuses of ``channel``'s stored events, in stored order, per conversation."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(INBOX.c.conversation, INBOX.c.status)
                .where(INBOX.c.channel == channel)
                .order_by(INBOX.c.seq)
            ).all()
        by_conversation: dict[str, list[str]] = {}
        for row in rows:
            by_conversation.setdefault(row.conversation, []).append(row.status)
        return by_conversation

    def outbox_counts(self, channel: str) -> dict[str, int]:
        """How many of ``channel``'s committed replies are in each status (pending, sent)."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(OUTBOX.c.status, func.count())
                .where(OUTBOX.c.channel == channel)
                .group_by(OUTBOX.c.status)
            ).all()
        return {str(status): int(count) for status, count in rows}

    def diagnosis(self, *channels: str) -> str:
        """What a test that failed while workers ran leaves to read: each worker's state and
        the end of its log, and where ``channels``' events and replies stand (a rare hang in
        CI is gone with its temporary folder by the time anyone looks)."""
        parts = []
        for worker in self.workers:
            code = worker.process.poll()
            state = "running" if code is None else f"exited with {code}"
            parts.append(f"--- worker {worker.index}, pid {worker.process.pid}, {state}, log end:")
            parts.append(worker.output()[-3000:])
        for channel in channels:
            statuses = Counter(
                s for row in self.inbox_by_conversation(channel).values() for s in row
            )
            parts.append(
                f"--- {channel}: inbox {dict(statuses)}, outbox {self.outbox_counts(channel)}"
            )
        ended = Counter(e["kind"] for e in self.events())
        parts.append(f"--- bot events: {dict(ended)}")
        sends: dict[tuple[str, str], list[str]] = {}
        for request in self.tg.calls("sendMessage", self.token):
            key = (str(request.params.get("chat_id")), str(request.params.get("text")))
            sends.setdefault(key, []).append(f"{request.time:.3f} from port {request.client_port}")
        for (chat, text), times in sends.items():
            if len(times) > 1:  # each a request the fake read: a retry, or a second sender
                parts.append(f"--- sent {len(times)} times to {chat}: {text!r} at {times}")
        return "\n".join(parts)

    def events(self) -> list[dict[str, Any]]:
        path = self.root / "events.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def wait_events(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Wait until ``done(events)`` holds; AssertionError with the events after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not done(events := self.events()):
            if time.monotonic() > deadline:
                raise AssertionError(f"events never got there: {events}")
            time.sleep(0.02)
        return events

    def wait_event(self, kind: str, text: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event["kind"] == kind and event["text"] == text:
                    return event
            time.sleep(0.02)
        raise AssertionError(f"no {kind} of {text!r}; events: {self.events()}")
