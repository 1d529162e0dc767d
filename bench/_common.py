"""What the benches share: no traffic past loopback, and the in-process fake model.

Why a module: ``pipeline.py``, ``_scaling.py`` and ``_slack_ack.py`` each guard sockets and
(two of them) answer turns with the same fake model, and one definition keeps the figures
comparable across sections.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.llm import estimate_tokens

__all__ = ["REPLY", "FakeLLM", "_loopback_only"]

REPLY = "Noted, thank you."

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    """Refuse any connection that is not to this machine (telemetry, cost maps, providers)."""
    host = address[0] if isinstance(address, tuple) else address
    inet = self.family in (socket.AF_INET, socket.AF_INET6)
    if inet and isinstance(host, str) and not host.startswith(("127.", "::1", "localhost")):
        raise ConnectionRefusedError(f"bench: refusing to reach {host!r} (loopback only)")
    return _real_connect(self, address)


class FakeLLM:
    """The ``runtime.llm.LLM`` protocol in-process: a fixed answer, the estimate for tokens.

    It keeps the last messages so a bench can check the prompt really held the memories.
    """

    def __init__(self, reply: str = REPLY) -> None:
        self.reply = reply
        self.last_messages: list[dict[str, str]] = []

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        model: str = "default",
        bot: str = "",
        user_id: str | None = None,
        purpose: str = "answer",
    ) -> str:
        self.last_messages = messages
        return self.reply

    def count_tokens(self, text: str, *, model: str = "default") -> int:
        return estimate_tokens(text)
