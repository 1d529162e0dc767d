"""Recall on LoCoMo: does the prompt a bot would send hold the evidence for the question?

Replays each conversation of a LoCoMo-format file through the runtime's public path: one
person (speaker A) chatting through the console channel with a code-less bot whose model is
in-process and scripted. It answers each message with speaker B's recorded lines and, when
the episode worker asks for a session's summary, with the dataset's own summary; the clock
is set to each session's recorded date. Then, for every question of categories 1-4, it builds
the prompt the bot would send (the same assembly as a live turn and ``mnemobot prompt``) and
reads which memories went in:

* evidence-session recall: an evidence turn's session counts when its summary or one of its
  turns is in the prompt;
* strict evidence-turn recall: the evidence turn's own text is in the prompt;
* memory tokens: the prompt's tokens minus those of the same prompt for a person with no
  history (gpt-4o-mini's tokenizer, through litellm).

The same run prints baselines over the same episodes: the newest k summaries, and plain BM25
over the summaries (k = 2, 10, 20). With ``--distractors N`` the other conversations' sessions
are replayed first into the same person, N times over, dated before the conversation, so the
history is N x (number of other conversations) + 1 times longer. By default the run is made
twice: without distractors, and with as few rounds of them as make the history about ten
times longer (:func:`rounds_for_tenfold`: 4 for the three conversations of the development
split, x9; 1 for LoCoMo's ten, x10). Prints figures; asserts nothing.

    .venv/bin/python bench/recall.py PATH/locomo-dev.json.gz [--distractors 0 4] [--quick]
        [--embedding local]

``--embedding`` sets ``[memory] embedding`` (``local``: the local-embeddings extra), so the
episode worker embeds each replayed session and every prompt fuses meaning with the words.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from sqlalchemy import select

from mnemobot.adapters.console import ConsoleChannel
from mnemobot.runtime import Runtime, build_runtime, load_settings
from mnemobot.runtime.bots.runner import preview_prompt
from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.llm.prompt import BuiltPrompt
from mnemobot.runtime.llm.scripted import ModelRequest, ScriptedLLM
from mnemobot.runtime.recall.query import STOP_WORDS, fold
from mnemobot.runtime.recall.search import Recalled
from mnemobot.runtime.storage.tables import EPISODES, TURNS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import scratch_postgres

TOKENIZER = "gpt-4o-mini"
BOT = "recall-bot"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}


# -- the dataset ------------------------------------------------------------------------------


@dataclass
class Exchange:
    """What the person sends in one message, and the bot's recorded answer."""

    said: list[tuple[str, str]]  # (dia_id, text) of speaker A, sent as one message
    answer: list[tuple[str, str]]  # (dia_id, text) of speaker B, one reply

    @property
    def message(self) -> str:
        return "\n".join(text for _, text in self.said)

    @property
    def reply(self) -> str:
        return "\n".join(text for _, text in self.answer) or "ok"


@dataclass
class LoCoMoSession:
    number: int
    date: datetime
    exchanges: list[Exchange]
    summary: str


@dataclass
class Question:
    text: str
    category: int
    evidence: list[str]  # dia_ids


@dataclass
class Conversation:
    name: str
    person: str
    sessions: list[LoCoMoSession]
    questions: list[Question]


def _date(text: str) -> datetime:
    """A session's date as LoCoMo writes it ("1:56 pm on 8 May, 2023"; "Sept" or "Sep" for a
    month would be its abbreviation)."""
    cleaned = re.sub(r"\bSept\b", "Sep", text.strip())
    for form in ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y"):
        try:
            return datetime.strptime(cleaned, form).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"a session date LoCoMo does not write: {text!r}")


def _exchanges(turns: list[dict[str, Any]], person: str) -> list[Exchange]:
    """Runs of the person's lines, each with the other speaker's lines after it.

    Lines of the other speaker before the person's first are part of the first answer.
    """
    exchanges: list[Exchange] = []
    leading: list[tuple[str, str]] = []
    for turn in turns:
        line = (turn["dia_id"], turn["text"])
        if turn["speaker"] == person:
            if not exchanges or exchanges[-1].answer:
                exchanges.append(Exchange([line], []))
            else:
                exchanges[-1].said.append(line)
        elif exchanges:
            exchanges[-1].answer.append(line)
        else:
            leading.append(line)
    if exchanges and leading:
        exchanges[0].answer[:0] = leading
    return exchanges


