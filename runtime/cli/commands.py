"""The ``mnemobot`` command line.

Start-up stays cheap: at module level this imports typer and nothing of the runtime (no
pydantic, no SQLAlchemy, no litellm, no platform SDK); each command imports what it needs when
it runs, and is turned into a click command only then (:mod:`mnemobot.runtime.cli.lazy`), so
``mnemobot --help`` costs little more than ``import typer``. Help is plain click formatting
(``rich_markup_mode=None``): rich alone would cost more than the rest of ``mnemobot --help``.
A new command is an ``@app.command()`` function here, or a ``typer.Typer()`` of sub-commands in
a module of its own mounted with ``app.add_typer`` (as ``memory`` and ``db`` are); import
what it needs inside the function.

The ``mnemobot memory`` sub-commands live in :mod:`mnemobot.runtime.cli.memory`; the
``--config`` option, building a runtime for one command and turning errors into one line,
which both use, in :mod:`mnemobot.runtime.cli.common`; ``init`` and ``new-bot`` write what
:mod:`mnemobot.runtime.cli.scaffold` holds.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mnemobot.runtime.cli.common import (
    ConfigOption,
    fail,
    guard,
    load_bots_for,
    runtime_for,
    settings_for,
    warn,
)
from mnemobot.runtime.cli.lazy import LazyGroup, click_command
from mnemobot.runtime.cli.memories import memories_app
from mnemobot.runtime.cli.memory import memory_app
from mnemobot.runtime.cli.people import people_app

__all__ = ["app", "main"]

app = typer.Typer(
    help="Host chat bots with a shared memory of each person.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(memory_app, name="memory")
app.add_typer(memories_app, name="memories")
app.add_typer(people_app, name="people")
app.add_typer(db_app, name="db")

UserArgument = Annotated[
    str,
    typer.Argument(metavar="USER", help="User id, console name, e-mail, or kind:external_id."),
]


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import version

        typer.echo(f"mnemobot {version('mnemobot')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Host chat bots with a shared memory of each person."""


