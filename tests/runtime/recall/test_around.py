"""A transcript line ranked with the lines around it (recall.around).

The ranking rule on its own first (places in, order out), then the whole path on SQLite and
PostgreSQL: a person's conversation written through the console channel, searched with the
lines around the hits, and the prompt a bot would send.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from mnemobot.runtime.bots.runner import preview_prompt
from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.pipeline.runtime import Runtime
from mnemobot.runtime.recall.around import (
    FITTED,
    Around,
    ContextWeights,
    ranked_in_context,
    strength,
)
from mnemobot.runtime.recall.search import WINDOW_HITS, Recall, Recalled, window_for
from mnemobot.runtime.storage.tables import TURNS
from tests.support import Chat, write_bot

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# The rule before the fitted weights: a line's strength by place, plus 0.7 of the line before's
# and 0.3 of the line after's, times 1 + its matched summary's strength.
BY_PLACE = ContextWeights(
    own=1.0, before=0.7, after=0.3, own_summary=1.0, before_summary=0.7, after_summary=0.3
)


def line(
    name: str,
    session: str = "s1",
    kind: str = "turn",
    *,
    text: str | None = None,
    relevance: float | None = None,
) -> Recalled:
    return Recalled(
        kind,  # type: ignore[arg-type]
        name,
        text if text is not None else f"text of {name}",
        0.0,
        0,
        T0,
        session_id=session,
        relevance=relevance,
    )


def order(ranked: list[tuple[Recalled, float]]) -> list[str]:
    return [found.id for found, _ in ranked]


def test_a_passage_outranks_a_lone_hit_the_search_put_first() -> None:
    lone, first, second = line("lone", "s1"), line("first", "s2"), line("second", "s2")
    places = {
        "lone": Around(None, None),
        "first": Around(None, "second"),
        "second": Around("first", None),
    }

    ranked = ranked_in_context([lone, first, second], places, [], weights=BY_PLACE)

    assert order(ranked) == ["second", "first", "lone"]
    value = dict((found.id, v) for found, v in ranked)
    assert value["second"] == pytest.approx(strength(2) + 0.7 * strength(1))  # the line before
    assert value["first"] == pytest.approx(strength(1) + 0.3 * strength(2))  # the line after


def test_the_line_after_the_best_hit_outranks_weak_hits_though_no_word_matched() -> None:
    hits = [line(f"hit{place}", f"s{place}") for place in range(8)]
    answer = line("answer", "s0")
    places = {hit.id: Around(None, None) for hit in hits}
    places["hit0"] = Around(None, "answer")

    ranked = ranked_in_context(hits, places, [answer], weights=BY_PLACE)

    assert order(ranked) == [*(f"hit{p}" for p in range(5)), "answer", "hit5", "hit6", "hit7"]
    assert ranked[5][1] == pytest.approx(0.7)  # 0.7 of hit0's 1: above hit5's 1 / 1.5


def test_a_conversation_whose_summary_matched_lifts_its_lines() -> None:
    in_s1, in_s2 = line("in_s1", "s1"), line("in_s2", "s2")
    places = {"in_s1": Around(None, None), "in_s2": Around(None, None)}
    summary_of_s2 = line("summary", "s2", kind="episode")

    assert order(ranked_in_context([in_s1, in_s2], places, [], weights=BY_PLACE)) == [
        "in_s1",
        "in_s2",
    ]
    lifted = ranked_in_context([in_s1, in_s2], places, [], [summary_of_s2], BY_PLACE)
    assert order(lifted) == ["in_s2", "in_s1"]
    assert lifted[0][1] == pytest.approx(strength(1) * (1 + strength(0)))


def test_hits_beyond_the_window_are_left_out() -> None:
    hits = [line(f"hit{place}") for place in range(4)]
    places = {"hit0": Around(None, None), "hit1": Around(None, None)}

    ranked = ranked_in_context(hits, places, [], weights=BY_PLACE)

    assert ranked == [(hits[0], 1.0), (hits[1], strength(1))]


def test_a_hit_beyond_the_window_next_to_one_in_it_is_ranked_as_its_neighbour() -> None:
    hits = [line(f"hit{place}") for place in range(3)]
    places = {"hit0": Around(None, "hit2")}

    ranked = ranked_in_context(hits, places, [hits[2]], weights=BY_PLACE)

    assert order(ranked) == ["hit2", "hit0"]  # the line after the best hit: lent 0.7 of it
    assert ranked[0][1] == pytest.approx(strength(2) + 0.7 * strength(0))


# -- the weights fitted for the words alone (FITTED) ------------------------------------------


def test_the_answer_to_a_matched_question_outranks_a_hit_that_asks_nothing() -> None:
    question = line("question", "s1", text="How long have you had your tortoises?")
    answer = line("answer", "s1", text="Three years now, since the spring.")
    mention = line("mention", "s2", text="My cousin keeps tortoises too.")
    hits = [question, mention]
    places = {"question": Around(None, "answer"), "mention": Around(None, None)}
    plain = [
        line("question", "s1", text="I have had tortoises for a while"),
        line("answer", "s1", text="Three years now, since the spring."),
        mention,
    ]

    asked = order(ranked_in_context(hits, places, [answer]))
    told = order(ranked_in_context(plain[::2], places, [plain[1]]))

    assert asked.index("answer") < asked.index("mention")  # the line after a question
    assert told.index("answer") > told.index("mention")  # ...and not after a statement


def test_a_hit_nearly_as_good_as_the_best_outranks_one_far_below_it_at_a_nearer_place() -> None:
    hits = [
        line("best", "s1", relevance=10.0),
        line("weak", "s2", relevance=1.0),
        line("close", "s3", relevance=9.5),
    ]
    places = {hit.id: Around(None, None) for hit in hits}

    assert order(ranked_in_context(hits, places, [])) == ["best", "close", "weak"]
    assert order(ranked_in_context(hits, places, [], weights=BY_PLACE)) == [
        "best",
        "weak",
        "close",
    ]


def test_only_how_close_a_match_comes_to_the_best_counts_not_the_score_scale() -> None:
    def ranked(scale: float) -> list[tuple[str, float]]:
        hits = [line(f"hit{p}", f"s{p}", relevance=scale * (5 - p)) for p in range(5)]
        found = ranked_in_context(hits, {hit.id: Around(None, None) for hit in hits}, [])
        return [(hit.id, round(value, 9)) for hit, value in found]

    assert ranked(1.0) == ranked(0.001)  # FTS5's bm25 and fusion's 0..1 alike


def test_a_line_holding_a_number_outranks_its_equal_without_one() -> None:
    hits = [line("words", "s1", text="we moved in spring"), line("date", "s2", text="in 2019")]
    places = {hit.id: Around(None, None) for hit in hits}

    assert order(ranked_in_context(hits, places, [], weights=BY_PLACE)) == ["words", "date"]
    assert order(ranked_in_context(hits, places, [])) == ["date", "words"]


def test_each_weight_adds_what_it_says() -> None:
    question = line("question", "s1", text="where?", relevance=4.0)
    reply = line("reply", "s1", text="at 7", relevance=2.0)
    summary = line("summary", "s1", kind="episode")
    places = {"question": Around(None, "reply"), "reply": Around("question", None)}
    only = ContextWeights(own=0.0, before=0.0, after=0.0, answer=1.0)

    [(_, value)] = [
        (found, v)
        for found, v in ranked_in_context([question, reply], places, [], [summary], only)
        if found.id == "reply"
    ]

    assert value == pytest.approx(strength(0))  # asked, times the line before's strength
    everything = ranked_in_context([question, reply], places, [], [summary], FITTED)
    by_id = {found.id: v for found, v in everything}
    w, mine, earlier = FITTED, strength(1), strength(0)
    assert by_id["reply"] == pytest.approx(
        w.own * mine + w.before * earlier + w.match * 0.5 + w.match_before * 1.0
        + strength(0) * (w.summary + w.own_summary * mine + w.before_summary * earlier)
        + w.number + w.asked + w.answer * earlier
    )  # fmt: skip


def test_the_same_speaker_going_on_after_the_best_hit_outranks_weak_hits() -> None:
    # "I'll share the recipe!" / "Please do!" / "I'm making it for my family this weekend"
    hits = [line(f"hit{place}", f"s{place}", text="words") for place in range(10)]
    reply, goes_on = line("reply", "s0", text="words"), line("goes_on", "s0", text="words")
    places = {hit.id: Around(None, None) for hit in hits}
    places["hit0"] = Around(None, "reply", "goes_on")
    without = dataclasses.replace(FITTED, two_before=0.0)

    ranked = ranked_in_context(hits, places, [reply, goes_on])

    value = dict((found.id, v) for found, v in ranked)
    assert value["goes_on"] == pytest.approx(FITTED.two_before)  # times hit0's strength, 1
    assert order(ranked).index("goes_on") < order(ranked).index("hit9")
    assert order(ranked_in_context(hits, places, [reply, goes_on], weights=without))[-1] == (
        "goes_on"
    )


@pytest.mark.parametrize(("budget", "window"), [(500, 40), (1500, 40), (2500, 67), (3000, 80)])
def test_a_larger_memory_budget_reads_more_hits_with_their_neighbours(
    budget: int, window: int
) -> None:
    assert window_for(budget, by_meaning=False) == window
    assert window_for(budget, by_meaning=True) == max(60, -(-60 * budget // 1500))


# -- the whole path, on both databases --------------------------------------------------------

REPLIES = """
    REPLIES = {
        "how long have you had your tortoises?": "Three years now, since the spring.",
        "my cousin keeps tortoises too": "Nice!",
    }

    async def on_message(ctx):
        await ctx.say(REPLIES.get(ctx.text, "ok"))
