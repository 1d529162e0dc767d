"""The Slack channel: Events API over HTTP (or Socket Mode) in, ``chat.postMessage`` out.

Shaped like slack-bolt's own starlette adapter: a request becomes an ``AsyncBoltRequest``,
``AsyncApp.async_dispatch`` verifies and routes it, the ``BoltResponse`` goes back to Slack.
The channel *holds* an ``AsyncApp`` and an ``AsyncWebClient``; it is neither.

Why it is built the way it is:

* **Ack within 3 seconds, lose nothing.** Bolt runs with ``process_before_response=True``:
  the listener stores the event in the inbox (``Delivery.accept``), then acks, then the turn
  runs in a background task. If storing fails the listener raises and Bolt answers 500, so
  Slack delivers again. The LLM's time never delays the ack.
* **Redeliveries through the inbox.** Slack retries with ``X-Slack-Retry-Num`` and the same
  ``event_id``; Bolt does not dedupe. The envelope's ``event_id`` is the inbox key, so a retry
  of a handled event is acked and dropped, and a retry of a first attempt that crashed after
  (or before) storing is answered exactly once. Retries are never ignored by header.
* **No auth.test per event.** ``authorize=`` hands Bolt an ``AuthorizeResult`` built from one
  ``auth.test`` in :meth:`SlackChannel.start`; Bolt's self-event filter uses it too.
* **No reply loops.** Our own messages, other bots' messages, edits, deletions and other
  subtypes are acked and dropped (:data:`~adapters.slack_events.IGNORE_RULES`, one small
  rule each).
* **A conversation is channel + thread (or DM) + person.** ``chat_id`` is the channel for a
  top-level DM and ``"<channel>:<thread_ts>"`` in a thread. A top-level ``app_mention`` is
  answered in a thread rooted at the mention (its ``ts``), so the exchange does not flood the
  channel and a follow-up mention in that thread continues the same session. Two threads are
  two sessions; two people in one thread are two sessions (the person is part of the key).
* **Profiles after the ack.** Display name, locale and (with ``users:read.email``) e-mail
  come from ``users.info``, cached per user, fetched in the background step before the turn
  (also for events recovered after a restart); a failed lookup only loses the name.
* **Sending.** Replies are split in order (~4000 characters), ``& < >`` escaped so text
  cannot become a mention or a link, posted in the right thread, one reply at a time per
  Slack channel; a 429 is retried after its ``Retry-After`` for that Slack channel only.

Socket Mode (``mode = "socket"``) reuses all of the above through slack-bolt's aiohttp
``AsyncSocketModeHandler``: only the transport differs (no signature; the ack is the
envelope reply, which Bolt sends only for a 200).

The conversion of events and slash commands (``chat_id``, what was typed, escaping) and the
ignore rules live in :mod:`adapters.slack_events`, the ``users.info`` lookup and its cache in
:mod:`adapters.slack_profiles`, and posting replies in :mod:`adapters.slack_sending`; this
module holds the channel itself: its lifecycle, its identity and Bolt's listeners.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mnemobot.adapters.bodies import MAX_WEBHOOK_BODY, read_limited
from mnemobot.adapters.channel import token_from_env
from mnemobot.adapters.settings import read_settings
from mnemobot.adapters.slack.events import body_problem, command_to_inbound, to_inbound
from mnemobot.adapters.slack.profiles import SlackProfiles
from mnemobot.adapters.slack.sending import SlackSender
from mnemobot.adapters.slack.settings import DEFAULT_API_URL, SLACK_TEXT_LIMIT, SlackSettings
from mnemobot.runtime import (
    ChannelSettings,
    Delivery,
    DeliveryServices,
    InboundMessage,
    OutboundMessage,
    Runtime,
)
from mnemobot.runtime.conversations import InboxEntry
from mnemobot.runtime.errors import ChannelError, ConfigError, StorageError

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

__all__ = ["DEFAULT_API_URL", "SLACK_TEXT_LIMIT", "SlackChannel"]

logger = logging.getLogger(__name__)

RUNTIME_COMMANDS = ("/link", "/end", "/forget")  # answered as if typed in the conversation


# -- small parts ------------------------------------------------------------------------------


class _SlackDelivery(Delivery):
    """The shared delivery loop, with the person's Slack profile looked up before each turn.

    The lookup runs after the ack (never delaying it) and for events recovered at start.
    """

    def __init__(
        self, services: DeliveryServices, channel: SlackChannel, profiles: SlackProfiles
    ) -> None:
        super().__init__(services, channel)
        self._profiles = profiles

    async def process(self, msg: InboundMessage, stored: InboxEntry | None = None) -> None:
        await super().process(await self._profiles.with_profile(msg), stored)


# -- the channel ------------------------------------------------------------------------------


@dataclass
class _Secrets:
    bot_token: str = field(repr=False)
    signing_secret: str | None = field(repr=False, default=None)
    app_token: str | None = field(repr=False, default=None)


class SlackChannel:
    """One Slack app (bot token) bound to one entry bot.

    Args:
        runtime: the started runtime; the channel must be bound to a bot on it.
        name: the channel instance's unique name (it names the webhook path).
        bot_token: the ``xoxb-`` token (never logged).
        signing_secret: verifies Events API requests (HTTP mode; never logged).
        app_token: the ``xapp-`` token (Socket Mode only; never logged).
        mode: ``"http"`` (Events API at ``POST /webhooks/slack/<name>``) or ``"socket"``.
        api_url: the Web API base; a trailing slash is added when missing (slack_sdk appends
            method names to it).
        max_chars: longest message part posted.
        profile_ttl: seconds a ``users.info`` answer is reused.
        send_attempts: tries per message part when Slack answers 429.
    """

    kind = "slack"

    def __init__(
        self,
        runtime: Runtime,
        *,
        name: str,
        bot_token: str,
        signing_secret: str | None = None,
        app_token: str | None = None,
        mode: str = "http",
        api_url: str = DEFAULT_API_URL,
        max_chars: int = SLACK_TEXT_LIMIT,
        profile_ttl: float = 3600.0,
        send_attempts: int = 5,
    ) -> None:
        if mode not in ("http", "socket"):
            raise ConfigError(f"channel {name!r}: mode must be 'http' or 'socket', not {mode!r}")
        if mode == "http" and not signing_secret:
            raise ConfigError(f"channel {name!r}: HTTP mode needs a signing secret")
        if mode == "socket" and not app_token:
            raise ConfigError(f"channel {name!r}: Socket Mode needs an app token (xapp-...)")
        self.name = name
        self.mode = mode
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.path = f"/webhooks/slack/{name}"
        self._secrets = _Secrets(bot_token, signing_secret, app_token)
        self.client = AsyncWebClient(token=bot_token, base_url=self.api_url)
        self.app = AsyncApp(
            # Bolt's own client carries no token: `authorize` supplies it per request.
            client=AsyncWebClient(base_url=self.api_url),
            signing_secret=signing_secret or "",
            authorize=self._make_authorize(),
            process_before_response=True,  # store before the ack, not after
            request_verification_enabled=mode == "http",
            logger=logging.getLogger(f"{__name__}.bolt"),
        )
        self.app.event("message")(self._on_event)
        self.app.event("app_mention")(self._on_event)
        self.app.event(re.compile(".*"))(self._ack_only)  # any other subscribed event: no 404
        self.app.command(re.compile("^(" + "|".join(RUNTIME_COMMANDS) + ")$"))(self._on_command)
        self.app.error(self._on_error)
        self.profiles = SlackProfiles(self.client, name=name, ttl=profile_ttl)
        self.delivery: Delivery = _SlackDelivery(runtime.delivery_services, self, self.profiles)
        self._me: AuthorizeResult | None = None
        self._me_lock = asyncio.Lock()
        self.sender = SlackSender(
            self.client, name=name, max_chars=max_chars, attempts=send_attempts
        )
        self._socket: AsyncSocketModeHandler | None = None

    @classmethod
    def from_settings(cls, settings: ChannelSettings, runtime: Runtime) -> SlackChannel:
        """Build from a ``[[channels]]`` entry; secrets come from the named env variables.

        Fields: ``mode`` (http|socket), ``token_env``, ``signing_secret_env`` (http),
        ``app_token_env`` (socket), optional ``api_url``, ``max_chars``,
        ``profile_cache_seconds``, ``send_attempts``.
        """
        typed = read_settings(SlackSettings, settings)
        http = typed.mode == "http"
        return cls(
            runtime,
            name=settings.name,
            bot_token=token_from_env(settings, "token_env"),
            signing_secret=token_from_env(settings, "signing_secret_env") if http else None,
            app_token=None if http else token_from_env(settings, "app_token_env"),
            mode=typed.mode,
            api_url=typed.api_url,
            max_chars=typed.max_chars,
            profile_ttl=typed.profile_cache_seconds,
            send_attempts=typed.send_attempts,
        )

    def __repr__(self) -> str:
        return f"SlackChannel(name={self.name!r}, mode={self.mode!r}, api_url={self.api_url!r})"

    # -- lifecycle ------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """``POST /webhooks/slack/<name>`` in HTTP mode; nothing in Socket Mode."""
        if self.mode != "http":
            return []
        handler = AsyncSlackRequestHandler(self.app)

        async def events(request: Request) -> Response:
            # Refused before Bolt, which would answer 500 (and Slack retry) for these.
            body = await read_limited(request, MAX_WEBHOOK_BODY)
            if body is None:
                return JSONResponse({"ok": False, "error": "too large"}, status_code=413)
            problem = body_problem(body, request.headers.get("content-type"))
            if problem is not None:
                return JSONResponse({"ok": False, "error": problem}, status_code=400)
            return await handler.handle(request)

        return [Route(self.path, events, methods=["POST"], name=f"slack:{self.name}")]

    async def start(self) -> None:
        """Learn who we are (one ``auth.test``), then connect Socket Mode if configured.

        Raises ConfigError when Slack refuses a token, so ``mnemobot run`` stops with one line.
        """
        if self.client.session is None or self.client.session.closed:
            # One connection pool for the channel's life: without it, slack_sdk opens (and
            # closes) an aiohttp session, and a new connection, for every Web API call.
            timeout = aiohttp.ClientTimeout(total=self.client.timeout)
            self.client.session = aiohttp.ClientSession(timeout=timeout)
        try:
            me = await self._identity()
        except BaseException:
            await self._close_session()
            raise
        logger.info(
            "slack channel %s: bot user %s (%s) in team %s, %s mode",
            self.name,
            me.bot_user_id,
            me.bot_id,
            me.team_id,
            self.mode,
        )
        if self.mode == "socket":
            await self._connect_socket()

    async def stop(self) -> None:
        """Close the Socket Mode connection (HTTP intake stops with the server), let the turns
        already taken send their replies, then close the Web API connections."""
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close_async()  # type: ignore[no-untyped-call]
        # Turns taken before the stop still send their replies over this session; closed
        # under them, each reply would fail ("Session is closed") and wait for a restart.
        await self.delivery.drain()
        await self._close_session()

    async def _close_session(self) -> None:
        session = self.client.session
        if session is not None and not session.closed:
            await session.close()

    async def _connect_socket(self) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        web = AsyncWebClient(base_url=self.api_url)
        try:  # fail fast on a bad app token: the SDK's connect() would retry forever
            opened = await web.apps_connections_open(app_token=self._secrets.app_token or "")
        except SlackApiError as exc:
            raise ConfigError(
                f"channel {self.name!r}: Slack refused the app token for Socket Mode "
                f"({exc.response.get('error')}); check app_token_env and connections:write"
            ) from exc
        handler = AsyncSocketModeHandler(self.app, self._secrets.app_token, web_client=web)
        handler.client.wss_uri = opened["url"]
        self._socket = handler
        await handler.connect_async()  # type: ignore[no-untyped-call]

    async def _identity(self) -> AuthorizeResult:
        """The bot's own ids, from one ``auth.test``; later calls reuse it."""
        if self._me is not None:
            return self._me
        async with self._me_lock:
            if self._me is None:
                try:
                    auth = await self.client.auth_test()
                except SlackApiError as exc:
                    raise ConfigError(
                        f"channel {self.name!r}: Slack refused the bot token "
                        f"({exc.response.get('error')}); check token_env"
                    ) from exc
                except (SlackClientError, aiohttp.ClientError, OSError) as exc:
                    raise ChannelError(
                        f"channel {self.name!r}: cannot reach Slack at {self.api_url} "
                        f"({type(exc).__name__})"
                    ) from exc
                headers = {str(k).lower(): v for k, v in (auth.headers or {}).items()}
                scopes = str(headers.get("x-oauth-scopes", ""))
                if "users:read.email" not in scopes.split(","):
                    logger.info(
                        "slack channel %s: no users:read.email scope, no e-mails", self.name
                    )
                self._me = AuthorizeResult(
                    enterprise_id=auth.get("enterprise_id"),
                    team_id=auth.get("team_id"),
                    bot_user_id=auth.get("user_id"),
                    bot_id=auth.get("bot_id"),
                    bot_token=self._secrets.bot_token,
                    bot_scopes=scopes or None,
                )
        return self._me

    def _make_authorize(self) -> Callable[..., Any]:
        # A plain function: Bolt passes arguments by the names in its signature.
        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            try:
                return await self._identity()
            except ConfigError as exc:  # must not be a SlackApiError: Bolt would answer 200
                raise ChannelError(str(exc)) from exc

        return authorize

    # -- intake ---------------------------------------------------------------------------

    async def _on_event(self, body: dict[str, Any], ack: AsyncAck) -> None:
        """Store, then ack; a failure to store raises, so Bolt answers 500 and Slack retries."""
        msg = self.inbound(body)
        if msg is None:
            await ack()
            return
        stored = await self.delivery.accept(msg)
        await ack()
        if stored is not None:
            self.delivery.process_later(msg, stored)
        else:
            logger.info("slack event %s on %s was handled before", msg.event_id, self.name)

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        """Bolt answers 500 (Slack delivers again); say why in one line, a trace for bugs."""
        event_id = body.get("event_id") or body.get("trigger_id")
        if isinstance(error, StorageError):
            logger.error(
                "slack %s: event %s not stored (%s); answered 500 so Slack delivers it again",
                self.name,
                event_id,
                error,
            )
        else:
            logger.error(
                "slack %s: event %s failed; answered 500", self.name, event_id, exc_info=error
            )

    async def _ack_only(self, ack: AsyncAck) -> None:
        await ack()

    async def _on_command(self, body: dict[str, Any], ack: AsyncAck) -> None:
        """``/link``, ``/end``, ``/forget`` registered as Slack slash commands.

        Slack's client does not send a message starting with ``/`` as text, so an app that
        registers these commands gets them here; the answer is posted where they were typed.
        """
        msg = command_to_inbound(body, channel=self.name, me=self._me)
        if msg is None:
            await ack()
            return
        stored = await self.delivery.accept(msg)
        await ack()
        if stored is not None:
            self.delivery.process_later(msg, stored)

    def inbound(self, body: dict[str, Any]) -> InboundMessage | None:
        """The neutral message for an ``event_callback`` body, or None when it is ignored."""
        msg = to_inbound(body, channel=self.name, me=self._me)
        if isinstance(msg, str):
            logger.debug("slack %s: ignored %s (%s)", self.name, body.get("event_id"), msg)
            return None
        return msg

    # -- sending --------------------------------------------------------------------------

    async def send(self, reply: OutboundMessage) -> None:
        """Post ``reply`` (see :meth:`SlackSender.send`); a ChannelError leaves it pending."""
        await self.sender.send(reply)
