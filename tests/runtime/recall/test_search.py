"""Recall: the database's own full-text index over a person's transcript, episodes and facts.

Memory is written the way it is in production (a person chatting with a bot through the
console channel), then searched; every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.memory.policy import UserMemoryPolicy
from mnemobot.runtime.memory.store import MemoryScope
from mnemobot.runtime.people.privacy import forget_user
from mnemobot.runtime.pipeline.runtime import Runtime
from mnemobot.runtime.recall.search import Recall
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.fulltext import SearchTerm
from mnemobot.runtime.storage.tables import FACT_HISTORY, new_id
from tests.runtime.storage.test_fulltext import analyze, write_lines
from tests.support import Chat, write_bot

ECHO = """
    async def on_message(ctx):
        await ctx.say("noted")
"""

FACTS = """
    async def on_message(ctx):
        await ctx.user.facts.set("employer", ctx.text)
        await ctx.say("noted")
"""


@pytest.fixture
async def runtime(make_runtime: Callable[..., Any], tmp_path: Path) -> Runtime:
    write_bot(tmp_path / "bots", "echo", bot_py=ECHO)
    write_bot(tmp_path / "bots", "facts", bot_py=FACTS)
    return await make_runtime(bots_dir=tmp_path / "bots")


async def chat_sessions(
    runtime: Runtime, clock: ManualClock, user: str, sessions: list[list[str]], bot: str = "echo"
) -> str:
    chat = Chat(runtime, bot=bot, user=user)
    for lines in sessions:
        for line in lines:
            await chat.say(line)
        clock.advance(days=3)  # the session times out; the next line opens a new one
    return await chat.user_id()


def recall(runtime: Runtime, clock: ManualClock) -> Recall:
    return Recall(runtime.db, clock)


async def test_a_line_from_a_conversation_weeks_ago_is_found_with_where_it_was_said(
    runtime: Runtime, clock: ManualClock
) -> None:
    first_day = clock.now().date()
    ana = await chat_sessions(
        runtime,
        clock,
        "ana",
        [["I adopted a greyhound called Pixel"]] + [[f"small talk {i}"] for i in range(12)],
    )

    [found, *_] = recall(runtime, clock).search(ana, "what is the name of my dog, the greyhound?")

    assert found.kind == "turn"
    assert found.text == "I adopted a greyhound called Pixel"
    assert (found.bot, found.channel, found.role) == ("echo", "console:echo", "user")
    assert found.at.date() == first_day  # the session's date, not today's


async def test_a_rare_word_beats_the_persons_own_name(runtime: Runtime, clock: ManualClock) -> None:
    lines = [f"Ana here, checking in about the weather number {i}" for i in range(15)]
    lines.insert(7, "Ana here: the flamingo sticker arrived broken")
    ana = await chat_sessions(runtime, clock, "ana", [lines])

    found = recall(runtime, clock).search(ana, "What did Ana say about the flamingo?", limit=3)

    assert found[0].text == "Ana here: the flamingo sticker arrived broken"


async def test_a_match_beats_recency(runtime: Runtime, clock: ManualClock) -> None:
    ana = await chat_sessions(
        runtime,
        clock,
        "ana",
        [["my invoice 2231 was charged twice"]] + [[f"hello again {i}"] for i in range(20)],
    )

    found = recall(runtime, clock).search(ana, "invoice charged twice", limit=5)

    assert found[0].text == "my invoice 2231 was charged twice"


async def test_of_two_near_matches_the_one_of_this_year_outranks_the_one_of_years_ago(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Recency is a signal: the shorter line matches a little better (BM25), but was said
    two years before the other."""
    chat = Chat(runtime, bot="echo", user="ana")
    await chat.say("the parcel for Lisbon came with a dent")
    clock.advance(days=730)
    await chat.say("the parcel for Lisbon came with a dent in it")
    ana = await chat.user_id()
    clock.advance(days=1)

    found = recall(runtime, clock).search(ana, "parcel Lisbon", limit=2)

    assert [f.text for f in found] == [
        "the parcel for Lisbon came with a dent in it",
        "the parcel for Lisbon came with a dent",
    ]
    # the best one asked alone: the same, though the words alone put the other first
    [best] = recall(runtime, clock).search(ana, "parcel Lisbon", limit=1)
    assert best.text == "the parcel for Lisbon came with a dent in it"
    # lifted by up to half for today, by half that a year on (recall.recency)
    assert [f.recency for f in found] == [
        pytest.approx(1.5, abs=0.01),
        pytest.approx(1.125, abs=0.01),
    ]


