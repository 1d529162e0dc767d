"""The value rules in isolation: formatting, equality, arithmetic and size measuring."""

from __future__ import annotations

import pytest

from mnemobot.runtime.dialogs.values import (
    DialogValueError,
    Value,
    arith,
    compare_order,
    equals,
    format_value,
    measure,
    to_value,
    truthy,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.0, "3"),
        (-0.0, "0"),
        (2.5, "2.5"),
        (1e20, "1e+20"),
        (None, ""),
        (False, "false"),
        ({"a": [1, None]}, '{"a": [1, null]}'),
        ("olá", "olá"),
    ],
)
def test_format_value(value: object, text: str) -> None:
    assert format_value(value) == text  # type: ignore[arg-type]


def test_equality_is_loose_only_where_basic_needs_it() -> None:
    assert equals(None, "") and equals("", None)
    assert equals(" 5 ", 5) and equals(5.0, 5)
    assert not equals("5x", 5)
    assert not equals(True, 1) and not equals(True, "true")
    assert not equals("", 0)
    assert equals([1, {"a": "b"}], [1, {"a": "b"}])


def test_arith_rules() -> None:
    assert arith("+", "", 1) == 1 and arith("+", None, 2.5) == 2.5
    assert arith("+", [1], [2]) == [1, 2]
    assert arith("-", "", 3) == -3
    assert arith("/", 9, 3) == 3 and isinstance(arith("/", 9, 3), int)
    with pytest.raises(DialogValueError, match="cannot add list of 1 and number 1"):
        arith("+", [1], 1)
    with pytest.raises(DialogValueError, match="number out of range"):
        arith("*", 1e308, 10)


def test_ordering() -> None:
    assert compare_order("", 1, "<")  # missing counts as 0
    assert compare_order("10", 9, ">")  # numeric text against a number
    assert compare_order("b", "a", ">=")
    with pytest.raises(DialogValueError, match="cannot compare text"):
        compare_order("abc", 1, "<")


def test_truthy() -> None:
    falsy: list[Value] = ["", 0, 0.0, None, False, [], {}]
    true: list[Value] = ["0", -1, [0], {"a": 0}, True]
    assert [truthy(v) for v in falsy] == [False] * 7
    assert [truthy(v) for v in true] == [True] * 5


def test_measure_stops_early_on_shared_structure() -> None:
    value: list[object] = [1]
    for _ in range(60):  # 2**60 leaves as JSON, 60 lists in memory
        value = [value, value]
    with pytest.raises(DialogValueError, match="larger than 1000 bytes"):
        measure(value, max_bytes=1000, max_depth=100)  # type: ignore[arg-type]
    with pytest.raises(DialogValueError, match="nested more than 10 levels"):
        measure(value, max_bytes=10**9, max_depth=10)  # type: ignore[arg-type]
    assert measure({"ab": "cd"}, max_bytes=100, max_depth=3) < 20


def test_to_value_accepts_json_only() -> None:
    assert to_value((1, {"a": (2,)})) == [1, {"a": [2]}]
    with pytest.raises(DialogValueError, match="not a JSON value: object"):
        to_value(object())
    with pytest.raises(DialogValueError, match="number out of range"):
        to_value(float("nan"))
