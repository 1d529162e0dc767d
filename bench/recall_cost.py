"""What recall costs a prompt: a person with 100 turns and 5 episodes against one with 100,000
turns and 2,000 episodes, on SQLite (or PostgreSQL), in one run.

The target (recall issue): building the prompt for the long history costs at most 2x the short
one and stays under 20 ms p95. The whole path is timed, as a live turn runs it: the full-text
search of the person's transcript, episodes, facts and fact history, the answers read for the
best hits, ranking, counting tokens with gpt-4o-mini's tokenizer (through litellm), rendering.
The histories are synthetic: words drawn from a Zipf distribution over a 20,000-word vocabulary,
so common words are common and rare ones rare, as in conversation. A third case is a deployment
with many people on one database: a person with 100 turns and 5 episodes among ``--people``
others with as much, all speaking the same vocabulary (their own database, so it does not
change the first two). Prints figures; asserts nothing.

    .venv/bin/python bench/recall_cost.py [--questions 200] [--turns 100000] [--people 1000]
        [--backend postgresql]

``--backend postgresql`` runs the same on scratch PostgreSQL databases (``MNEMOBOT_BENCH_POSTGRES``,
as the other benches), each analysed once written, as autovacuum would after as many writes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from sqlalchemy import insert

from mnemobot.runtime.bots.options import BotOptions
from mnemobot.runtime.bots.registry import Bot
from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.llm.answers import assemble_prompt
from mnemobot.runtime.llm.client import LiteLLM
from mnemobot.runtime.memory.policy import UserMemoryPolicy
from mnemobot.runtime.memory.store import MemoryScope, MemoryStore
from mnemobot.runtime.recall.search import Recall
from mnemobot.runtime.settings import LLMSettings
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.migrate import upgrade
from mnemobot.runtime.storage.tables import EPISODES, SESSIONS, TURNS, USERS, new_id

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import scratch_postgres

VOCABULARY = 20_000
TURNS_PER_SESSION = 50
T0 = datetime(2024, 1, 1, tzinfo=UTC)


class Words:
    """Pseudo-words with Zipf frequencies (rank r drawn with weight 1/r)."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        letters = "abcdefghijklmnopqrstuvwxyz"
        self.words = [
            "".join(self.random.choice(letters) for _ in range(self.random.randint(3, 10)))
            for _ in range(VOCABULARY)
        ]
        weights = [1 / rank for rank in range(1, VOCABULARY + 1)]
        total = sum(weights)
        self.cumulative = []
        running = 0.0
        for weight in weights:
            running += weight / total
            self.cumulative.append(running)

    def sentence(self, low: int, high: int) -> str:
        count = self.random.randint(low, high)
        return " ".join(self.words[self._index()] for _ in range(count))

    def _index(self) -> int:
        import bisect

        return min(bisect.bisect(self.cumulative, self.random.random()), VOCABULARY - 1)


def populate(db: Database, user_id: str, turns: int, episodes: int, words: Words) -> None:
    sessions = max(1, turns // TURNS_PER_SESSION)
    with db.write() as conn:
        conn.execute(insert(USERS).values(id=user_id, display_name=user_id, created_at=T0))
        for s in range(sessions):
            session_id = new_id()
            start = T0 + timedelta(days=s)
            conn.execute(
                insert(SESSIONS).values(
                    id=session_id,
                    conversation=f"console:b:{user_id}:{s}",
                    channel="console:b",
                    chat_id=user_id,
                    user_id=user_id,
                    active_bot="b",
                    user_messages=TURNS_PER_SESSION // 2,
                    started_at=start,
                    last_activity_at=start,
                    ended_at=start + timedelta(hours=1),
                )
            )
            count = min(TURNS_PER_SESSION, turns - s * TURNS_PER_SESSION)
            conn.execute(
                insert(TURNS),
                [
                    {
                        "id": new_id(),
                        "session_id": session_id,
                        "user_id": user_id,
                        "bot": "b",
                        "role": "user" if i % 2 == 0 else "bot",
                        "seq": 0,
                        "line": i,
                        "text": words.sentence(6, 30),
                        "created_at": start + timedelta(seconds=30 * i),
                    }
                    for i in range(count)
                ],
            )
            if s < episodes:
                conn.execute(
                    insert(EPISODES).values(
                        id=new_id(),
                        user_id=user_id,
                        conversation_id=session_id,
                        bot="b",
                        summary=words.sentence(30, 60),
                        topics=[],
                        created_at=start + timedelta(hours=2),
                    )
                )


async def time_prompts(
    db: Database, llm: LiteLLM, recall: Recall, user_id: str, questions: list[str]
) -> list[tuple[float, float]]:
    """Each prompt's (wall seconds, CPU seconds of the process, the search thread's too)."""
    bot = Bot("b", Path("."), BotOptions(name="b", prompt="You are helpful."))
    store = MemoryStore(db, ManualClock(T0))
    scope = MemoryScope(store, store.user_ref(user_id, UserMemoryPolicy()))
    took = []
    for question in questions:
        started, cpu = time.perf_counter(), time.process_time()
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
            question=question,
        )
        took.append((time.perf_counter() - started, time.process_time() - cpu))
    return took