async def test_a_better_match_of_years_ago_outranks_a_weaker_one_of_today(
    runtime: Runtime, clock: ManualClock
) -> None:
    """...but not a gate."""
    chat = Chat(runtime, bot="echo", user="ana")
    await chat.say("my parcel from Lisbon was lost by the courier")
    clock.advance(days=1500)
    await chat.say("another parcel today")
    ana = await chat.user_id()

    found = recall(runtime, clock).search(ana, "the parcel from Lisbon", limit=2)

    assert found[0].text == "my parcel from Lisbon was lost by the courier"


async def test_a_search_never_returns_another_persons_memory(
    runtime: Runtime, clock: ManualClock
) -> None:
    ana = await chat_sessions(runtime, clock, "ana", [["my secret garden has blue tulips"]])
    bea = await chat_sessions(runtime, clock, "bea", [["my garden has red tulips"]])

    for_ana = recall(runtime, clock).search(ana, "tulips garden", limit=50)
    for_bea = recall(runtime, clock).search(bea, "tulips garden blue secret", limit=50)

    assert {f.text for f in for_ana if f.kind == "turn"} == {"my secret garden has blue tulips"}
    assert {f.text for f in for_bea if f.kind == "turn"} == {"my garden has red tulips"}


async def test_recall_in_portuguese_ignores_accents_and_finds_word_forms(
    runtime: Runtime, clock: ManualClock
) -> None:
    ana = await chat_sessions(
        runtime, clock, "ana", [["Eu moro em São Paulo e trabalho numa padaria"], ["olá"]]
    )

    found = recall(runtime, clock).search(ana, "Onde fica a padaria? Sao Paulo?", limit=2)

    assert found[0].text == "Eu moro em São Paulo e trabalho numa padaria"
    # "trabalhar" finds "trabalho" by what Portuguese's stemmer leaves of both ("trabalh")
    [again] = recall(runtime, clock).search(ana, "trabalhar", limit=1)
    assert again.text == "Eu moro em São Paulo e trabalho numa padaria"


async def test_commands_to_the_runtime_are_never_recalled(
    runtime: Runtime, clock: ManualClock
) -> None:
    """The turn log keeps "/end" and "/link"; recall leaves them out, as hits and as the lines
    around one (the "/end" after a session's last line took a place in the prompt)."""
    chat = Chat(runtime, bot="echo", user="ana")
    await chat.say("my end of year party is at the lighthouse")
    await chat.say("/end")
    await chat.say("/link")
    ana = await chat.user_id()
    clock.advance(days=1)

    hits = recall(runtime, clock).search(ana, "end of year party, link?", limit=10)
    # "noted", the bot's answer, is the line right before "/end"
    in_context = recall(runtime, clock).gather(ana, "lighthouse party noted", window=40).turns

    assert "my end of year party is at the lighthouse" in [f.text for f in hits]
    assert {"my end of year party is at the lighthouse", "noted"} <= {f.text for f in in_context}
    for line in [*hits, *in_context]:
        assert not line.text.startswith("/"), line.text
    # the runtime's answer to "/end" is two lines after "noted", the best hit: not read as its
    # same speaker going on (recall.around)
    assert not any(line.text.startswith("Conversation ended") for line in in_context)
    said = await runtime.db.run(_texts_said, runtime.db, ana)
    assert {"/end", "/link"} <= said  # still in the turn log
    # nor the runtime's answer to one, when its words match and its command is read with it
    answers = recall(runtime, clock).gather(ana, "say anything to start a new one", window=40)
    assert not any(line.text.startswith("Conversation ended") for line in answers.turns)
    # ...nor when the API's search, which reads no lines around its hits, finds it alone
    found = recall(runtime, clock).search(ana, "say anything to start a new one", limit=10)
    assert not any(line.text.startswith("Conversation ended") for line in found)


