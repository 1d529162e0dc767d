"""mnemobot's runtime: several chat bots, one memory of each person, one path for every message.

The public API, for adapters and for programs that embed mnemobot. Each package under it is a
concept (see the README's layout); these names load on first use, so ``import
mnemobot.runtime`` costs nothing and ``mnemobot --help`` starts fast.
"""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.app.build import build_runtime
    from mnemobot.runtime.clock import Clock, ManualClock, SystemClock
    from mnemobot.runtime.conversations.transcript import OpenSession
    from mnemobot.runtime.messages import InboundMessage, OutboundMessage
    from mnemobot.runtime.pipeline.delivery import Delivery, DeliveryServices, ReplySender
    from mnemobot.runtime.pipeline.runtime import Runtime
    from mnemobot.runtime.settings import ChannelSettings, Settings, load_settings

__all__ = [
    "ChannelSettings",
    "Clock",
    "Delivery",
    "DeliveryServices",
    "InboundMessage",
    "ManualClock",
    "OpenSession",
    "OutboundMessage",
    "ReplySender",
    "Runtime",
    "Settings",
    "SystemClock",
    "build_runtime",
    "load_settings",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "build_runtime": "app.build",
        "Clock": "clock",
        "ManualClock": "clock",
        "SystemClock": "clock",
        "OpenSession": "conversations.transcript",
        "InboundMessage": "messages",
        "OutboundMessage": "messages",
        "Delivery": "pipeline.delivery",
        "DeliveryServices": "pipeline.delivery",
        "ReplySender": "pipeline.delivery",
        "Runtime": "pipeline.runtime",
        "ChannelSettings": "settings",
        "Settings": "settings",
        "load_settings": "settings",
    },
)
