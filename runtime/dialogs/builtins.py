"""The functions a dialog can call: ``NOW()``, ``LEN``, ``APPEND``, ``JSON`` and friends.

Each is a pure function of its arguments (``NOW`` reads the injected clock), returns a new
value rather than changing one, and raises DialogValueError with a message fit for the bot
author. Names are case-insensitive; the table is keyed in lower case.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mnemobot.runtime.dialogs.values import (
    FORMAT_MAX_DEPTH,
    DialogValueError,
    Value,
    describe,
    equals,
    format_value,
    is_missing,
    is_number,
    measure,
    to_number,
    to_value,
)

__all__ = ["FUNCTIONS", "Builtin", "CallContext"]


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a function may know about the run: the time (seconds since the epoch) and the
    longest text it may build (checked before building, so REPLACE cannot make a terabyte)."""

    now: Callable[[], float]
    max_text: int = 1_000_000


BuiltinFn = Callable[[Sequence[Value], CallContext], Value]


@dataclass(frozen=True, slots=True)
class Builtin:
    """A function with its arity, checked before the call so messages are uniform."""

    fn: BuiltinFn
    min_args: int
    max_args: int | None  # None: any number


def _text(value: Value) -> str:
    return format_value(value)


def _int_arg(value: Value, what: str) -> int:
    number = to_number(value) if not is_missing(value) else 0
    if number is None or isinstance(value, bool):
        raise DialogValueError(f"{what} must be a number, not {describe(value)}")
    return int(number)


def _now(args: Sequence[Value], ctx: CallContext) -> Value:
    return int(ctx.now())


def _len(args: Sequence[Value], ctx: CallContext) -> Value:
    value = args[0]
    if value is None:
        return 0
    if isinstance(value, str | list | dict):
        return len(value)
    if is_number(value):
        return len(format_value(value))
    raise DialogValueError(f"LEN needs text, a list or a map, not {describe(value)}")


def _append(args: Sequence[Value], ctx: CallContext) -> Value:
    base = args[0]
    if is_missing(base):
        return list(args[1:])
    if not isinstance(base, list):
        raise DialogValueError(f"APPEND needs a list first, not {describe(base)}")
    return [*base, *args[1:]]


def _json(args: Sequence[Value], ctx: CallContext) -> Value:
    measure(args[0], max_bytes=ctx.max_text, max_depth=FORMAT_MAX_DEPTH)
    return json.dumps(args[0], ensure_ascii=False)


def _parse_json(args: Sequence[Value], ctx: CallContext) -> Value:
    text = args[0]
    if not isinstance(text, str):
        return text  # already structured: PARSEJSON(JSON(x)) and PARSEJSON(x) agree
    if not text.strip():
        return ""
    try:
        return to_value(json.loads(text))
    except (ValueError, RecursionError) as exc:
        raise DialogValueError(f"PARSEJSON: not valid JSON ({exc})") from None


def _upper(args: Sequence[Value], ctx: CallContext) -> Value:
    return _text(args[0]).upper()


def _lower(args: Sequence[Value], ctx: CallContext) -> Value:
    return _text(args[0]).lower()


def _trim(args: Sequence[Value], ctx: CallContext) -> Value:
    return _text(args[0]).strip()


def _str(args: Sequence[Value], ctx: CallContext) -> Value:
    return _text(args[0])


def _val(args: Sequence[Value], ctx: CallContext) -> Value:
    """Classic BASIC VAL: the number in the text, or 0 when there is none."""
    number = to_number(args[0])
    return 0 if number is None else number


def _int(args: Sequence[Value], ctx: CallContext) -> Value:
    number = to_number(args[0])
    if number is None:
        raise DialogValueError(f"INT needs a number, not {describe(args[0])}")
    return math.floor(number)


def _round(args: Sequence[Value], ctx: CallContext) -> Value:
    number = to_number(args[0])
    if number is None:
        raise DialogValueError(f"ROUND needs a number, not {describe(args[0])}")
    digits = _int_arg(args[1], "ROUND's digits") if len(args) > 1 else 0
    result = round(number, digits)
    return int(result) if digits <= 0 else result


def _abs(args: Sequence[Value], ctx: CallContext) -> Value:
    number = to_number(args[0])
    if number is None:
        raise DialogValueError(f"ABS needs a number, not {describe(args[0])}")
    return abs(number)


def _min_max(pick: Callable[[list[float]], float], name: str) -> BuiltinFn:
    def fn(args: Sequence[Value], ctx: CallContext) -> Value:
        items = args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)
        numbers = [to_number(item) for item in items]
        if not numbers or any(number is None for number in numbers):
            raise DialogValueError(f"{name} needs numbers")
        return pick([number for number in numbers if number is not None])

    return fn


