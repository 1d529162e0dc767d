"""The admin HTTP API under ``/admin/api/`` and the ``/metrics`` scrape endpoint.

Only HTTP lives here: parse and check the request (pydantic models in
:mod:`adapters.admin_schema`), call :class:`runtime.admin.Admin`, shape the answer. One
table of operations (``_OPS``) makes both the routes and the OpenAPI document, so the
document describes exactly what is served.

Authentication: every route, the OpenAPI document included, wants
``Authorization: Bearer TOKEN`` with a token from ``MNEMOBOT_ADMIN_TOKEN``. The variable
holds one token, or comma-separated ``NAME:TOKEN`` pairs so each operator has their own
token and the audit log says who did what (a bare token acts as ``admin``). Tokens are
compared in constant time; each must be at least 16 characters. Unset or empty: the API is
not mounted at all (404), and :func:`admin_status_line` is the start-up line saying so.

``/metrics`` is open by default, as Prometheus scrapers expect: it shows counts and
latencies labelled by channel, bot and model, never a user id or text. Serve it on a
private address, or set ``MNEMOBOT_METRICS_TOKEN`` to require ``Bearer`` that token.
"""

from __future__ import annotations

import hmac
import json
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters import admin_schema as s
from runtime.admin import Actor, Admin, AdminConflict, AdminNotFound
from runtime.audit import AuditLog
from runtime.errors import (
    ConfigError,
    InvalidKey,
    InvalidValue,
    LLMError,
    MemoryError_,
    MnemobotError,
    StorageError,
    UnknownBot,
    UnknownUser,
)
from runtime.metrics import CONTENT_TYPE, Metrics
from runtime.pipeline import Runtime

__all__ = [
    "ADMIN_PREFIX",
    "ADMIN_TOKEN_ENV",
    "METRICS_TOKEN_ENV",
    "admin_routes",
    "admin_status_line",
    "admin_tokens",
    "metrics_routes",
]

ADMIN_PREFIX = "/admin/api"
ADMIN_TOKEN_ENV = "MNEMOBOT_ADMIN_TOKEN"
METRICS_TOKEN_ENV = "MNEMOBOT_METRICS_TOKEN"
MIN_TOKEN_LENGTH = 16
_ACTOR_KEY = "mnemobot.admin_actor"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_MAX_BODY = 1_048_576


# -- tokens -----------------------------------------------------------------------------------


