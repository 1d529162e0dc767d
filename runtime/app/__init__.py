"""The composition root: the runtime built from settings, and a deployment run from it.

The only runtime code that imports adapters (a deployment starts channels).
"""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.app.build import build_runtime

__all__ = ["build_runtime"]

__getattr__ = lazy_exports(
    __name__,
    {
        "build_runtime": "build",
    },
)
