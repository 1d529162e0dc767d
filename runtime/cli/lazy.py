"""The ``mnemobot`` click command, built from the typer app one command at a time, when used.

Why: ``typer.main.get_command(app)`` turns every command into a click command up front, reading
each function's signature and type hints and building each parameter; for ``mnemobot --help``
and ``mnemobot bots`` that was a sixth of their start-up, spent on commands that do not run.
:class:`LazyGroup` holds typer's own records of its commands (``CommandInfo`` for
``@app.command()``, ``TyperInfo`` for ``app.add_typer(...)``) and builds one with typer's
``get_command_from_info`` when click asks for it by name; a help page lists the commands from
their help texts alone.

Commands are declared the typer way, nothing here changes that: ``@app.command()`` in
:mod:`~mnemobot.runtime.cli.commands`, or a ``typer.Typer()`` of sub-commands mounted with
``app.add_typer(...)`` (as :mod:`~mnemobot.runtime.cli.memory` is). ``typer.testing.CliRunner``
still takes ``app`` and builds it eagerly, the way typer does.

It builds with typer's own ``get_command_from_info`` and ``solve_typer_info_defaults`` (typer is
pinned in pyproject); the tests of every help page and of the errors a typo gets would show a
typer upgrade that changed them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import typer
from typer._click import Command, Context, HelpFormatter
from typer.core import TyperArgument, TyperCommand, TyperGroup
from typer.main import get_command_from_info, solve_typer_info_defaults
from typer.models import CommandInfo, TyperInfo

__all__ = ["LazyGroup", "click_command"]

Declared = CommandInfo | TyperInfo
"""A sub-command as typer records it: ``@app.command()`` or ``app.add_typer(...)``."""


class _Style:
    """What typer hands down from the root app to every command it builds."""

    def __init__(self, app: typer.Typer) -> None:
        self.pretty_exceptions_short = app.pretty_exceptions_short
        self.rich_markup_mode = app.rich_markup_mode
        self.suggest_commands = app.suggest_commands


class _Commands(MutableMapping[str, Command]):
    """A group's sub-commands by name; each is built on first lookup, then kept."""

    def __init__(self, declared: Mapping[str, Declared], style: _Style) -> None:
        self._declared = dict(declared)
        self._built: dict[str, Command] = {}
        self._style = style

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            self._built[name] = _build(self._declared[name], self._style)
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._declared.pop(name, None)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._declared.pop(name, None)
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._declared
        yield from (name for name in self._built if name not in self._declared)

    def __len__(self) -> int:
        return len(self._declared.keys() | self._built.keys())

    def summary(self, name: str) -> Command:
        """The command if built; else a stand-in holding only what a list of commands shows."""
        if name in self._built or name not in self._declared:
            return self[name]
        declared = self._declared[name]
        if isinstance(declared, TyperInfo):
            solved = solve_typer_info_defaults(declared)
            text, short, hidden, deprecated = (
                solved.help,
                solved.short_help,
                solved.hidden,
                solved.deprecated,
            )
        else:
            text = (
                inspect.getdoc(declared.callback)
                if declared.help is None
                else inspect.cleandoc(declared.help)
            )
            short, hidden, deprecated = declared.short_help, declared.hidden, declared.deprecated
        return TyperCommand(name, help=text, short_help=short, hidden=hidden, deprecated=deprecated)


class LazyGroup(TyperGroup):
    """A typer group whose sub-commands are built when run or asked for their own help.

    ``--help`` lists them from :meth:`_Commands.summary`, so listing builds nothing; a typo's
    "Did you mean" still sees every name.
    """

    commands: _Commands

    def __init__(self, *, commands: _Commands, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = commands

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        shown = [(name, self.commands.summary(name)) for name in self.list_commands(ctx)]
        shown = [(name, command) for name, command in shown if not command.hidden]
        if not shown:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in shown)
        rows = [(name, command.get_short_help_str(limit)) for name, command in shown]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def click_command(app: typer.Typer) -> LazyGroup:
    """The click group that runs ``app``: its options and callback now, its commands on use."""
    return _group(TyperInfo(app), _Style(app))


def _declared(app: typer.Typer) -> dict[str, Declared]:
    declared: dict[str, Declared] = {}
    for command in app.registered_commands:
        assert command.callback is not None, "a typer command has a function"
        declared[command.name or typer.main.get_command_name(command.callback.__name__)] = command
    for group in app.registered_groups:
        name = solve_typer_info_defaults(group).name
        assert name, "mnemobot mounts every sub-app under a name: app.add_typer(x, name=...)"
        declared[name] = group
    return declared


def _group(info: TyperInfo, style: _Style) -> LazyGroup:
    """``typer.main.get_group_from_info`` with the sub-commands left to build on use."""
    app = info.typer_instance
    assert app is not None, "a group is a typer app"
    solved = solve_typer_info_defaults(info)
    own = (  # the group's own options (``--version``) and function, as typer builds them
        _build(CommandInfo(callback=solved.callback), style)
        if solved.callback is not None
        else None
    )
    return LazyGroup(
        name=solved.name or "",
        commands=_Commands(_declared(app), style),
        invoke_without_command=solved.invoke_without_command,
        no_args_is_help=solved.no_args_is_help,
        subcommand_metavar=solved.subcommand_metavar,
        result_callback=solved.result_callback,
        context_settings=solved.context_settings,
        callback=None if own is None else own.callback,
        params=[] if own is None else own.params,
        help=solved.help,
        epilog=solved.epilog,
        short_help=solved.short_help,
        options_metavar=solved.options_metavar,
        add_help_option=solved.add_help_option,
        hidden=solved.hidden,
        deprecated=solved.deprecated,
        rich_markup_mode=style.rich_markup_mode,
        rich_help_panel=solved.rich_help_panel,
        suggest_commands=style.suggest_commands,
    )


def _build(declared: Declared, style: _Style) -> Command:
    """The click command typer would have built for ``declared``, groups lazy in turn."""
    if isinstance(declared, TyperInfo):
        return _group(declared, style)
    command = get_command_from_info(
        declared,
        pretty_exceptions_short=style.pretty_exceptions_short,
        rich_markup_mode=style.rich_markup_mode,
    )
    _plain_arguments(command)
    return command


def _plain_arguments(command: Command) -> None:
    """Show arguments as ``KEY``, as click does, not typer's ``{KEY}`` and ``KEY <str>``."""

    def no_type(ctx: Any) -> str:
        return ""

    for param in command.params:
        if isinstance(param, TyperArgument):
            name = param.metavar or (param.name or "").upper()
            usage = name if param.required else f"[{name}]"
            param.display_type_rich = no_type  # type: ignore[method-assign]
            param._usage_display_name = functools.partial(str, usage)  # type: ignore[method-assign]
