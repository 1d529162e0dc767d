"""The ``mnemobot`` command line.

Start-up stays cheap: nothing here imports litellm or a platform SDK at module level, so
``mnemobot --help`` and ``mnemobot chat`` start in well under a second.

The ``mnemobot memory`` sub-commands live in :mod:`runtime.cli_memory`; the ``--config``
option, building a runtime for one command and turning errors into one line, which both
use, in :mod:`runtime.cli_base`.
"""

from __future__ import annotations

import asyncio
import gc
import getpass
import json
import secrets
import signal
from pathlib import Path
from typing import Annotated

import typer
from mnemobot.runtime.cli.common import ConfigOption, guard, runtime_for, settings_for
from mnemobot.runtime.cli.memory import memory_app

__all__ = ["app", "main"]

app = typer.Typer(
    help="Host chat bots with a shared memory of each person.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")
app.add_typer(db_app, name="db")


@app.command()
@guard
def chat(
    bot: Annotated[str | None, typer.Option("--bot", "-b", help="Bot to talk to.")] = None,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Who you are (default: your login name).")
    ] = None,
    web: Annotated[
        bool, typer.Option("--web", help="Chat in the browser instead of the terminal.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Talk to a bot in the terminal; pipe lines in to script a conversation."""
    from mnemobot.adapters.console import ConsoleChannel

    if web:
        _chat_in_browser(bot, config)
        return
    with runtime_for(config) as runtime:
        name = bot or runtime.settings.bots.default or runtime.bots.names()[0]
        channel = ConsoleChannel(runtime, bot=name, user=user or getpass.getuser())
        channel.start()

        async def converse() -> None:
            # With a model set, finished conversations are summarised while you chat.
            stop = asyncio.Event()
            worker = (
                asyncio.create_task(runtime.episode_worker.run(30, stop))
                if runtime.llm is not None
                else None
            )
            try:
                await channel.run()
            finally:
                stop.set()
                if worker is not None:
                    await worker

        asyncio.run(converse())


def _local_secret(path: Path) -> bytes:
    """A cookie secret kept beside the database, so a browser is known across restarts."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip().encode("utf-8")


def _chat_in_browser(bot: str | None, config: Path | None) -> None:
    """Serve the web chat (and nothing else) and open it in the default browser."""
    import os
    import webbrowser

    from mnemobot.adapters.web.channel import WebChannel
    from mnemobot.runtime.app.deployment import run_deployment

    with runtime_for(config) as runtime:
        first = bot or runtime.settings.bots.default or runtime.bots.names()[0]
        runtime.bots.get(first)
        env_secret = os.environ.get("MNEMOBOT_WEB_COOKIE_SECRET", "")
        secret = env_secret.encode() if env_secret else _local_secret(Path("data/web-secret"))
        channel = WebChannel(
            runtime,
            name="web",
            bots=[first, *(b for b in runtime.bots.names() if b != first)],
            cookie_secret=secret,
        )
        runtime.bind_channel(channel.name, bot=first)
        server = runtime.settings.server
        url = f"http://{server.host}:{server.port}/chat/?bot={first}"
        typer.echo(f"web chat at {url} (Ctrl-C stops)", err=True)

        async def serve_chat() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            loop.call_later(0.5, webbrowser.open, url)
            await run_deployment(runtime, [channel], stop)

        asyncio.run(serve_chat())


@app.command()
@guard
def run(config: ConfigOption = None) -> None:
    """Serve every configured channel, the webhook server and the janitor until SIGINT/SIGTERM."""
    from mnemobot.adapters.admin.auth import admin_status_line
    from mnemobot.runtime.app.deployment import build_channels, run_deployment
    from mnemobot.runtime.llm.client import LiteLLM
    from mnemobot.runtime.ops.logs import configure_logging

    configure_logging()
    with runtime_for(config) as runtime:
        channels = build_channels(runtime)
        settings = runtime.settings
        typer.echo(admin_status_line(), err=True)
        for channel in channels:
            typer.echo(
                f"{channel.name}: {channel.kind} -> {runtime.channel_bot(channel.name)}", err=True
            )
        if not channels:
            typer.echo(
                "no [[channels]] configured: serving the health check and the janitor only "
                "(use `mnemobot chat` for the terminal)",
                err=True,
            )
        typer.echo(
            f"listening on http://{settings.server.host}:{settings.server.port} "
            f"(database {runtime.db.dialect}); Ctrl-C stops",
            err=True,
        )

        if isinstance(runtime.llm, LiteLLM):
            runtime.llm.warm_up()
        _settle_heap()

        async def main_loop() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await run_deployment(runtime, channels, stop)

        asyncio.run(main_loop())
    typer.echo("stopped", err=True)


def _settle_heap() -> None:
    """Collect once, then freeze what start-up allocated (the libraries, the bots).

    A long-running server otherwise rescans those few hundred thousand objects at every full
    collection, pausing the event loop for a tenth of a second or more under load, and every
    webhook acknowledgement with it.
    """
    gc.collect()
    gc.freeze()


@app.command("bots")
@guard
def list_bots(config: ConfigOption = None) -> None:
    """List the bots and what they are for."""
    from mnemobot.runtime.bots.registry import load_bots

    for bot in load_bots(settings_for(config).bots.dir):
        kind = (
            "dialog" if bot.dialog else ("python" if bot.on_message or bot.on_transfer else "llm")
        )
        typer.echo(f"{bot.name}\t{kind}\t{bot.options.description}")


@app.command()
@guard
def forget(
    user: Annotated[str, typer.Argument(help="User id, console name, or kind:external_id.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    config: ConfigOption = None,
) -> None:
    """Remove everything held about a person, in every table."""
    from mnemobot.runtime.people.privacy import forget_user

    with runtime_for(config, require_bots=False) as runtime:
        user_id = runtime.identity.find(user)
        if not yes and not typer.confirm(f"Forget everything about {user} ({user_id})?"):
            raise typer.Exit(1)
        removed = forget_user(runtime.db, user_id)
    typer.echo(json.dumps({"forgotten": user_id, "removed": removed}, indent=2))


@app.command()
@guard
def export(
    user: Annotated[str, typer.Argument(help="User id, console name, or kind:external_id.")],
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    config: ConfigOption = None,
) -> None:
    """Everything held about a person, as one JSON document."""
    from mnemobot.runtime.people.privacy import export_user

    with runtime_for(config, require_bots=False) as runtime:
        document = export_user(runtime.db, runtime.identity.find(user))
    text = json.dumps(document, ensure_ascii=False, indent=2)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


@app.command()
@guard
def prompt(
    user: Annotated[str, typer.Option("--user", "-u", help="Whose memory.")],
    bot: Annotated[str, typer.Option("--bot", "-b", help="Which bot would ask its model.")],
    message: Annotated[
        str, typer.Option("--message", "-m", help="The person's message to answer.")
    ] = "Hello!",
    config: ConfigOption = None,
) -> None:
    """Show the prompt a bot would send its model for a person: what is in, what was cut, why."""
    from mnemobot.runtime.llm.answers import EPISODES_CONSIDERED, assemble_prompt, latest_session
    from mnemobot.runtime.memory.store import MemoryScope

    with runtime_for(config) as runtime:
        chosen = runtime.bots.get(bot)
        user_id = runtime.identity.find(user)
        runtime.janitor.sweep_all()  # ends sessions idle past the timeout
        if runtime.llm is not None:  # ...and summarises them, as `mnemobot run` would
            asyncio.run(runtime.episode_worker.run_until_idle())
        session_id = latest_session(runtime.db, user_id, chosen.name)
        memory = runtime.memory
        built = asyncio.run(
            assemble_prompt(
                db=runtime.db,
                llm=runtime.llm,
                llm_settings=runtime.settings.llm,
                bot=chosen,
                user_memory=MemoryScope(
                    memory, memory.user_ref(user_id, runtime.user_policy(chosen))
                ),
                context=(
                    MemoryScope(memory, memory.session_ref(session_id, user_id, "context"))
                    if session_id
                    else None
                ),
                session_id=session_id,
                episodes=runtime.episodes.recent(user_id, EPISODES_CONSIDERED),
                question=message,
            )
        )
    counted = "the model's tokenizer" if runtime.llm is not None else "an estimate (no model set)"
    typer.echo(f"prompt of {chosen.name} for {user} ({user_id}); tokens counted with {counted}")
    typer.echo(built.report())


@db_app.command("upgrade")
@guard
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply every pending schema migration."""
    from mnemobot.runtime.storage.database import Database
    from mnemobot.runtime.storage.migrate import upgrade

    settings = settings_for(config)
    db = Database(settings.database.url)
    db.start()
    try:
        upgrade(db)
    finally:
        db.stop()
    typer.echo(f"database schema is up to date ({db.dialect})")


def main() -> None:
    """Entry point of the ``mnemobot`` console script."""
    app(prog_name="mnemobot")

