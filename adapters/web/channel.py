"""The web chat channel (``kind = "web"``): talk to any bot from a browser at ``/chat/``.

Why it is built the way it is:

* **One channel instance per bot, like the console.** A ``[[channels]]`` entry named ``web``
  exposes several bots; each is bound on the runtime as a channel instance of its own,
  ``web:<bot>`` (as ``mnemobot chat --bot`` binds ``console:<bot>``). The conversation is
  therefore (bot, visitor), each bot keeps its own session, and the entry bot of a new
  session is simply the bot the person picked. :class:`_WebDelivery` recovers all of them.
* **The person is a signed cookie.** ``mnemobot_visitor`` holds a random visitor id and an
  HMAC-SHA256 of it under a server secret (``cookie_secret_env``). A missing, unsigned or
  tampered cookie is never trusted: the browser gets a fresh visitor id. The account is
  ``("web", visitor id)``; a returning browser is the same person and can ``/link`` its web
  account to Telegram or Slack like any other channel (the runtime answers ``/link``).
* **Store, then answer.** ``POST /chat/api/<bot>/messages`` stores the message in the inbox
  (``Delivery.accept``), answers 202, and the turn runs in the background. The browser
  names each message with its own id, so a retried POST is handled once.
* **Replies go to a live stream, or wait in the outbox.** The page holds a Server-Sent
  Events stream (``GET /chat/api/<bot>/events``). :meth:`WebChannel.send` hands a reply to
  every stream the visitor has open for that bot and returns once one of them has written
  it to its connection; only then does ``Delivery`` mark it sent. With no stream open (the
  tab was closed, or is reconnecting) the reply is left pending in the outbox (its send
  claim given back), and the next stream that opens for that chat sends the pending
  replies first and marks them sent. An open stream also looks in the outbox every
  ``poll`` seconds, so a reply committed by another worker process (whose ``send`` found
  no page there) still arrives. A reply may so reach a page twice (pushed and fetched in
  one instant); every event carries the reply id and the page drops ids it has shown.

The visitor cookie lives in :mod:`adapters.web_cookies`, the checks on a posted message in
:mod:`adapters.web_requests`, the SSE framing and a page's queue in :mod:`adapters.web_sse`,
and the static folder and the inspector's page in :mod:`adapters.web_pages`; this module
holds the channel itself: its routes, the open pages, and sending.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator, Sequence

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mnemobot.adapters.settings import read_settings
from mnemobot.adapters.web.cookies import COOKIE_MAX_AGE, COOKIE_NAME, VisitorCookies
from mnemobot.adapters.web.limits import RateLimiter, WebLimits
from mnemobot.adapters.web.pages import STATIC_DIR, redirect_to
from mnemobot.adapters.web.requests import (
    client_address,
    error,
    language,
    read_message,
    too_many,
)
from mnemobot.adapters.web.settings import WebSettings
from mnemobot.adapters.web.sse import Stream, reply_event, sse
from mnemobot.runtime import (
    ChannelSettings,
    Delivery,
    DeliveryServices,
    InboundMessage,
    OpenSession,
    OutboundMessage,
    Runtime,
)
from mnemobot.runtime.errors import ChannelError, ConfigError

__all__ = ["WebChannel"]

logger = logging.getLogger(__name__)


class _WebDelivery(Delivery):
    """The shared delivery loop, recovering every ``web:<bot>`` instance of the channel.

    Replies left pending are not pushed at start (no page is open yet): the next page that
    opens for that chat fetches them.
    """

    def __init__(self, services: DeliveryServices, channel: WebChannel) -> None:
        super().__init__(services, channel)
        self._web = channel

    async def send_all(self, replies: list[OutboundMessage]) -> None:
        """Send to open pages; a reply for a visitor with no page open just waits (no error)."""
        waiting = [r for r in replies if not self._web.has_page(r.channel, r.chat_id)]
        if waiting:  # unclaimed, pending: the next page of that visitor fetches them
            logger.debug("web %s: %d replies wait for their page", self._web.name, len(waiting))
            await self.leave_pending(waiting)
        await super().send_all([r for r in replies if self._web.has_page(r.channel, r.chat_id)])

    async def recover(self) -> None:
        self._web.bind()
        for instance in self._web.instances.values():
            await self.answer_unfinished(instance)


# -- the channel ------------------------------------------------------------------------------


class WebChannel:
    """The browser chat: a page at ``/chat/``, a JSON + SSE API under ``/chat/api/``.

    Args:
        runtime: the started runtime.
        name: the channel's unique name; each exposed bot becomes instance ``<name>:<bot>``.
        bots: the bots a visitor may pick (the first is preselected).
        cookie_secret: signs visitor cookies; keep it stable or every browser becomes a
            new person at the next start.
        send_timeout: seconds :meth:`send` waits for an open page to write a reply.
        keepalive: seconds between SSE comments that keep proxies from closing a quiet stream.
        poll: seconds between looks in the outbox for this page's unsent replies (those made
            by another worker process, or while no page was open).
        max_chars: the longest message accepted (default: ``[messages] max_chars``).
        limits: messages and event streams allowed per visitor and per address
            (:class:`~mnemobot.adapters.web.limits.WebLimits`; defaults when None).
    """

    kind = "web"

    def __init__(
        self,
        runtime: Runtime,
        *,
        name: str,
        bots: Sequence[str],
        cookie_secret: bytes,
        send_timeout: float = 5.0,
        keepalive: float = 15.0,
        poll: float = 3.0,
        max_chars: int | None = None,
        limits: WebLimits | None = None,
    ) -> None:
        if not bots:
            raise ConfigError(f"channel {name!r}: no bots to offer in the web chat")
        for bot in bots:
            runtime.bots.get(bot)
        self.runtime = runtime
        self.name = name
        self.bots = list(dict.fromkeys(bots))
        self.instances = {bot: f"{name}:{bot}" for bot in self.bots}
        self.cookies = VisitorCookies(cookie_secret)
        self.send_timeout = send_timeout
        self.keepalive = keepalive
        self.poll = poll
        self.max_chars = max_chars or runtime.settings.messages.max_chars
        self.delivery: Delivery = _WebDelivery(runtime.delivery_services, self)
        self._streams: dict[tuple[str, str], set[Stream]] = {}
        self._closing = asyncio.Event()
        self.limiter = RateLimiter(limits or WebLimits(), runtime.clock)

    @classmethod
    def from_settings(cls, settings: ChannelSettings, runtime: Runtime) -> WebChannel:
        """Build from a ``[[channels]]`` entry.

        Fields: ``bot`` (preselected), optional ``bots`` (the list offered; default every
        bot), ``cookie_secret_env`` (the variable holding the cookie secret; without it a
        random secret is made at each start, so visitors are recognised until a restart
        only), ``send_timeout``, ``keepalive``, ``poll`` (seconds), ``limits`` (a table,
        see :class:`~mnemobot.adapters.web.limits.WebLimits`).
        """
        typed = read_settings(WebSettings, settings)
        offered = typed.bots or runtime.bots.names()
        ordered = [settings.bot, *(b for b in offered if b != settings.bot)]
        variable = typed.cookie_secret_env
        if variable:
            value = os.environ.get(str(variable), "")
            if len(value) < 16:
                raise ConfigError(
                    f"channel {settings.name!r}: environment variable {variable} must hold the "
                    "cookie secret, at least 16 characters (e.g. `openssl rand -hex 32`)"
                )
            secret = value.encode("utf-8")
        else:
            logger.warning(
                "web channel %s: no cookie_secret_env; browsers are recognised until restart",
                settings.name,
            )
            secret = secrets.token_bytes(32)
        return cls(
            runtime,
            name=settings.name,
            bots=ordered,
            cookie_secret=secret,
            send_timeout=typed.send_timeout,
            keepalive=typed.keepalive,
            poll=typed.poll,
            limits=WebLimits.from_settings(settings.name, typed.limits),
        )

    def __repr__(self) -> str:
        return f"WebChannel(name={self.name!r}, bots={self.bots!r})"

    # -- lifecycle ------------------------------------------------------------------------

    def bind(self) -> None:
        """Bind every ``<name>:<bot>`` instance to its bot (idempotent)."""
        for bot, instance in self.instances.items():
            self.runtime.bind_channel(instance, bot=bot)

    async def start(self) -> None:
        self._closing.clear()
        self.bind()

    async def stop(self) -> None:
        """End every open stream, so the server can shut down (pages reconnect later)."""
        self._closing.set()
        for streams in self._streams.values():
            for stream in streams:
                stream.queue.put_nowait(None)

    def routes(self) -> list[BaseRoute]:
        """The page, its static files, and the API (see the module docstring)."""
        return [
            Route("/chat", redirect_to("/chat/"), methods=["GET"]),
            Route("/chat/", self._page, methods=["GET"], name=f"web:{self.name}"),
            Mount("/chat/static", app=StaticFiles(directory=STATIC_DIR), name="chat-static"),
            Route("/chat/api/me", self._me, methods=["GET"]),
            Route("/chat/api/bots", self._bot_list, methods=["GET"]),
            Route("/chat/api/{bot}/messages", self._post_message, methods=["POST"]),
            Route("/chat/api/{bot}/events", self._events, methods=["GET"]),
        ]

    # -- the visitor ------------------------------------------------------------------------

    def _visitor(self, request: Request) -> tuple[str, bool]:
        """The visitor id of a request, and whether it is new (the cookie must be set)."""
        visitor = self.cookies.verify(request.cookies.get(COOKIE_NAME))
        if visitor is not None:
            return visitor, False
        return self.cookies.new_visitor(), True

    def _remember(self, response: Response, request: Request, visitor: str, new: bool) -> None:
        if new:
            response.set_cookie(
                COOKIE_NAME,
                self.cookies.sign(visitor),
                max_age=COOKIE_MAX_AGE,
                path="/chat",
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
            )

    # -- endpoints ------------------------------------------------------------------------

    async def _page(self, request: Request) -> Response:
        visitor, new = self._visitor(request)
        response = FileResponse(STATIC_DIR / "chat.html", headers={"Cache-Control": "no-store"})
        self._remember(response, request, visitor, new)
        return response

    async def _me(self, request: Request) -> Response:
        visitor, new = self._visitor(request)
        response = JSONResponse({"visitor": visitor, "channel_kind": self.kind})
        self._remember(response, request, visitor, new)
        return response

    async def _bot_list(self, _request: Request) -> Response:
        bots = [
            {"name": bot, "description": self.runtime.bots.get(bot).options.description}
            for bot in self.bots
        ]
        return JSONResponse({"bots": bots, "max_chars": self.max_chars})

    def _instance(self, request: Request) -> str | None:
        return self.instances.get(str(request.path_params["bot"]))

    async def _post_message(self, request: Request) -> Response:
        """Store one message and answer 202; the replies come on the event stream."""
        instance = self._instance(request)
        if instance is None:
            return error(404, f"no bot {request.path_params['bot']!r} in this web chat")
        visitor, new = self._visitor(request)
        refused = self.limiter.take_message(visitor, client_address(request))
        if refused is not None:  # before anything is read or stored: no person made
            return too_many(refused)
        message = await read_message(request, self.max_chars)
        if isinstance(message, JSONResponse):
            return message
        text, client_id = message
        msg = InboundMessage(
            channel=instance,
            channel_kind=self.kind,
            external_user_id=visitor,
            chat_id=visitor,
            text=text,
            # Prefixed with the visitor, so no one can claim another visitor's message ids.
            event_id=f"{visitor}:{client_id}",
            language=language(request),
            payload={"bot": str(request.path_params["bot"])},
        )
        stored = await self.delivery.receive(msg)
        response = JSONResponse(
            {"id": client_id, "duplicate": not stored}, status_code=202 if stored else 200
        )
        self._remember(response, request, visitor, new)
        return response

    async def _events(self, request: Request) -> Response:
        """The visitor's reply stream for one bot: pending replies first, then live ones."""
        instance = self._instance(request)
        if instance is None:
            return error(404, f"no bot {request.path_params['bot']!r} in this web chat")
        visitor, new = self._visitor(request)
        address = client_address(request)
        open_now = sum(len(self._streams.get((i, visitor), ())) for i in self.instances.values())
        refused = self.limiter.open_stream(address, open_now)
        if refused is not None:
            return too_many(refused)
        stream = Stream(address=address)
        key = (instance, visitor)
        self._streams.setdefault(key, set()).add(stream)  # before reading pending: none missed
        response = StreamingResponse(
            self._stream_body(key, stream, visitor),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self._remember(response, request, visitor, new)
        return response

    async def _stream_body(
        self, key: tuple[str, str], stream: Stream, visitor: str
    ) -> AsyncIterator[str]:
        instance, _ = key
        loop = asyncio.get_running_loop()
        try:
            yield "retry: 1000\n\n"
            # The session first, then what is pending: a reply committed in between is
            # pending and not in the history, never in both.
            session = await self.runtime.open_session(self._conversation(instance, visitor))
            pending = await self.delivery.pending_replies(instance, visitor)
            entry = self.runtime.channel_bot(instance)
            yield sse(
                "ready",
                {
                    "visitor": visitor,
                    "bot": entry,
                    "answering": session.active_bot if session else entry,
                    "history": _history(session, pending),
                },
            )
            async for event in self._pending_events(key, stream, pending):
                yield event
            quiet_since = loop.time()
            while not self._closing.is_set():
                try:
                    item = await asyncio.wait_for(stream.queue.get(), timeout=self.poll)
                except TimeoutError:
                    async for event in self._pending_events(key, stream):
                        yield event
                        quiet_since = loop.time()
                    if loop.time() - quiet_since >= self.keepalive:
                        yield ": keepalive\n\n"
                        quiet_since = loop.time()
                    continue
                if item is None:
                    return
                reply, written = item
                if reply.id not in stream.shown:
                    yield reply_event(reply)
                    stream.remember(reply.id)
                quiet_since = loop.time()
                if not written.done():
                    written.set_result(None)
        finally:
            self._close(key, stream)

    def _conversation(self, instance: str, visitor: str) -> InboundMessage:
        """The conversation of ``visitor`` with ``instance``'s bot, named as messages name it."""
        return InboundMessage(
            channel=instance,
            channel_kind=self.kind,
            external_user_id=visitor,
            chat_id=visitor,
            text="",
            event_id="",
        )

    async def _pending_events(
        self,
        key: tuple[str, str],
        stream: Stream,
        pending: list[OutboundMessage] | None = None,
    ) -> AsyncIterator[str]:
        """Replies committed for this chat and not sent yet, marked sent once written.

        Read when a page opens and after every ``poll`` quiet seconds: this catches replies
        made while no page was open, and replies committed by another worker process (whose
        ``send`` found no page there). ``pending``: those read already.
        """
        instance, chat_id = key
        mine = (
            pending
            if pending is not None
            else await self.delivery.pending_replies(instance, chat_id)
        )
        for reply in mine:
            if reply.id not in stream.shown:
                yield reply_event(reply)
                stream.remember(reply.id)
        if mine:
            await self.delivery.mark_sent(mine)

    def _close(self, key: tuple[str, str], stream: Stream) -> None:
        self.limiter.close_stream(stream.address)
        streams = self._streams.get(key)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self._streams[key]
        while not stream.queue.empty():
            item = stream.queue.get_nowait()
            if item is not None and not item[1].done():
                item[1].set_exception(ChannelError("the page closed before the reply"))

    def has_page(self, instance: str, visitor: str) -> bool:
        """Whether this visitor has a page open on this bot right now."""
        return bool(self._streams.get((instance, visitor)))

    # -- sending --------------------------------------------------------------------------

    async def send(self, reply: OutboundMessage) -> None:
        """Hand ``reply`` to the visitor's open pages; return once one has written it.

        Raises ChannelError when no page is open or none wrote it within
        ``send_timeout``: the reply stays pending and the next page opened fetches it.
        """
        streams = list(self._streams.get((reply.channel, reply.chat_id), ()))
        if not streams:
            raise ChannelError(f"web {reply.channel}: no page open for this visitor")
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        for stream in streams:
            written: asyncio.Future[None] = loop.create_future()
            stream.queue.put_nowait((reply, written))
            futures.append(written)
        pending = set(futures)
        while pending:
            done, pending = await asyncio.wait(
                pending, timeout=self.send_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                break
            if any(not f.cancelled() and f.exception() is None for f in done):
                return
        for future in futures:  # nobody wrote it: retrieve the exceptions, stop waiting
            if future.done() and not future.cancelled():
                future.exception()
            else:
                future.cancel()
        raise ChannelError(f"web {reply.channel}: no open page took the reply")


def _history(session: OpenSession | None, pending: list[OutboundMessage]) -> list[dict[str, str]]:
    """The open session's turns for the page, without the replies still pending (those come
    next as ``reply`` events, with their ids): each pending reply drops the latest matching
    bot line of the log."""
    if session is None:
        return []
    lines = [
        {"role": t.role, "bot": t.bot, "text": t.text, "at": t.at.isoformat()}
        for t in session.turns
    ]
    for reply in reversed(pending):
        for index in range(len(lines) - 1, -1, -1):
            line = lines[index]
            if line["role"] == "bot" and (line["bot"], line["text"]) == (reply.bot, reply.text):
                del lines[index]
                break
    return lines
