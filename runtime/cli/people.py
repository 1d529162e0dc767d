"""``mnemobot people add|link``: create a person before they first write, tie accounts on.

Seed 004's CRM case: a person known by e-mail or channel account is created, given memory
and facts (``mnemobot memory set --user telegram:123 ...``), and when that account first
writes, the message is theirs (see :mod:`mnemobot.runtime.people.seeding`). The commands
module mounts :data:`people_app` as ``mnemobot people``; the runtime is imported when a
command runs.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mnemobot.runtime.cli.common import ConfigOption, guard, runtime_for

__all__ = ["people_app"]

people_app = typer.Typer(
    help="Create people before they write, and tie channel accounts to them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

AccountOption = Annotated[
    list[str] | None,
    typer.Option(
        "--account",
        "-a",
        metavar="KIND:ID",
        help="A channel account: telegram:123456789, slack:TEAM:USER (or slack:TEAM/USER), "
        "console:NAME. Repeat for several.",
    ),
]


@people_app.command("add")
@guard
def people_add(
    email: Annotated[
        str | None, typer.Option("--email", "-e", metavar="ADDRESS", help="Their e-mail.")
    ] = None,
    account: AccountOption = None,
    name: Annotated[
        str | None,
        typer.Option("--name", "-n", metavar="NAME", help="Their name (default: the platform's)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create a person by e-mail and/or channel account; prints their user id.

    When one of the accounts first writes, the message is theirs.
    """
    from mnemobot.runtime.people.seeding import add_person_in

    with runtime_for(config, bots="optional") as runtime, runtime.db.write() as conn:
        user_id = add_person_in(
            conn, name=name, email=email, accounts=account or [], now=runtime.clock.now()
        )
    typer.echo(user_id)


@people_app.command("link")
@guard
def people_link(
    user: Annotated[
        str,
        typer.Argument(metavar="USER", help="User id, e-mail, console name or kind:external_id."),
    ],
    account: AccountOption = None,
    config: ConfigOption = None,
) -> None:
    """Tie channel accounts to a person; an account that already wrote as someone else has
    that person merged into this one (as /link does)."""
    from mnemobot.runtime.errors import InvalidIdentity
    from mnemobot.runtime.people.seeding import link_account_in

    if not account:
        raise InvalidIdentity("say which account to tie on: --account kind:external_id")
    with runtime_for(config, bots="optional") as runtime:
        user_id = runtime.identity.find(user)
        with runtime.db.write() as conn:
            linked = [link_account_in(conn, user_id, a, runtime.clock.now()) for a in account]
    for one in linked:
        merged = f" (merged user {one.merged_from} into {user_id})" if one.merged_from else ""
        typer.echo(f"linked {one.account} to {user_id}{merged}")