def _keys(args: Sequence[Value], ctx: CallContext) -> Value:
    value = args[0]
    if is_missing(value):
        return []
    if not isinstance(value, dict):
        raise DialogValueError(f"KEYS needs a map, not {describe(value)}")
    return list(value.keys())


def _contains(args: Sequence[Value], ctx: CallContext) -> Value:
    haystack, needle = args
    if isinstance(haystack, list):
        return any(equals(item, needle) for item in haystack)
    if isinstance(haystack, dict):
        return _text(needle) in haystack
    return _text(needle) in _text(haystack)


def _instr(args: Sequence[Value], ctx: CallContext) -> Value:
    """1-based position of the second text in the first, 0 when absent (as in VB)."""
    return _text(args[0]).find(_text(args[1])) + 1


def _left(args: Sequence[Value], ctx: CallContext) -> Value:
    count = max(_int_arg(args[1], "LEFT's length"), 0)
    return _text(args[0])[:count]


def _right(args: Sequence[Value], ctx: CallContext) -> Value:
    count = max(_int_arg(args[1], "RIGHT's length"), 0)
    text = _text(args[0])
    return text[len(text) - count :] if count else ""


def _mid(args: Sequence[Value], ctx: CallContext) -> Value:
    text = _text(args[0])
    start = max(_int_arg(args[1], "MID's start"), 1) - 1
    if len(args) > 2:
        return text[start : start + max(_int_arg(args[2], "MID's length"), 0)]
    return text[start:]


def _too_long(ctx: CallContext, name: str) -> DialogValueError:
    return DialogValueError(f"{name} would build text longer than {ctx.max_text} characters")


def _replace(args: Sequence[Value], ctx: CallContext) -> Value:
    text, old, new = _text(args[0]), _text(args[1]), _text(args[2])
    if not old:
        return text
    if len(text) + text.count(old) * (len(new) - len(old)) > ctx.max_text:
        raise _too_long(ctx, "REPLACE")
    return text.replace(old, new)


def _split(args: Sequence[Value], ctx: CallContext) -> Value:
    text = _text(args[0])
    separator = _text(args[1]) if len(args) > 1 else ","
    if not text:
        return []
    return list(text.split(separator)) if separator else list(text)


def _join(args: Sequence[Value], ctx: CallContext) -> Value:
    items = args[0]
    if is_missing(items):
        return ""
    if not isinstance(items, list):
        raise DialogValueError(f"JOIN needs a list, not {describe(items)}")
    separator = _text(args[1]) if len(args) > 1 else ","
    parts: list[str] = []
    size = 0
    for item in items:
        parts.append(_text(item))
        size += len(parts[-1]) + len(separator)
        if size > ctx.max_text + len(separator):
            raise _too_long(ctx, "JOIN")
    return separator.join(parts)


def _is_empty(args: Sequence[Value], ctx: CallContext) -> Value:
    value = args[0]
    return is_missing(value) or (isinstance(value, list | dict) and not value)


def _is_number(args: Sequence[Value], ctx: CallContext) -> Value:
    return not isinstance(args[0], bool) and to_number(args[0]) is not None


FUNCTIONS: dict[str, Builtin] = {
    "now": Builtin(_now, 0, 0),
    "len": Builtin(_len, 1, 1),
    "append": Builtin(_append, 2, None),
    "json": Builtin(_json, 1, 1),
    "parsejson": Builtin(_parse_json, 1, 1),
    "upper": Builtin(_upper, 1, 1),
    "ucase": Builtin(_upper, 1, 1),
    "lower": Builtin(_lower, 1, 1),
    "lcase": Builtin(_lower, 1, 1),
    "trim": Builtin(_trim, 1, 1),
    "str": Builtin(_str, 1, 1),
    "val": Builtin(_val, 1, 1),
    "int": Builtin(_int, 1, 1),
    "round": Builtin(_round, 1, 2),
    "abs": Builtin(_abs, 1, 1),
    "min": Builtin(_min_max(min, "MIN"), 1, None),
    "max": Builtin(_min_max(max, "MAX"), 1, None),
    "keys": Builtin(_keys, 1, 1),
    "contains": Builtin(_contains, 2, 2),
    "instr": Builtin(_instr, 2, 2),
    "left": Builtin(_left, 2, 2),
    "right": Builtin(_right, 2, 2),
    "mid": Builtin(_mid, 2, 3),
    "replace": Builtin(_replace, 3, 3),
    "split": Builtin(_split, 1, 2),
    "join": Builtin(_join, 1, 2),
    "isempty": Builtin(_is_empty, 1, 1),
    "isnumber": Builtin(_is_number, 1, 1),
}