def load(path: Path) -> list[Conversation]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        raw = json.load(f)
    conversations = []
    for item in raw:
        talk = item["conversation"]
        person = talk["speaker_a"]
        numbers = sorted(int(k.split("_")[1]) for k in talk if re.fullmatch(r"session_\d+", k))
        sessions = [
            LoCoMoSession(
                n,
                _date(talk[f"session_{n}_date_time"]),
                _exchanges(talk[f"session_{n}"], person),
                item["session_summary"].get(f"session_{n}_summary", ""),
            )
            for n in numbers
        ]
        known = {d for s in sessions for e in s.exchanges for d, _ in e.said + e.answer}
        questions = []
        for qa in item["qa"]:
            if qa.get("category") not in CATEGORIES:
                continue
            evidence = [
                part
                for ref in qa.get("evidence", [])
                for part in re.split(r"[;,\s]+", ref)
                if part in known
            ]
            if evidence:
                questions.append(Question(qa["question"], qa["category"], evidence))
        conversations.append(Conversation(item["sample_id"], person, sessions, questions))
    return conversations


# -- the replay -------------------------------------------------------------------------------


class Script:
    """The model's side: the answer to the message in flight, or a pending session summary."""

    def __init__(self) -> None:
        self.reply = ""
        self.summary = ""

    def __call__(self, request: ModelRequest) -> str:
        if request.purpose == "episode":
            return json.dumps(
                {
                    "summary": self.summary,
                    "topics": [],
                    "sentiment": "neutral",
                    "resolution": "informational",
                }
            )
        return self.reply


@dataclass
class Replayed:
    """Where each LoCoMo line and session ended up in the database."""

    turn_lines: dict[str, set[str]] = field(default_factory=dict)  # turn row id -> dia_ids
    session_numbers: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> (conv, n)


async def replay(
    runtime: Runtime,
    clock: ManualClock,
    script: Script,
    conversation: Conversation,
    start: datetime,
    replayed: Replayed,
) -> None:
    """One conversation's sessions, each opened on its date (shifted to ``start``)."""
    shift = start - conversation.sessions[0].date
    chat = ConsoleChannel(runtime, bot=BOT, user="person", stdout=_Discard())
    chat.start()
    for session in conversation.sessions:
        if not session.exchanges:  # the person never spoke in it: nothing said to a bot
            continue
        when = session.date + shift
        clock.advance(seconds=max(0.0, (when - clock.now()).total_seconds()))
        for exchange in session.exchanges:
            script.reply = exchange.reply
            await chat.say(exchange.message)
            clock.advance(seconds=30)
        script.summary = session.summary
        await chat.say("/end")
        await runtime.episode_worker.run_until_idle()
        await runtime.db.run(_map_session, runtime, conversation.name, session, replayed)


def _map_session(runtime: Runtime, name: str, session: LoCoMoSession, replayed: Replayed) -> None:
    """Tie the rows the runtime wrote for ``session`` back to its LoCoMo ids."""
    with runtime.db.read() as conn:
        session_id = conn.execute(
            select(TURNS.c.session_id).order_by(TURNS.c.created_at.desc()).limit(1)
        ).scalar_one()
        rows = conn.execute(
            select(TURNS.c.id, TURNS.c.role)
            .where(TURNS.c.session_id == session_id)
            .order_by(TURNS.c.created_at, TURNS.c.seq)
        ).all()
    replayed.session_numbers[session_id] = (name, session.number)
    lines = iter(rows)
    for exchange in session.exchanges:
        said, answer = next(lines), next(lines)
        replayed.turn_lines[said.id] = {d for d, _ in exchange.said}
        replayed.turn_lines[answer.id] = {d for d, _ in exchange.answer}


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


# -- measuring a prompt -----------------------------------------------------------------------


@dataclass
class Measured:
    category: int
    evidence: int
    sessions_found: int
    turns_found: int
    tokens: int

    @property
    def any_session(self) -> bool:
        return self.sessions_found > 0


async def prompt_for(runtime: Runtime, user_id: str, question: str) -> BuiltPrompt:
    built, _ = await preview_prompt(runtime.bot_services, runtime.bots.get(BOT), user_id, question)
    return built


def measure(
    built: BuiltPrompt,
    empty_tokens: int,
    q: Question,
    conversation: str,
    replayed: Replayed,
) -> Measured:
    sessions: set[int] = set()
    lines: set[str] = set()
    for item in built.included("recalled"):
        hit: Recalled = item.content
        where = replayed.session_numbers.get(hit.session_id or "")
        if where is None or where[0] != conversation:
            continue  # a distractor's
        sessions.add(where[1])
        if hit.kind == "turn":
            lines |= replayed.turn_lines.get(hit.id, set())
    wanted = [(int(d[1:].split(":")[0]), d) for d in q.evidence]
    return Measured(
        q.category,
        len(wanted),
        sum(1 for n, _ in wanted if n in sessions),
        sum(1 for _, d in wanted if d in lines),
        built.tokens - empty_tokens,
    )


