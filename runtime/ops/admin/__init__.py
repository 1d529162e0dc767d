"""See and correct what the bots remember about a person: the core behind the admin API."""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.ops.admin.base import Actor, AdminConflict, AdminNotFound
    from mnemobot.runtime.ops.admin.service import Admin

__all__ = ["Actor", "Admin", "AdminConflict", "AdminNotFound"]

__getattr__ = lazy_exports(
    __name__,
    {
        "Actor": "base",
        "AdminConflict": "base",
        "AdminNotFound": "base",
        "Admin": "service",
    },
)
