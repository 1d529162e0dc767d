"""The Telegram channel: one bot account (token) on python-telegram-bot, polling or webhook.

It only converts, in both directions; :class:`~adapters.base.Delivery` stores, runs and sends.
What is Telegram-specific and easy to get wrong lives here:

* **Crash-safe intake.** Polling is our own loop over ``getUpdates`` (PTB's ``Updater``
  confirms the offset before anything is stored): the offset moves past an update only
  after the inbox holds it. The webhook answers 2xx only after the inbox commit and 5xx
  when storing failed, so Telegram delivers again. Redeliveries are deduplicated by the
  inbox on ``(channel, update_id)``.
* **Who is talking, and to whom.** The person is the Telegram user id, the same person for
  every bot token of the deployment. In groups the bot answers only when addressed (its
  @username, a reply to one of its messages, a ``/command``); messages of bots are ignored.
* **Sending.** Plain text (no ``parse_mode``), so a person's ``*_[`` can never break a
  message; split at 4096 characters; paced under Telegram's flood limits; a 429 waits for
  that chat only; transient network errors are retried, then the reply stays pending.

The pacing lives in :mod:`adapters.telegram_pacing` and the Update → InboundMessage
conversion in :mod:`adapters.telegram_updates`; this module holds the channel itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import warnings
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import Bot, Update, User
from telegram.error import (
    BadRequest,
    ChatMigrated,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest

from mnemobot.adapters.channel import token_from_env
from mnemobot.adapters.settings import read_settings
from mnemobot.adapters.telegram.pacing import Pacer, Pacing
from mnemobot.adapters.telegram.settings import TelegramSettings
from mnemobot.adapters.telegram.updates import to_inbound
from mnemobot.adapters.text import split_text
from mnemobot.runtime import ChannelSettings, Delivery, InboundMessage, OutboundMessage, Runtime
from mnemobot.runtime.errors import ChannelError, ConfigError, RateLimited, StorageError

__all__ = [
    "MAX_MESSAGE_CHARS",
    "TelegramChannel",
]

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 4096
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message",)  # edits, reactions, channel posts: not asked for at all
MAX_WEBHOOK_BODY = 1_000_000
MAX_RETRY_DELAY = 30.0
_TOKEN_LOGGERS = ("httpx", "telegram.Bot")
_SECRET_CHARS = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _retry_seconds(exc: RetryAfter) -> float:
    """``retry_after`` in seconds, whether PTB gives an int or (PTB_TIMEDELTA) a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB's int-to-timedelta deprecation notice
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _chat_ref(chat_id: str) -> int | str:
    return int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id