def admin_tokens(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{token: actor name}`` from ``MNEMOBOT_ADMIN_TOKEN``; empty when the API is off.

    Raises ConfigError for a token shorter than 16 characters: a guessable token on an API
    that can read and erase everyone's memory is worse than no API.
    """
    raw = (os.environ if environ is None else environ).get(ADMIN_TOKEN_ENV, "").strip()
    tokens: dict[str, str] = {}
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        name, sep, token = part.partition(":")
        if not sep or not _NAME.match(name):
            name, token = "admin", part
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"{ADMIN_TOKEN_ENV}: a token is shorter than {MIN_TOKEN_LENGTH} characters; "
                "use a long random one, e.g. python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            )
        tokens[token] = name
    return tokens


def admin_status_line(environ: Mapping[str, str] | None = None) -> str:
    """The one start-up line that says whether the admin API is served, and how to change it."""
    tokens = admin_tokens(environ)
    if not tokens:
        return f"admin API off: set {ADMIN_TOKEN_ENV} to serve it at {ADMIN_PREFIX}/"
    who = ", ".join(sorted(set(tokens.values())))
    return f"admin API on at {ADMIN_PREFIX}/ (bearer token from {ADMIN_TOKEN_ENV}; for {who})"


def _bearer(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = bytes(value).partition(b" ")
            return credentials.strip() if scheme.lower() == b"bearer" else None
    return None


def _match(presented: bytes | None, tokens: Mapping[str, str]) -> str | None:
    """The actor whose token was presented; every token is compared, in constant time."""
    found: str | None = None
    candidate = presented or b""
    for token, name in tokens.items():
        if hmac.compare_digest(candidate, token.encode()) and presented is not None:
            found = name
    return found


class _RequireToken:
    """ASGI wrapper: 401 unless a known bearer token comes with the request."""

    def __init__(self, app: ASGIApp, tokens: Mapping[str, str], realm: str) -> None:
        self.app = app
        self.tokens = dict(tokens)
        self.realm = realm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        actor = _match(_bearer(scope), self.tokens)
        if actor is None:
            response = JSONResponse(
                {"error": "missing or wrong bearer token (Authorization: Bearer TOKEN)"},
                status_code=401,
                headers={"WWW-Authenticate": f'Bearer realm="{self.realm}"'},
            )
            await response(scope, receive, send)
            return
        scope[_ACTOR_KEY] = actor
        await self.app(scope, receive, send)


# -- calls and errors -------------------------------------------------------------------------


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, detail: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.detail = detail


@dataclass
class _Call:
    """One request as a handler sees it."""

    request: Request
    admin: Admin
    actor: Actor
    body: Any = None

    @property
    def params(self) -> dict[str, str]:
        return dict(self.request.path_params)

    def query_int(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.request.query_params.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _HTTPError(422, f"query parameter {name} must be a whole number") from None
        if not low <= value <= high:
            raise _HTTPError(422, f"query parameter {name} must be between {low} and {high}")
        return value

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self.admin.db.run(fn, *args, **kwargs)

    async def user(self) -> str:
        return str(await self.run(self.admin.resolve_user, self.params["user"]))


def _status_of(exc: MnemobotError) -> int:
    if isinstance(exc, UnknownUser | UnknownBot | AdminNotFound):
        return 404
    if isinstance(exc, InvalidKey | InvalidValue):
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


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def _parse_body(request: Request, model: type[BaseModel]) -> BaseModel:
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        raise _HTTPError(413, f"body larger than {_MAX_BODY} bytes")
    if not raw.strip():
        raise _HTTPError(400, "a JSON body is required")
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _HTTPError(400, f"body is not JSON: {exc}") from None
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


# -- operations ------------------------------------------------------------------------------

Handler = Callable[[_Call], Awaitable[Any]]


@dataclass(frozen=True)
class _Op:
    method: str
    path: str  # Starlette's form, under ADMIN_PREFIX
    handler: Handler
    summary: str
    answer: type[BaseModel]
    body: type[BaseModel] | None = None
    query: tuple[dict[str, Any], ...] = ()
    errors: tuple[int, ...] = field(default=())

    @property
    def template(self) -> str:
        return ADMIN_PREFIX + re.sub(r"\{(\w+):\w+\}", r"{\1}", self.path)


async def _search(call: _Call) -> Any:
    q = call.request.query_params.get("q", "").strip()
    if not q:
        raise _HTTPError(422, "say what to look for: ?q= a name, an e-mail, an id or kind:id")
    limit = call.query_int("limit", 20, 1, 50)
    return {"users": await call.run(call.admin.search, q, limit)}


async def _detail(call: _Call) -> Any:
    turns = call.query_int("turns", 20, 0, 200)
    return await call.run(call.admin.user_detail, await call.user(), turns)


async def _forget(call: _Call) -> Any:
    return await call.run(call.admin.forget, call.actor, await call.user())


async def _export(call: _Call) -> Any:
    return await call.run(call.admin.export, call.actor, await call.user())


async def _set_memory(call: _Call) -> Any:
    body: s.MemoryWrite = call.body
    return await call.run(
        call.admin.set_user_key,
        call.actor,
        await call.user(),
        call.params["key"],
        body.value,
        ttl=body.ttl,
        memory_type=body.memory_type,
    )


async def _delete_memory(call: _Call) -> Any:
    return await call.run(
        call.admin.delete_user_key, call.actor, await call.user(), call.params["key"]
    )


async def _set_fact(call: _Call) -> Any:
    body: s.KeyWrite = call.body
    return await call.run(
        call.admin.set_fact, call.actor, await call.user(), call.params["key"], body.value
    )


async def _delete_fact(call: _Call) -> Any:
    return await call.run(
        call.admin.delete_user_key,
        call.actor,
        await call.user(),
        call.params["key"],
        only_facts=True,
    )


async def _delete_episode(call: _Call) -> Any:
    return await call.run(
        call.admin.delete_episode, call.actor, await call.user(), call.params["episode_id"]
    )


async def _unlink(call: _Call) -> Any:
    return await call.run(
        call.admin.unlink_identity, call.actor, await call.user(), call.params["identity_id"]
    )


async def _bots(call: _Call) -> Any:
    return {"bots": call.admin.bots()}


async def _bot_memory(call: _Call) -> Any:
    bot = call.params["bot"]
    return {"bot": bot, "memory": await call.run(call.admin.bot_memory, bot)}


async def _set_bot_memory(call: _Call) -> Any:
    body: s.KeyWrite = call.body
    return await call.run(
        call.admin.set_bot_key, call.actor, call.params["bot"], call.params["key"], body.value
    )


async def _delete_bot_memory(call: _Call) -> Any:
    return await call.run(
        call.admin.delete_bot_key, call.actor, call.params["bot"], call.params["key"]
    )


async def _prompt(call: _Call) -> Any:
    body: s.PromptRequest = call.body
    user_id = await call.run(call.admin.resolve_user, body.user)
    return await call.admin.prompt_preview(user_id, body.bot, body.message)


async def _audit(call: _Call) -> Any:
    limit = call.query_int("limit", 100, 1, 1000)
    user = call.request.query_params.get("user_id") or None
    return {"entries": await call.run(call.admin.audit.entries, user_id=user, limit=limit)}


_LIMIT = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}}
_OPS: tuple[_Op, ...] = (
    _Op(
        "GET",
        "/users",
        _search,
        "Find people by display name, e-mail, user id, or channel account (kind:external_id)",
        s.SearchAnswer,
        query=(
            {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}},
            {**_LIMIT, "schema": {"type": "integer", "minimum": 1, "maximum": 50}},
        ),
        errors=(422,),
    ),
    _Op(
        "GET",
        "/users/{user}",
        _detail,
        "Everything remembered about a person: accounts, memory, facts, episodes, sessions",
        s.UserDetail,
        query=({"name": "turns", "in": "query", "schema": {"type": "integer", "maximum": 200}},),
        errors=(404,),
    ),
    _Op(
        "DELETE",
        "/users/{user}",
        _forget,
        "Forget a person (as `mnemobot forget`); answers rows removed per table",
        s.ForgetReceipt,
        errors=(404,),
    ),
    _Op(
        "GET",
        "/users/{user}/export",
        _export,
        "Everything held about a person as one document (as `mnemobot export`)",
        s.ExportDocument,
        errors=(404,),
    ),
    _Op(
        "PUT",
        "/users/{user}/memory/{key:path}",
        _set_memory,
        "Set or change a key of a person's memory",
        s.MemoryRow,
        body=s.MemoryWrite,
        errors=(400, 404, 409, 422),
    ),
    _Op(
        "DELETE",
        "/users/{user}/memory/{key:path}",
        _delete_memory,
        "Delete a key of a person's memory",
        s.Deleted,
        errors=(404, 422),
    ),
    _Op(
        "PUT",
        "/users/{user}/facts/{key:path}",
        _set_fact,
        "Set a fact about a person (recorded in its history with source admin)",
        s.MemoryRow,
        body=s.KeyWrite,
        errors=(400, 404, 409, 422),
    ),
    _Op(
        "DELETE",
        "/users/{user}/facts/{key:path}",
        _delete_fact,
        "Delete a fact (its history keeps the change)",
        s.Deleted,
        errors=(404, 409, 422),
    ),
    _Op(
        "DELETE",
        "/users/{user}/episodes/{episode_id}",
        _delete_episode,
        "Delete one episode (a conversation summary)",
        s.Deleted,
        errors=(404,),
    ),
    _Op(
        "DELETE",
        "/users/{user}/identities/{identity_id}",
        _unlink,
        "Unlink a channel account from a person (never their last one)",
        s.Unlinked,
        errors=(404, 409),
    ),
    _Op("GET", "/bots", _bots, "The bots, to pick one", s.BotsAnswer),
    _Op(
        "GET",
        "/bots/{bot}/memory",
        _bot_memory,
        "A bot's own memory, shared by everyone it talks to",
        s.BotMemoryAnswer,
        errors=(404,),
    ),
    _Op(
        "PUT",
        "/bots/{bot}/memory/{key:path}",
        _set_bot_memory,
        "Set a key of a bot's memory",
        s.BotMemoryRow,
        body=s.KeyWrite,
        errors=(400, 404, 422),
    ),
    _Op(
        "DELETE",
        "/bots/{bot}/memory/{key:path}",
        _delete_bot_memory,
        "Delete a key of a bot's memory",
        s.Deleted,
        errors=(404, 422),
    ),
    _Op(
        "POST",
        "/prompt",
        _prompt,
        "The prompt a bot would send its model for a person and message (`mnemobot prompt`)",
        s.PromptPreview,
        body=s.PromptRequest,
        errors=(400, 404, 422),
    ),
    _Op(
        "GET",
        "/audit",
        _audit,
        "The audit log of admin writes, newest first (kept when a person is forgotten)",
        s.AuditAnswer,
        query=(
            {"name": "user_id", "in": "query", "schema": {"type": "string"}},
            {**_LIMIT, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
        ),
    ),
)


def _endpoint(op: _Op, admin: Admin) -> Callable[[Request], Awaitable[Response]]:
    route = f"{op.method} {op.template}"

    async def endpoint(request: Request) -> Response:
        call = _Call(request, admin, Actor(request.scope.get(_ACTOR_KEY, "admin"), route))
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


# -- OpenAPI ----------------------------------------------------------------------------------


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of every admin route, from the same table that serves them."""
    models: list[type[BaseModel]] = [s.ErrorAnswer]
    for op in _OPS:
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
    for op in _OPS:
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


# -- the app pieces ---------------------------------------------------------------------------


async def _not_found(_request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = {404: "no such admin route", 405: "method not allowed on this route"}
    return _error(status, message.get(status, "request refused"))


def admin_routes(
    runtime: Runtime,
    *,
    environ: Mapping[str, str] | None = None,
    audit: AuditLog | None = None,
) -> list[BaseRoute]:
    """The admin API as one Mount for ``build_app``; ``[]`` when no token is configured.

    ``runtime`` must be started (its stores exist). Raises ConfigError for a weak token.
    """
    tokens = admin_tokens(environ)
    if not tokens:
        return []
    admin = Admin(runtime, audit or AuditLog(runtime.db, runtime.clock))
    document = openapi_document()

    async def openapi(_request: Request) -> Response:
        return JSONResponse(document)

    routes: list[BaseRoute] = [Route("/openapi.json", openapi, methods=["GET"])]
    routes += [Route(op.path, _endpoint(op, admin), methods=[op.method]) for op in _OPS]
    inner = Starlette(routes=routes, exception_handlers={HTTPException: _not_found})
    return [Mount(ADMIN_PREFIX, app=_RequireToken(inner, tokens, "mnemobot admin"))]


def metrics_routes(metrics: Metrics, *, environ: Mapping[str, str] | None = None) -> list[Route]:
    """``GET /metrics`` in the Prometheus text format (bearer-protected if a token is set)."""
    token = (os.environ if environ is None else environ).get(METRICS_TOKEN_ENV, "").strip()

    async def scrape(request: Request) -> Response:
        if token and _match(_bearer(request.scope), {token: "metrics"}) is None:
            return _error(401, f"missing or wrong bearer token ({METRICS_TOKEN_ENV} is set)")
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return [Route("/metrics", scrape, methods=["GET"])]