def _texts_said(db: Database, user_id: str) -> set[str]:
    with db.read() as conn:
        rows = conn.execute(
            text("select text from turns where user_id = :u and role = 'user'"), {"u": user_id}
        )
        return {row[0] for row in rows}


async def test_a_word_finds_its_own_forms_and_not_words_that_start_alike(
    runtime: Runtime, clock: ManualClock
) -> None:
    ana = await chat_sessions(
        runtime,
        clock,
        "ana",
        [["I finished two paintings of the harbour"], ["my back pain is better"], ["ok"]],
    )

    found = recall(runtime, clock).search(ana, "Have I been painting lately?", limit=5)

    # "painting" is looked up as "paint", where its first four letters matched "pain" too
    assert [f.text for f in found] == ["I finished two paintings of the harbour"]


@pytest.mark.parametrize(
    ("said", "asked"),
    [
        # each asked word is folded as the index folds it, or it matches nothing: Latin letters
        # lose their accents, and nothing else does ("й", "ά", voiced kana, Hangul syllables)
        ("Вчера я слушал Чайковского весь вечер", "Чайковский"),
        ("저는 요즘 한국어 공부를 해요", "한국어"),
        ("ビデオゲームを買いました", "ビデオゲーム"),
        ("Ο Γιώργος μένει στην Αθήνα", "Γιώργος"),  # an accent and a final sigma
        ("Ο παππούς μου ζει εκεί", "παππούς"),
        # vowel signs are part of a word: the index kept them apart, and the query lost them
        ("मुझे हिन्दी फ़िल्में पसंद हैं", "हिन्दी फ़िल्म"),
        ("நான் தமிழ் பேசுவேன்", "தமிழ்"),
        # written without spaces: found by the pairs of characters a question holds
        ("我昨天在北京吃了饺子", "你喜欢吃饺子吗？"),
        ("昨日は東京で寿司を食べました", "寿司"),
        ("ฉันชอบกินข้าวผัดมาก", "ข้าวผัด"),  # a letter with its vowel sign and tone mark
        ("ខ្ញុំចូលចិត្តបាយឆាណាស់", "បាយឆា"),
        ("ကျွန်တော်ထမင်းကြော်ကြိုက်တယ်", "ထမင်းကြော်"),
    ],
    ids=[
        "russian",
        "korean",
        "japanese",
        "greek",
        "greek-prefix",
        "hindi",
        "tamil",
        "chinese",
        "japanese-inside-a-phrase",
        "thai",
        "khmer",
        "burmese",
    ],
)
async def test_recall_finds_words_in_every_script_as_they_are_written(
    runtime: Runtime, clock: ManualClock, said: str, asked: str
) -> None:
    ana = await chat_sessions(runtime, clock, "ana", [[said], ["ok"]])

    found = recall(runtime, clock).search(ana, asked, limit=1)

    assert [f.text for f in found] == [said]


async def test_facts_and_their_earlier_values_are_found(
    runtime: Runtime, clock: ManualClock
) -> None:
    chat = Chat(runtime, bot="facts", user="ana")
    await chat.say("Globex Shipping")
    ana = await chat.user_id()
    with runtime.db.write() as conn:  # an earlier value, as fact extraction records it
        conn.execute(
            insert(FACT_HISTORY).values(
                id=new_id(),
                user_id=ana,
                key="employer",
                value="Acme Rockets",
                action="add",
                source="extraction",
                superseded_at=clock.now(),
                created_at=clock.now() - timedelta(days=30),
            )
        )

    found = recall(runtime, clock).search(ana, "which employer? rockets or shipping", limit=10)

    kinds = {(f.kind, f.text) for f in found}
    assert ("fact", "employer: Globex Shipping") in kinds
    assert ("earlier fact", "employer was: Acme Rockets") in kinds


async def test_forget_removes_the_index_rows_too(runtime: Runtime, clock: ManualClock) -> None:
    ana = await chat_sessions(runtime, clock, "ana", [["the zeppelin tickets are booked"]])
    bea = await chat_sessions(runtime, clock, "bea", [["my zeppelin model is finished"]])
    assert _indexed(runtime, "zeppelin") == 2

    await runtime.db.run(forget_user, runtime.db, ana)

    assert _indexed(runtime, "zeppelin") == 1
    assert recall(runtime, clock).search(ana, "zeppelin") == []
    assert [f.text for f in recall(runtime, clock).search(bea, "zeppelin")] == [
        "my zeppelin model is finished"
    ]