class _RedactToken(logging.Filter):
    """httpx logs every request URL at INFO, and Bot API URLs carry the token."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the handler's problem, not the caller's
            return True
        if self._token in message:
            record.msg, record.args = message.replace(self._token, "<token>"), ()
        return True


# -- the channel --------------------------------------------------------------------------


class TelegramChannel:
    """One Telegram bot account, bound to its entry bot; holds a :class:`telegram.Bot`.

    Build it with :meth:`from_settings` (what ``mnemobot run`` does). The constructor only
    builds objects: the network is first used by :meth:`start` (or a send during recovery).

    Args:
        runtime: the runtime that stores and handles the messages.
        name: the channel instance's unique name; the webhook path is
            ``/webhooks/telegram/<name>``.
        token: the bot token (never logged).
        mode: ``"polling"`` or ``"webhook"``.
        base_url: the Bot API root, ``.../bot`` (a local Bot API server or a test fake).
        webhook_secret: required in webhook mode; checked on every webhook request.
        webhook_url: in webhook mode, registered with ``setWebhook`` at start when given.
        poll_timeout: seconds a ``getUpdates`` long poll may wait.
        retry_delay: first pause after a failure (polling, storage, network), doubling.
        pacing: flood limits for sending.
        send_retries: retries of a send after transient network errors.
        rate_limit_retries: 429 answers tolerated for one message before giving up.
    """

    kind = "telegram"

    def __init__(
        self,
        runtime: Runtime,
        *,
        name: str,
        token: str,
        mode: str = "polling",
        base_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_url: str | None = None,
        poll_timeout: float = 30.0,
        retry_delay: float = 1.0,
        pacing: Pacing | None = None,
        send_retries: int = 3,
        rate_limit_retries: int = 5,
    ) -> None:
        if mode not in ("polling", "webhook"):
            raise ConfigError(f"channel {name!r}: mode must be polling or webhook, not {mode!r}")
        if mode == "webhook" and not webhook_secret:
            raise ConfigError(f"channel {name!r}: webhook mode needs webhook_secret_env")
        if webhook_secret is not None and not _SECRET_CHARS.fullmatch(webhook_secret):
            raise ConfigError(
                f"channel {name!r}: the webhook secret must be 1-256 characters A-Z, a-z, 0-9, _ -"
            )
        self.name = name
        self.mode = mode
        self.runtime = runtime
        self.delivery = Delivery(runtime.delivery_services, self)
        self._token = token
        self._secret = webhook_secret
        self._webhook_url = webhook_url
        self._poll_timeout = poll_timeout
        self._retry_delay = retry_delay
        self._send_retries = send_retries
        self._rate_limit_retries = rate_limit_retries
        self.pacer = Pacer(pacing)
        self._base_url = base_url or "https://api.telegram.org/bot"
        self._bot: Bot | None = None
        self._redaction = _RedactToken(token)
        self._me: User | None = None
        self._ready_lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._long_poll: asyncio.Task[tuple[Update, ...]] | None = None
        token_hash = hashlib.sha256(token.encode()).hexdigest()
        self._polling_role = runtime.deployment_lock(f"telegram-polling:{token_hash}")

    @classmethod
    def from_settings(cls, settings: ChannelSettings, runtime: Runtime) -> TelegramChannel:
        """Build from a ``[[channels]]`` entry; ConfigError names what is missing or wrong."""
        typed = read_settings(TelegramSettings, settings)
        secret = token_from_env(settings, "webhook_secret_env") if typed.mode == "webhook" else None
        try:
            pacing = Pacing(**typed.pacing.model_dump(exclude_none=True))
        except ValueError as exc:
            raise ConfigError(f"channel {settings.name!r}: pacing: {exc}") from None
        return cls(
            runtime,
            name=settings.name,
            token=token_from_env(settings),
            mode=typed.mode,
            base_url=typed.base_url,
            webhook_secret=secret,
            webhook_url=typed.webhook_url,
            poll_timeout=typed.poll_timeout,
            retry_delay=typed.retry_delay,
            pacing=pacing,
        )

    @property
    def bot(self) -> Bot:
        """The python-telegram-bot client this channel holds (built on first use).

        PTB logs its API URL, token included, when a Bot is built, and httpx logs every
        request URL: the token is masked on those loggers first, until :meth:`stop`.
        """
        if self._bot is None:
            for name in _TOKEN_LOGGERS:
                logging.getLogger(name).addFilter(self._redaction)
            self._bot = Bot(
                self._token,
                base_url=self._base_url,
                request=HTTPXRequest(connection_pool_size=16),
                get_updates_request=HTTPXRequest(connection_pool_size=1),
            )
        return self._bot

    # -- lifecycle ------------------------------------------------------------------------

    async def _ready(self) -> User:
        """Who this bot is (``getMe``), asked once; also opens the HTTP client."""
        async with self._ready_lock:
            if self._me is None:
                try:
                    await self.bot.initialize()
                except InvalidToken as exc:
                    raise ConfigError(
                        f"channel {self.name!r}: Telegram refused the token; check its variable"
                    ) from exc
                self._me = self.bot.bot
            return self._me

    async def start(self) -> None:
        """Polling: drop any webhook (it makes getUpdates fail with 409), then poll in a task.

        Webhook: register ``webhook_url`` with the secret, when configured.

        Raises ConfigError when another process already polls this token: ``getUpdates``
        has one consumer, and two would take each other's updates (and 409 each other).
        """
        if self.mode == "polling" and await self._take_polling_role() is False:
            raise ConfigError(self._polled_elsewhere())
        try:
            await self._start()
        except BaseException:
            await self._polling_role.release()
            raise

    def _polled_elsewhere(self) -> str:
        return (
            f"channel {self.name!r}: another mnemobot process is already polling this "
            "Telegram bot token; a token has one poller. Run this channel in one process "
            'only, or use mode = "webhook" to spread it over several workers'
        )

    async def _take_polling_role(self) -> bool | None:
        """True: this process polls; False: another does; None: unknown (database down).

        With the database down nothing can be stored either, so polling goes on (the offset
        stays) and the role is taken before the first update is stored.
        """
        if self._polling_role.held:
            return True
        try:
            return await self._polling_role.acquire()
        except StorageError as exc:
            logger.warning("%s: cannot check for another poller yet (%s)", self.name, exc)
            return None

    async def _start(self) -> None:
        me = await self._ready()
        self._stop.clear()
        if self.mode == "webhook":
            if self._webhook_url:
                await self.bot.set_webhook(
                    self._webhook_url, secret_token=self._secret, allowed_updates=ALLOWED_UPDATES
                )
            logger.info("telegram @%s (%s) takes webhooks", me.username, self.name)
            return
        await self.bot.delete_webhook(drop_pending_updates=False)
        self._poller = asyncio.create_task(self._poll(), name=f"poll:{self.name}")
        logger.info("telegram @%s (%s) is polling", me.username, self.name)

    async def stop(self) -> None:
        """Stop intake at once (the long poll is cancelled), finish turns taken, close HTTP."""
        self._stop.set()
        if self._long_poll is not None:
            self._long_poll.cancel()
        if self._poller is not None:
            await self._poller
            self._poller = None
        await self.delivery.drain()
        await self._polling_role.release()
        bot, self._bot, self._me = self._bot, None, None
        if bot is not None:
            await bot.shutdown()
            for name in _TOKEN_LOGGERS:
                logging.getLogger(name).removeFilter(self._redaction)

    # -- intake ---------------------------------------------------------------------------

    async def convert(
        self, update: Update, payload: dict[str, Any] | None = None
    ) -> InboundMessage | None:
        """``update`` as an InboundMessage of this channel, or None if it is not for the bot."""
        return to_inbound(update, channel=self.name, me=await self._ready(), payload=payload)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the channel stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _poll(self) -> None:
        """getUpdates in a loop; the offset passes an update only once the inbox holds it."""
        offset: int | None = None
        confirmed: int | None = None
        delay = self._retry_delay
        while not self._stop.is_set():
            if await self._take_polling_role() is False:
                logger.error("%s; this process stops polling", self._polled_elsewhere())
                break
            self._long_poll = asyncio.create_task(
                self.bot.get_updates(
                    offset=offset,
                    timeout=timedelta(seconds=self._poll_timeout),
                    allowed_updates=ALLOWED_UPDATES,
                )
            )
            try:
                updates = await self._long_poll
            except asyncio.CancelledError:
                if self._stop.is_set() and not _current_cancelling():
                    break
                raise
            except Exception as exc:
                # 409 (a webhook or another poller), 401, network trouble: wait, try again.
                logger.warning(
                    "getUpdates failed on %s: %s; retrying in %.1fs",
                    self.name,
                    exc,
                    delay,
                    exc_info=not isinstance(exc, TelegramError),
                )
                await self._pause(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
                continue
            finally:
                self._long_poll = None
            confirmed = offset
            if updates and not self._polling_role.held:  # the database is still down
                await self._pause(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
                continue
            for update in updates:
                if self._stop.is_set():
                    break
                try:
                    msg = await self.convert(update)
                    if msg is not None:
                        await self.delivery.receive(msg)
                except StorageError as exc:
                    logger.warning(
                        "update %s on %s not stored (%s); fetching it again in %.1fs",
                        update.update_id,
                        self.name,
                        exc,
                        delay,
                    )
                    await self._pause(delay)
                    delay = min(delay * 2, MAX_RETRY_DELAY)
                    break
                except Exception:
                    # Not transient: retrying would block every later update behind it.
                    logger.exception("update %s on %s skipped", update.update_id, self.name)
                offset = update.update_id + 1
            else:
                delay = self._retry_delay
        if offset is not None and offset != confirmed:
            await self._confirm(offset)

    async def _confirm(self, offset: int) -> None:
        """Tell Telegram what is stored, so a restart does not fetch it again (a nicety)."""
        try:
            await self.bot.get_updates(offset=offset, timeout=0, limit=1)
        except TelegramError as exc:
            logger.info("offset of %s not confirmed at stop (%s); inbox dedupes", self.name, exc)

    def routes(self) -> list[BaseRoute]:
        """``POST /webhooks/telegram/<name>`` in webhook mode; nothing when polling."""
        if self.mode != "webhook":
            return []
        return [Route(f"/webhooks/telegram/{self.name}", self._webhook, methods=["POST"])]

    async def _webhook(self, request: Request) -> Response:
        """403 without the secret, 400 for malformed JSON, 200 only once stored, 500 if not.

        While the channel stops, 503: Telegram keeps the update and delivers it again.
        """
        assert self._secret is not None
        if self._stop.is_set():
            return JSONResponse({"ok": False, "error": "stopping"}, status_code=503)
        given = request.headers.get(SECRET_HEADER, "").encode("latin-1")
        if not hmac.compare_digest(given, self._secret.encode()):
            return JSONResponse({"ok": False, "error": "forbidden"}, status_code=403)
        body = await request.body()
        if len(body) > MAX_WEBHOOK_BODY:
            return JSONResponse({"ok": False, "error": "too large"}, status_code=413)
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an Update")
            update = Update.de_json(data, self.bot)
        except Exception:  # any shape PTB cannot read: Telegram never sends it
            return JSONResponse({"ok": False, "error": "malformed update"}, status_code=400)
        try:
            msg = await self.convert(update, payload=data)
            if msg is not None:
                await self.delivery.receive(msg)
        except StorageError as exc:
            logger.warning("update %s on %s not stored: %s", update.update_id, self.name, exc)
            return JSONResponse({"ok": False, "error": "not stored"}, status_code=500)
        except Exception:
            logger.exception("update %s on %s failed before storing", update.update_id, self.name)
            return JSONResponse({"ok": False, "error": "not stored"}, status_code=500)
        return JSONResponse({"ok": True})

    # -- sending --------------------------------------------------------------------------

    async def send(self, reply: OutboundMessage) -> None:
        """Send ``reply`` as plain text, in parts of at most 4096 characters, in order.

        Raises ChannelError when Telegram refused it or kept failing (RateLimited when it
        kept answering 429); the reply then stays pending. A timeout after Telegram took a
        part may send that part twice: the Bot API has no idempotency key.
        """
        await self._ready()
        chat: int | str = _chat_ref(reply.chat_id)
        async with self.pacer.chat(reply.chat_id):
            for part in split_text(reply.text, MAX_MESSAGE_CHARS):
                chat = await self._send_part(reply, chat, part)

    async def _send_part(self, reply: OutboundMessage, chat: int | str, text: str) -> int | str:
        rate_limited = failures = 0
        while True:
            await self.pacer.wait(reply.chat_id)
            try:
                await self.bot.send_message(chat_id=chat, text=text)
                return chat
            except RetryAfter as exc:
                rate_limited += 1
                if rate_limited > self._rate_limit_retries:
                    raise RateLimited(
                        f"reply {reply.id}: still rate limited", _retry_seconds(exc)
                    ) from exc
                seconds = _retry_seconds(exc)
                logger.warning(
                    "429 from Telegram for chat %s on %s: waiting %.0fs (this chat only)",
                    reply.chat_id,
                    self.name,
                    seconds,
                )
                await asyncio.sleep(seconds)
            except ChatMigrated as exc:
                logger.info("chat %s on %s is now %s", chat, self.name, exc.new_chat_id)
                chat = exc.new_chat_id
            except BadRequest as exc:  # a NetworkError subclass, but never worth retrying
                raise ChannelError(f"reply {reply.id} refused: {exc.message}") from exc
            except NetworkError as exc:
                failures += 1
                if failures > self._send_retries:
                    raise ChannelError(
                        f"reply {reply.id}: {failures} attempts failed ({exc.message})"
                    ) from exc
                # Telegram may have taken the part before the error (a timeout while reading
                # its answer): the retry then shows the person the part twice. Said, so a
                # duplicate a person reports can be found in the log.
                logger.warning(
                    "sending reply %s on %s failed (%s); retrying, which may send it twice",
                    reply.id,
                    self.name,
                    exc.message,
                )
                await asyncio.sleep(self._retry_delay * 2 ** (failures - 1))
            except TelegramError as exc:  # blocked by the user, chat gone, bad token
                raise ChannelError(f"reply {reply.id} refused: {exc.message}") from exc


def _current_cancelling() -> int:
    """How many cancellations of the running task are pending (0: only the long poll was)."""
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0
