"""Each statement, operator and function of the dialect, run against the dict-backed host."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.dialogs import DialogOutcome, parse_dialog, run_dialog
from mnemobot.runtime.errors import DialogSyntaxError
from tests.runtime.dialogs.fakehost import FakeHost


async def said(source: str, host: FakeHost | None = None, **options: Any) -> list[str]:
    """Run a program to its end and return what it said."""
    active = host or FakeHost()
    outcome = await run_dialog(parse_dialog(source, "t.bas"), active, **options)
    assert outcome.finished, outcome
    return active.said


async def talk_value(expr: str) -> str:
    """What ``TALK expr`` says."""
    result = await said(f"TALK {expr}\n")
    assert len(result) == 1
    return result[0]


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ('"x " + 3', "x 3"),
        ('3 + " x"', "3 x"),
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("7 / 2", "3.5"),
        ("6 / 2", "3"),
        ("3.0", "3"),
        ("1.5 + 1.5", "3"),
        ("10 - 4 - 3", "3"),
        ("7 MOD 3", "1"),
        ("-2 + 5", "3"),
        ("--2", "2"),
        ('"a" & 1 & TRUE', "a1true"),
        ('"n: " + (2 + 3)', "n: 5"),
        ('"" + 1', "1"),
        ("TRUE", "true"),
        ("[1, 2]", "[1, 2]"),
        ('#{ a: 1, b: "x" }', '{"a": 1, "b": "x"}'),
        ("1 = 1", "true"),
        ('"5" = 5', "true"),
        ('"abc" = "ABC"', "false"),
        ("1 <> 2", "true"),
        ("2 < 10", "true"),
        ('"2" < "10"', "false"),
        ("3 >= 3 AND 2 <= 1", "false"),
        ("NOT 1 = 2", "true"),
        ("1 = 2 OR 2 = 2", "true"),
        ('missing = ""', "true"),
        ("missing = 0", "false"),
        ('"" = missing.deeper.still', "true"),
    ],
)
async def test_expressions(expr: str, text: str) -> None:
    assert await talk_value(expr) == text


async def test_and_or_stop_early() -> None:
    # The right side would be a type error if it were evaluated.
    result = await said(
        'IF 1 = 1 OR "abc" - 1 THEN TALK "or"\nIF 1 = 2 AND "abc" - 1 THEN TALK "no"\n'
    )
    assert result == ["or"]


async def test_truthiness_in_if() -> None:
    program = "\n".join(
        f'IF {value} THEN TALK "{label} yes" ELSE TALK "{label} no"'
        for label, value in [
            ("empty", '""'),
            ("zero", "0"),
            ("false", "FALSE"),
            ("list", "[]"),
            ("map", "#{ }"),
            ("text", '"x"'),
            ("number", "2"),
            ("missing", "nothing"),
        ]
    )
    assert await said(program + "\n") == [
        "empty no",
        "zero no",
        "false no",
        "list no",
        "map no",
        "text yes",
        "number yes",
        "missing no",
    ]


async def test_member_access() -> None:
    program = """
p = #{ name: "Ana", address: #{ city: "Porto" }, tags: ["a", "b"] }
TALK p.address.city
TALK p.NAME
TALK "[" + p.missing + "]"
n = 5
TALK "[" + n.anything + "]"
TALK p.tags[1]
TALK "[" + p.tags[9] + "]"
TALK p["name"]
"""
    assert await said(program) == ["Porto", "Ana", "[]", "[]", "b", "[]", "Ana"]


async def test_map_literals_multi_line_nested_commented() -> None:
    program = """
m = #{\x20\x20\x20
    a: 1,   ' first
    "quoted key": "v", // second
    inner: #{
        deep: [1,
               2],
    },
    empty: #{ },
}
TALK JSON(m)
"""
    assert await said(program) == [
        '{"a": 1, "quoted key": "v", "inner": {"deep": [1, 2]}, "empty": {}}'
    ]


async def test_member_assignment_copies_shared_maps() -> None:
    program = """
a = #{ x: 1 }
b = a
b.x = 2
b.y.z = 3
TALK JSON(a)
TALK JSON(b)
"""
    assert await said(program) == ['{"x": 1}', '{"x": 2, "y": {"z": 3}}']


async def test_append_returns_a_new_list() -> None:
    program = """
