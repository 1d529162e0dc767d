"""``mnemobot memory list|get|set|delete|search``: read, change and search memory by hand.

Kept apart from :mod:`mnemobot.runtime.cli.commands` because these commands share things no
other command needs: choosing the scope (a person's memory under a bot's policy, or a bot's
own memory) and reading a value from the command line as JSON. The commands module mounts
:data:`memory_app` as ``mnemobot memory``. The memory modules are imported inside
:func:`_scope`, when a command runs, so ``mnemobot --help`` stays cheap.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mnemobot.runtime.cli.common import (
    ConfigOption,
    fail,
    guard,
    person_for_writing,
    runtime_for,
)

__all__ = ["memory_app"]

QUERY_SHOWN = 80  # characters of a query a "nothing found" line repeats (a pasted page is long)

memory_app = typer.Typer(
    help="Read and change what the bots remember.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _parse_value(raw: str, as_text: bool) -> Any:
    import json

    if as_text:
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        fail(
            f"value is not JSON: {raw!r}. Quote text as JSON ('\"{raw}\"') or pass --text "
            "to store it as a string"
        )


def _scope(runtime: Any, user: str | None, bot: str | None, *, create: bool = False) -> Any:
    """The memory a command reads or writes; ``create``: a person nobody has yet is made."""
    from mnemobot.runtime.memory.policy import UserMemoryPolicy
    from mnemobot.runtime.memory.store import MemoryScope

    if bot is not None and user is None:
        runtime.bots.get(bot)
        return MemoryScope(runtime.memory, runtime.memory.bot_ref(bot))
    if user is None:
        fail("say whose memory: --user NAME (or --bot NAME for a bot's own memory)")
    user_id = person_for_writing(runtime, user) if create else runtime.identity.find(user)
    policy = (
        runtime.user_policy(runtime.bots.get(bot))
        if bot
        else UserMemoryPolicy(
            max_value_bytes=runtime.settings.memory.max_value_bytes,
            retention=runtime.settings.memory.retention,
        )
    )
    return MemoryScope(runtime.memory, runtime.memory.user_ref(user_id, policy))


BotScopeOption = Annotated[
    str | None,
    typer.Option(
        "--bot",
        "-b",
        metavar="BOT",
        help="Bot memory of this bot (without --user); with "
        "--user, the person's memory under this bot's limits.",
    ),
]
UserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        "-u",
        metavar="USER",
        help="Whose memory: user id, console name, e-mail or kind:external_id.",
    ),
]
KeyArgument = Annotated[str, typer.Argument(metavar="KEY", help="The memory key.")]


@memory_app.command("list")
@guard
def memory_list(
    user: UserOption = None,
    bot: BotScopeOption = None,
    config: ConfigOption = None,
) -> None:
    """Every key with its value, type and expiry."""
    import asyncio
    import json

    with runtime_for(config, bots="optional") as runtime:
        rows = asyncio.run(_scope(runtime, user, bot).rows())
    for row in rows:
        expiry = f"\texpires {row.ttl.isoformat()}" if row.ttl else ""
        kind = f"\t{row.memory_type}" if row.memory_type else ""
        typer.echo(f"{row.key}\t{json.dumps(row.value, ensure_ascii=False)}{kind}{expiry}")


@memory_app.command("get")
@guard
def memory_get(
    key: KeyArgument,
    user: UserOption = None,
    bot: BotScopeOption = None,
    config: ConfigOption = None,
) -> None:
    """Print one value as JSON (exit status 1 when the key is missing)."""
    import asyncio
    import json

    with runtime_for(config, bots="optional") as runtime:
        marker = object()
        value = asyncio.run(_scope(runtime, user, bot).get(key, marker))
    if value is marker:
        fail(f"no key {key!r}")
    typer.echo(json.dumps(value, ensure_ascii=False))


@memory_app.command("set")
@guard
def memory_set(
    key: KeyArgument,
    value: Annotated[
        str,
        typer.Argument(metavar="VALUE", help="A JSON value: '\"pt-BR\"', 42, '{\"a\": 1}'."),
    ],
    user: UserOption = None,
    bot: BotScopeOption = None,
    text: Annotated[bool, typer.Option("--text", help="Store VALUE as a plain string.")] = False,
    ttl: Annotated[
        float | None, typer.Option("--ttl", metavar="SECONDS", help="Seconds until it expires.")
    ] = None,
    memory_type: Annotated[
        str | None, typer.Option("--type", metavar="TYPE", help="preference, fact or context.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Store a value (JSON) under KEY."""
    import asyncio

    if bot is not None and user is None and (ttl is not None or memory_type is not None):
        given = " and ".join(
            o for o, v in (("--ttl", ttl), ("--type", memory_type)) if v is not None
        )
        fail(
            f"{given}: a bot's own memory keeps no expiry or type (they apply to a person's "
            "memory, --user NAME); nothing was written"
        )
    parsed = _parse_value(value, text)
    with runtime_for(config, bots="optional") as runtime:
        scope = _scope(runtime, user, bot, create=True)
        if scope.name == "user":
            asyncio.run(scope.set(key, parsed, ttl=ttl, memory_type=memory_type))
        else:
            asyncio.run(scope.set(key, parsed))
    typer.echo(f"set {key}")


@memory_app.command("delete")
@guard
def memory_delete(
    key: KeyArgument,
    user: UserOption = None,
    bot: BotScopeOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove KEY (exit status 1 when there is no such key)."""
    import asyncio

    with runtime_for(config, bots="optional") as runtime:
        scope = _scope(runtime, user, bot)

        async def delete() -> bool:
            marker = object()
            if await scope.get(key, marker) is marker:
                return False
            await scope.delete(key)
            return True

        deleted = asyncio.run(delete())
    if not deleted:
        fail(f"no key {key!r}: nothing deleted")
    typer.echo(f"deleted {key}")


@memory_app.command("search")
@guard
def memory_search(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="Words to look for.")],
    user: UserOption = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=100, metavar="N", help="Results.")
    ] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """Search everything remembered about a person (what they said to any bot, episodes,
    facts and their earlier values), best first, each with where it came from."""
    import json

    if user is None:
        fail("say whose memory to search: --user NAME")
    with runtime_for(config, bots="optional") as runtime:
        user_id = runtime.identity.find(user)
        import asyncio  # not at import: `mnemobot --help` stays light

        recall = runtime.bot_services.recall
        if recall.embedder is not None:  # one search: wait for a local model to load
            asyncio.run(recall.embedder.ready())
        vector = asyncio.run(recall.query_vector(query, user_id))  # semantic recall, when on
        found = recall.search(user_id, query, limit=limit, query_vector=vector)
    if not found:
        asked = query if len(query) <= QUERY_SHOWN else query[: QUERY_SHOWN - 1] + "…"
        typer.echo(f"nothing remembered about {user} matches {asked!r}", err=True)
        raise typer.Exit(1)
    for hit in found:
        if as_json:
            typer.echo(json.dumps(hit.as_dict(), ensure_ascii=False))
            continue
        where = " ".join(
            part for part in (hit.kind, hit.role, hit.bot, hit.channel) if part is not None
        )
        typer.echo(f"{hit.at.date().isoformat()}\t{where}\t{hit.text}")
