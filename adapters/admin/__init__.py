"""The admin surface: the HTTP API under ``/admin/api/``, its auth, schema and OpenAPI document."""

from mnemobot.adapters.admin.api import admin_routes, metrics_routes
from mnemobot.adapters.admin.auth import ADMIN_TOKEN_ENV

__all__ = ["ADMIN_TOKEN_ENV", "admin_routes", "metrics_routes"]
