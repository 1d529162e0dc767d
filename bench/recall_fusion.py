"""Semantic recall's fusion weight on LoCoMo: where evidence lines rank, what reaches the prompt.

Replays each conversation once with ``[memory] embedding`` on (bench/recall.py's replay: the
episode worker embeds every session after it ends), then, for every question of categories
1-4:

* where its evidence lines rank among all of the person's transcript lines: by the words
  (the full-text search), by meaning (cosine to the query's vector), and fused at each weight
  (the share of meaning in :mod:`recall.fusion`'s min-max linear fusion);
* for each weight, bench/recall.py's figures for the prompt the bot would send (evidence-session
  recall, strict evidence-turn recall, memory tokens).

Use the development split only: the weight is chosen here. Prints figures; asserts nothing.

    .venv/bin/python bench/recall_fusion.py PATH/locomo-dev.json.gz [--weights 0 0.5 0.7]
        [--embedding local] [--quick | --conversation N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from recall import (
    BOT,
    TOKENIZER,
    Conversation,
    Measured,
    Question,
    Replayed,
    Script,
    _bot_folder,
    load,
    measure,
    prompt_for,
    replay,
    report,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mnemobot.runtime import Runtime, build_runtime, load_settings
from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.llm.scripted import ScriptedLLM
from mnemobot.runtime.recall import fusion

ALL_LINES = 100_000  # rank every line of the person's transcript
CUTS = (5, 20, 50, 200)  # "the evidence line is among the best N"


@dataclass
class Ranks:
    """Per evidence line: its best place (0-based) under each ranking; None: not ranked."""

    lexical: list[int | None] = field(default_factory=list)
    semantic: list[int | None] = field(default_factory=list)
    fused: dict[float, list[int | None]] = field(default_factory=dict)


def _place(order: list[str], replayed: Replayed, evidence: str) -> int | None:
    for place, turn_id in enumerate(order):
        if evidence in replayed.turn_lines.get(turn_id, set()):
            return place
    return None


async def _rank(
    runtime: Runtime, user_id: str, q: Question, weights: list[float], replayed: Replayed, r: Ranks
) -> None:
    recall = runtime.recall
    vector = await recall.query_vector(q.text, user_id)
    assert vector is not None and recall.embedder is not None
    lexical = await runtime.db.run(recall.gather, user_id, q.text, turns=ALL_LINES)
    model = recall.embedder.model

    def nearest() -> list[tuple[str, float]]:
        with runtime.db.read() as conn:
            return recall.index.nearest(conn, user_id, model, "turn", vector, ALL_LINES)

    semantic = [turn_id for turn_id, _ in await runtime.db.run(nearest)]
    fused: dict[float, list[str]] = {}
    for weight in weights:
        fusion.SEMANTIC_WEIGHT = weight
        found = await runtime.db.run(
            recall.gather, user_id, q.text, turns=ALL_LINES, query_vector=vector
        )
        fused[weight] = [hit.id for hit in found.turns]
    for evidence in q.evidence:
        r.lexical.append(_place([hit.id for hit in lexical.turns], replayed, evidence))
        r.semantic.append(_place(semantic, replayed, evidence))
        for weight in weights:
            r.fused.setdefault(weight, []).append(_place(fused[weight], replayed, evidence))


async def run_conversation(
    conversation: Conversation, root: Path, embedding: str, weights: list[float], ranks: Ranks
) -> dict[float, list[Measured]]:
    script = Script()
    clock = ManualClock(conversation.sessions[0].date)
    settings = load_settings(
        None,
        database={"url": f"sqlite:///{root / f'fusion-{conversation.name}.db'}"},
        bots={"dir": str(_bot_folder(root / conversation.name))},
        memory={"embedding": embedding},
    )
    runtime = build_runtime(settings, clock=clock, llm=ScriptedLLM(script, tokenizer=TOKENIZER))
    await runtime.start()
    try:
        replayed = Replayed()
        await replay(runtime, clock, script, conversation, conversation.sessions[0].date, replayed)
        clock.advance(days=1)
        user_id = await runtime.db.run(runtime.identity.find, "console:person")
        measured: dict[float, list[Measured]] = {}
        for q in conversation.questions:
            await _rank(runtime, user_id, q, weights, replayed, ranks)
            empty = await prompt_for(runtime, "no-history", q.text)
            for weight in weights:
                fusion.SEMANTIC_WEIGHT = weight
                built = await prompt_for(runtime, user_id, q.text)
                found = measure(built, empty.tokens, q, conversation.name, replayed)
                measured.setdefault(weight, []).append(found)
        return measured
    finally:
        await runtime.stop()


def _among(places: list[int | None]) -> str:
    cells = [f"{sum(1 for p in places if p is not None and p < n) / len(places):.3f}" for n in CUTS]
    ranked = sorted(p for p in places if p is not None)
    median = statistics.median(ranked) if ranked else None
    return " | ".join([*cells, f"{median:.0f}" if median is not None else "-"])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path, help="a LoCoMo-format JSON file (the dev split)")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.7])
    parser.add_argument("--embedding", default="local", help="[memory] embedding")
    parser.add_argument("--quick", action="store_true", help="the first conversation only")
    parser.add_argument(
        "--conversation", type=int, metavar="N", help="only the N-th (0-based): one per process"
    )
    args = parser.parse_args()
    conversations = load(args.path)[: 1 if args.quick else None]
    if args.conversation is not None:
        conversations = [conversations[args.conversation]]
    ranks = Ranks()
    measured: dict[float, list[Measured]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for conversation in conversations:
            got = await run_conversation(
                conversation, Path(tmp), args.embedding, args.weights, ranks
            )
            for weight, rows in got.items():
                measured.setdefault(weight, []).extend(rows)
    print(f"\n## where evidence lines rank ({len(ranks.lexical)} evidence lines, bot {BOT})\n")
    header = " | ".join(f"best {n}" for n in CUTS)
    print(f"| ranking | {header} | median place |")
    print("|---|" + "---|" * (len(CUTS) + 1))
    print(f"| words (full text) | {_among(ranks.lexical)} |")
    print(f"| meaning ({args.embedding}) | {_among(ranks.semantic)} |")
    for weight, places in ranks.fused.items():
        print(f"| fused, meaning weight {weight} | {_among(places)} |")
    for weight, rows in measured.items():
        report(f"prompt, meaning weight {weight}", rows, {})


if __name__ == "__main__":
    asyncio.run(main())
