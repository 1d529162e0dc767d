"""Syntax errors refuse to load with one clear message; runtime errors name line and cause."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from lark import Lark
from lark import logger as lark_logger

from mnemobot.runtime.dialogs import (
    DialogLimits,
    DialogRuntimeError,
    DialogSyntaxError,
    load_dialog,
    parse_dialog,
    run_dialog,
)
from mnemobot.runtime.dialogs.parser import MAX_NESTING
from mnemobot.runtime.errors import ConfigError, MemoryFull, MnemobotError
from tests.runtime.dialogs.fakehost import FakeHost


def test_grammar_has_no_lalr_conflicts(caplog: pytest.LogCaptureFixture) -> None:
    """lark resolves shift/reduce conflicts silently; a conflict would mean a construct
    parses differently from how it reads, so the grammar must have none."""
    from importlib import resources

    grammar = (
        resources.files("mnemobot.runtime.dialogs").joinpath("grammar.lark").read_text("utf-8")
    )
    previous = lark_logger.level
    lark_logger.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="lark")
    try:
        Lark(grammar, parser="lalr", debug=True)
    finally:
        lark_logger.setLevel(previous)
    conflicts = [r.getMessage() for r in caplog.records if "conflict" in r.getMessage().lower()]
    assert conflicts == []


@pytest.mark.parametrize(
    ("source", "line", "column", "reason"),
    [
        ('TALK "hi"\nIF x = 1 THEN\n  TALK "one"\n', 3, 13, "IF opened on line 2: expected END IF"),
        ("FOR EACH a IN b\n  TALK a\nEND IF\n", 3, 1, '"END IF" does not close the FOR'),
        ("WHILE x\nNEXT\n", 2, 1, '"NEXT" does not close the WHILE'),
        (
            'x = 1\nIF x = 1 THEN\n  TALK "a"\nEND IFF\n',
            4,
            1,
            '"END IFF" does not close the IF opened on line 2: expected END IF',
        ),
        ("NEXT\n", 1, 1, '"NEXT" without a matching'),
        ('FOO "x"\n', 1, 1, 'unknown statement "FOO"'),
        ('TALK "abc\n', 1, 6, "unterminated string"),
        ("x = 1 +\n", 1, 8, "unexpected end of line"),
        ("TALK 1 @ 2\n", 1, 8, "unexpected character '@'"),
        ("x = #{ a: 1\n", 1, 12, "map #{ opened on line 1: expected }"),
        ("x = #{ a 1 }\n", 1, 10, "unexpected number 1"),
        ("FOR EACH a IN b\nNEXT c\n", 2, 6, '"NEXT c" does not match the loop variable "a"'),
        ("IF x THEN\nELSE\nELSE\nEND IF\n", 3, 1, "ELSE"),
        ('SET USER MEMORY "k" v\n', 1, 21, 'unexpected name "v"'),
        ("TALK\n", 1, 5, "unexpected end of line"),
        ("x = [1, 2\n", 1, 10, "list [ opened on line 1"),
        ("TALK " + "(" * 5 + "-" * 50 + "1" + ")" * 5 + "\n", 1, 51, "nested more than"),
    ],
)
def test_malformed_programs_give_one_clear_error(
    source: str, line: int, column: int, reason: str
) -> None:
    with pytest.raises(DialogSyntaxError) as caught:
        parse_dialog(source, "bots/demo/start.bas")
    error = caught.value
    text = str(error)
    assert isinstance(error, ConfigError)
    assert (error.line, error.column) == (line, column), text
    assert text.startswith(f"bots/demo/start.bas:{line}:{column}: syntax error: ")
    assert reason in text
    shown = source.split("\n")[line - 1]
    assert f"\n    {shown}\n    " + " " * (column - 1) + "^" in text or not shown.strip()
    for leak in ("Token(", "lark", "Traceback", "__ANON", "_NL", "$END"):
        assert leak not in text
    assert error.__cause__ is None and error.__suppress_context__


def test_nesting_limit_on_blocks() -> None:
    deep = "".join("  " * i + "IF x THEN\n" for i in range(MAX_NESTING + 2))
    deep += "".join("  " * i + "END IF\n" for i in reversed(range(MAX_NESTING + 2)))
    with pytest.raises(DialogSyntaxError, match="blocks nested more than"):
        parse_dialog(deep)


def test_load_dialog_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "start.bas"
    path.write_text('TALK "ok"\nIF\n', encoding="utf-8")
    with pytest.raises(DialogSyntaxError, match=r"start\.bas:2:3: syntax error"):
        load_dialog(path)
    with pytest.raises(ConfigError, match="cannot read dialog"):
        load_dialog(tmp_path / "missing.bas")


async def runtime_error(
    source: str, host: FakeHost | None = None, **options: object
) -> DialogRuntimeError:
    with pytest.raises(DialogRuntimeError) as caught:
        await run_dialog(parse_dialog(source, "start.bas"), host or FakeHost(), **options)  # type: ignore[arg-type]
    assert isinstance(caught.value, MnemobotError)
    return caught.value


@pytest.mark.parametrize(
    ("source", "line", "column", "cause"),
    [
        (
            'TALK "ok"\nx = "abc" - 1\n',
            2,
            11,
            'cannot subtract text "abc" and number 1 (use VAL() to turn text into a number)',
        ),
        ("x = NOPE(1)\n", 1, 5, "unknown function NOPE()"),
        ("x = LEN(1, 2)\n", 1, 5, "LEN() takes 1 argument(s), got 2"),
        ("IF [1] < 2 THEN TALK 1\n", 1, 8, "cannot compare list of 1 with number 2"),
        ("FOR EACH x IN 5\nNEXT\n", 1, 1, "FOR EACH needs a list or a map, not number 5"),
        ("n = 5\nn.x = 1\n", 2, 1, "cannot set .x on number 5"),
        ("x = 1 / 0\n", 1, 7, "division by zero"),
        ('x = -"a"\n', 1, 5, 'cannot negate text "a"'),
        ("x = TRUE + 1\n", 1, 10, "cannot add boolean true and number 1"),
        ("SET USER MEMORY [1], 2\n", 1, 1, "a memory key must be text, not list of 1"),
        ('SET "", 2\n', 1, 1, "a memory key must not be empty"),
        ("EXIT FOR\n", 1, 1, "EXIT FOR outside a FOR loop"),
        ('x = APPEND("a", 1)\n', 1, 5, 'APPEND(): APPEND needs a list first, not text "a"'),
        ("FOR i = 1 TO 3 STEP 0\nNEXT\n", 1, 1, "FOR with STEP 0 would never end"),
        ('TRANSFER CONVERSATION TO ""\n', 1, 1, "TRANSFER CONVERSATION TO needs a bot name"),
        ("x = 9223372036854775807 + 1\n", 1, 25, "number out of range"),
    ],
)
async def test_runtime_errors_name_line_column_and_cause(
    source: str, line: int, column: int, cause: str
) -> None:
    error = await runtime_error(source)
    assert (error.filename, error.line, error.column) == ("start.bas", line, column), str(error)
    assert error.cause == cause
    assert str(error) == f"start.bas:{line}:{column}: runtime error: {cause}"


async def test_step_budget_stops_an_endless_loop() -> None:
    error = await runtime_error("n = 0\nWHILE TRUE\n  n = n + 1\nWEND\n")
    assert "step budget of 10000 used up" in error.cause
    assert error.line in (2, 3)


async def test_step_budget_counts_empty_loop_bodies() -> None:
    error = await runtime_error("WHILE 1 = 1\nWEND\n", limits=DialogLimits(max_steps=50))
    assert "step budget of 50" in error.cause and error.line == 1


async def test_step_budget_is_per_run() -> None:
    program = "FOR i = 1 TO 30\n  TALK i\nNEXT\nHEAR x\nFOR i = 1 TO 30\n  TALK i\nNEXT\n"
    dialog = parse_dialog(program)
    limits = DialogLimits(max_steps=70)
    host = FakeHost()
    first = await run_dialog(dialog, host, limits=limits)
    assert first.waiting and first.steps <= 70
    second = await run_dialog(dialog, host, first.state, "go", limits=limits)
    assert second.finished and len(host.said) == 60


async def test_text_size_is_capped() -> None:
    error = await runtime_error('s = "xxxxxxxxxx"\nWHILE TRUE\n  s = s + s\nWEND\n')
    assert "text longer than 1000000 characters" in error.cause and error.line == 3


async def test_values_sent_to_memory_are_size_capped() -> None:
    # Each APPEND shares the previous list: small in memory, exponential as JSON.
    program = 'l = [1]\nFOR i = 1 TO 40\n  l = APPEND(l, l)\nNEXT\nSET USER MEMORY "big", l\n'
    host = FakeHost()
    error = await runtime_error(program, host)
    assert "value" in error.cause and error.line == 5
    assert host.memory.user == {}


@pytest.mark.parametrize(
    ("use", "cause"),
    [
        ("TALK JSON(l)", "JSON(): value larger than 1000000 bytes"),
        ("TALK l", "value larger than 1000000 bytes"),
        ('x = "items: " + l', "value larger than 1000000 bytes"),
        ('x = JOIN(l, ",")', "JOIN(): value larger than 1000000 bytes"),
    ],
)
async def test_rendering_shared_structures_as_text_is_capped(use: str, cause: str) -> None:
    # 40 doublings: 2**40 elements as text, 40 small lists in memory.
    program = f"l = [1]\nFOR i = 1 TO 40\n  l = APPEND(l, l)\nNEXT\n{use}\n"
    error = await runtime_error(program)
    assert error.cause == cause and error.line == 5


async def test_join_checks_the_length_before_building() -> None:
    program = (
        's = "xxxxxxxxxx"\nFOR i = 1 TO 10\n  s = s + s\nNEXT\nl = []\n'
        "FOR i = 1 TO 1000\n  l = APPEND(l, s)\nNEXT\nx = JOIN(l)\n"
    )
    error = await runtime_error(program)
    assert error.cause == "JOIN(): JOIN would build text longer than 1000000 characters"
    assert error.line == 9


async def test_replace_cannot_explode_text() -> None:
    program = (
        's = "aaaaaaaaaa"\nFOR i = 1 TO 4\n  s = s + s + s + s\nNEXT\nx = REPLACE(s, "a", s)\n'
    )
    error = await runtime_error(program)
    assert error.cause == "REPLACE(): REPLACE would build text longer than 1000000 characters"


async def test_deep_values_are_refused_at_the_boundary() -> None:
    program = 'l = []\nFOR i = 1 TO 100\n  l = [l]\nNEXT\nSET "deep", l\n'
    error = await runtime_error(program)
    assert "nested more than 64 levels" in error.cause and error.line == 5


async def test_state_size_is_capped_at_hear() -> None:
    program = 's = "x"\nFOR i = 1 TO 12\n  s = s + s\nNEXT\nHEAR x\n'
    error = await runtime_error(program, limits=DialogLimits(max_state_bytes=1000))
    assert "state too large" in error.cause and error.line == 5


async def test_host_errors_become_located_runtime_errors() -> None:
    class FullHost(FakeHost):
        async def user_memory_set(self, key: str, value: object) -> None:
            raise MemoryFull(1000)

    error = await runtime_error('TALK "a"\nSET USER MEMORY "k", 1\n', FullHost())
    assert error.line == 2 and "user memory full" in error.cause
    assert isinstance(error.__cause__, MemoryFull)


async def test_unlocated_errors_from_the_host_get_the_statement_position() -> None:
    class RefusingHost(FakeHost):
        async def http_get(self, url: str) -> object:
            raise DialogRuntimeError(f"GET {url}: host is not on the allow-list")

    error = await runtime_error('\nx = GET "https://evil.example/"\n', RefusingHost())
    assert (error.line, error.column) == (2, 1)
    assert error.cause == "GET https://evil.example/: host is not on the allow-list"


async def test_host_values_that_are_not_json_are_refused() -> None:
    class OddHost(FakeHost):
        async def session_get(self, key: str) -> object:
            return {1, 2}

    error = await runtime_error('x = GET "k"\n', OddHost())
    assert "not a JSON value: set" in error.cause and error.line == 1
