"""The ``mnemobot`` command line, run as a person runs it: the real console script in a
subprocess, in an empty working directory, on SQLite and on PostgreSQL.

Each launch costs about a second, so one test walks through several commands where a
person would run them one after another.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.migrate import HEAD, upgrade
from tests.support import Chat, free_port

REPO = Path(__file__).resolve().parents[3]
EXAMPLE_BOTS = ("sales-bot", "support-bot")
SCRIPT = Path(sys.executable).with_name("mnemobot")

SALES_HELLO = "sales-bot: Hi! I'm the sales bot. What's your name?"
SALES_ASKS_LANGUAGE = (
    "sales-bot: Nice to meet you, Ana! Which language do you prefer? "
    "(English, Português, Español, Français, Deutsch)"
)
SALES_GOT_IT = (
    "sales-bot: Certo, Ana (pt-BR). Vendemos os planos Basic, Pro e Team. "
    "Pergunte o que quiser, ou diga 'suporte' se precisar de ajuda com um problema."
)
SUPPORT_OLA_ANA = "support-bot: Olá, Ana! Sou o bot de suporte. Como posso ajudar?"
NO_USER_ANA = (
    "error: no user 'ana' (give a user id, an e-mail, a console name, or kind:external_id "
    "such as telegram:123456789; `mnemobot people add` creates a person before they write)\n"
)


@dataclass
class Cli:
    """Runs ``mnemobot ARGS`` in ``cwd`` with ``env``; returns the finished process."""

    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    backend: str = "sqlite"

    def __call__(
        self, *args: str, input: str | None = None, python: list[str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [*python, "-m", "mnemobot.runtime.cli"] if python else [str(SCRIPT)]
        return subprocess.run(
            [*command, *args],
            cwd=self.cwd,
            env=self.env,
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=120,
            check=False,
        )


def _base_env() -> dict[str, str]:
    # The autouse _offline fixture has already removed MNEMOBOT_* and secrets from os.environ.
    env = dict(os.environ)
    env.update(
        {
            "PYTHONIOENCODING": "utf-8",
            "NO_COLOR": "1",
            "TERM": "dumb",
            "COLUMNS": "200",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
    )
    return env


@pytest.fixture(scope="module")
def example_bots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the two example bots, so bots added to bots/ later change nothing here."""
    root = tmp_path_factory.mktemp("bots")
    for name in EXAMPLE_BOTS:
        shutil.copytree(REPO / "bots" / name, root / name)
    return root


@pytest.fixture
def make_runtime(make_runtime, example_bots: Path):
    """conftest's runtime factory, on the copied example bots."""
    return functools.partial(make_runtime, bots_dir=example_bots)


def _cli(tmp_path: Path, db_url: str | None, bots: Path, backend: str = "sqlite") -> Cli:
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    env = _base_env()
    if db_url is not None:
        env["MNEMOBOT_DATABASE_URL"] = db_url
    env["MNEMOBOT_BOTS_DIR"] = str(bots)
    return Cli(cwd=cwd, env=env, backend=backend)


@pytest.fixture
def cli(db_url: str, tmp_path: Path, example_bots: Path) -> Cli:
    """mnemobot on this test's database (SQLite, then PostgreSQL) with the example bots."""
    backend = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    return _cli(tmp_path, db_url, example_bots, backend)


@pytest.fixture
def sqlite_cli(tmp_path: Path, example_bots: Path) -> Cli:
    """mnemobot on a fresh SQLite file of its own, for behaviour that is not about storage."""
    return _cli(tmp_path, f"sqlite:///{tmp_path / 'own.db'}", example_bots)


def seed(make_runtime, user: str, lines: list[str], bot: str = "sales-bot") -> None:
    """Let ``user`` chat in-process (cheaper than a subprocess), then close the database."""

    async def talk() -> None:
        runtime = await make_runtime()
        chat = Chat(runtime, bot=bot, user=user)
        for line in lines:
            await chat.say(line)
            runtime.clock.advance(seconds=1)  # a person types; lines don't share a moment
        await runtime.stop()

    asyncio.run(talk())


