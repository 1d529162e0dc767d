"""Who a Slack user is: ``users.info`` asked once per person and ``ttl``, kept in a cache.

Kept apart from the channel because it is a step of its own, with its own failure rule: it
runs between the ack and the turn (also for events recovered after a restart), and a lookup
that fails only loses the person's name, never the turn. The cache is bounded, so a busy
workspace neither calls ``users.info`` for every message nor grows the cache without end;
reading an answer (:func:`profile_of`) and the cache are plain data, testable without Slack.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from mnemobot.runtime import InboundMessage

__all__ = ["Profile", "ProfileCache", "SlackProfiles", "profile_of"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Profile:
    """What the channel keeps of a ``users.info`` answer: what an InboundMessage lacks."""

    name: str
    email: str | None
    locale: str | None


def profile_of(user: dict[str, Any]) -> Profile:
    """The ``user`` of a ``users.info`` answer as a Profile.

    The name is the display name the person chose, else their real name, else the account
    name. The e-mail is there only with the ``users:read.email`` scope and the locale only
    when asked for with ``include_locale``; either may be missing.
    """
    details: dict[str, Any] = user.get("profile") or {}
    return Profile(
        name=str(
            details.get("display_name")
            or details.get("real_name")
            or user.get("real_name")
            or user.get("name")
            or ""
        ),
        email=details.get("email") or None,
        locale=user.get("locale") or None,
    )


class ProfileCache:
    """``users.info`` answers, kept ``ttl`` seconds per user; bounded, oldest dropped first."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Profile]] = {}

    def get(self, key: str) -> Profile | None:
        hit = self._entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: str, profile: Profile) -> None:
        self._entries.pop(key, None)
        while len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (time.monotonic() + self.ttl, profile)


class SlackProfiles:
    """Adds the person's Slack profile to an inbound message, asking ``users.info`` when needed.

    Args:
        client: the channel's Web API client (the channel opens and closes its session).
        name: the channel instance's name, for log lines.
        ttl: seconds a ``users.info`` answer is reused.
    """

    def __init__(self, client: AsyncWebClient, *, name: str, ttl: float) -> None:
        self.client = client
        self.name = name
        self._cache = ProfileCache(ttl)

    async def with_profile(self, msg: InboundMessage) -> InboundMessage:
        """``msg`` with the person's display name, locale and (with the scope) e-mail."""
        _, _, user = msg.external_user_id.partition(":")
        profile = self._cache.get(msg.external_user_id)
        if profile is None:
            try:
                answer = await self.client.users_info(user=user, include_locale=True)
            except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                error = exc.response.get("error") if isinstance(exc, SlackApiError) else exc
                logger.warning(
                    "slack %s: no profile for %s (%s); going on without it", self.name, user, error
                )
                return msg
            profile = profile_of(answer.get("user") or {})
            self._cache.put(msg.external_user_id, profile)
        return replace(
            msg,
            display_name=msg.display_name or profile.name,
            email=msg.email or profile.email,
            language=msg.language or profile.locale,
        )
