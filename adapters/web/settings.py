"""The web chat's ``[[channels]]`` entry, typed: unknown keys and bad values refused."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mnemobot.adapters.settings import ChannelOptions
from mnemobot.runtime.settings import Seconds

__all__ = ["WebSettings"]


class WebSettings(ChannelOptions):
    """The browser chat at ``/chat/``.

    ``bots``: the bots offered (default every bot); ``cookie_secret_env``: the variable holding
    the secret that signs visitor cookies (without it, browsers are recognised until a
    restart only); ``send_timeout``, ``keepalive`` and ``poll`` are durations; ``limits`` is
    a table read by :meth:`~mnemobot.adapters.web.limits.WebLimits.from_settings`.
    """

    bots: list[str] | None = None
    cookie_secret_env: str | None = None
    send_timeout: Seconds = Field(default=5.0, gt=0)
    keepalive: Seconds = Field(default=15.0, gt=0)
    poll: Seconds = Field(default=3.0, gt=0)
    limits: Any = None
