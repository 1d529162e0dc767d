"""People: who is talking (identity), one person's accounts linked, people created before
they write (seeding), and forget/export."""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.people.identity import IdentityStore, ResolvedUser
    from mnemobot.runtime.people.linking import LinkService, MergeResult
    from mnemobot.runtime.people.privacy import export_user, forget_user

__all__ = [
    "IdentityStore",
    "LinkService",
    "MergeResult",
    "ResolvedUser",
    "export_user",
    "forget_user",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "IdentityStore": "identity",
        "ResolvedUser": "identity",
        "LinkService": "linking",
        "MergeResult": "linking",
        "export_user": "privacy",
        "forget_user": "privacy",
    },
)
