"""A Slack channel's ``[[channels]]`` entry, typed: unknown keys and bad values refused."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mnemobot.adapters.settings import ChannelOptions
from mnemobot.runtime.settings import Seconds

__all__ = ["DEFAULT_API_URL", "SLACK_TEXT_LIMIT", "SlackSettings"]

DEFAULT_API_URL = "https://slack.com/api/"
SLACK_TEXT_LIMIT = 4000  # Slack truncates longer messages in the client


class SlackSettings(ChannelOptions):
    """One Slack app.

    ``token_env``, ``signing_secret_env`` (HTTP mode) and ``app_token_env`` (Socket Mode)
    name environment variables; ``api_url`` points at the Web API (or a test fake);
    ``max_chars`` is the longest message part posted; ``profile_cache_seconds`` how long a
    ``users.info`` answer is reused (a duration); ``send_attempts`` tries per part on 429.
    """

    mode: Literal["http", "socket"] = "http"
    token_env: str
    signing_secret_env: str | None = None
    app_token_env: str | None = None
    api_url: str = DEFAULT_API_URL
    max_chars: int = Field(default=SLACK_TEXT_LIMIT, ge=100, le=40_000)
    profile_cache_seconds: Seconds = Field(default=3600.0, ge=0)
    send_attempts: int = Field(default=5, ge=1)

    @field_validator("api_url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"must be an http(s):// address, not {value!r}")
        return value