async def test_an_expired_memory_is_not_recalled(runtime: Runtime, clock: ManualClock) -> None:
    ana = await chat_sessions(runtime, clock, "ana", [["hi"]])
    mood = MemoryScope(runtime.memory, runtime.memory.user_ref(ana, UserMemoryPolicy()))
    await mood.set("mood", "cheerful today", ttl=60)
    assert [f.text for f in recall(runtime, clock).search(ana, "cheerful mood")] == [
        "mood: cheerful today"
    ]

    clock.advance(seconds=61)

    assert recall(runtime, clock).search(ana, "cheerful mood") == []


async def test_a_card_number_redacted_from_the_transcript_is_not_in_the_index(
    runtime: Runtime, clock: ManualClock
) -> None:
    ana = await chat_sessions(runtime, clock, "ana", [["my card is 4111 1111 1111 1111 thanks"]])

    [said] = recall(runtime, clock).search(ana, "my card")
    assert "4111" not in said.text and "[redacted]" in said.text
    assert recall(runtime, clock).search(ana, "4111") == []
    assert _indexed(runtime, "4111") == 0


async def test_words_that_are_query_syntax_are_just_words(
    runtime: Runtime, clock: ManualClock
) -> None:
    ana = await chat_sessions(runtime, clock, "ana", [["NEAR the OR gate, AND a NOT sign"]])

    found = recall(runtime, clock).search(ana, 'NEAR( "OR* gate:* -sign & | !')

    assert [f.text for f in found] == ["NEAR the OR gate, AND a NOT sign"]


def _indexed(runtime: Runtime, word: str) -> int:
    """Rows of the index itself that hold ``word`` (not the source table's)."""
    with runtime.db.read() as conn:
        if runtime.db.dialect == "postgresql":
            query = "SELECT count(*) FROM turns WHERE search @@ to_tsquery('simple', :w)"
        else:
            query = "SELECT count(*) FROM turns_fts WHERE turns_fts MATCH :w"
        return int(conn.execute(text(query), {"w": word}).scalar() or 0)


def test_the_gate_holds_a_word_some_line_has_when_the_rarest_are_in_none(
    database: Database, clock: ManualClock
) -> None:
    """A gate of words no line holds finds nothing, and the search then went ungated, ranking
    every line of the commoner words: the slowest searches of a long history."""
    write_lines(database, "ana", ["beta here"] * 600 + ["gamma there"] * 1500 + ["delta"] * 1950)
    analyze(database)  # PostgreSQL's counts come from its statistics
    recall = Recall(database, clock)
    zzzq, beta, gamma, delta = (SearchTerm(w) for w in ("zzzq", "beta", "gamma", "delta"))

    with database.read() as conn:
        terms = [zzzq, beta, gamma, delta]
        kept, gates = recall._distinctive(terms, recall._weights(conn, terms))

    assert kept == [zzzq, beta, gamma, delta]
    # 600 lines: past GATE_LINES (500); then WIDE_GATE_LINES (4,000): 2,100, not 4,050
    assert gates == [[zzzq, beta], [zzzq, beta, gamma]]


def test_a_word_in_most_lines_is_not_searched_and_the_rare_one_finds_its_line(
    database: Database, clock: ManualClock
) -> None:
    """A word in thousands of lines ranks nothing (its IDF is near zero) but makes a search
    read every line holding it: a long history's slowest searches, on PostgreSQL ~200 ms at
    100,000 lines (bench/recall_cost.py's histories) before its statistics were read."""
    said = [f"hello there, friend number {n}" for n in range(2_400)]
    write_lines(database, "ana", [*said[:1_200], "an okapi said hello", *said[1_200:]])
    write_lines(database, "bea", ["hello okapi"] * 3)  # another person's: never found
    analyze(database)

    found = Recall(database, clock).gather("ana", "hello, okapi?")

    assert [t.word for t in found.common] == ["hell"]  # "hello", by its first four letters
    assert [t.text for t in found.turns] == ["an okapi said hello"]
