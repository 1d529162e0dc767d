"""The OpenAPI 3.1 document of the admin API, built from the same table that serves it.

Only schema-building lives here (pydantic's JSON schemas, the response and parameter
shapes); the document is made once when the routes are mounted and served as
``/admin/api/openapi.json`` behind the same bearer token as every other route.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from mnemobot.adapters.admin import schema as s
from mnemobot.adapters.admin.operations import OPS

__all__ = ["openapi_document"]


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of every admin route, from the same table that serves them."""
    models: list[type[BaseModel]] = [s.ErrorAnswer]
    for op in OPS:
        models += [op.answer] + ([op.body] if op.body is not None else [])
    unique = list(dict.fromkeys(models))
    keyed, top = models_json_schema(
        [
            (
                m,
                "validation"
                if m in (s.MemoryWrite, s.KeyWrite, s.PromptRequest)
                else "serialization",
            )
            for m in unique
        ],
        ref_template="#/components/schemas/{model}",
    )
    refs = {model: keyed[(model, mode)] for (model, mode) in keyed}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPS:
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"\{(\w+)\}", op.template)
        ]
        responses: dict[str, Any] = {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": refs[op.answer]}},
            },
            "401": {"$ref": "#/components/responses/Unauthorized"},
        }
        for status in op.errors:
            responses[str(status)] = {
                "description": _REASONS[status],
                "content": {"application/json": {"schema": refs[s.ErrorAnswer]}},
            }
        operation: dict[str, Any] = {
            "summary": op.summary,
            "operationId": op.handler.__name__.lstrip("_"),
            "parameters": params + list(op.query),
            "responses": responses,
        }
        if op.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[op.body]}},
            }
        paths.setdefault(op.template, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mnemobot admin API",
            "version": "1",
            "description": "See and correct what the bots remember. Every write is audited.",
        },
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Unauthorized": {
                    "description": "Missing or wrong bearer token",
                    "content": {"application/json": {"schema": refs[s.ErrorAnswer]}},
                }
            },
        },
        "security": [{"bearer": []}],
    }


_REASONS = {
    400: "The body is missing or not JSON",
    404: "No such user, bot, key, episode or identity",
    409: "Refused as things stand (memory full, last identity, not a fact)",
    422: "A bad key, value or parameter",
}