"""


@pytest.fixture
async def runtime(make_runtime: Callable[..., Any], tmp_path: Path) -> Runtime:
    write_bot(tmp_path / "bots", "pets", bot_py=REPLIES)
    return await make_runtime(bots_dir=tmp_path / "bots")


async def test_the_answer_after_a_matched_question_is_found_and_goes_in_the_prompt(
    runtime: Runtime, clock: ManualClock
) -> None:
    first_day = clock.now().date()
    ana_chat = Chat(runtime, bot="pets", user="ana")

    async def say(text: str) -> None:
        await ana_chat.say(text)
        clock.advance(seconds=30)  # lines of a session in the order they were said

    for text in ["hello", "how long have you had your tortoises?", "lovely"]:
        await say(text)
    clock.advance(days=3)
    for day in range(6):  # later conversations that mention the word, with no answer near
        await say("my cousin keeps tortoises too")
        await say(f"the weather on day {day} was grey")
        clock.advance(days=3)
    bea_chat = Chat(runtime, bot="pets", user="bea")
    await bea_chat.say("how long have you had your tortoises?")
    ana = await ana_chat.user_id()

    found = await runtime.db.run(
        Recall(runtime.db, clock).gather, ana, "tortoises: how long?", window=WINDOW_HITS
    )

    [answer] = [f for f in found.turns if f.text == "Three years now, since the spring."]
    assert answer.hit is None and answer.role == "bot"  # no word of it matched
    weaker = [f for f in found.turns if f.hit is not None and f.hit >= 5]
    assert weaker and all(answer.rank < f.rank for f in weaker)  # the best hit asks it
    hit_sessions = {f.session_id for f in found.turns if f.hit is not None}
    assert {f.session_id for f in found.turns} == hit_sessions  # never another person's lines
    built, _ = await preview_prompt(
        runtime.bot_services, runtime.bots.get("pets"), ana, "tortoises: how long?"
    )
    system = built.messages[0]["content"]
    assert "bot: Three years now, since the spring." in system
    [item] = [i for i in built.items if i.rendered() == "bot: Three years now, since the spring."]
    assert item.included and "(no word matched" in item.detail
    assert f"[{first_day.isoformat()}]\n" in system and "· pets" not in system  # own bot


async def test_a_line_written_without_a_place_still_goes_in_the_prompt(
    runtime: Runtime, clock: ManualClock
) -> None:
    ana_chat = Chat(runtime, bot="pets", user="ana")
    await ana_chat.say("how long have you had your tortoises?")
    clock.advance(days=3)
    await ana_chat.say("hello again")  # a new session: the prompt's turns are this one's
    ana = await ana_chat.user_id()
    with runtime.db.write() as conn:  # as a worker older than migration 0011 wrote it
        conn.execute(update(TURNS).where(TURNS.c.user_id == ana).values(line=None))

    found = await runtime.db.run(
        Recall(runtime.db, clock).gather, ana, "tortoises", window=WINDOW_HITS
    )

    assert [f.text for f in found.turns] == ["how long have you had your tortoises?"]
    built, _ = await preview_prompt(
        runtime.bot_services, runtime.bots.get("pets"), ana, "tortoises"
    )
    assert "user: how long have you had your tortoises?" in built.messages[0]["content"]


async def test_without_a_window_the_search_gives_hits_only(
    runtime: Runtime, clock: ManualClock
) -> None:
    ana_chat = Chat(runtime, bot="pets", user="ana")
    await ana_chat.say("how long have you had your tortoises?")
    ana = await ana_chat.user_id()

    found = Recall(runtime.db, clock).search(ana, "tortoises", limit=10)

    assert [f.text for f in found] == ["how long have you had your tortoises?"]
    assert found[0].hit is None and found[0].strength is None
