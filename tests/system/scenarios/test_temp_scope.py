"""Seed 003 (Botpress's ``temp``) through ``mnemobot chat``: a flow's temp values are kept
from turn to turn, and a transfer to another bot clears them (issue 16). The real console
script, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import SESSION_MEMORY
from tests.runtime.cli.test_cli import Cli, _base_env, ok
from tests.support import write_bot

ORDER_BOT = """
async def on_message(ctx):
    text = ctx.text.strip()
    if text.startswith("order "):
        await ctx.temp.set("order", text.removeprefix("order "))
        await ctx.say("noted")
    elif text == "which":
        await ctx.say(f"your order: {await ctx.temp.get('order', 'none')}")
    elif text == "help":
        await ctx.temp.set("leaving", True)
        await ctx.transfer("help-bot", handoff={"topic": "order"})
"""

HELP_BOT = """
async def on_transfer(ctx):
    await ctx.say(f"help-bot here; temp {await ctx.temp.items()}")

async def on_message(ctx):
    await ctx.say(f"help-bot: order {await ctx.temp.get('order', 'none')}")
"""


def test_temp_is_kept_in_a_flow_and_cleared_by_a_transfer(db_url: str, tmp_path: Path) -> None:
    bots = tmp_path / "bots"
    write_bot(bots, "order-bot", bot_py=ORDER_BOT)
    write_bot(bots, "help-bot", bot_py=HELP_BOT)
    (tmp_path / "cwd").mkdir()
    env = {**_base_env(), "MNEMOBOT_DATABASE_URL": db_url, "MNEMOBOT_BOTS_DIR": str(bots)}
    cli = Cli(cwd=tmp_path / "cwd", env=env)

    out = cli(
        "chat", "--bot", "order-bot", "--user", "ana", input="order 2 pizzas\nwhich\nhelp\nwhich\n"
    )

    assert ok(out).splitlines() == [
        "order-bot: noted",
        "order-bot: your order: 2 pizzas",
        "help-bot: help-bot here; temp {}",
        "help-bot: help-bot: order none",
    ]
    db = Database(db_url)
    db.start()
    try:
        with db.read() as conn:
            kinds = conn.execute(select(SESSION_MEMORY.c.kind, SESSION_MEMORY.c.key)).all()
    finally:
        db.stop()
    assert [tuple(k) for k in kinds if k.kind == "temp"] == []
