"""Replies out to Slack: ``chat.postMessage`` in order, in parts, escaped, 429s waited out.

Kept apart from the channel because sending has rules of its own that intake never meets:
a reply's parts stay together, one reply at a time per Slack channel, and a 429's
``Retry-After`` pause holds back that Slack channel only, never the others or the intake.
The channel hands in the Web API client it also uses for ``auth.test`` and ``users.info``,
so every call shares the one connection pool the channel opens and closes.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from mnemobot.adapters.slack.events import escape_mrkdwn, target_of
from mnemobot.adapters.text import split_text
from mnemobot.runtime import OutboundMessage
from mnemobot.runtime.conversations import LocalLocks
from mnemobot.runtime.errors import ChannelError, RateLimited

__all__ = ["SlackSender"]

logger = logging.getLogger(__name__)


def _retry_after(exc: SlackApiError) -> float:
    headers = {str(k).lower(): v for k, v in (exc.response.headers or {}).items()}
    raw = headers.get("retry-after")
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    try:
        return max(0.0, float(raw)) if raw is not None else 1.0
    except ValueError:
        return 1.0


class SlackSender:
    """Posts one Slack app's replies.

    Args:
        client: the channel's Web API client (the channel opens and closes its session).
        name: the channel instance's name, for errors and log lines.
        max_chars: longest message part posted.
        attempts: tries per message part when Slack answers 429.
    """

    def __init__(self, client: AsyncWebClient, *, name: str, max_chars: int, attempts: int) -> None:
        self.client = client
        self.name = name
        self.max_chars = max_chars
        self.attempts = max(1, attempts)
        # One sender per Slack channel: a reply's parts stay together and a Retry-After
        # pause holds back that channel only.
        self._order = LocalLocks()

    async def send(self, reply: OutboundMessage) -> None:
        """Post ``reply`` in order, in parts of at most ``max_chars``, escaped, in its thread.

        Raises ChannelError when Slack refuses it (RateLimited when it 429s past
        ``attempts``); the
        reply then stays pending in the outbox (parts already posted are not taken back).
        """
        channel, thread_ts = target_of(reply.chat_id)
        parts = split_text(reply.text, self.max_chars)
        async with self._order.hold(channel):
            for part in parts:
                await self._post(channel, thread_ts, escape_mrkdwn(part))

    async def _post(self, channel: str, thread_ts: str | None, text: str) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                await self.client.chat_postMessage(channel=channel, text=text, thread_ts=thread_ts)
                return
            except SlackApiError as exc:
                status, error = exc.response.status_code, exc.response.get("error")
                failed = f"slack {self.name}: chat.postMessage to {channel} failed"
                if status != 429:
                    raise ChannelError(f"{failed} (HTTP {status}, {error})") from exc
                delay = _retry_after(exc)
                if attempt == self.attempts:
                    raise RateLimited(f"{failed} (HTTP 429, {error})", delay) from exc
                logger.warning(
                    "slack %s: rate limited in %s, retrying in %.0fs (attempt %d of %d)",
                    self.name,
                    channel,
                    delay,
                    attempt,
                    self.attempts,
                )
                await asyncio.sleep(delay)  # holds this Slack channel only
            except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise ChannelError(
                    f"slack {self.name}: cannot reach Slack to post in {channel} "
                    f"({type(exc).__name__})"
                ) from exc
