"""A fake Slack Web API server, plus builders for signed Events API requests.

Point slack_sdk at it with ``WebClient(token=t, base_url=fake.base_url)`` — the base URL is
``{url}/api/`` and its trailing slash matters. Modelled on slack-bolt's
``tests/mock_web_api_server``, but with state: bots (tokens) and users are registered by the
test, posted messages are recorded per channel, and failures are injected per channel::

    with FakeSlackAPI() as slack:
        slack.add_bot("xoxb-support", name="support")
        slack.add_user("U1", "Ann Example", email="ann@example.com")
        ...  # run the Slack channel against slack.base_url
        assert [m.text for m in slack.posted_messages("D1")] == ["Hello Ann"]

The Events API side goes the other way (Slack calls us), so for it this module only *builds*
requests: ``message_event``/``app_mention_event`` payloads and ``signed_event_request``.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from slack_sdk.signature import SignatureVerifier

from . import FakeHTTPServer, RecordedRequest, Reply

__all__ = [
    "FakeSlackAPI",
    "PostedMessage",
    "app_mention_event",
    "message_event",
    "signed_event_request",
    "url_verification_payload",
]

MAX_TEXT = 40_000  # Slack refuses longer texts with msg_too_long
DEFAULT_TEAM = "T0FAKETEAM"
DEFAULT_SCOPES = ("chat:write", "im:history", "app_mentions:read", "users:read", "users:read.email")


@dataclass(frozen=True)
class PostedMessage:
    """One message a bot posted with ``chat.postMessage``, as recorded by the fake."""

    token: str
    channel: str
    text: str
    thread_ts: str | None
    mrkdwn: bool | None  # None when the caller did not say (Slack then formats as mrkdwn)
    ts: str
    bot_user_id: str
    params: dict[str, Any]


@dataclass
class _Failure:
    method: str
    channel: str | None
    status: int
    retry_after: int | None
    error: str
    times: int


def _as_bool(value: Any) -> bool | None:
    """Form bodies carry booleans as strings; JSON bodies as booleans."""
    if value is None or isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true")


class FakeSlackAPI(FakeHTTPServer):
    """The Slack Web API for one or more bot tokens, served at ``{url}/api/<method>``."""

    def __init__(
        self,
        team_id: str = DEFAULT_TEAM,
        team_name: str = "Fake Workspace",
        *,
        keep_alive: bool = False,
    ) -> None:
        super().__init__(keep_alive=keep_alive)
        self.team_id = team_id
        self.team_name = team_name
        self._bots: dict[str, dict[str, Any]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._posted: list[PostedMessage] = []
        self._history: dict[str, list[dict[str, Any]]] = {}  # channel -> bot messages
        self._failures: list[_Failure] = []
        self._ts = itertools.count(1)
        self._ts_base = int(time.time())

    @property
    def base_url(self) -> str:
        """What to give slack_sdk as ``base_url`` (with the trailing slash it needs)."""
        return f"{self.url}/api/"

    # -- test-side setup ---------------------------------------------------------------------

    def add_bot(
        self,
        token: str,
        *,
        name: str = "mnemobot",
        user_id: str | None = None,
        bot_id: str | None = None,
        team_id: str | None = None,
        scopes: tuple[str, ...] = DEFAULT_SCOPES,
    ) -> dict[str, Any]:
        """Register a bot token; returns what ``auth.test`` answers for it.

        Leave ``users:read.email`` out of ``scopes`` to see ``users.info`` without e-mails.
        """
        n = len(self._bots) + 1
        auth = {
            "url": f"https://{self.team_name.lower().replace(' ', '-')}.slack.com/",
            "team": self.team_name,
            "user": name,
            "team_id": team_id or self.team_id,
            "user_id": user_id or f"U0BOT{n:05d}",
            "bot_id": bot_id or f"B0BOT{n:05d}",
            "is_enterprise_install": False,
        }
        with self._lock:
            self._bots[token] = {"auth": auth, "scopes": tuple(scopes)}
        return auth

    def add_user(
        self,
        user_id: str,
        real_name: str,
        email: str | None = None,
        *,
        team_id: str | None = None,
        display_name: str = "",
        tz: str = "Europe/Berlin",
        locale: str | None = None,
        is_bot: bool = False,
    ) -> dict[str, Any]:
        """Register a person (or bot user) for ``users.info``; returns the User object."""
        profile: dict[str, Any] = {
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": display_name,
            "display_name_normalized": display_name,
            "first_name": real_name.split(" ")[0],
            "team": team_id or self.team_id,
        }
        if email:
            profile["email"] = email
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": team_id or self.team_id,
            "name": (display_name or real_name).lower().replace(" ", "."),
            "deleted": False,
            "real_name": real_name,
            "tz": tz,
            "profile": profile,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": int(time.time()),
        }
        if locale:
            user["locale"] = locale
        with self._lock:
            self._users[user_id] = user
        return user

    def fail_next(
        self,
        method: str,
        channel: str | None = None,
        *,
        status: int = 429,
        retry_after: int = 1,
        times: int = 1,
        error: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (for ``channel`` only, if given) fail.

        A 429 answers HTTP 429 with a ``Retry-After`` header and ``{"ok": false, "error":
        "ratelimited"}``; slack_sdk raises it as SlackApiError. With ``status=200`` and an
        ``error`` (e.g. "channel_not_found") it is an ordinary API error.
        """
        default = {429: "ratelimited", 200: "internal_error"}.get(status, "fatal_error")
        with self._lock:
            self._failures.append(
                _Failure(
                    method=method,
                    channel=channel,
                    status=status,
                    retry_after=retry_after if status == 429 else None,
                    error=error or default,
                    times=times,
                )
            )

    # -- test-side reading -------------------------------------------------------------------

    def posted_messages(self, channel: str | None = None) -> list[PostedMessage]:
        """Messages successfully posted, in order, optionally for one channel."""
        with self._lock:
            return [m for m in self._posted if channel in (None, m.channel)]

    def wait_for_posted(
        self, count: int, channel: str | None = None, timeout: float = 5.0
    ) -> list[PostedMessage]:
        """Block until at least ``count`` messages were posted (to ``channel``, if given).

        The Slack channel acks first and answers later; from async tests use
        ``asyncio.to_thread``. Raises TimeoutError with what was posted so far.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(posted := self.posted_messages(channel)) < count:
                if (remaining := deadline - time.monotonic()) <= 0:
                    raise TimeoutError(f"{len(posted)} of {count} messages posted: {posted}")
                self._changed.wait(remaining)
            return posted

    def calls(self, method: str) -> list[RecordedRequest]:
        """Recorded requests to one Web API method (failed ones included), in arrival order."""
        return self.requests(method)

    # -- server side -------------------------------------------------------------------------

    def route(
        self, path: str, headers: dict[str, str], params: dict[str, Any]
    ) -> tuple[str, str | None]:
        match = re.fullmatch(r"/api/([A-Za-z.]+)", path)
        bearer = headers.get("authorization", "")
        token = bearer.removeprefix("Bearer ").strip() if bearer.startswith("Bearer ") else None
        return (match[1] if match else "", token or params.get("token"))

    def handle(self, request: RecordedRequest) -> Reply:
        if not request.api_method:
            return Reply(404, {"ok": False, "error": "unknown_method"})
        with self._lock:
            bot = self._bots.get(request.token or "")
            failure = self._take_failure(request.api_method, request.params.get("channel"))
        scopes = ",".join(bot["scopes"]) if bot else ""
        headers = {"X-OAuth-Scopes": scopes, "X-Accepted-OAuth-Scopes": ""}
        if failure is not None:
            if failure.retry_after is not None:
                headers["Retry-After"] = str(failure.retry_after)
            return Reply(failure.status, {"ok": False, "error": failure.error}, headers)
        if not request.token:
            return Reply(200, {"ok": False, "error": "not_authed"}, headers)
        if bot is None:
            return Reply(200, {"ok": False, "error": "invalid_auth"}, headers)
        handler = getattr(self, "_api_" + request.api_method.replace(".", "_"), None)
        if handler is None:
            return Reply(200, {"ok": False, "error": "unknown_method"}, headers)
        body: dict[str, Any] = handler(request.token, bot, request.params)
        return Reply(200, body, headers)

    def _take_failure(self, method: str, channel: Any) -> _Failure | None:
        for failure in self._failures:
            if failure.method == method and failure.channel in (None, channel):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    def _next_ts(self) -> str:
        return f"{self._ts_base}.{next(self._ts):06d}"

    def _api_auth_test(self, token: str, bot: dict[str, Any], params: dict[str, Any]) -> dict:
        return {"ok": True, **bot["auth"]}

    def _api_chat_postMessage(
        self, token: str, bot: dict[str, Any], params: dict[str, Any]
    ) -> dict[str, Any]:
        channel, text = params.get("channel"), params.get("text") or ""
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not text.strip() and not params.get("blocks") and not params.get("attachments"):
            return {"ok": False, "error": "no_text"}
        if len(text) > MAX_TEXT:
            return {"ok": False, "error": "msg_too_long"}
        auth = bot["auth"]
        with self._lock:
            ts = self._next_ts()
            message: dict[str, Any] = {
                "type": "message",
                "text": text,
                "user": auth["user_id"],
                "bot_id": auth["bot_id"],
                "ts": ts,
                "team": auth["team_id"],
            }
            thread_ts = params.get("thread_ts") or None
            if thread_ts:
                message["thread_ts"] = thread_ts
            if params.get("metadata"):
                message["metadata"] = params["metadata"]
            self._history.setdefault(channel, []).append(message)
            self._posted.append(
                PostedMessage(
                    token=token,
                    channel=channel,
                    text=text,
                    thread_ts=thread_ts,
                    mrkdwn=_as_bool(params.get("mrkdwn")),
                    ts=ts,
                    bot_user_id=auth["user_id"],
                    params=params,
                )
            )
            self._changed.notify_all()
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _api_conversations_replies(
        self, token: str, bot: dict[str, Any], params: dict[str, Any]
    ) -> dict[str, Any]:
        """The thread's messages that bots posted here (the fake never sees people's messages).

        Bolt's ``say()`` calls this in DM threads to look for assistant thread context.
        """
        thread = params.get("ts")
        with self._lock:
            messages = [
                m
                for m in self._history.get(params.get("channel") or "", [])
                if thread in (m["ts"], m.get("thread_ts"))
            ]
        return {"ok": True, "messages": messages, "has_more": False}

    def _api_users_info(
        self, token: str, bot: dict[str, Any], params: dict[str, Any]
    ) -> dict[str, Any]:
        with self._lock:
            user = self._users.get(params.get("user") or "")
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        user = json.loads(json.dumps(user))  # a copy the test's later edits cannot reach
        if "users:read.email" not in bot["scopes"]:
            user["profile"].pop("email", None)
        return {"ok": True, "user": user}

    def _api_conversations_open(
        self, token: str, bot: dict[str, Any], params: dict[str, Any]
    ) -> dict[str, Any]:
        if params.get("channel"):
            return {"ok": True, "channel": {"id": params["channel"]}}
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        # One stable DM id per set of people, like Slack's.
        return {"ok": True, "channel": {"id": "D" + "".join(sorted(u.lstrip("UW") for u in users))}}


# -- Events API builders ----------------------------------------------------------------------

_event_ids = itertools.count(1)
_event_ts = itertools.count(1)


def _new_ts() -> str:
    return f"{int(time.time())}.{next(_event_ts):06d}"


def _event_callback(
    event: dict[str, Any],
    *,
    team_id: str,
    bot_user_id: str | None,
    api_app_id: str,
    event_id: str | None,
    event_time: int | None,
) -> dict[str, Any]:
    """Wrap an inner event in the envelope Slack posts to the Request URL."""
    payload: dict[str, Any] = {
        "token": "fake-verification-token",
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_event_ids):08d}FAKE",
        "event_time": event_time or int(float(event["event_ts"])),
        "is_ext_shared_channel": False,
        "event_context": f"4-{uuid.uuid4().hex}",
    }
    if bot_user_id:
        payload["authorizations"] = [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ]
    return payload


def message_event(
    *,
    channel: str,
    user: str,
    text: str,
    team_id: str = DEFAULT_TEAM,
    ts: str | None = None,
    thread_ts: str | None = None,
    channel_type: str = "im",
    bot_id: str | None = None,
    subtype: str | None = None,
    bot_user_id: str | None = None,
    api_app_id: str = "A0FAKEAPP",
    event_id: str | None = None,
    event_time: int | None = None,
) -> dict[str, Any]:
    """An ``event_callback`` carrying a ``message`` event (by default a DM, ``channel_type=im``).

    Give ``bot_id`` (and the bot's user id as ``user``) for a message a bot posted — what a
    bot sees as the echo of its own replies. ``bot_user_id`` is the receiving app's bot user,
    reported in ``authorizations``.
    """
    ts = ts or _new_ts()
    event: dict[str, Any] = {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": channel_type,
        "team": team_id,
    }
    if bot_id:
        event["bot_id"] = bot_id
        event["app_id"] = api_app_id
        event["bot_profile"] = {"id": bot_id, "app_id": api_app_id, "team_id": team_id}
    else:
        event["client_msg_id"] = str(uuid.uuid4())
    if subtype:
        event["subtype"] = subtype
    if thread_ts:
        event["thread_ts"] = thread_ts
    return _event_callback(
        event,
        team_id=team_id,
        bot_user_id=bot_user_id,
        api_app_id=api_app_id,
        event_id=event_id,
        event_time=event_time,
    )


def app_mention_event(
    *,
    channel: str,
    user: str,
    text: str,
    bot_user_id: str | None = None,
    team_id: str = DEFAULT_TEAM,
    ts: str | None = None,
    thread_ts: str | None = None,
    api_app_id: str = "A0FAKEAPP",
    event_id: str | None = None,
    event_time: int | None = None,
) -> dict[str, Any]:
    """An ``event_callback`` carrying an ``app_mention`` event in a channel.

    With ``bot_user_id``, the text gets a leading ``<@BOT>`` mention unless it has one, as a
    real mention always does.
    """
    if bot_user_id and f"<@{bot_user_id}>" not in text:
        text = f"<@{bot_user_id}> {text}"
    ts = ts or _new_ts()
    event: dict[str, Any] = {
        "type": "app_mention",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "team": team_id,
        "client_msg_id": str(uuid.uuid4()),
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return _event_callback(
        event,
        team_id=team_id,
        bot_user_id=bot_user_id,
        api_app_id=api_app_id,
        event_id=event_id,
        event_time=event_time,
    )


def url_verification_payload(challenge: str = "fake-challenge") -> dict[str, Any]:
    """The handshake Slack sends when a Request URL is configured."""
    return {"token": "fake-verification-token", "challenge": challenge, "type": "url_verification"}


def signed_event_request(
    signing_secret: str,
    event_payload: dict[str, Any],
    timestamp: int | None = None,
    *,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of an Events API POST, signed as Slack signs it.

    Pass an old ``timestamp`` to build a stale request, a different secret to build a forged
    one, and ``retry_num`` for a redelivery (``X-Slack-Retry-Num``/``-Reason`` headers).
    """
    body = json.dumps(event_payload).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=ts, body=body)
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason
    return body, headers