def user_memory(make_runtime, user: str) -> dict:
    """What ``user`` holds now, read in-process (the CLI's own reading is what is tested)."""
    from mnemobot.runtime.memory.policy import UserMemoryPolicy
    from mnemobot.runtime.memory.store import MemoryScope

    async def read() -> dict:
        runtime = await make_runtime()
        scope = MemoryScope(
            runtime.memory,
            runtime.memory.user_ref(runtime.identity.find(user), UserMemoryPolicy()),
        )
        items = await scope.items()
        await runtime.stop()
        return items

    return asyncio.run(read())


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr}"
    assert result.stderr == ""
    return result.stdout


def fails(result: subprocess.CompletedProcess[str]) -> str:
    """The one error line on stderr of a command that exited 1 and printed nothing else."""
    assert result.returncode == 1, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


# --- chat ------------------------------------------------------------------------------------


def test_piped_chat_prints_replies_and_a_second_process_remembers(cli):
    first = cli(
        "chat",
        "--bot",
        "sales-bot",
        "--user",
        "ana",
        input="hi\n\nAna\n   \nPortuguês\n/quit\nthis line is never read\n",
    )

    assert ok(first).splitlines() == [SALES_HELLO, SALES_ASKS_LANGUAGE, SALES_GOT_IT]

    # A new process, another bot, the same person: the name and language are still known.
    second = cli("chat", "--bot", "support-bot", "--user", "ana", input="hello\n")

    assert ok(second) == SUPPORT_OLA_ANA + "\n"


# --- memory ----------------------------------------------------------------------------------


