"""Operating a deployment: logs, metrics, the audit log, the admin service behind the admin API."""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.ops.audit import AuditLog, AuditRecord
    from mnemobot.runtime.ops.logs import configure_logging
    from mnemobot.runtime.ops.metrics import CONTENT_TYPE, Metrics

__all__ = ["CONTENT_TYPE", "AuditLog", "AuditRecord", "Metrics", "configure_logging"]

__getattr__ = lazy_exports(
    __name__,
    {
        "AuditLog": "audit",
        "AuditRecord": "audit",
        "configure_logging": "logs",
        "CONTENT_TYPE": "metrics",
        "Metrics": "metrics",
    },
)
