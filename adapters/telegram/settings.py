"""A Telegram channel's ``[[channels]]`` entry, typed: unknown keys and bad values refused."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mnemobot.adapters.settings import ChannelOptions
from mnemobot.runtime.settings import Seconds

__all__ = ["PacingSettings", "TelegramSettings"]


class PacingSettings(BaseModel):
    """``[channels.pacing]``: Telegram's flood limits (see :class:`~.pacing.Pacing`); a key
    left out keeps its default, and :class:`~.pacing.Pacing` checks the values."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    chat_rate: float | None = None
    chat_burst: int | None = None
    group_rate: float | None = None
    group_burst: int | None = None
    overall_rate: float | None = None
    overall_burst: int | None = None


class TelegramSettings(ChannelOptions):
    """One Telegram bot account.

    ``token_env`` (and ``webhook_secret_env`` in webhook mode) name environment variables;
    ``base_url`` points at a local Bot API server or a test fake; ``poll_timeout`` and
    ``retry_delay`` are durations (``30``, ``"30s"``, ``"1m"``).
    """

    mode: Literal["polling", "webhook"] = "polling"
    token_env: str
    webhook_secret_env: str | None = None
    base_url: str | None = None
    webhook_url: str | None = None
    poll_timeout: Seconds = Field(default=30.0, ge=0)
    retry_delay: Seconds = Field(default=1.0, ge=0)
    pacing: PacingSettings = Field(default_factory=PacingSettings)