a = [1]
b = APPEND(a, 2)
c = APPEND(missing, "x")
TALK JSON(a) + JSON(b) + JSON(c) + LEN(b)
"""
    assert await said(program) == ['[1][1, 2]["x"]2']


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ('UPPER("ab")', "AB"),
        ('LCASE("AB")', "ab"),
        ('TRIM("  a ")', "a"),
        ('STR(3) + "x"', "3x"),
        ('VAL("42") + 1', "43"),
        ('VAL("abc")', "0"),
        ("INT(3.7)", "3"),
        ("ROUND(2.345, 2)", "2.35"),
        ("ABS(-4)", "4"),
        ("MIN(3, 1, 2)", "1"),
        ("MAX([3, 9])", "9"),
        ("JSON(KEYS(#{ a: 1, b: 2 }))", '["a", "b"]'),
        ('CONTAINS("hello", "ell")', "true"),
        ('CONTAINS(["a"], "b")', "false"),
        ('INSTR("hello", "l")', "3"),
        ('LEFT("hello", 2) + RIGHT("hello", 2) + MID("hello", 2, 3)', "heloell"),
        ('REPLACE("a-b", "-", "+")', "a+b"),
        ('JSON(SPLIT("a,b"))', '["a", "b"]'),
        ('JOIN(["a", 1], "-")', "a-1"),
        ('ISEMPTY("") AND ISEMPTY([]) AND NOT ISEMPTY("x")', "true"),
        ('ISNUMBER("3.5")', "true"),
        ('PARSEJSON("{""a"": [1]}").a[0]', "1"),
        ('LEN("abc") + LEN([1, 2]) + LEN(#{ a: 1 }) + LEN(missing)', "6"),
        ('JSON("q")', '"q"'),
    ],
)
async def test_functions(expr: str, text: str) -> None:
    assert await talk_value(expr) == text


async def test_now_reads_the_injected_clock(clock: ManualClock) -> None:
    start = int(clock.now().timestamp())
    result = await said("t = NOW()\nTALK NOW() - t\nTALK NOW() + 300", clock=clock)
    assert result == ["0", str(start + 300)]


async def test_now_without_clock_is_the_wall_clock() -> None:
    import time

    before = int(time.time())
    value = int(await talk_value("NOW()"))
    assert before <= value <= int(time.time())


async def test_block_if_elseif_else() -> None:
    program = """
FOR EACH n IN [1, 2, 3, 4]
    IF n = 1 THEN
        TALK "one"
    ELSEIF n = 2 THEN
        TALK "two"
    ELSE IF n = 3 THEN
        TALK "three"
    ELSE
        TALK "many"
    END IF
NEXT n
"""
    assert await said(program) == ["one", "two", "three", "many"]


async def test_one_line_if_and_endif_spelling() -> None:
    program = """
x = 2
IF x = 2 THEN TALK "yes" ELSE TALK "no"
IF x = 3 THEN TALK "three"
IF x = 3 THEN x = 30 ELSE x = 20
if x = 20 then
  talk "lower case works"
endif
"""
    assert await said(program) == ["yes", "lower case works"]


async def test_for_each_over_lists_maps_and_nothing() -> None:
    program = """
FOR EACH k IN #{ a: 1, b: 2 }
  TALK k
NEXT
FOR EACH x IN nothing
  TALK "never"
NEXT x
FOR EACH x IN []
  TALK "never"
NEXT
"""
    assert await said(program) == ["a", "b"]


async def test_numeric_for_with_step_and_exit() -> None:
    program = """
FOR i = 1 TO 3
  TALK i
NEXT i
FOR i = 10 TO 0 STEP -5
  TALK i
NEXT
FOR i = 1 TO 100
  IF i = 3 THEN EXIT FOR
  TALK "i" + i
NEXT
FOR i = 5 TO 1
  TALK "never"
NEXT
"""
    assert await said(program) == ["1", "2", "3", "10", "5", "0", "i1", "i2"]


async def test_while_wend_and_exit_while() -> None:
    program = """
n = 0
WHILE n < 3
  n = n + 1
WEND
TALK n
WHILE TRUE
  n = n + 1
  IF n > 5 THEN EXIT WHILE
END WHILE
TALK n
"""
    assert await said(program) == ["3", "6"]


async def test_comments_and_rem() -> None:
    program = """REM a header comment
' a quote comment
remaining = 2 ' trailing comment
rem lower case rem
TALK remaining // slash comment
"""
    assert await said(program) == ["2"]


async def test_keywords_and_identifiers_are_case_insensitive_keys_are_not(
    host: FakeHost,
) -> None:
    program = """
set user memory "Name", "upper"
SET USER MEMORY "name", "lower"
MyVar = GET USER MEMORY("Name")
talk myvar
"""
    assert await said(program, host) == ["upper"]
    assert host.memory.user == {"Name": "upper", "name": "lower"}


async def test_session_and_context_and_http(host: FakeHost) -> None:
    host._http["https://example.com/x"] = {"ok": True}
    program = """
SET "step", 2
s = GET "step"
url = "https://example.com/x"
r = GET url
SET CONTEXT "topic" AS "billing " + s
TALK s + 1
TALK r.ok
"""
    assert await said(program, host) == ["3", "true"]
    assert host.session == {"step": 2}
    assert host.context == {"topic": "billing 2"}
    assert host.fetched == ["https://example.com/x"]


async def test_temp_is_a_named_scope_of_its_own(host: FakeHost) -> None:
    program = """
SET TEMP "servers", ["a", "b"]
set temp "gone", 1
SET TEMP "gone", ""
SET "servers", "session"
TALK JSON(GET TEMP "servers") + " " + JSON(GET TEMP("missing")) + " " + GET "servers"
k = "servers"
TALK LEN(GET TEMP k)
"""
    assert await said(program, host) == ['["a", "b"] "" session', "2"]
    assert host.temp == {"servers": ["a", "b"]}
    assert host.session == {"servers": "session"}


async def test_summarize_session_asks_the_host(host: FakeHost) -> None:
    assert await said('summarize session\nTALK "asked"\n', host) == ["asked"]
    assert host.summaries_asked == 1


async def test_add_user_memory_and_user_memories(host: FakeHost) -> None:
    program = """