# -- baselines over the same summaries --------------------------------------------------------


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"\w+", fold(text)) if w not in STOP_WORDS and len(w) > 1]


def baselines(
    episodes: list[tuple[int, str]], q: Question, count: Any
) -> dict[str, tuple[int, int]]:
    """(evidence sessions found, tokens) for newest-k and BM25-k over the summaries."""
    wanted = [int(d[1:].split(":")[0]) for d in q.evidence]
    newest = sorted(episodes, key=lambda e: e[0], reverse=True)  # a later session is newer
    docs = [_words(text) for _, text in episodes]
    avg = statistics.mean(len(d) for d in docs) if docs else 1.0
    df = Counter(w for d in docs for w in set(d))
    terms = set(_words(q.text))

    def bm25(doc: list[str]) -> float:
        tf = Counter(doc)
        score = 0.0
        for term in terms:
            if tf[term]:
                idf = math.log(1 + (len(docs) - df[term] + 0.5) / (df[term] + 0.5))
                norm = tf[term] + 1.2 * (0.25 + 0.75 * len(doc) / avg)
                score += idf * tf[term] * 2.2 / norm
        return score

    by_bm25 = [episodes[i] for i in sorted(range(len(docs)), key=lambda i: -bm25(docs[i]))]
    out = {}
    for name, ranked, ks in (("newest", newest, (2, 10)), ("bm25", by_bm25, (2, 10, 20))):
        for k in ks:
            chosen = ranked[:k]
            numbers = {n for n, _ in chosen}
            tokens = sum(count(text) for _, text in chosen)
            out[f"{name}-{k}"] = (sum(1 for n in wanted if n in numbers), tokens)
    return out


# -- the run ----------------------------------------------------------------------------------


def _bot_folder(root: Path) -> Path:
    folder = root / "bots" / BOT
    folder.mkdir(parents=True)
    (folder / "config.csv").write_text(
        "name,value\n"
        "description,answers with what it remembers\n"
        "prompt,You are a helpful assistant who remembers the user.\n",
        encoding="utf-8",
    )
    return root / "bots"


async def run_conversation(
    conversations: list[Conversation],
    index: int,
    distractors: int,
    root: Path,
    budget: int | None = None,
    embedding: str | None = None,
    database_url: str | None = None,
) -> tuple[list[Measured], dict[str, list[tuple[int, int, int]]], float]:
    target = conversations[index]
    others = [c for i, c in enumerate(conversations) if i != index] * distractors
    script = Script()
    start = target.sessions[0].date - timedelta(days=400 * len(others) + 30)
    clock = ManualClock(start)
    settings = load_settings(
        None,
        database={"url": database_url or f"sqlite:///{root / f'recall-{index}-{distractors}.db'}"},
        bots={"dir": str(_bot_folder(root / f"{index}-{distractors}"))},
        memory={
            **({} if budget is None else {"recall_budget": budget}),
            "embedding": embedding,
        },
    )
    llm = ScriptedLLM(script, tokenizer=TOKENIZER)
    runtime = build_runtime(settings, clock=clock, llm=llm)
    await runtime.start()
    try:
        replayed = Replayed()
        started = time.perf_counter()
        for other in others:
            await replay(runtime, clock, script, other, start, replayed)
            start += timedelta(days=400)
        await replay(runtime, clock, script, target, target.sessions[0].date, replayed)
        replay_seconds = time.perf_counter() - started
        if not runtime.db.is_sqlite:  # its statistics, as autovacuum keeps them
            with runtime.db.write() as conn:
                conn.exec_driver_sql("ANALYZE")
        clock.advance(days=1)
        user_id = await runtime.db.run(runtime.identity.find, "console:person")
        nobody = "no-history"  # a person nobody has talked to: the prompt without memory
        with runtime.db.read() as conn:
            rows = conn.execute(
                select(EPISODES.c.conversation_id, EPISODES.c.summary).where(
                    EPISODES.c.user_id == user_id
                )
            ).all()
        episodes = [
            (replayed.session_numbers[sid][1], summary)
            for sid, summary in rows
            if replayed.session_numbers.get(sid, ("", 0))[0] == target.name
        ]
        measured: list[Measured] = []
        base: dict[str, list[tuple[int, int, int]]] = {}
        for q in target.questions:
            built = await prompt_for(runtime, user_id, q.text)
            empty = await prompt_for(runtime, nobody, q.text)
            measured.append(measure(built, empty.tokens, q, target.name, replayed))
            for name, (found, tokens) in baselines(episodes, q, llm.count_tokens).items():
                base.setdefault(name, []).append((len(q.evidence), found, tokens))
        return measured, base, replay_seconds
    finally:
        await runtime.stop()


