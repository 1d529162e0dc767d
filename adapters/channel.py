"""What every channel is: the protocol the deployment drives, and where its secrets come from.

A channel only converts: a platform event into an :class:`InboundMessage` handed to its
:class:`Delivery`, a reply into platform calls (``send``). Storing, ordering, sending once
and recovering are the runtime's (:mod:`mnemobot.runtime.pipeline.delivery`).
"""

from __future__ import annotations

import os
from typing import Protocol

from starlette.routing import BaseRoute

from mnemobot.runtime import ChannelSettings, Delivery, OutboundMessage
from mnemobot.runtime.errors import ConfigError

__all__ = ["Channel", "token_from_env"]


class Channel(Protocol):
    """One channel instance (a Telegram bot account, a Slack app, the web chat)."""

    name: str
    kind: str
    delivery: Delivery

    def routes(self) -> list[BaseRoute]:
        """HTTP endpoints this channel serves on the shared ASGI app (may be empty)."""
        ...

    async def start(self) -> None:
        """Begin receiving (e.g. start a polling loop); return once running."""
        ...

    async def stop(self) -> None:
        """Stop receiving and finish what was taken; return when done."""
        ...

    async def send(self, reply: OutboundMessage) -> None:
        """Deliver one reply to the platform, retrying what the platform asks to retry.

        Raises when the reply could not be delivered; it stays pending in the outbox.
        """
        ...


def token_from_env(settings: ChannelSettings, field: str = "token_env") -> str:
    """The secret named by ``settings.<field>``; ConfigError when unset or empty."""
    variable = getattr(settings, field, None) or (settings.model_extra or {}).get(field)
    if not variable:
        raise ConfigError(f"channel {settings.name!r}: set {field} to the name of an env variable")
    value = os.environ.get(str(variable), "")
    if not value:
        raise ConfigError(f"channel {settings.name!r}: environment variable {variable} is not set")
    return value