ADD USER MEMORY "Prefers concise answers", ["style"]
note = "Has a dog called " + "Rex"
add user memory note
FOR EACH m IN USER MEMORIES()
    TALK m.text + " " + JSON(m.topics)
NEXT
TALK LEN(USER MEMORIES)
"""
    assert await said(program, host) == [
        'Prefers concise answers ["style"]',
        "Has a dog called Rex []",
        "2",
    ]


async def test_add_and_summarize_stay_variable_names(host: FakeHost) -> None:
    program = "add = 2\nsummarize = 3\nsession = add + summarize\nTALK session\n"
    assert await said(program, host) == ["5"]
    assert host.summaries_asked == 0


def test_a_misspelt_summarize_session_names_the_statement() -> None:
    with pytest.raises(DialogSyntaxError, match="unknown statement SUMARIZE SESSION"):
        parse_dialog("SUMARIZE SESSION\n")


def test_a_misspelt_add_user_memory_names_the_statement() -> None:
    with pytest.raises(DialogSyntaxError, match="unknown statement PUT USER MEMORY"):
        parse_dialog('PUT USER MEMORY "x"\n')


async def test_memory_values_are_json_and_empty_clears(host: FakeHost) -> None:
    host.memory.user["old"] = "x"
    program = """
SET USER MEMORY "map", #{ n: 1.5, flags: [TRUE, FALSE], nested: #{ s: "t" } }
SET USER MEMORY "old", ""
SET USER FACT "role", "PM"
SET BOT MEMORY "count", 2
GET_BOT_MEMORY "count" INTO c
TALK c * 2
"""
    assert await said(program, host) == ["4"]
    assert host.memory.user == {"map": {"n": 1.5, "flags": [True, False], "nested": {"s": "t"}}}
    assert host.memory.facts == {"role": "PM"}
    assert host.bot_memory == {"count": 2}


async def test_llm_assignment(host: FakeHost) -> None:
    program = 'topic = "tea"\nanswer = LLM "Tell me about " + topic\nTALK answer\n'
    assert await said(program, host) == ["LLM answer to: Tell me about tea"]
    assert host.prompts == ["Tell me about tea"]


async def test_transfer_ends_the_run(host: FakeHost) -> None:
    outcome = await run_dialog(
        parse_dialog('TALK "bye"\nTRANSFER CONVERSATION TO "other-bot"\nTALK "never"\n'), host
    )
    assert outcome == DialogOutcome("transferred", 2, None, "other-bot")
    assert host.said == ["bye"] and host.transfers == ["other-bot"]


async def test_print_logs_and_says_nothing(
    host: FakeHost, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mnemobot.runtime.dialogs")
    assert await said('PRINT "count " + 3\n', host) == []
    assert any(
        "test-bot" in r.getMessage() and r.getMessage().endswith("count 3") for r in caplog.records
    )


async def test_empty_talk_is_not_sent(host: FakeHost) -> None:
    assert await said('TALK ""\nTALK nothing\nTALK "x"\n', host) == ["x"]


async def test_steps_are_counted() -> None:
    outcome = await run_dialog(parse_dialog("FOR EACH x IN [1, 2]\nTALK x\nNEXT\n"), FakeHost())
    # FOR EACH, TALK, loop back, TALK, loop end check
    assert outcome.steps == 5


async def test_get_takes_a_parenthesised_expression_and_keys_without_parens(
    host: FakeHost,
) -> None:
    host._http["https://example.com/items/7"] = ["seven"]
    host.memory.user["k"] = "from user memory"
    program = """
id = 7
item = GET ("https://example.com/items/" + id)
TALK item[0]
TALK GET USER MEMORY "k"
"""
    assert await said(program, host) == ["seven", "from user memory"]


async def test_recall_assigns_what_the_host_found_as_a_list_of_maps() -> None:
    host = FakeHost()

    spoken = await said(
        'found = RECALL "my " + "order"\n'
        "TALK LEN(found)\n"
        "FOR EACH hit IN found\n"
        '  TALK hit.kind + " on " + hit.date + ": " + hit.text\n'
        "NEXT\n"
        'few = RECALL "x", 1\n',
        host,
    )

    assert spoken == ["1", "turn on 2026-01-01: you said my order"]
    assert host.recalls == [("my order", 5), ("x", 1)]


@pytest.mark.parametrize("limit", ['"many"', "0", "51"])
async def test_recall_refuses_a_limit_that_is_not_1_to_50(limit: str) -> None:
    from mnemobot.runtime.dialogs import DialogRuntimeError

    with pytest.raises(DialogRuntimeError, match="RECALL's limit must be a number from 1 to 50"):
        await said(f'found = RECALL "x", {limit}\n')
