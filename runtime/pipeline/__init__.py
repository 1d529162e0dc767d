"""The path of one message: intake, the turn's steps, its commit, delivery and recovery.

:class:`Runtime` holds the steps in order (``handle``); :class:`Delivery` runs turns for a
channel and sends their replies once; :class:`Reclaimer` finishes what a dead worker left.
"""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.pipeline.delivery import Delivery, DeliveryServices, ReplySender
    from mnemobot.runtime.pipeline.recovery import Reclaimer
    from mnemobot.runtime.pipeline.runtime import Runtime
    from mnemobot.runtime.pipeline.turn import Turn

__all__ = ["Delivery", "DeliveryServices", "Reclaimer", "ReplySender", "Runtime", "Turn"]

__getattr__ = lazy_exports(
    __name__,
    {
        "Runtime": "runtime",
        "Delivery": "delivery",
        "DeliveryServices": "delivery",
        "ReplySender": "delivery",
        "Reclaimer": "recovery",
        "Turn": "turn",
    },
)
