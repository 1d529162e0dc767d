"""Prompt build cost with a small memory and with a large one, measured in one run.

The target (LLM issue): with 1,000 facts and 100 episodes, building a bot's prompt stays
within a small multiple of the cost with 10 facts, because only the best-ranked facts and
episodes are considered and tokens are counted only for those. The whole path is measured:
reading the person's memory and episodes from SQLite, ranking, counting tokens with
litellm's tokenizer, rendering. Prints figures; asserts nothing.

    .venv/bin/python bench/prompt_build.py [--rounds 5] [--builds 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from sqlalchemy import insert

from mnemobot.runtime.bots.options import BotOptions
from mnemobot.runtime.bots.registry import Bot
from mnemobot.runtime.clock import SystemClock
from mnemobot.runtime.llm.answers import assemble_prompt
from mnemobot.runtime.llm.client import LiteLLM
from mnemobot.runtime.memory.policy import UserMemoryPolicy
from mnemobot.runtime.memory.store import MemoryScope, MemoryStore
from mnemobot.runtime.recall.search import Recall
from mnemobot.runtime.settings import LLMSettings
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.migrate import upgrade
from mnemobot.runtime.storage.tables import EPISODES, USERS, new_id


async def populate(
    store: MemoryStore, db: Database, user_id: str, facts: int, episodes: int
) -> None:
    now = store.clock.now()
    with db.write() as conn:
        conn.execute(insert(USERS).values(id=user_id, display_name=user_id, created_at=now))
        for i in range(episodes):
            conn.execute(
                insert(EPISODES).values(
                    id=new_id(),
                    user_id=user_id,
                    conversation_id=new_id(),
                    bot="b",
                    summary=f"Conversation {i} about order {i} and a refund",
                    topics=["orders"],
                    sentiment="neutral",
                    resolution="resolved",
                    created_at=now,
                )
            )
    scope = MemoryScope(store, store.user_ref(user_id, UserMemoryPolicy(max_keys=50_000)))
    for i in range(facts):
        await scope.set(f"fact_{i}", f"the person likes thing number {i}", memory_type="fact")


async def measure(
    db: Database, store: MemoryStore, llm: LiteLLM, user_id: str, builds: int
) -> float:
    bot = Bot("b", Path("."), BotOptions(name="b", prompt="You are helpful."))
    scope = MemoryScope(store, store.user_ref(user_id, UserMemoryPolicy(max_keys=50_000)))
    recall = Recall(db, store.clock)
    started = time.perf_counter()
    for _ in range(builds):
        await assemble_prompt(
            db=db,
            llm=llm,
            llm_settings=llm.settings,
            bot=bot,
            user_memory=scope,
            context=None,
            session_id=None,
            recall=recall,
            user_id=user_id,
            memory_budget=1500,
            question="Where is my refund for order 42?",
        )
    return (time.perf_counter() - started) / builds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--builds", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{folder}/bench.db")
        db.start()
        upgrade(db)
        store = MemoryStore(db, SystemClock())
        llm = LiteLLM(LLMSettings(default="openai/gpt-4o-mini"))
        llm.count_tokens("warm up the tokenizer")
        await populate(store, db, "small", facts=10, episodes=0)
        await populate(store, db, "large", facts=1000, episodes=100)
        await populate(store, db, "huge", facts=10000, episodes=1000)
        times: dict[str, list[float]] = {"small": [], "large": [], "huge": []}
        for _ in range(args.rounds):  # alternate, so drift does not favour one side
            for user in times:
                times[user].append(await measure(db, store, llm, user, args.builds))
        db.stop()
    s, lg, hg = (statistics.median(times[u]) for u in ("small", "large", "huge"))
    print(f"prompt build, 10 facts:                        {s * 1000:8.2f} ms")
    print(f"prompt build, 1,000 facts + 100 episodes:      {lg * 1000:8.2f} ms  ({lg / s:.1f}x)")
    print(f"prompt build, 10,000 facts + 1,000 episodes:   {hg * 1000:8.2f} ms  ({hg / s:.1f}x)")
    print("target: 1,000 facts within a small multiple of 10 facts, and flat beyond that")


if __name__ == "__main__":
    asyncio.run(main())
