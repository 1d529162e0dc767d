"""``mnemobot memories list|add|edit|delete --user U`` on SQLite and PostgreSQL: what an
operator sees and changes, and bad input as one clear line that changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.runtime.cli.test_cli import Cli, _base_env, fails, ok


def _cli(db_url: str, tmp_path: Path) -> Cli:
    (tmp_path / "cwd").mkdir()
    env = {
        **_base_env(),
        "MNEMOBOT_DATABASE_URL": db_url,
        "MNEMOBOT_BOTS_DIR": str(tmp_path / "no-bots"),
    }
    return Cli(cwd=tmp_path / "cwd", env=env)


def test_an_operator_lists_adds_edits_and_deletes_memories(db_url: str, tmp_path: Path) -> None:
    cli = _cli(db_url, tmp_path)
    ok(cli("people", "add", "--account", "console:ana", "--name", "Ana"))

    first = ok(cli("memories", "add", "Prefers tea", "--user", "ana", "-t", "drinks")).strip()
    second = ok(
        cli("memories", "add", "Lives in Lisbon", "--user", "ana", "--input", "I live in Lisbon")
    ).strip()
    assert ok(cli("memories", "edit", first, "Prefers green tea", "--user", "ana")) == (
        f"edited {first}\n"
    )
    listed = [
        json.loads(line)
        for line in ok(cli("memories", "list", "--user", "ana", "--json")).splitlines()
    ]
    assert {(m["id"], m["memory"], tuple(m["topics"]), m["source"]) for m in listed} == {
        (first, "Prefers green tea", ("drinks",), "cli"),
        (second, "Lives in Lisbon", (), "cli"),
    }
    assert next(m for m in listed if m["id"] == second)["input"] == "I live in Lisbon"
    plain = ok(cli("memories", "list", "--user", "ana")).splitlines()
    assert sorted(line.split("\t")[:3] for line in plain) == sorted(
        [[first, "Prefers green tea", "drinks"], [second, "Lives in Lisbon", ""]]
    )

    # bad input: one line, nothing changed
    assert fails(cli("memories", "add", "  ", "--user", "ana")) == (
        "error: a memory's text is empty; say what to remember\n"
    )
    assert "at most 2000 are kept" in fails(cli("memories", "add", "x" * 2001, "--user", "ana"))
    assert fails(cli("memories", "edit", "nope", "anything", "--user", "ana")).startswith(
        "error: user "
    )
    assert "has no memory 'nope'; nothing was changed" in fails(
        cli("memories", "edit", "nope", "anything", "--user", "ana")
    )
    assert "has no memory 'nope'; nothing was changed" in fails(
        cli("memories", "delete", first, "nope", "--user", "ana")
    )
    assert fails(cli("memories", "list", "--user", "nobody")).startswith("error: no user 'nobody'")
    assert len(ok(cli("memories", "list", "--user", "ana")).splitlines()) == 2

    assert ok(cli("memories", "delete", first, second, "--user", "ana")) == "deleted 2\n"
    assert ok(cli("memories", "list", "--user", "ana")) == ""


def test_memories_help_says_what_to_type(tmp_path: Path) -> None:
    cli = Cli(cwd=tmp_path, env=_base_env())

    assert " memories " in ok(cli("--help"))
    assert ok(cli("memories", "add", "--help")).startswith(
        "Usage: mnemobot memories add [OPTIONS] TEXT"
    )
    assert "--user USER" in ok(cli("memories", "delete", "--help"))