@contextmanager
def opened(backend: str, folder: str, name: str) -> Iterator[Database]:
    """A fresh, migrated database of ``backend`` for one case, stopped (and, on PostgreSQL,
    dropped) at the end."""
    with ExitStack() as stack:
        if backend == "postgresql":
            url = stack.enter_context(scratch_postgres()).replace(
                "postgresql://", "postgresql+psycopg://"
            )
        else:
            url = f"sqlite:///{folder}/{name}.db"
        db = Database(url)
        db.start()
        stack.callback(db.stop)
        upgrade(db)
        yield db


def analysed(db: Database) -> None:
    """PostgreSQL's statistics, as autovacuum keeps them after this many writes."""
    if not db.is_sqlite:
        with db.write() as conn:
            conn.exec_driver_sql("ANALYZE")


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--turns", type=int, default=100_000)
    parser.add_argument("--episodes", type=int, default=2_000)
    parser.add_argument("--people", type=int, default=1_000, help="0: no many-people case")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    words = Words(seed=7)
    questions = [f"what did I say about {words.sentence(3, 8)}?" for _ in range(args.questions)]
    with tempfile.TemporaryDirectory() as folder, ExitStack() as databases:
        db = databases.enter_context(opened(args.backend, folder, "bench"))
        started = time.perf_counter()
        populate(db, "short", 100, 5, words)
        populate(db, "long", args.turns, args.episodes, words)
        analysed(db)
        print(f"histories written and indexed in {time.perf_counter() - started:.0f} s")
        llm = LiteLLM(LLMSettings(default="openai/gpt-4o-mini"))
        llm.count_tokens("warm up the tokenizer")
        recall = Recall(db, ManualClock(T0 + timedelta(days=5000)))
        await time_prompts(db, llm, recall, "long", questions[:10])  # warm caches
        crowd = None
        if args.people:
            crowd = databases.enter_context(opened(args.backend, folder, "crowd"))
            started = time.perf_counter()
            for person in range(args.people + 1):
                populate(crowd, f"person{person}", 100, 5, words)
            analysed(crowd)
            print(f"{args.people + 1:,} people written and indexed in "
                  f"{time.perf_counter() - started:.0f} s")  # fmt: skip
            crowd_recall = Recall(crowd, ManualClock(T0 + timedelta(days=5000)))
            await time_prompts(crowd, llm, crowd_recall, "person0", questions[:10])
        times: dict[str, list[tuple[float, float]]] = {"short": [], "long": [], "crowd": []}
        for round_ in range(2):  # alternate halves, so drift does not favour one side
            half = questions[round_::2]
            for user in ("short", "long"):
                times[user] += await time_prompts(db, llm, recall, user, half)
            if crowd is not None:
                times["crowd"] += await time_prompts(crowd, llm, crowd_recall, "person0", half)
    # Wall time is the target's measure; CPU time (the process's, so the search thread's too)
    # is what a busy machine disturbs least: another process's work shows in the first only.
    wall = {name: [w for w, _ in rows] for name, rows in times.items()}
    cpu = {name: [c for _, c in rows] for name, rows in times.items()}
    print(
        "| history | prompt build p50 | p95 | / 100 turns at the median "
        "| CPU p50 | CPU p95 | CPU / 100 turns |\n|---|---|---|---|---|---|---|"
    )
    for name, key in (
        ("100 turns, 5 episodes", "short"),
        (f"{args.turns:,} turns, {args.episodes:,} episodes", "long"),
        (f"100 turns, 5 episodes, among {args.people:,} people like them", "crowd"),
    ):
        if wall[key]:
            print(
                f"| {name} | {_ms(statistics.median(wall[key]))} | {_ms(p95(wall[key]))} "
                f"| {statistics.median(wall[key]) / statistics.median(wall['short']):.2f}x "
                f"| {_ms(statistics.median(cpu[key]))} | {_ms(p95(cpu[key]))} "
                f"| {statistics.median(cpu[key]) / statistics.median(cpu['short']):.2f}x |"
            )
    ratio = statistics.median(wall["long"]) / statistics.median(wall["short"])
    print(
        f"\n{args.backend}: long / short at the median: {ratio:.2f}x (target at most 2x); "
        f"long p95 {p95(wall['long']) * 1000:.1f} ms (target under 20 ms, on SQLite)"
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


if __name__ == "__main__":
    asyncio.run(main())
