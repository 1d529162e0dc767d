"""The bots as an operator sees them: which are loaded, their own memory, their prompts.

A bot's memory is shared by everyone it talks to, so it has no person to lock; the prompt
preview is read-only and answers what ``mnemobot prompt`` would.
"""

from __future__ import annotations

import json
from typing import Any

from mnemobot.runtime.bots.runner import preview_prompt
from mnemobot.runtime.errors import InvalidValue, UnknownUser
from mnemobot.runtime.memory.values import check_key, check_value
from mnemobot.runtime.ops.admin.base import Actor, AdminNotFound, AdminPart, iso
from mnemobot.runtime.ops.audit import AuditRecord

__all__ = ["Bots"]


class Bots(AdminPart):
    """List the bots, read and correct a bot's own memory, preview a bot's prompt."""

    def _check_bot(self, bot: str) -> str:
        return self.runtime.bots.get(bot).name

    def loaded(self) -> list[dict[str, Any]]:
        """The loaded bots, for a page that lets the operator pick one."""
        return [
            {
                "name": bot.name,
                "description": bot.options.description,
                "kind": "dialog"
                if bot.dialog
                else ("python" if bot.on_message or bot.on_transfer else "llm"),
            }
            for bot in self.runtime.bots
        ]

    def bot_memory(self, bot: str) -> list[dict[str, Any]]:
        """Every key of a bot's own memory (shared by all the people it talks to)."""
        store = self.runtime.memory
        rows = store.read_rows(store.bot_ref(self._check_bot(bot)))
        rule = self.runtime.bots.sensitive
        return [
            {
                "key": r.key,
                "value": rule.shown(r.key, r.value),
                "created_at": iso(r.created_at),
                "updated_at": iso(r.updated_at),
            }
            for r in rows
        ]

    def set_bot_key(self, actor: Actor, bot: str, key: str, value: Any) -> dict[str, Any]:
        """Store ``value`` under ``key`` in a bot's own memory."""
        name = self._check_bot(bot)
        check_key(key)
        if value == "":
            raise InvalidValue("an empty string is not stored; use DELETE to remove a key")
        store = self.runtime.memory
        parsed = json.loads(check_value(value, store.max_value_bytes))
        with self.db.write() as conn:
            store.bot_sql.set(conn, {"bot": name}, key, parsed, self.clock.now())
            self.audit.record_in(
                conn, AuditRecord(actor.name, "bot_memory.set", actor.route, bot=name, target=key)
            )
        return next(r for r in self.bot_memory(name) if r["key"] == key)

    def delete_bot_key(self, actor: Actor, bot: str, key: str) -> dict[str, Any]:
        name = self._check_bot(bot)
        check_key(key)
        with self.db.write() as conn:
            if not self.runtime.memory.bot_sql.delete(conn, {"bot": name}, key):
                raise AdminNotFound(f"bot {name} has no key {key!r}")
            self.audit.record_in(
                conn,
                AuditRecord(actor.name, "bot_memory.delete", actor.route, bot=name, target=key),
            )
        return {"deleted": key}

    async def prompt_preview(self, user_id: str, bot: str, message: str) -> dict[str, Any]:
        """The prompt ``bot`` would send its model for ``message`` (as ``mnemobot prompt``).

        Read-only: unlike the CLI it neither sweeps idle sessions nor runs the episode worker,
        which the running deployment does on its own schedule.
        """
        runtime = self.runtime
        chosen = runtime.bots.get(bot)
        if not await self.db.run(runtime.identity.exists, user_id):
            raise UnknownUser(f"no user {user_id!r}")
        built, session_id = await preview_prompt(runtime.bot_services, chosen, user_id, message)
        return {
            "user_id": user_id,
            "bot": chosen.name,
            "session_id": session_id,
            "tokens": built.tokens,
            "budget": built.budget,
            "reserve": built.reserve,
            "counted_with": "tokenizer" if runtime.llm is not None else "estimate",
            "messages": built.messages,
            "items": [
                {
                    "section": i.section,
                    "label": i.label,
                    "text": i.rendered(),
                    "tokens": i.tokens,
                    "included": i.included,
                    "reason": i.reason,
                    "detail": i.detail,
                }
                for i in built.items
            ],
            "report": built.report(),
        }
