"""Re-exports that load on first use, so a package's ``__init__`` costs nothing to import.

Importing ``mnemobot.runtime.pipeline.turn`` runs ``mnemobot/runtime/pipeline/__init__.py``
first; if that imported every module of the package at once, a module deep in another package
that needs only ``Turn`` would pull in the whole pipeline, and two packages that use each other's
leaves would import each other's roots in a circle. A package lists its public names here and
loads the module that defines one when it is first asked for (PEP 562); type checkers read
the same names from the ``if TYPE_CHECKING:`` imports beside it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` giving each name in ``where`` from its submodule of ``package``."""

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__
