"""The far side of a real ``mnemobot run`` worker's Slack channel: the answers it needs, no more.

``bench/_slack_ack.py`` starts a worker as an operator would and times its acks. Past loopback
that worker would call Slack's Web API (``auth.test`` when it starts, ``users.info`` for each
new person) and its model (``chat/completions`` through litellm); :class:`FarSide` answers
those three on 127.0.0.1, holding every model call ``delay`` seconds, and
:func:`signed_message` builds the signed Events API requests Slack would send the worker.

Why not the test fakes (``tests/fakes``): bench/ imports nothing from tests/ (issue 12), and
what makes those fakes worth having in tests (every request recorded for assertions, failures
injected per method and channel, bots, users and posted messages kept as state) is nothing a
latency bench reads. What it reads is two counts: model calls that arrived, and those held
right now. So this is one small server with fixed answers, built on the same standard library
server as the test fakes (``http.server.ThreadingHTTPServer``), and the signature comes from
slack_sdk's own ``SignatureVerifier`` as in the tests. Nothing here is shared with the runtime:
the worker talks to it only over HTTP.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

from slack_sdk.signature import SignatureVerifier

__all__ = ["BOT_USER", "FarSide", "signed_message"]

TEAM = "T0BENCH"
BOT_USER = "U0BENCHBOT"  # the worker's bot user, as auth.test tells it
SCOPES = "chat:write,im:history,app_mentions:read,users:read,users:read.email"


class FarSide:
    """Slack's Web API at :attr:`slack_api_url` and an OpenAI-compatible model at
    :attr:`model_api_base`, on one server in a background thread.

    Every ``chat/completions`` request waits ``delay`` seconds in its own thread (the others
    are served meanwhile) and is then answered; :meth:`stop` wakes them all at once.
    """

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._calls = 0
        self._waiting = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the far side is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def slack_api_url(self) -> str:
        """The channel's ``api_url`` (slack_sdk needs the trailing slash)."""
        return f"{self.url}/slack/api/"

    @property
    def model_api_base(self) -> str:
        """The ``[llm] api_base`` litellm posts ``/chat/completions`` under."""
        return f"{self.url}/v1"

    def model_calls(self) -> int:
        """Model calls that arrived so far, answered or not."""
        with self._lock:
            return self._calls

    def model_waiting(self) -> int:
        """Model calls held right now."""
        with self._lock:
            return self._waiting

    def start(self) -> Self:
        self.stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="bench-far-side",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping.set()
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

    # -- the answers ------------------------------------------------------------------------

    def answer(self, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """HTTP status and JSON body for one request."""
        if path == "/slack/api/auth.test":
            return 200, {
                "ok": True,
                "url": "https://bench.slack.com/",
                "team": "Bench",
                "user": "bench",
                "team_id": TEAM,
                "user_id": BOT_USER,
                "bot_id": "B0BENCHBOT",
                "is_enterprise_install": False,
            }
        if path == "/slack/api/users.info":
            user = str(params.get("user") or "")
            return 200, {
                "ok": True,
                "user": {
                    "id": user,
                    "team_id": TEAM,
                    "name": user.lower(),
                    "real_name": f"Person {user}",
                    "locale": "en-US",
                    "profile": {"real_name": f"Person {user}", "display_name": ""},
                },
            }
        if path.rstrip("/").endswith("/chat/completions"):
            return 200, self._completion(str(params.get("model") or "bench"))
        return 404, {"ok": False, "error": "unknown_method"}

    def _completion(self, model: str) -> dict[str, Any]:
        with self._lock:
            self._calls += 1
            self._waiting += 1
        try:
            self.stopping.wait(self.delay)
        finally:
            with self._lock:
                self._waiting -= 1
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Noted, thank you."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        far = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request a connection: nothing outlives stop()

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, answer = far.answer(path, _params(query, body))
                payload = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("X-OAuth-Scopes", SCOPES)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the worker was killed while its model call was held

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _params(query: str, body: bytes) -> dict[str, Any]:
    """Query and body parameters: slack_sdk sends ``users.info`` as a query or a form,
    litellm sends JSON."""
    params: dict[str, Any] = dict(parse_qsl(query))
    if body.lstrip().startswith(b"{"):
        params.update(json.loads(body))
    elif body:
        params.update(parse_qsl(body.decode("utf-8")))
    return params


_event_ids = itertools.count(1)
_event_ts = itertools.count(1)


def signed_message(
    signing_secret: str, *, channel: str, user: str, text: str
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of the Events API POST Slack sends for a direct message to the bot.

    The envelope Slack wraps a ``message`` event in (``event_callback``, with the receiving
    bot in ``authorizations``), signed with ``signing_secret`` as Slack signs it.
    """
    ts = f"{int(time.time())}.{next(_event_ts):06d}"
    payload = {
        "token": "bench-verification-token",
        "team_id": TEAM,
        "api_app_id": "A0BENCHAPP",
        "event": {
            "type": "message",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": ts,
            "event_ts": ts,
            "channel_type": "im",
            "team": TEAM,
            "client_msg_id": str(uuid.uuid4()),
        },
        "type": "event_callback",
        "event_id": f"Ev{next(_event_ids):08d}BENCH",
        "event_time": int(float(ts)),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM,
                "user_id": BOT_USER,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
    }
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=stamp, body=body)
    return body, {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
    }
