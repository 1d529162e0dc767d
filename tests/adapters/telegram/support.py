"""Helpers that make Telegram channel tests read like chats, against FakeTelegramAPI.

A :class:`Deployment` is what ``mnemobot run`` builds from ``[[channels]]`` (real
``build_channels``, real python-telegram-bot, the fake Bot API over HTTP on 127.0.0.1). A
:class:`Line` is one bot account as a person sees it in their Telegram app:
``await line.says(ana, "hi")`` pushes the message to the fake and returns what the bot
answered once the turn is finished, stored and sent.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import func, make_url, select

from mnemobot.adapters.telegram.channel import TelegramChannel
from mnemobot.runtime.pipeline.runtime import Runtime
from mnemobot.runtime.storage.tables import INBOX, OUTBOX
from tests.conftest import PG_ADMIN_URL
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.support import eventually

SALES = "111111:AAA-sales"
SUPPORT = "222222:BBB-support"
ECHO = "333333:CCC-echo"
SECRET = "s3cret-webhook_Token"


@dataclass(frozen=True)
class Person:
    """A Telegram user: the same id on every bot token."""

    user_id: int
    first_name: str
    last_name: str | None = None
    language_code: str | None = "en"


def inbox_rows(runtime: Runtime, channel: str | None = None) -> list[Any]:
    query = select(INBOX.c.event_id, INBOX.c.status, INBOX.c.channel)
    if channel is not None:
        query = query.where(INBOX.c.channel == channel)
    with runtime.db.read() as conn:
        return list(conn.execute(query).all())


def pending_replies(runtime: Runtime, channel: str) -> int:
    with runtime.db.read() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(OUTBOX)
                .where(OUTBOX.c.channel == channel, OUTBOX.c.status == "pending")
            ).scalar_one()
        )


async def turn_finished(runtime: Runtime, channel: str, event_id: str) -> None:
    """The event's turn is committed and every reply of the channel is sent (or none exist)."""

    def done() -> bool:
        rows = [r for r in inbox_rows(runtime, channel) if r.event_id == event_id]
        if rows and rows[0].status == "received":
            return False
        return pending_replies(runtime, channel) == 0

    await eventually(done, what=f"event {event_id} on {channel} to be answered")


@dataclass
class Line:
    """One bot account (token) of the deployment, as a person sees it."""

    tg: FakeTelegramAPI
    runtime: Runtime
    channel: TelegramChannel
    token: str

    def push(
        self,
        person: Person,
        text: str,
        *,
        chat_id: int | None = None,
        chat_type: str = "private",
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        return self.tg.push_message(
            self.token,
            chat_id if chat_id is not None else person.user_id,
            person.user_id,
            text,
            first_name=person.first_name,
            last_name=person.last_name,
            language_code=person.language_code,
            chat_type=chat_type,
            reply_to_message_id=reply_to,
        )

    async def polled_past(self, update: dict[str, Any]) -> None:
        """The channel confirmed the offset past ``update`` (so it is stored, or ignored)."""
        update_id = update["update_id"]
        await eventually(
            lambda: (self.tg.confirmed_offset(self.token) or 0) > update_id,
            what=f"offset past {update_id}",
        )

    async def settle(self, update: dict[str, Any]) -> None:
        await self.polled_past(update)
        await turn_finished(self.runtime, self.channel.name, str(update["update_id"]))

    async def says(self, person: Person, text: str, **where: Any) -> list[str]:
        """What the bot answered, in order, once the turn is done and its replies sent."""
        chat = where.get("chat_id") or person.user_id
        before = len(self.tg.sent_messages(self.token, chat))
        update = self.push(person, text, **where)
        await self.settle(update)
        return [m.text for m in self.tg.sent_messages(self.token, chat)[before:]]


@dataclass
class Deployment:
    """A runtime and its Telegram channels, built as ``mnemobot run`` builds them."""

    tg: FakeTelegramAPI
    runtime: Runtime
    channels: dict[str, TelegramChannel]
    started: list[TelegramChannel] = field(default_factory=list)

    def channel(self, name: str) -> TelegramChannel:
        return self.channels[name]

    def line(self, name: str) -> Line:
        settings = next(s for s in self.runtime.settings.channels if s.name == name)
        token = os.environ[str(settings.token_env)]
        return Line(self.tg, self.runtime, self.channels[name], token)

    async def start(self) -> None:
        """Like run_deployment: recover what a previous run left, then start intake."""
        for channel in self.channels.values():
            await channel.delivery.recover()
            await channel.start()
            self.started.append(channel)

    async def stop(self) -> None:
        for channel in self.channels.values():
            await channel.stop()


class Outage:
    """Makes the runtime's database really unreachable, and back.

    SQLite: the connections are closed and the file's path turns into a directory, so
    opening it fails. PostgreSQL: the database stops accepting connections and its sessions
    are terminated (the server itself stays up for the rest of the suite).
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.active = False
        self._aside: list[tuple[Path, Path]] = []

    def begin(self) -> None:
        db = self.runtime.db
        name = make_url(db.url).database
        assert name
        if db.is_sqlite:
            db.stop()  # each thread holds a connection open: close them all
            path = Path(name)
            away = path.parent / "away"
            away.mkdir(exist_ok=True)
            for suffix in ("", "-wal", "-shm"):
                source = Path(f"{path}{suffix}")
                if source.exists():
                    target = away / source.name
                    shutil.move(source, target)
                    self._aside.append((target, source))
            path.mkdir()
            db.start()
        else:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
            db.engine.dispose()
        self.active = True

    def end(self) -> None:
        if not self.active:
            return
        db = self.runtime.db
        name = make_url(db.url).database
        assert name
        if db.is_sqlite:
            db.stop()
            Path(name).rmdir()
            for target, source in self._aside:
                shutil.move(target, source)
            self._aside.clear()
            db.start()
        else:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            db.engine.dispose()
        self.active = False