def _p95(values: list[int]) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)] if ordered else 0


def report(
    label: str, measured: list[Measured], base: dict[str, list[tuple[int, int, int]]]
) -> None:
    print(f"\n## {label}\n")
    print(
        "| category | questions | evidence-session recall | any evidence session | "
        "strict evidence-turn recall | memory tokens mean | p95 |"
    )
    print("|---|---|---|---|---|---|---|")
    groups = [(f"{c} {n}", [m for m in measured if m.category == c]) for c, n in CATEGORIES.items()]
    for name, group in [*groups, ("all", measured)]:
        if not group:
            continue
        evidence = sum(m.evidence for m in group)
        print(
            f"| {name} | {len(group)} | {sum(m.sessions_found for m in group) / evidence:.3f} | "
            f"{sum(m.any_session for m in group) / len(group):.3f} | "
            f"{sum(m.turns_found for m in group) / evidence:.3f} | "
            f"{statistics.mean(m.tokens for m in group):.0f} | {_p95([m.tokens for m in group])} |"
        )
    print("\n| baseline (summaries) | evidence-session recall | tokens mean | p95 |")
    print("|---|---|---|---|")
    for name, rows in base.items():
        evidence = sum(r[0] for r in rows)
        print(
            f"| {name} | {sum(r[1] for r in rows) / evidence:.3f} | "
            f"{statistics.mean(r[2] for r in rows):.0f} | {_p95([r[2] for r in rows])} |"
        )


def rounds_for_tenfold(conversations: int) -> int:
    """Rounds of the other conversations that make one's history about 10x longer (at
    least 9x): the recall issue's distractor setting, whatever the file holds."""
    others = max(conversations - 1, 1)
    return max(1, math.ceil(8 / others))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path, help="a LoCoMo-format JSON file (.json or .json.gz)")
    parser.add_argument(
        "--distractors",
        type=int,
        nargs="*",
        help="times the other conversations are replayed first (default: 0, then as many as "
        "make the history ~10x longer: 4 for 3 conversations, 1 for 10)",
    )
    parser.add_argument("--quick", action="store_true", help="the first conversation only")
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="where the replay is stored (postgresql: a scratch database a conversation, "
        "MNEMOBOT_BENCH_POSTGRES as the other benches)",
    )
    parser.add_argument(
        "--budget", type=int, help="[memory] recall_budget for the run (default: the setting's)"
    )
    parser.add_argument(
        "--embedding",
        metavar="MODEL",
        help='[memory] embedding for semantic recall, e.g. "local" (default: lexical only)',
    )
    args = parser.parse_args()
    conversations = load(args.path)
    chosen = range(1 if args.quick else len(conversations))
    rounds = args.distractors
    if rounds is None:
        rounds = [0, rounds_for_tenfold(len(conversations))] if len(conversations) > 1 else [0]
    for distractors in rounds:
        measured: list[Measured] = []
        base: dict[str, list[tuple[int, int, int]]] = {}
        seconds = 0.0
        with tempfile.TemporaryDirectory() as tmp:
            for index in chosen:
                with ExitStack() as scratch:
                    url = None  # Database takes postgresql:// as psycopg 3's
                    if args.backend == "postgresql":
                        url = scratch.enter_context(scratch_postgres())
                    got, got_base, took = await run_conversation(
                        conversations, index, distractors, Path(tmp), args.budget,
                        args.embedding, url,
                    )  # fmt: skip
                measured += got
                for name, rows in got_base.items():
                    base.setdefault(name, []).extend(rows)
                seconds += took
        times = 1 + distractors * (len(conversations) - 1)
        report(
            f"{args.backend}; history x{times} ({distractors} x the other conversations first); "
            + (f"recall_budget {args.budget}; " if args.budget is not None else "")
            + f"embedding {args.embedding or 'off'}; replay {seconds:.0f} s",
            measured,
            base,
        )


if __name__ == "__main__":
    asyncio.run(main())
