"""Storage: the one place that opens connections, the schema, prepared statements and migrations."""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.storage.database import Database
    from mnemobot.runtime.storage.prepared import Prepared

__all__ = ["Database", "Prepared"]

__getattr__ = lazy_exports(
    __name__,
    {
        "Database": "database",
        "Prepared": "prepared",
    },
)
