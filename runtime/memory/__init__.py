"""Memory in every scope behind one interface, with its rules, its SQL and its janitor."""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.memory.janitor import Janitor
    from mnemobot.runtime.memory.policy import UserMemoryPolicy
    from mnemobot.runtime.memory.store import MemoryScope, MemoryStore
    from mnemobot.runtime.memory.values import check_key, check_value

__all__ = ["Janitor", "MemoryScope", "MemoryStore", "UserMemoryPolicy", "check_key", "check_value"]

__getattr__ = lazy_exports(
    __name__,
    {
        "MemoryScope": "store",
        "MemoryStore": "store",
        "UserMemoryPolicy": "policy",
        "check_key": "values",
        "check_value": "values",
        "Janitor": "janitor",
    },
)
