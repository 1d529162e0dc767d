"""The click command built one sub-command at a time (``runtime/cli/lazy.py``).

What it promises: the pages and errors a person reads are the ones typer's own eager build
gives, and a command is turned into a click command only when it runs or shows its own help
(so ``mnemobot --help`` and ``mnemobot bots`` do not pay for every other command). Laziness is
shown with a command that cannot be built: typer fails on its type hint the moment it reads it.
"""

from __future__ import annotations

import pytest
import typer
import typer.main
from typer._click import Command, Context
from typer._click.exceptions import UsageError

from mnemobot.runtime.cli.commands import app, cli
from mnemobot.runtime.cli.lazy import click_command


def help_page(root: Command, *path: str) -> str:
    """The help text of ``mnemobot PATH...`` as click prints it for ``--help``."""
    ctx = root.make_context("mnemobot", [], resilient_parsing=True)
    command = root
    for name in path:
        found = command.get_command(ctx, name)
        assert found is not None, name
        command = found
        ctx = Context(command, info_name=name, parent=ctx, resilient_parsing=True)
    return command.get_help(ctx)


# Pages without positional arguments: for those, typer's eager build prints the same thing
# (pages with arguments differ on purpose: cli() shows them as KEY, not {KEY} / KEY <str>).
SAME_AS_TYPER = [[], ["memory"], ["db"], ["bots"], ["run"], ["chat"], ["memory", "list"]]


@pytest.mark.parametrize("path", SAME_AS_TYPER, ids=lambda p: " ".join(p) or "mnemobot")
def test_a_page_reads_as_typers_own_build_of_it(path: list[str]) -> None:
    lazy, eager = cli(), typer.main.get_command(app)

    assert help_page(lazy, *path) == help_page(eager, *path)


def test_every_command_is_listed_and_a_typo_is_told_the_names_near_it() -> None:
    lazy, eager = cli(), typer.main.get_command(app)
    ctx = lazy.make_context("mnemobot", [], resilient_parsing=True)

    assert lazy.list_commands(ctx) == eager.list_commands(ctx)
    with pytest.raises(UsageError) as typo:
        lazy.main(["memroy"], prog_name="mnemobot", standalone_mode=False)
    assert typo.value.message == "No such command 'memroy'. Did you mean 'memory'?"


def _demo() -> typer.Typer:
    """A command line whose second command typer cannot build: its hint names no type."""
    demo = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None)
    tools = typer.Typer(help="More tools.", no_args_is_help=True, rich_markup_mode=None)
    demo.add_typer(tools, name="tools")

    @demo.command()
    def fine(name: str = "you") -> None:
        """Greets NAME."""
        typer.echo(f"hello {name}")

    @demo.command()
    def unbuildable(value: NoSuchType) -> None:  # noqa: F821
        """Cannot become a click command: typer fails reading its hint."""

    @tools.command()
    def hammer() -> None:
        """Hits things."""
        typer.echo("bang")

    @tools.command()
    def saw(value: NoSuchType) -> None:  # noqa: F821
        """Cannot become a click command either."""

    return demo


def test_a_command_is_built_only_when_it_runs_or_shows_its_own_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    demo = _demo()
    with pytest.raises(NameError, match="NoSuchType"):
        typer.main.get_command(demo)  # typer's own build reads every command up front

    group = click_command(demo)
    listing = help_page(group)
    assert "fine" in listing and "Greets NAME." in listing
    assert "unbuildable" in listing and "Cannot become a click command" in listing
    assert "More tools." in help_page(group)
    assert "Hits things." in help_page(group, "tools")

    group.main(["fine", "--name", "Ana"], prog_name="demo", standalone_mode=False)
    group.main(["tools", "hammer"], prog_name="demo", standalone_mode=False)
    assert capsys.readouterr().out == "hello Ana\nbang\n"

    with pytest.raises(NameError, match="NoSuchType"):
        group.main(["unbuildable", "x"], prog_name="demo", standalone_mode=False)
    with pytest.raises(NameError, match="NoSuchType"):
        group.main(["tools", "saw", "--help"], prog_name="demo", standalone_mode=False)
