"""Fakes of the far side of the network, served over real HTTP on 127.0.0.1.

The real SDKs (python-telegram-bot, slack_sdk, slack-bolt) are pointed at these servers through
their ``base_url`` settings, so a test exercises the same HTTP code path as production instead of
patching SDK methods. This module holds the shared plumbing: a threaded server bound to port 0
that parses and records every request before handing it to the fake's ``handle``.

Import the fakes from their modules: ``tests.fakes.telegram_api`` and ``tests.fakes.slack_api``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

__all__ = ["FakeHTTPServer", "RecordedRequest", "Reply", "parse_params"]


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the fake received it, kept so tests can assert on what was called."""

    http_method: str
    path: str
    api_method: str
    token: str | None
    params: dict[str, Any]
    headers: dict[str, str]  # keys lower-cased: HTTP header names are case-insensitive
    body: bytes
    time: float  # time.time() on arrival
    client_port: int = 0  # the caller's side of the connection: one port, one connection


@dataclass
class Reply:
    """What a fake answers: an HTTP status, a JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def parse_params(content_type: str, body: bytes, query: str) -> dict[str, Any]:
    """Merge query-string and body parameters, whether the body is JSON or form-encoded.

    Both SDKs switch encodings by method (slack_sdk sends ``users.info`` as a GET query and
    ``chat.postMessage`` as JSON; PTB sends forms), so the fakes accept all of them. An empty
    body is valid (Bolt's lazy ``auth.test``). Multipart bodies (file uploads) are not parsed.
    """
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if not body.strip():
        return params
    if "json" in content_type:
        decoded = json.loads(body)
        if isinstance(decoded, dict):
            params.update(decoded)
    elif "x-www-form-urlencoded" in content_type:
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return params


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog is 5 connections, and two workers send to one fake on
    # up to sixteen each. 64 requests at once against it: half were reset (httpx ReadError,
    # which a Telegram client retries) and the rest up to 1.1 s late, a dropped handshake
    # waiting for its retransmission; against 128, none failed and the slowest took 0.1 s.
    # A request read late can outlive the client's 5 s read timeout, and its retry then
    # sends the message again (test_lost_update once saw one reply twice).
    request_queue_size = 128


class FakeHTTPServer:
    """A recording HTTP server on 127.0.0.1:<free port>, run in a daemon thread.

    Subclasses implement ``route`` (which API method and token a path names) and ``handle``.
    Use as a context manager, or call ``start()`` / ``stop()``. ``stopping`` is set before the
    socket closes so long-running handlers (Telegram's long poll) can return promptly.
    """

    def __init__(self, *, keep_alive: bool = False) -> None:
        self.keep_alive = keep_alive  # HTTP/1.1: a client may send many requests on one connection
        self._lock = threading.RLock()
        # One condition for all state changes: long polls wait on it, pushes notify it.
        self._changed = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, without a trailing slash."""
        if self._server is None:
            raise RuntimeError("the fake server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Bind a free port and serve in a background thread."""
        if self._server is not None:
            return self
        self.stopping.clear()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Wake waiting handlers, stop accepting and close the socket."""
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping.set()
        with self._changed:
            self._changed.notify_all()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- recording ---------------------------------------------------------------------------

    def requests(self, api_method: str | None = None) -> list[RecordedRequest]:
        """Every request received so far, in arrival order, optionally for one API method."""
        with self._lock:
            return [r for r in self._requests if api_method in (None, r.api_method)]

    def clear_requests(self) -> None:
        """Forget recorded requests, e.g. after a test's setup phase."""
        with self._lock:
            self._requests.clear()

    # -- to implement ------------------------------------------------------------------------

    def route(
        self, path: str, headers: dict[str, str], params: dict[str, Any]
    ) -> tuple[str, str | None]:
        """Return ``(api_method, token)`` for a request path; ``api_method`` "" if unroutable."""
        raise NotImplementedError

    def handle(self, request: RecordedRequest) -> Reply:
        """Answer one recorded request."""
        raise NotImplementedError

    # -- plumbing ----------------------------------------------------------------------------

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        split = urlsplit(handler.path)
        try:
            params = parse_params(headers.get("content-type", ""), body, split.query)
        except (ValueError, UnicodeDecodeError):
            self._send(handler, Reply(400, {"ok": False, "error": "invalid_json"}))
            return
        api_method, token = self.route(split.path, headers, params)
        request = RecordedRequest(
            http_method=handler.command,
            path=split.path,
            api_method=api_method,
            token=token,
            params=params,
            headers=headers,
            body=body,
            time=time.time(),
            client_port=int(handler.client_address[1]),
        )
        with self._lock:
            self._requests.append(request)
        self._send(handler, self.handle(request))

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        payload = json.dumps(reply.body).encode()
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. a cancelled long poll); nothing left to tell it

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0 unless asked: one request per connection, so no idle keep-alive thread
            # outlives stop(). With keep_alive, the client must close its connections first.
            protocol_version = "HTTP/1.1" if fake.keep_alive else "HTTP/1.0"

            def do_GET(self) -> None:
                fake._dispatch(self)

            def do_POST(self) -> None:
                fake._dispatch(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # recorded in fake.requests() instead of spamming stderr

        return Handler
