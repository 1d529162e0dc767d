"""``mnemobot memories list|add|edit|delete --user U``: a person's free-text memories by hand.

Seed 004's operator tasks: audit what agentic mode kept, correct or delete a wrong memory,
seed memories before first contact. Operators may write in every ``user-memories`` mode (the
mode says whether a *bot's code* may), within the person's limit (1000, the
``user-memory-max-keys`` default). Each change records source ``cli``. The commands module
mounts :data:`memories_app` as ``mnemobot memories``; the runtime is imported when a command
runs, so ``mnemobot --help`` stays cheap.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mnemobot.runtime.cli.common import (
    ConfigOption,
    fail,
    guard,
    person_for_writing,
    runtime_for,
)

__all__ = ["memories_app"]

memories_app = typer.Typer(
    help="Read and change a person's free-text memories.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

UserOption = Annotated[
    str,
    typer.Option(
        "--user",
        "-u",
        metavar="USER",
        help="Whose memories: user id, console name, e-mail or kind:external_id.",
    ),
]
TopicOption = Annotated[
    list[str] | None,
    typer.Option("--topic", "-t", metavar="TOPIC", help="A topic; repeat for several."),
]
TextArgument = Annotated[str, typer.Argument(metavar="TEXT", help="What to remember.")]


@memories_app.command("list")
@guard
def memories_list(
    user: UserOption,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """Every memory, oldest first: id, text, topics, when and by whom it last changed."""
    import json

    with runtime_for(config, bots="optional") as runtime:
        found = runtime.memories.list(runtime.identity.find(user))
    for memory in found:
        if as_json:
            typer.echo(json.dumps(memory.as_dict(), ensure_ascii=False))
            continue
        by = memory.source + (f" {memory.bot}" if memory.bot else "")
        topics = ",".join(memory.topics)
        typer.echo(f"{memory.id}\t{memory.text}\t{topics}\t{memory.updated_at.isoformat()}\t{by}")


@memories_app.command("add")
@guard
def memories_add(
    text: TextArgument,
    user: UserOption,
    topic: TopicOption = None,
    said: Annotated[
        str | None,
        typer.Option("--input", metavar="TEXT", help="What the person said it came from."),
    ] = None,
    feedback: Annotated[
        str | None, typer.Option("--feedback", metavar="TEXT", help="A remark on it.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Add a memory; prints its id."""
    from mnemobot.runtime.memories.record import (
        MAX_FEEDBACK_CHARS,
        MAX_INPUT_CHARS,
        Origin,
        check_note,
        check_text,
        check_topics,
    )
    from mnemobot.runtime.memory.policy import UserMemoryPolicy

    clean, topics = check_text(text), check_topics(topic or [])
    source = check_note(said, "--input", MAX_INPUT_CHARS)
    remark = check_note(feedback, "--feedback", MAX_FEEDBACK_CHARS)
    with runtime_for(config, bots="optional") as runtime:
        memory = runtime.memories.add(
            person_for_writing(runtime, user),
            clean,
            topics,
            origin=Origin("cli"),
            limit=UserMemoryPolicy().max_keys,
            input=source,
            feedback=remark,
        )
    typer.echo(memory.id)


@memories_app.command("edit")
@guard
def memories_edit(
    memory_id: Annotated[str, typer.Argument(metavar="ID", help="The memory's id.")],
    text: TextArgument,
    user: UserOption,
    topic: Annotated[
        list[str] | None,
        typer.Option(
            "--topic", "-t", metavar="TOPIC", help="Replace the topics; repeat for several."
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Change a memory's text (and, with --topic, its topics) in place."""
    from mnemobot.runtime.memories.record import Origin, check_id, check_text, check_topics
    from mnemobot.runtime.memories.store import Change

    change = Change(check_text(text), None if topic is None else check_topics(topic))
    with runtime_for(config, bots="optional") as runtime:
        memory = runtime.memories.edit(
            runtime.identity.find(user), check_id(memory_id), change, origin=Origin("cli")
        )
    typer.echo(f"edited {memory.id}")


@memories_app.command("delete")
@guard
def memories_delete(
    memory_ids: Annotated[
        list[str], typer.Argument(metavar="ID...", help="The ids of the memories to delete.")
    ],
    user: UserOption,
    config: ConfigOption = None,
) -> None:
    """Delete memories, all or none (an unknown id deletes nothing)."""
    from mnemobot.runtime.memories.record import check_ids

    ids = check_ids(memory_ids)
    if not ids:
        fail("say which memories to delete: their ids (mnemobot memories list shows them)")
    with runtime_for(config, bots="optional") as runtime:
        deleted = runtime.memories.delete(runtime.identity.find(user), ids)
    typer.echo(f"deleted {deleted}")
