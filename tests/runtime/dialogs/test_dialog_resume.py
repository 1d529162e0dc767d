"""Suspending at HEAR and resuming from a JSON round-tripped state, wherever HEAR sits."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from mnemobot.runtime.dialogs import DialogStateError, parse_dialog, run_dialog
from tests.runtime.dialogs.fakehost import FakeHost, converse


async def test_hear_inside_if_while_and_for_each() -> None:
    program = """
TALK "How many?"
HEAR count
answers = []
IF VAL(count) > 0 THEN
    n = 0
    WHILE n < VAL(count)
        n = n + 1
        TALK "Item " + n + "?"
        HEAR item
        answers = APPEND(answers, item)
    WEND
END IF
FOR EACH a IN answers
    TALK "Sure about " + a + "?"
    choice = HEAR yesno
    IF choice = "no" THEN answers = APPEND(answers, "!" + a)
NEXT a
TALK JSON(answers)
"""
    host = FakeHost()
    outcomes = await converse(parse_dialog(program), host, ["2", "tea", "cake", "yes", "no"])
    assert [o.status for o in outcomes] == ["waiting"] * 5 + ["finished"]
    assert host.said == [
        "How many?",
        "Item 1?",
        "Item 2?",
        "Sure about tea?",
        "Sure about cake?",
        '["tea", "cake", "!cake"]',
    ]


async def test_hear_inside_numeric_for_and_nested_loops() -> None:
    program = """
FOR i = 1 TO 2
    FOR EACH q IN ["a", "b"]
        TALK i + q
        HEAR reply
        log = APPEND(log, reply)
    NEXT
NEXT i
TALK JOIN(log, ",")
"""
    host = FakeHost()
    outcomes = await converse(parse_dialog(program), host, ["r1", "r2", "r3", "r4"])
    assert outcomes[-1].finished
    assert host.said == ["1a", "1b", "2a", "2b", "r1,r2,r3,r4"]


async def test_state_is_plain_json_with_frames_and_variables() -> None:
    program = "x = #{ n: 1 }\nFOR EACH item IN [10, 20]\n  HEAR answer\nNEXT\n"
    outcome = await run_dialog(parse_dialog(program), FakeHost())
    assert outcome.waiting and outcome.state is not None
    state = outcome.state
    assert json.loads(json.dumps(state)) == state
    assert state["vars"] == {"x": {"n": 1}, "item": 10}
    assert state["hear"] == ["answer"]
    assert [frame["kind"] for frame in state["frames"]] == ["block", "each"]
    assert state["frames"][1]["path"] == [1, 0]
    assert state["frames"][1]["index"] == 0


async def test_resume_after_reparsing_the_program() -> None:
    """A restart re-reads start.bas; the saved state still fits the same source."""
    source = 'TALK "name?"\nHEAR name\nTALK "hi " + name\n'
    first = await run_dialog(parse_dialog(source, "start.bas"), FakeHost())
    assert first.state is not None
    saved = json.dumps(first.state)

    host = FakeHost()  # another process: new parse, new host
    second = await run_dialog(parse_dialog(source, "start.bas"), host, json.loads(saved), "Bo")
    assert second.finished and host.said == ["hi Bo"]


async def test_opening_message_is_not_the_first_answer() -> None:
    host = FakeHost()
    outcome = await run_dialog(parse_dialog("HEAR x\nTALK x\n"), host, None, "opening text")
    assert outcome.waiting and host.said == []


async def test_hear_stores_into_a_member() -> None:
    host = FakeHost()
    program = "HEAR profile.name\nTALK JSON(profile)\n"
    await converse(parse_dialog(program), host, ["Ana"])
    assert host.said == ['{"name": "Ana"}']


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.update(program="0" * 64), "changed"),
        (lambda s: s.update(version=99), "version"),
        (lambda s: s["frames"][1].update(path=[7, 0]), "outside"),
        (lambda s: s["frames"][1].update(kind="while"), "kind"),
        (lambda s: s["frames"][0].update(pc=99), "out of range"),
        (lambda s: s.update(frames=[]), "no frames"),
        (lambda s: s.update(hear=[]), "HEAR"),
        (lambda s: s.update(vars=[1]), "variables"),
        (lambda s: s["vars"].update(bad={1, 2}), "not a JSON value"),
    ],
)
async def test_unusable_state_is_refused(mutate: Any, message: str) -> None:
    dialog = parse_dialog('FOR EACH i IN [1, 2]\n  HEAR x\nNEXT\nTALK "done"\n')
    outcome = await run_dialog(dialog, FakeHost())
    state = copy.deepcopy(outcome.state)
    assert state is not None
    mutate(state)
    with pytest.raises(DialogStateError, match=message):
        await run_dialog(dialog, FakeHost(), state, "answer")


async def test_state_of_another_program_is_refused() -> None:
    outcome = await run_dialog(parse_dialog("HEAR x\n"), FakeHost())
    with pytest.raises(DialogStateError, match="changed"):
        await run_dialog(parse_dialog("HEAR y\n"), FakeHost(), outcome.state, "answer")


async def test_resuming_needs_a_message() -> None:
    dialog = parse_dialog("HEAR x\n")
    outcome = await run_dialog(dialog, FakeHost())
    with pytest.raises(DialogStateError, match="message"):
        await run_dialog(dialog, FakeHost(), outcome.state, None)