def test_memory_list_get_set_delete(cli, make_runtime):
    seed(make_runtime, "ana", ["hi", "Ana", "Português"])
    prefs = '{"tags": ["a", 1, 2.5, true, null], "ü": "ç"}'

    before = datetime.now(UTC)
    assert ok(
        cli("memory", "set", "prefs", prefs, "--ttl", "3600", "--type", "fact", "--user", "ana")
    ) == ("set prefs\n")
    after = datetime.now(UTC)

    *plain, prefs_line = ok(cli("memory", "list", "--user", "ana")).splitlines()

    assert plain == [
        'language\t"pt-BR"\tpreference',
        'name\t"Ana"\tfact',
    ]
    key, value, kind, expires = prefs_line.split("\t")
    assert (key, json.loads(value), kind) == ("prefs", json.loads(prefs), "fact")
    assert expires.startswith("expires ")
    expiry = datetime.fromisoformat(expires.removeprefix("expires "))
    assert before + timedelta(seconds=3599) <= expiry <= after + timedelta(seconds=3601)

    got = ok(cli("memory", "get", "prefs", "--user", "ana"))
    assert got.endswith("}\n") and got.count("\n") == 1
    assert json.loads(got) == json.loads(prefs)  # PostgreSQL's JSONB may reorder the keys

    assert ok(cli("memory", "delete", "prefs", "--user", "ana")) == "deleted prefs\n"
    assert fails(cli("memory", "delete", "prefs", "--user", "ana")) == (
        "error: no key 'prefs': nothing deleted\n"
    )
    assert fails(cli("memory", "get", "prefs", "--user", "ana")) == "error: no key 'prefs'\n"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_memory_set_takes_json_or_text_and_bot_memory_is_per_bot(cli, make_runtime):
    seed(make_runtime, "ana", ["hi"])

    assert fails(cli("memory", "set", "mood", "happy", "--user", "ana")) == (
        "error: value is not JSON: 'happy'. Quote text as JSON ('\"happy\"') or pass --text "
        "to store it as a string\n"
    )
    assert ok(cli("memory", "set", "note", "hello, world", "--text", "-u", "ana")) == "set note\n"
    assert fails(cli("memory", "list")) == (
        "error: say whose memory: --user NAME (or --bot NAME for a bot's own memory)\n"
    )

    assert ok(cli("memory", "set", "counter", "3", "--bot", "sales-bot")) == "set counter\n"
    assert ok(cli("memory", "get", "counter", "--bot", "sales-bot")) == "3\n"
    assert fails(cli("memory", "get", "counter", "--bot", "support-bot")) == (
        "error: no key 'counter'\n"
    )

    # No "mood" (refused), no "counter" (sales-bot's own memory, not the person's).
    assert user_memory(make_runtime, "ana") == {"note": "hello, world"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_negative_ttl_is_refused_and_writes_nothing(cli, make_runtime):
    seed(make_runtime, "ana", ["hi"])

    error = fails(cli("memory", "set", "mood", '"ok"', "--ttl", "-5", "--user", "ana"))

    assert error.startswith("error: ")
    assert "ttl" in error.lower()
    assert user_memory(make_runtime, "ana") == {}


# --- export and forget ------------------------------------------------------------------------


def test_export_then_forget_one_person_and_nobody_else(cli, make_runtime):
    seed(make_runtime, "ana", ["hi", "Ana", "Português"])
    seed(make_runtime, "bruno", ["hi", "Bruno", "Español"])

    exported = ok(cli("export", "ana"))

    document = json.loads(exported)  # one JSON document, nothing around it
    ana_id = document["user_id"]
    assert [(i["channel_kind"], i["external_id"]) for i in document["identities"]] == [
        ("console", "ana")
    ]
    assert {m["key"]: m["value"] for m in document["user_memory"]} == {
        "name": "Ana",
        "language": "pt-BR",
    }
    said = [t["text"] for t in document["turns"] if t["role"] == "user"]
    assert said == ["hi", "Ana", "Português"]
    # Three messages, three answers: each answer shares its message's moment and follows it.
    assert [t["role"] for t in document["turns"]] == ["user", "bot"] * 3
    assert all(t["user_id"] == ana_id for t in document["turns"])
    assert "Bruno" not in exported
    assert '"bruno"' not in exported

    report = json.loads(ok(cli("forget", "ana", "--yes")))

    assert report["forgotten"] == ana_id
    removed = report["removed"]
    assert removed["users"] == 1
    assert removed["identities"] == 1
    assert removed["user_memory"] == 2
    assert removed["turns"] == 6
    assert removed["sessions"] == 1
    assert fails(cli("memory", "list", "--user", "ana")) == NO_USER_ANA
    assert ok(cli("memory", "list", "--user", "bruno")).splitlines() == [
        'language\t"es"\tpreference',
        'name\t"Bruno"\tfact',
    ]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_forget_without_a_terminal_says_to_pass_yes_and_keeps_everything(cli, make_runtime):
    # Asking on a terminal is tested in test_terminal.py, through a pseudo-terminal.
    seed(make_runtime, "ana", ["hi", "Ana"])

    declined = cli("forget", "ana", input="y\n")

    assert fails(declined) == (
        "error: forget asks first, and there is no terminal to ask on: pass --yes to forget ana\n"
    )
    assert user_memory(make_runtime, "ana") == {"name": "Ana"}


# --- errors a person makes ---------------------------------------------------------------------


def test_an_unknown_bot_is_one_line_and_exit_1(sqlite_cli):
    result = sqlite_cli("chat", "--bot", "nobody", "--user", "ana", input="hi\n")

    assert fails(result) == "error: unknown bot 'nobody'; bots here: sales-bot, support-bot\n"


def test_a_broken_bot_is_named_and_the_others_carry_on(sqlite_cli, tmp_path, example_bots):
    bots = tmp_path / "bots"
    shutil.copytree(example_bots, bots)
    config = bots / "sales-bot" / "config.csv"
    rows = config.read_text(encoding="utf-8").splitlines()
    config.write_text("\n".join([*rows, "user-memory-max-key,5"]) + "\n", encoding="utf-8")
    sqlite_cli.env["MNEMOBOT_BOTS_DIR"] = str(bots)
    broken = (
        f"{config} row {len(rows) + 1}: unknown option 'user-memory-max-key'; "
        "did you mean user-memory-max-keys? known options are listed in config/README.md"
    )

    # The healthy bot still talks; the broken one is named on stderr, stdout stays replies.
    talk = sqlite_cli("chat", "--bot", "support-bot", "--user", "ana", input="hi\n")
    assert talk.returncode == 0, talk.stderr
    assert talk.stdout.startswith("support-bot: ")
    assert talk.stderr == f"warning: bot sales-bot is broken and skipped: {broken}\n"

    # Asking for the broken one gives its own error.
    both = sqlite_cli("chat", "--bot", "sales-bot", "--user", "ana", input="hi\n")
    assert both.returncode == 1 and both.stdout == ""
    assert both.stderr == (
        f"warning: bot sales-bot is broken and skipped: {broken}\nerror: {broken}\n"
    )

    # `bots` lists every bot and marks the broken one; exit status 1 says one is broken.
    listed = sqlite_cli("bots")
    assert listed.returncode == 1
    assert listed.stdout.splitlines() == [
        f"sales-bot\tBROKEN\t{broken}",
        "support-bot\tpython\tGreets you by name in your language and opens support tickets",
    ]

    # Operator commands that run no bot do not care.
    assert ok(sqlite_cli("memory", "set", "mood", '"ok"', "--user", "ana")) == "set mood\n"
    assert ok(sqlite_cli("memory", "list", "--user", "ana")).endswith('mood\t"ok"\tpreference\n')

    # `run` refuses to start, naming the file and the row, unless told to skip broken bots.
    assert fails(sqlite_cli("run")) == f"error: {broken}\n"

    # A typo in a handler name of bot.py is caught and a fix suggested.
    config.write_text("\n".join(rows) + "\n", encoding="utf-8")
    bot_py = bots / "support-bot" / "bot.py"
    source = bot_py.read_text(encoding="utf-8")
    bot_py.write_text(source.replace("def on_message(", "def on_mesage("), encoding="utf-8")
    listed = sqlite_cli("bots")
    assert listed.returncode == 1
    assert listed.stdout.splitlines()[1] == (
        f"support-bot\tBROKEN\t{bot_py}: on_mesage is not a handler name and would never "
        "run; did you mean on_message?"
    )

    bot_py.write_text("async def on_message(ctx)\n    pass\n", encoding="utf-8")
    assert ok(sqlite_cli("export", "ana")).startswith("{")
    assert ok(sqlite_cli("forget", "ana", "--yes")).startswith("{")


def test_a_database_that_is_down_is_one_clear_line(sqlite_cli):
    sqlite_cli.env["MNEMOBOT_DATABASE_URL"] = "postgresql+psycopg://127.0.0.1:1/mnemobot"

    error = fails(sqlite_cli("memory", "list", "--user", "ana"))

    assert error.startswith("error: database unavailable: ")


# --- db upgrade, configuration ---------------------------------------------------------------


def test_db_upgrade_can_run_twice(cli):
    expected = f"database schema is up to date at revision {HEAD} ({cli.backend})\n"

    assert ok(cli("db", "upgrade")) == expected
    assert ok(cli("db", "upgrade")) == expected


def test_db_upgrade_names_the_revisions_it_moved_between(sqlite_cli, tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'own.db'}")  # sqlite_cli's database, still empty
    db.start()
    upgrade(db, "0010")
    db.stop()

    said = ok(sqlite_cli("db", "upgrade"))

    assert said == f"database schema upgraded from revision 0010 to {HEAD} (sqlite)\n"


def test_without_configuration_the_database_is_data_mnemobot_db(tmp_path, example_bots):
    bare = _cli(tmp_path, None, example_bots)

    said = ok(bare("db", "upgrade"))

    assert said == f"database schema created at revision {HEAD} (sqlite)\n"
    assert (bare.cwd / "data" / "mnemobot.db").is_file()


def test_config_option(tmp_path, example_bots):
    bare = _cli(tmp_path, None, example_bots)
    del bare.env["MNEMOBOT_BOTS_DIR"]
    database = tmp_path / "from-config.db"
    config = tmp_path / "deploy.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [database]
            url = "sqlite:///{database}"
            [bots]
            dir = "{example_bots}"
            default = "support-bot"
            """
        ),
        encoding="utf-8",
    )

    # --config PATH: its database, its bots, its default bot (support-bot, not sales-bot).
    replies = ok(bare("chat", "--config", str(config), "--user", "zoe", input="hello\n"))
    assert replies == (
        "support-bot: Hello! I'm the support bot. I don't know you yet: what's your name? "
        "(Or tell sales-bot, and I'll remember.)\n"
    )
    assert database.is_file()

    # A missing file is an error, not a silent fall back to the defaults.
    assert fails(bare("memory", "list", "--user", "zoe", "--config", "missing.toml")) == (
        "error: config file not found: missing.toml\n"
    )

    bad = tmp_path / "bad.toml"
    bad.write_text('[sessions]\ntimeout = "soon"\n', encoding="utf-8")
    error = fails(bare("db", "upgrade", "--config", str(bad)))
    assert error == (
        f"error: {bad}: sessions.timeout: not a duration: 'soon' (use e.g. 90, 5m, 12h, 60d)\n"
    )

    bad.write_text("[sesions]\ntimeout = 60\n", encoding="utf-8")
    error = fails(bare("db", "upgrade", "--config", str(bad)))
    assert error == f"error: {bad}: unknown section 'sesions' (did you mean sessions?)\n"


# --- start-up cost -------------------------------------------------------------------------------


def test_help_lists_the_commands_without_importing_litellm(sqlite_cli):
    result = sqlite_cli("--help", python=[sys.executable, "-X", "importtime"])

    assert result.returncode == 0, result.stderr
    assert "Usage: mnemobot" in result.stdout
    for command in ("chat", "run", "memory", "forget", "export", "db"):
        assert f" {command} " in result.stdout, command
    assert "mnemobot.runtime.cli.commands" in result.stderr  # the import log is there to read
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    roots = {name.split(".")[0] for name in imported}
    # Help needs typer and nothing the commands need when they run...
    needed_later = ("litellm", "pydantic", "pydantic_settings", "sqlalchemy", "rich", "asyncio")
    for heavy in (*needed_later, "json"):  # json: ~1.5 ms, a tenth of what help adds to typer
        assert heavy not in roots, f"--help imports {heavy}: import it in the command using it"
    # ...and of mnemobot only the command line itself (not even the errors).
    ours = {name for name in imported if name.startswith("mnemobot.")}
    assert {name for name in ours if not name.startswith("mnemobot.runtime.cli")} == {
        "mnemobot.runtime",
        "mnemobot.runtime._exports",
    }


def test_bots_lists_the_folder_without_a_database_a_model_or_a_channel(tmp_path):
    bots = tmp_path / "bots"
    for name in ("sales-bot", "support-bot", "welcome-bot"):  # Python bots and a BASIC dialog
        shutil.copytree(REPO / "bots" / name, bots / name)
    mnemobot = _cli(tmp_path, None, bots)

    result = mnemobot("bots", python=[sys.executable, "-X", "importtime"])

    assert result.returncode == 0, result.stderr
    assert [line.split("\t")[:2] for line in result.stdout.splitlines()] == [
        ["sales-bot", "python"],
        ["support-bot", "python"],
        ["welcome-bot", "dialog"],
    ]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "mnemobot.runtime.dialogs.parser" in imported  # the log is there, the dialog parsed
    roots = {name.split(".")[0] for name in imported}
    # Listing reads the settings and the bots folder: no database, no model, no platform SDK.
    for heavy in (
        "litellm",
        "sqlalchemy",
        "sqlmodel",
        "alembic",
        "psycopg",
        "httpx",
        "telegram",
        "slack_bolt",
        "slack_sdk",
        "starlette",
        "uvicorn",
        "prompt_toolkit",
        "rich",
    ):
        assert heavy not in roots, heavy


HELP_PAGES = [
    [],
    *[
        [command]
        for command in ("chat", "run", "bots", "forget", "export", "prompt", "init", "new-bot")
    ],
    ["memory"],
    *[["memory", command] for command in ("list", "get", "set", "delete")],
    ["db"],
    ["db", "upgrade"],
]


def test_help_says_what_to_type_without_type_markers(sqlite_cli):
    for page in HELP_PAGES:
        text = ok(sqlite_cli(*page, "--help"))
        assert text.startswith(f"Usage: mnemobot {' '.join([*page, ''])}".replace("  ", " "))
        assert not re.search(r"<(bool|str|int|float|path)>|\{[A-Za-z]+\}", text), (page, text)

    memory_set = ok(sqlite_cli("memory", "set", "--help"))
    assert "Usage: mnemobot memory set [OPTIONS] KEY VALUE" in memory_set
    assert "--ttl SECONDS" in memory_set and "-u, --user USER" in memory_set
    assert "--skip-broken" in ok(sqlite_cli("run", "--help"))

    assert re.fullmatch(r"mnemobot \d+\.\d+\.\d+\S*\n", ok(sqlite_cli("--version")))


def test_chat_without_a_model_does_not_import_litellm(sqlite_cli):
    result = sqlite_cli(
        "chat",
        "--bot",
        "sales-bot",
        "--user",
        "zoe",
        input="hi\n",
        python=[sys.executable, "-X", "importtime"],
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == SALES_HELLO + "\n"
    assert "mnemobot.adapters.console" in result.stderr
    assert "litellm" not in result.stderr


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_run_warns_as_it_starts_when_postgresql_has_too_few_connections_for_it(cli):
    env = cli.env | {
        "MNEMOBOT_WORKERS__MAX_TURNS": "500",
        "MNEMOBOT_SERVER__PORT": str(free_port()),
    }
    with subprocess.Popen(
        [str(SCRIPT), "run"], cwd=cli.cwd, env=env, stderr=subprocess.PIPE, text=True
    ) as server:
        assert server.stderr is not None
        said = []
        try:
            for line in server.stderr:  # checked before it names what it serves
                said.append(line)
                if line.startswith("home page:"):
                    break
        finally:
            server.send_signal(signal.SIGINT)
        said += server.stderr.readlines()  # to the end: stopped
        server.wait(timeout=60)
    warnings = [line for line in said if line.startswith("warning: PostgreSQL takes ")]
    assert len(warnings) == 1, "".join(said)
    assert "this process may open 517 (14 for statements and arriving events, 500 " in warnings[0]


def test_prompt_ends_idle_sessions_but_deletes_nothing_retention_has_aged_out(cli, make_runtime):
    """A preview on a copy of old data: its turns (said on the test clock's 2026-01-01) are
    past a 30-day [janitor] turns, which `mnemobot run` would purge; `prompt` must not."""
    seed(make_runtime, "ana", ["hi", "my zeppelin collection grew to forty models"])
    cli.env["MNEMOBOT_JANITOR__TURNS"] = str(30 * 86400)

    shown = ok(cli("prompt", "--user", "ana", "--bot", "sales-bot", "-m", "zeppelin models?"))

    # recalled from an ended session (a line of the open one would be a chat message)
    assert "user: my zeppelin collection grew to forty models" in shown
    found = ok(cli("memory", "search", "--user", "ana", "zeppelin"))
    assert "my zeppelin collection grew to forty models" in found  # still in the turn log


def test_memory_search_finds_what_a_person_said_to_any_bot_with_where(cli, make_runtime):
    seed(make_runtime, "ana", ["hi", "Ana", "Português"])
    seed(make_runtime, "bea", ["hi", "Bea", "Português"])

    lines = ok(cli("memory", "search", "--user", "ana", "portugues")).splitlines()

    asked = "Nice to meet you, Ana! Which language do you prefer? (English, Português, Español, Français, Deutsch)"
    assert sorted(lines) == [
        f"2026-01-01\tturn bot sales-bot console:sales-bot\t{asked}",
        "2026-01-01\tturn user sales-bot console:sales-bot\tPortuguês",
    ]
    found = [
        json.loads(line)
        for line in ok(cli("memory", "search", "-u", "ana", "--json", "português")).splitlines()
    ]
    [said] = [f for f in found if f.get("role") == "user"]
    assert (said["kind"], said["text"], said["bot"], said["date"]) == (
        "turn",
        "Português",
        "sales-bot",
        "2026-01-01",
    )
    assert fails(cli("memory", "search", "--user", "ana", "zeppelin")) == (
        "nothing remembered about ana matches 'zeppelin'\n"
    )
    pasted = "zeppelin " * 2000  # a page pasted as the query: the answer names its start
    said = fails(cli("memory", "search", "--user", "ana", pasted))
    assert said == f"nothing remembered about ana matches {pasted[:79] + '…'!r}\n"


def test_db_reindex_rebuilds_the_recall_index(cli, make_runtime):
    seed(make_runtime, "ana", ["hi", "Ana", "Português"])

    assert ok(cli("db", "reindex")).startswith("recall index rebuilt (")
    assert "Português" in ok(cli("memory", "search", "--user", "ana", "portugues"))


def test_db_reindex_numbers_lines_a_worker_older_than_0011_wrote(cli, make_runtime, db_url):
    from sqlalchemy import select, update

    from mnemobot.runtime.storage.tables import TURNS

    seed(make_runtime, "ana", ["hi", "Ana", "Português"])
    db = Database(db_url)
    db.start()
    with db.write() as conn:  # as an older worker would have written them: no place
        conn.execute(update(TURNS).where(TURNS.c.role == "user").values(line=None))
    said = ok(cli("db", "reindex")).splitlines()
    with db.read() as conn:
        lines = conn.execute(select(TURNS.c.line).order_by(TURNS.c.created_at, TURNS.c.seq))
        numbered = [line for (line,) in lines]
    db.stop()

    assert said[1] == (
        "3 transcript lines without a place in their session (written by a worker older "
        "than revision 0011) numbered, in 1 session"
    )
    assert numbered == list(range(6))  # three said, three answered, in order
    assert len(ok(cli("db", "reindex")).splitlines()) == 1  # nothing more to number


# --- refusals an operator can read ----------------------------------------------------------


def test_bot_memory_refuses_ttl_and_type_and_writes_nothing(cli, make_runtime):
    for extra in (["--ttl", "5"], ["--type", "fact"], ["--ttl", "0", "--type", "fact"]):
        error = fails(cli("memory", "set", "counter", "3", "--bot", "sales-bot", *extra))
        assert error.startswith(f"error: {' and '.join(extra[::2])}: a bot's own memory keeps")
        assert "nothing was written" in error
    assert fails(cli("memory", "get", "counter", "--bot", "sales-bot")) == (
        "error: no key 'counter'\n"
    )
    assert ok(cli("memory", "set", "counter", "3", "--bot", "sales-bot")) == "set counter\n"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("mysql://x/y", "error: unsupported database 'mysql' (database.url): use sqlite:///PATH"),
        ("not a url", "error: database.url is not a database URL (not shown: it may hold a"),
        (
            "postgresql://ana:s3cr3t@host:port/db",
            "error: database.url is not a database URL (not shown: it may hold a",
        ),
    ],
)
def test_an_unsupported_database_url_is_one_line_saying_which_work(sqlite_cli, url, said):
    sqlite_cli.env["MNEMOBOT_DATABASE_URL"] = url
    for command in (["memory", "list", "--user", "ana"], ["db", "upgrade"]):
        error = fails(sqlite_cli(*command))
        assert error.startswith(said)
        assert "postgresql://USER@HOST/DB" in error
        assert "s3cr3t" not in error
