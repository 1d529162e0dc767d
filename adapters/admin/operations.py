"""The admin API's operations: one table of routes, each with its handler and its answer.

One table (:data:`OPS`) makes both the routes (:mod:`adapters.admin_api`) and the OpenAPI
document (:mod:`adapters.admin_openapi`), so the document describes exactly what is served.
A handler only reads the parsed request from its :class:`Call` and calls
:class:`runtime.admin.Admin`; errors become answers in :mod:`adapters.admin_api`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request

from mnemobot.adapters.admin import schema as s
from mnemobot.adapters.admin.auth import ADMIN_PREFIX
from mnemobot.runtime.ops.admin import Actor, Admin

__all__ = ["OPS", "Call", "Handler", "Op"]


class _HTTPError(Exception):
    """A refusal with its own HTTP status (and per-field detail), raised while handling a call.

    Control flow inside the admin surface (api.py answers it), hence private and not in
    ``runtime/errors.py``.
    """

    def __init__(self, status: int, message: str, detail: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.detail = detail


@dataclass
class Call:
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
        return str(await self.run(self.admin.people.resolve_user, self.params["user"]))


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Op:
    """One row of the table: what is served where, and what OpenAPI says about it."""

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


async def _search(call: Call) -> Any:
    q = call.request.query_params.get("q", "").strip()
    if not q:
        raise _HTTPError(422, "say what to look for: ?q= a name, an e-mail, an id or kind:id")
    limit = call.query_int("limit", 20, 1, 50)
    return {"users": await call.run(call.admin.people.search, q, limit)}


async def _detail(call: Call) -> Any:
    turns = call.query_int("turns", 20, 0, 200)
    return await call.run(call.admin.people.user_detail, await call.user(), turns)


async def _recall(call: Call) -> Any:
    q = call.request.query_params.get("q", "").strip()
    if not q:
        raise _HTTPError(422, "say what to look for: ?q= words the person may have said")
    limit = call.query_int("limit", 10, 1, 50)
    user_id = await call.user()
    vector = await call.admin.people.query_vector(q, user_id)  # by meaning, when configured
    results = await call.run(call.admin.people.recall, user_id, q, limit, vector)
    return {"user_id": user_id, "query": q, "results": results}


async def _forget(call: Call) -> Any:
    return await call.run(call.admin.people.forget, call.actor, await call.user())


async def _export(call: Call) -> Any:
    return await call.run(call.admin.people.export, call.actor, await call.user())


async def _set_memory(call: Call) -> Any:
    body: s.MemoryWrite = call.body
    return await call.run(
        call.admin.edits.set_user_key,
        call.actor,
        await call.user(),
        call.params["key"],
        body.value,
        ttl=body.ttl,
        memory_type=body.memory_type,
    )


async def _delete_memory(call: Call) -> Any:
    return await call.run(
        call.admin.edits.delete_user_key, call.actor, await call.user(), call.params["key"]
    )


async def _set_fact(call: Call) -> Any:
    body: s.KeyWrite = call.body
    return await call.run(
        call.admin.edits.set_fact, call.actor, await call.user(), call.params["key"], body.value
    )


async def _delete_fact(call: Call) -> Any:
    return await call.run(
        call.admin.edits.delete_user_key,
        call.actor,
        await call.user(),
        call.params["key"],
        only_facts=True,
    )


async def _create_person(call: Call) -> Any:
    body: s.PersonNew = call.body
    return await call.run(
        call.admin.edits.create_person,
        call.actor,
        name=body.name,
        email=body.email,
        accounts=body.accounts,
    )


async def _link(call: Call) -> Any:
    body: s.AccountLink = call.body
    return await call.run(
        call.admin.edits.link_account, call.actor, await call.user(), body.account
    )


async def _memories(call: Call) -> Any:
    return await call.run(call.admin.memories.list, await call.user())


async def _add_memory(call: Call) -> Any:
    body: s.MemoryNoteWrite = call.body
    return await call.run(
        call.admin.memories.add,
        call.actor,
        await call.user(),
        body.memory,
        body.topics,
        body.input,
        body.feedback,
    )


async def _edit_memory(call: Call) -> Any:
    body: s.MemoryEdit = call.body
    return await call.run(
        call.admin.memories.edit,
        call.actor,
        await call.user(),
        call.params["memory_id"],
        body.memory,
        body.topics,
        body.input,
        body.feedback,
    )


async def _delete_memory_note(call: Call) -> Any:
    user_id = await call.user()
    await call.run(call.admin.memories.delete, call.actor, user_id, [call.params["memory_id"]])
    return {"deleted": call.params["memory_id"]}


async def _delete_memory_notes(call: Call) -> Any:
    body: s.MemoryIds = call.body
    return await call.run(call.admin.memories.delete, call.actor, await call.user(), body.ids)


async def _delete_episode(call: Call) -> Any:
    return await call.run(
        call.admin.edits.delete_episode, call.actor, await call.user(), call.params["episode_id"]
    )


async def _unlink(call: Call) -> Any:
    return await call.run(
        call.admin.edits.unlink_identity, call.actor, await call.user(), call.params["identity_id"]
    )


async def _bots(call: Call) -> Any:
    return {"bots": call.admin.bots.loaded()}


async def _bot_memory(call: Call) -> Any:
    bot = call.params["bot"]
    return {"bot": bot, "memory": await call.run(call.admin.bots.bot_memory, bot)}


async def _set_bot_memory(call: Call) -> Any:
    body: s.KeyWrite = call.body
    return await call.run(
        call.admin.bots.set_bot_key, call.actor, call.params["bot"], call.params["key"], body.value
    )


async def _delete_bot_memory(call: Call) -> Any:
    return await call.run(
        call.admin.bots.delete_bot_key, call.actor, call.params["bot"], call.params["key"]
    )


async def _prompt(call: Call) -> Any:
    body: s.PromptRequest = call.body
    user_id = await call.run(call.admin.people.resolve_user, body.user)
    return await call.admin.bots.prompt_preview(user_id, body.bot, body.message)


async def _audit(call: Call) -> Any:
    limit = call.query_int("limit", 100, 1, 1000)
    user = call.request.query_params.get("user_id") or None
    return {"entries": await call.run(call.admin.audit.entries, user_id=user, limit=limit)}


_LIMIT = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}}
OPS: tuple[Op, ...] = (
    Op(
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
    Op(
        "POST",
        "/users",
        _create_person,
        "Create a person before they first write, by e-mail and/or channel accounts "
        "(as `mnemobot people add`)",
        s.PersonCreated,
        body=s.PersonNew,
        errors=(409, 422),
    ),
    Op(
        "POST",
        "/users/{user}/identities",
        _link,
        "Tie a channel account to a person; one that already wrote as another person has "
        "that person merged in (as `mnemobot people link`)",
        s.Linked,
        body=s.AccountLink,
        errors=(404, 409, 422),
    ),
    Op(
        "GET",
        "/users/{user}",
        _detail,
        "Everything remembered about a person: accounts, memory, facts, episodes, sessions",
        s.UserDetail,
        query=({"name": "turns", "in": "query", "schema": {"type": "integer", "maximum": 200}},),
        errors=(404,),
    ),
    Op(
        "GET",
        "/users/{user}/recall",
        _recall,
        "Search everything remembered about a person (as `mnemobot memory search`), best first",
        s.RecallAnswer,
        query=(
            {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}},
            {**_LIMIT, "schema": {"type": "integer", "minimum": 1, "maximum": 50}},
        ),
        errors=(404, 422),
    ),
    Op(
        "DELETE",
        "/users/{user}",
        _forget,
        "Forget a person (as `mnemobot forget`); answers rows removed per table",
        s.ForgetReceipt,
        errors=(404,),
    ),
    Op(
        "GET",
        "/users/{user}/export",
        _export,
        "Everything held about a person as one document (as `mnemobot export`)",
        s.ExportDocument,
        errors=(404,),
    ),
    Op(
        "PUT",
        "/users/{user}/memory/{key:path}",
        _set_memory,
        "Set or change a key of a person's memory",
        s.MemoryRow,
        body=s.MemoryWrite,
        errors=(400, 404, 409, 422),
    ),
    Op(
        "DELETE",
        "/users/{user}/memory/{key:path}",
        _delete_memory,
        "Delete a key of a person's memory",
        s.Deleted,
        errors=(404, 422),
    ),
    Op(
        "PUT",
        "/users/{user}/facts/{key:path}",
        _set_fact,
        "Set a fact about a person (recorded in its history with source admin)",
        s.MemoryRow,
        body=s.KeyWrite,
        errors=(400, 404, 409, 422),
    ),
    Op(
        "DELETE",
        "/users/{user}/facts/{key:path}",
        _delete_fact,
        "Delete a fact (its history keeps the change)",
        s.Deleted,
        errors=(404, 409, 422),
    ),
    Op(
        "GET",
        "/users/{user}/memories",
        _memories,
        "A person's free-text memories (seed 004's user memories), oldest first",
        s.MemoriesAnswer,
        errors=(404,),
    ),
    Op(
        "POST",
        "/users/{user}/memories",
        _add_memory,
        "Add a free-text memory about a person; answers it with its new id",
        s.MemoryNote,
        body=s.MemoryNoteWrite,
        errors=(400, 404, 409, 422),
    ),
    Op(
        "PUT",
        "/users/{user}/memories/{memory_id}",
        _edit_memory,
        "Edit a free-text memory in place (fields left out are kept)",
        s.MemoryNote,
        body=s.MemoryEdit,
        errors=(400, 404, 422),
    ),
    Op(
        "PATCH",
        "/users/{user}/memories/{memory_id}",
        _edit_memory,
        "Edit a free-text memory in place (as PUT: fields left out are kept)",
        s.MemoryNote,
        body=s.MemoryEdit,
        errors=(400, 404, 422),
    ),
    Op(
        "DELETE",
        "/users/{user}/memories/{memory_id}",
        _delete_memory_note,
        "Delete one free-text memory",
        s.Deleted,
        errors=(404, 422),
    ),
    Op(
        "DELETE",
        "/users/{user}/memories",
        _delete_memory_notes,
        'Delete several free-text memories at once, all or none (body: {"ids": [...]})',
        s.MemoriesDeleted,
        body=s.MemoryIds,
        errors=(400, 404, 422),
    ),
    Op(
        "DELETE",
        "/users/{user}/episodes/{episode_id}",
        _delete_episode,
        "Delete one episode (a conversation summary)",
        s.Deleted,
        errors=(404,),
    ),
    Op(
        "DELETE",
        "/users/{user}/identities/{identity_id}",
        _unlink,
        "Unlink a channel account from a person (never their last one)",
        s.Unlinked,
        errors=(404, 409),
    ),
    Op("GET", "/bots", _bots, "The bots, to pick one", s.BotsAnswer),
    Op(
        "GET",
        "/bots/{bot}/memory",
        _bot_memory,
        "A bot's own memory, shared by everyone it talks to",
        s.BotMemoryAnswer,
        errors=(404,),
    ),
    Op(
        "PUT",
        "/bots/{bot}/memory/{key:path}",
        _set_bot_memory,
        "Set a key of a bot's memory",
        s.BotMemoryRow,
        body=s.KeyWrite,
        errors=(400, 404, 422),
    ),
    Op(
        "DELETE",
        "/bots/{bot}/memory/{key:path}",
        _delete_bot_memory,
        "Delete a key of a bot's memory",
        s.Deleted,
        errors=(404, 422),
    ),
    Op(
        "POST",
        "/prompt",
        _prompt,
        "The prompt a bot would send its model for a person and message (`mnemobot prompt`)",
        s.PromptPreview,
        body=s.PromptRequest,
        errors=(400, 404, 422),
    ),
    Op(
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
