"""The admin HTTP API under ``/admin/api/`` and the ``/metrics`` scrape endpoint.

Only HTTP lives here: parse and check the request (pydantic models in
:mod:`adapters.admin_schema`), run the operation from the table in
:mod:`adapters.admin_operations`, turn errors into answers, and mount it all behind the
bearer token of :mod:`adapters.admin_auth` (the OpenAPI document, from
:mod:`adapters.admin_openapi`, included).

``/metrics`` is open by default, as Prometheus scrapers expect: it shows counts and
latencies labelled by channel, bot and model, never a user id or text. Serve it on a
private address, or set ``MNEMOBOT_METRICS_TOKEN`` to require ``Bearer`` that token.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from mnemobot.adapters.admin import schema as s
from mnemobot.adapters.admin.auth import (
    ACTOR_KEY,
    ADMIN_PREFIX,
    RequireToken,
    admin_tokens,
    bearer,
    match,
)
from mnemobot.adapters.admin.openapi import openapi_document
from mnemobot.adapters.admin.operations import OPS, Call, Op, _HTTPError
from mnemobot.adapters.bodies import _BadBody, parse_json, read_limited
from mnemobot.runtime import Runtime
from mnemobot.runtime.errors import (
    InvalidIdentity,
    InvalidKey,
    InvalidValue,
    LLMError,
    MemoryError_,
    MnemobotError,
    StorageError,
    UnknownBot,
    UnknownMemory,
    UnknownUser,
)
from mnemobot.runtime.ops import CONTENT_TYPE, Metrics
from mnemobot.runtime.ops.admin import Actor, Admin, AdminConflict, AdminNotFound

__all__ = ["METRICS_TOKEN_ENV", "admin_routes", "metrics_routes"]

METRICS_TOKEN_ENV = "MNEMOBOT_METRICS_TOKEN"
_MAX_BODY = 1_048_576


# -- calls and errors -------------------------------------------------------------------------


def _status_of(exc: MnemobotError) -> int:
    if isinstance(exc, UnknownUser | UnknownBot | AdminNotFound | UnknownMemory):
        return 404
    if isinstance(exc, InvalidKey | InvalidValue | InvalidIdentity):
        return 422
    if isinstance(exc, AdminConflict | MemoryError_):  # MemoryFull, MemoryDisabled
        return 409
    if isinstance(exc, StorageError):
        return 503
    if isinstance(exc, LLMError):
        return 502
    return 400


def _error(status: int, message: str, detail: list[dict[str, Any]] | None = None) -> JSONResponse:
    body = s.ErrorAnswer(error=message, detail=detail).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status)


async def _parse_body(request: Request, model: type[BaseModel]) -> BaseModel:
    raw = await read_limited(request, _MAX_BODY)
    if raw is None:
        raise _HTTPError(413, f"body larger than {_MAX_BODY} bytes")
    if not raw.strip():
        raise _HTTPError(400, "a JSON body is required")
    try:
        data = parse_json(raw)
    except _BadBody as exc:
        raise _HTTPError(exc.status, str(exc)) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        detail = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "problem": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        first = detail[0]
        raise _HTTPError(
            422, f"invalid body: {first['field']}: {first['problem']}", detail
        ) from None


def _endpoint(op: Op, admin: Admin) -> Callable[[Request], Awaitable[Response]]:
    route = f"{op.method} {op.template}"

    async def endpoint(request: Request) -> Response:
        call = Call(request, admin, Actor(request.scope.get(ACTOR_KEY, "admin"), route))
        try:
            if op.body is not None:
                call.body = await _parse_body(request, op.body)
            answer = await op.handler(call)
            shaped = op.answer.model_validate(answer).model_dump(mode="json")
        except _HTTPError as exc:
            return _error(exc.status, str(exc), exc.detail)
        except MnemobotError as exc:
            return _error(_status_of(exc), str(exc))
        return JSONResponse(shaped)

    return endpoint


# -- the app pieces ---------------------------------------------------------------------------


async def _not_found(_request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = {404: "no such admin route", 405: "method not allowed on this route"}
    return _error(status, message.get(status, "request refused"))


def admin_routes(
    runtime: Runtime,
    *,
    environ: Mapping[str, str] | None = None,
) -> list[BaseRoute]:
    """The admin API as one Mount for ``build_app``; ``[]`` when no token is configured.

    ``runtime`` must be started (its stores exist). Raises ConfigError for a weak token.
    """
    tokens = admin_tokens(environ)
    if not tokens:
        return []
    admin = Admin(runtime, runtime.audit)  # the runtime's: built with it in runtime/app/
    document = openapi_document()

    async def openapi(_request: Request) -> Response:
        return JSONResponse(document)

    routes: list[BaseRoute] = [Route("/openapi.json", openapi, methods=["GET"])]
    routes += [Route(op.path, _endpoint(op, admin), methods=[op.method]) for op in OPS]
    inner = Starlette(routes=routes, exception_handlers={HTTPException: _not_found})
    return [Mount(ADMIN_PREFIX, app=RequireToken(inner, tokens, "mnemobot admin"))]


def metrics_routes(metrics: Metrics, *, environ: Mapping[str, str] | None = None) -> list[Route]:
    """``GET /metrics`` in the Prometheus text format (bearer-protected if a token is set)."""
    token = (os.environ if environ is None else environ).get(METRICS_TOKEN_ENV, "").strip()

    async def scrape(request: Request) -> Response:
        if token and match(bearer(request.scope), {token: "metrics"}) is None:
            return _error(401, f"missing or wrong bearer token ({METRICS_TOKEN_ENV} is set)")
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return [Route("/metrics", scrape, methods=["GET"])]