def _data_folder(database_url: str) -> Path:
    """The folder of the SQLite database (``data/`` for ``sqlite:///data/mnemobot.db``).

    Other databases keep nothing on this machine, so local files go to ``./data``.
    """
    if database_url.startswith("sqlite") and ":///" in database_url:
        path = database_url.split(":///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:":
            return Path(path).parent
    return Path("data")


@app.command()
@guard
def chat(
    bot: Annotated[
        str | None, typer.Option("--bot", "-b", metavar="NAME", help="Bot to talk to.")
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user", "-u", metavar="NAME", help="Who you are (default: your login name)."
        ),
    ] = None,
    web: Annotated[
        bool, typer.Option("--web", help="Chat in the browser instead of the terminal.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Talk to a bot in the terminal; pipe lines in to script a conversation."""
    import asyncio
    import getpass

    from mnemobot.adapters.console import ConsoleChannel, bot_log_to

    if web:
        _chat_in_browser(bot, config)
        return
    with runtime_for(config) as runtime:
        name = bot or runtime.settings.bots.default or _first_bot(runtime)
        runtime.bots.get(name)  # a broken or unknown bot: its error, before the chat opens
        channel = ConsoleChannel(
            runtime,
            bot=name,
            user=user or getpass.getuser(),
            history=_data_folder(runtime.settings.database.url) / "history" / name,
        )
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

        try:
            with bot_log_to(sys.stderr):
                asyncio.run(converse())
        except KeyboardInterrupt:  # Ctrl-C during a turn: the turn is rolled back
            typer.echo("", err=True)
            raise typer.Exit(130) from None


def _first_bot(runtime: Any) -> str:
    names: list[str] = runtime.bots.names()
    if not names:
        fail("no bot loads: see `mnemobot bots` for what is wrong with each")
    return names[0]


def _local_secret(path: Path) -> bytes:
    """A cookie secret kept beside the database, so a browser is known across restarts."""
    import secrets

    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip().encode("utf-8")


def _chat_in_browser(bot: str | None, config: Path | None) -> None:
    """Serve the web chat (and nothing else) and open it in the default browser."""
    import asyncio
    import os
    import signal
    import webbrowser

    from mnemobot.adapters.web.channel import WebChannel
    from mnemobot.runtime.app.deployment import run_deployment

    with runtime_for(config) as runtime:
        first = bot or runtime.settings.bots.default or _first_bot(runtime)
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
def run(
    skip_broken: Annotated[
        bool,
        typer.Option(
            "--skip-broken",
            help="Start without the bots that fail to load (each named in a warning) "
            "instead of refusing to start.",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Serve every configured channel, the webhook server and the janitor until SIGINT/SIGTERM."""
    import asyncio
    import signal

    from mnemobot.adapters.admin.auth import admin_status_line
    from mnemobot.runtime.app.deployment import (
        build_channels,
        page_urls,
        run_deployment,
        warm_up,
    )
    from mnemobot.runtime.ops.logs import configure_logging

    configure_logging()
    with runtime_for(config, bots="loadable" if skip_broken else "all") as runtime:
        configure_logging(settings=runtime.settings)  # now every *_env secret is known
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
        shortfall = runtime.db.connection_shortfall()
        if shortfall is not None:
            warn(shortfall)
        typer.echo(
            f"listening on http://{settings.server.host}:{settings.server.port} "
            f"(database {runtime.db.describe()}); Ctrl-C stops",
            err=True,
        )
        for line in page_urls(settings, channels):
            typer.echo(line, err=True)

        warm_up(runtime)
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
    import gc

    gc.collect()
    gc.freeze()


@app.command("bots")
@guard
def list_bots(config: ConfigOption = None) -> None:
    """List every bot and what it is for; a broken bot with what is wrong (exit status 1)."""
    bots = load_bots_for(settings_for(config), "optional")
    rows: dict[str, str] = {}
    for bot in bots:
        kind = (
            "dialog" if bot.dialog else ("python" if bot.on_message or bot.on_transfer else "llm")
        )
        rows[bot.name] = f"{bot.name}\t{kind}\t{bot.options.description}"
    for name, error in bots.broken.items():
        rows[name] = f"{name}\tBROKEN\t{error}"
    for name in sorted(rows):
        typer.echo(rows[name])
    if bots.broken:
        raise typer.Exit(1)


@app.command()
@guard
def forget(
    user: UserArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    config: ConfigOption = None,
) -> None:
    """Remove everything held about a person, in every table."""
    import json

    from mnemobot.runtime.people.privacy import forget_user

    if not yes and not sys.stdin.isatty():
        fail(f"forget asks first, and there is no terminal to ask on: pass --yes to forget {user}")
    with runtime_for(config, bots="optional") as runtime:
        user_id = runtime.identity.find(user)
        if not yes and not typer.confirm(f"Forget everything about {user} ({user_id})?"):
            raise typer.Exit(1)
        removed = forget_user(runtime.db, user_id)
    typer.echo(json.dumps({"forgotten": user_id, "removed": removed}, indent=2))


@app.command()
@guard
def export(
    user: UserArgument,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write it here, not to stdout."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Everything held about a person, as one JSON document."""
    import json

    from mnemobot.runtime.people.privacy import export_user

    with runtime_for(config, bots="optional") as runtime:
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
    user: Annotated[str, typer.Option("--user", "-u", metavar="USER", help="Whose memory.")],
    bot: Annotated[
        str, typer.Option("--bot", "-b", metavar="NAME", help="Which bot would ask its model.")
    ],
    message: Annotated[
        str,
        typer.Option("--message", "-m", metavar="TEXT", help="The person's message to answer."),
    ] = "Hello!",
    config: ConfigOption = None,
) -> None:
    """Show the prompt a bot would send its model for a person: what is in, what was cut, why.

    Sessions idle past the timeout are ended and summarised first, as mnemobot run would;
    nothing is deleted (retention is the work of mnemobot run's janitor)."""
    import asyncio

    from mnemobot.runtime.bots.runner import preview_prompt

    with runtime_for(config) as runtime:
        chosen = runtime.bots.get(bot)
        user_id = runtime.identity.find(user)
        runtime.janitor.end_idle_sessions()  # deletes nothing, whatever retention says
        if runtime.llm is not None:  # ...and summarises them, as `mnemobot run` would
            asyncio.run(runtime.episode_worker.run_until_idle())
        if runtime.recall.embedder is not None:  # one prompt: wait for a local model to load
            asyncio.run(runtime.recall.embedder.ready())
        built, _ = asyncio.run(preview_prompt(runtime.bot_services, chosen, user_id, message))
    counted = "the model's tokenizer" if runtime.llm is not None else "an estimate (no model set)"
    typer.echo(f"prompt of {chosen.name} for {user} ({user_id}); tokens counted with {counted}")
    typer.echo(built.report())


@app.command()
@guard
def init(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="The folder to set up (default: here).")
    ] = Path("."),
) -> None:
    """Set up a working folder: config/mnemobot.toml, a Python bot and a BASIC bot."""
    from mnemobot.runtime.cli.scaffold import init_folder

    written = init_folder(directory)
    for path in written.created:
        typer.echo(f"created {path}")
    for path in written.kept:
        warn(f"{path} exists already; left as it is")
    where = "" if directory.resolve() == Path.cwd() else f"cd {directory} && "
    typer.echo(f"ready: {where}mnemobot chat (hello-bot), or mnemobot chat --bot greeter (BASIC)")


@app.command("new-bot")
@guard
def new_bot(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The bot's name (its folder).")],
    basic: Annotated[
        bool, typer.Option("--basic", help="A BASIC dialog (start.bas) instead of bot.py.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Add a bot folder under the bots directory, ready to chat with and edit."""
    from mnemobot.runtime.cli.scaffold import new_bot as write_bot

    written = write_bot(settings_for(config).bots.dir, name, basic=basic)
    for path in written.created:
        typer.echo(f"created {path}")
    typer.echo(f"try it: mnemobot chat --bot {name}")


@db_app.command("upgrade")
@guard
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply every pending schema migration."""
    from mnemobot.runtime.storage.database import Database
    from mnemobot.runtime.storage.migrate import current_revision, upgrade
    from mnemobot.runtime.storage.sqlite_vec import sqlite_driver

    settings = settings_for(config)
    driver = sqlite_driver(settings.database.sqlite_driver)
    db = Database(settings.database.url, sqlite_driver=driver)
    db.start()
    try:
        before = current_revision(db)
        upgrade(db)
        after = current_revision(db)
    finally:
        db.stop()
    if before == after:
        typer.echo(f"database schema is up to date at revision {after} ({db.describe()})")
    elif before is None:
        typer.echo(f"database schema created at revision {after} ({db.describe()})")
    else:
        typer.echo(f"database schema upgraded from revision {before} to {after} ({db.describe()})")


@db_app.command("reindex")
@guard
def db_reindex(config: ConfigOption = None) -> None:
    """Rebuild the recall index from what is stored (after a restore, a VACUUM or a rolling
    upgrade)."""
    from mnemobot.runtime.storage.database import Database
    from mnemobot.runtime.storage.fulltext import FullText, place_lines
    from mnemobot.runtime.storage.migrate import ensure_schema
    from mnemobot.runtime.storage.sqlite_vec import sqlite_driver

    settings = settings_for(config)
    driver = sqlite_driver(settings.database.sqlite_driver)
    db = Database(settings.database.url, sqlite_driver=driver)
    db.start()
    try:
        ensure_schema(db)
        FullText(db).rebuild()
        with db.write() as conn:
            lines, sessions = place_lines(conn)
    finally:
        db.stop()
    typer.echo(f"recall index rebuilt ({db.describe()})")
    if lines:
        typer.echo(
            f"{lines} transcript line{'s' if lines != 1 else ''} without a place in their "
            f"session (written by a worker older than revision 0011) numbered, "
            f"in {sessions} session{'s' if sessions != 1 else ''}"
        )


def cli() -> LazyGroup:
    """The ``mnemobot`` command as click runs it: each command built when it runs."""
    return click_command(app)


def main() -> None:
    """Entry point of the ``mnemobot`` console script."""
    cli()(prog_name="mnemobot")
