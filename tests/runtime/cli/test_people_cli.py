"""``mnemobot people add|link`` refuse bad input with one clear line and write nothing; the
walk from seeding to first contact is tests/system/scenarios/test_seeded_person.py."""

from __future__ import annotations

from pathlib import Path

from tests.runtime.cli.test_cli import Cli, _base_env, fails, ok


def test_bad_people_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "cwd").mkdir()
    env = {
        **_base_env(),
        "MNEMOBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'own.db'}",
        "MNEMOBOT_BOTS_DIR": str(tmp_path / "no-bots"),
    }
    cli = Cli(cwd=tmp_path / "cwd", env=env)

    assert fails(cli("people", "add", "--account", "telgram:1")) == (
        "error: unknown channel kind 'telgram' in 'telgram:1'; did you mean telegram? "
        "known kinds: telegram, slack, console, web\n"
    )
    assert fails(cli("people", "add", "--name", "Ana")) == (
        "error: say who the person is: --email ADDRESS and/or --account kind:external_id\n"
    )
    assert fails(cli("memory", "set", "plan", "1", "--user", "telgram:123")) == (
        "error: unknown channel kind 'telgram' in 'telgram:123'; did you mean telegram? "
        "known kinds: telegram, slack, console, web\n"
    )
    user_id = ok(cli("people", "add", "--account", "slack:T1/U1", "--name", "Ana")).strip()
    assert fails(cli("people", "link", "Ana")) == (
        "error: say which account to tie on: --account kind:external_id\n"
    )
    assert fails(cli("people", "add", "--account", "slack:T1:U1")) == (
        f"error: slack:T1:U1 is already the account of user {user_id}; give them memory with "
        "--user, or tie more accounts to them with `mnemobot people link`\n"
    )
    assert ok(cli("memory", "set", "plan", "1", "--user", "slack:T1:U1")) == "set plan\n"
    assert ok(cli("memory", "list", "--user", "Ana")) == "plan\t1\tpreference\n"


def test_people_help_says_what_to_type(tmp_path: Path) -> None:
    cli = Cli(cwd=tmp_path, env=_base_env())

    assert " people " in ok(cli("--help"))
    add = ok(cli("people", "add", "--help"))
    assert add.startswith("Usage: mnemobot people add [OPTIONS]")
    assert "-a, --account KIND:ID" in add and "-e, --email ADDRESS" in add
    assert ok(cli("people", "link", "--help")).startswith(
        "Usage: mnemobot people link [OPTIONS] USER"
    )


def test_a_memory_write_may_name_a_person_who_has_not_written_yet(tmp_path: Path) -> None:
    """DESIGN (command line): memory commands may name someone new; they are created."""
    (tmp_path / "cwd").mkdir()
    env = {
        **_base_env(),
        "MNEMOBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'own.db'}",
        "MNEMOBOT_BOTS_DIR": str(tmp_path / "no-bots"),
    }
    cli = Cli(cwd=tmp_path / "cwd", env=env)

    # reading names nobody: an error, and nobody is made
    assert fails(cli("memory", "list", "--user", "telegram:123")).startswith(
        "error: no user 'telegram:123'"
    )
    made = cli("memory", "set", "plan", '"pro"', "--user", "telegram:123")
    assert made.returncode == 0, made.stderr
    assert made.stdout == "set plan\n"
    user_id = made.stderr.split()[2]
    assert made.stderr == (
        f"created user {user_id} for 'telegram:123': nobody had written from it yet; their "
        "first message will be theirs\n"
    )
    # the second write finds them, says nothing more, and both reads see one person
    assert ok(cli("memory", "set", "tier", "2", "--user", "telegram:123")) == "set tier\n"
    assert ok(cli("memory", "list", "--user", user_id)) == (
        'plan\t"pro"\tpreference\ntier\t2\tpreference\n'
    )
    # an e-mail and a console name work the same way; a free-text memory too
    added = cli("memories", "add", "Prefers e-mail", "--user", "Zoe@Example.com")
    assert added.returncode == 0 and added.stderr.startswith("created user ")
    assert ok(cli("memories", "list", "--user", "zoe@example.com")).split("\t")[1] == (
        "Prefers e-mail"
    )
    assert cli("memory", "set", "k", "1", "--user", "z1").stderr.startswith("created user ")
    assert ok(cli("memory", "get", "k", "--user", "console:z1")) == "1\n"
    # an id names nobody to create
    assert (
        fails(cli("memory", "set", "k", "1", "--user", "0b6f4a4e-8f43-4a55-9c1f-1e3a2b6c7d8e"))
        == "error: no user with the id '0b6f4a4e-8f43-4a55-9c1f-1e3a2b6c7d8e'\n"
    )
