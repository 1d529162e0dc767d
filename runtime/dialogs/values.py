"""What BASIC values are and how operators treat them.

Every value is plain JSON (str, int, float, bool, None, list, dict with str keys), so a
dialog's variables can be saved in the session as they are and a map written to memory keeps
its fields. ``None`` (JSON null) behaves like ``""``: both mean "missing".

The rules, chosen so the seed programs run as written:

- ``+`` adds numbers and concatenates as soon as either side is text (``"x " + 3`` is
  ``"x 3"``); a missing value next to a number counts as 0, so a counter read from empty
  memory (``GET BOT MEMORY("n") + 1``) starts at 1 instead of becoming the text ``"1"``.
- ``-``, ``*``, ``/``, ``MOD`` want numbers (missing counts as 0); text is a type error.
- ``=`` compares loosely: missing equals ``""``, a number equals numeric text (``HEAR`` gives
  text). ``<`` and friends compare numbers with numbers (missing as 0) and text with text.
- Lists and maps are never changed in place, so sharing them between variables is safe.
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeAlias

from mnemobot.runtime.errors import DialogValueError

__all__ = [
    "FORMAT_MAX_BYTES",
    "FORMAT_MAX_DEPTH",
    "MAX_INT",
    "DialogValueError",
    "Value",
    "arith",
    "compare_order",
    "describe",
    "equals",
    "format_value",
    "is_missing",
    "is_number",
    "measure",
    "to_number",
    "to_value",
    "truthy",
    "type_name",
]

Value: TypeAlias = "str | int | float | bool | list[Value] | dict[str, Value] | None"

MAX_INT = 2**63 - 1  # beyond this a number is almost surely a runaway, and JSONB refuses it


def is_missing(value: Value) -> bool:
    """True for ``""`` and JSON null, the two spellings of "nothing stored"."""
    return value is None or value == ""


def is_number(value: Value) -> bool:
    """True for int and float but not bool (a Python bool is an int, a BASIC one is not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def type_name(value: Value) -> str:
    """The BASIC-facing name of a value's type, for error messages."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "list"
    return "map"


def describe(value: Value) -> str:
    """A short rendering of a value for error messages: type and a clipped literal."""
    if isinstance(value, str):
        shown = value if len(value) <= 30 else value[:27] + "..."
        return f"text {json.dumps(shown, ensure_ascii=False)}"
    if isinstance(value, list | dict):
        return f"{type_name(value)} of {len(value)}"
    return f"{type_name(value)} {format_value(value)}"


FORMAT_MAX_BYTES = 1_000_000  # lists and maps rendered as text (TALK, +, JSON())
FORMAT_MAX_DEPTH = 64


def format_value(value: Value) -> str:
    """The text a value shows as in TALK, PRINT and concatenation.

    Whole floats print without ``.0`` (``NOW() / 60`` reads as a count), booleans as
    ``true``/``false`` and lists and maps as JSON. A list or map too big to show (a list
    holding itself many times over is cheap in memory, huge as text) raises DialogValueError
    before any text is built.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    measure(value, max_bytes=FORMAT_MAX_BYTES, max_depth=FORMAT_MAX_DEPTH)
    return json.dumps(value, ensure_ascii=False)


def truthy(value: Value) -> bool:
    """Whether a value counts as true in IF/WHILE: "", 0, false, null and empties do not."""
    if value is None or value is False:
        return False
    if isinstance(value, str | list | dict):
        return len(value) > 0
    if isinstance(value, int | float):
        return value != 0
    return True


def to_number(value: Value) -> int | float | None:
    """A number from a number or numeric text (as ``HEAR`` gives it), else None."""
    if is_number(value):
        assert isinstance(value, int | float)
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def equals(left: Value, right: Value) -> bool:
    """BASIC ``=``: missing equals missing, numbers equal numeric text, else same value."""
    if is_missing(left) or is_missing(right):
        return is_missing(left) and is_missing(right)
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if is_number(left) or is_number(right):
        a, b = to_number(left), to_number(right)
        return a is not None and b is not None and a == b
    return left == right


def _numeric(value: Value) -> int | float | None:
    """A number for arithmetic and ordering: numbers as they are, missing as 0."""
    if is_missing(value):
        return 0
    if is_number(value):
        assert isinstance(value, int | float)
        return value
    return None


def compare_order(left: Value, right: Value, op: str) -> bool:
    """BASIC ``<``, ``>``, ``<=``, ``>=`` on numbers (numeric text allowed) or on texts."""
    a: Any
    b: Any
    if isinstance(left, str) and isinstance(right, str):
        a, b = left, right
    else:
        a = _numeric(left)
        b = _numeric(right)
        if a is None and isinstance(left, str) and b is not None:
            a = to_number(left)
        if b is None and isinstance(right, str) and a is not None:
            b = to_number(right)
        if a is None or b is None:
            raise DialogValueError(f"cannot compare {describe(left)} with {describe(right)}")
    if op == "<":
        return bool(a < b)
    if op == ">":
        return bool(a > b)
    if op == "<=":
        return bool(a <= b)
    return bool(a >= b)


_VERBS = {"-": "subtract", "*": "multiply", "/": "divide", "mod": "take MOD of"}


def _checked(number: int | float) -> int | float:
    """Refuse infinities, NaN and integers JSON stores cannot hold."""
    if isinstance(number, float):
        if not math.isfinite(number):
            raise DialogValueError("number out of range")
    elif abs(number) > MAX_INT:
        raise DialogValueError("number out of range")
    return number


def arith(op: str, left: Value, right: Value) -> Value:
    """Apply ``+ - & * / MOD`` with the rules in this module's docstring."""
    if op == "&":
        return format_value(left) + format_value(right)
    if op == "+":
        if is_number(left) and is_missing(right):
            return left
        if is_missing(left) and is_number(right):
            return right
        if isinstance(left, str) or isinstance(right, str) or left is None or right is None:
            return format_value(left) + format_value(right)
        if isinstance(left, list) and isinstance(right, list):
            return [*left, *right]
    a, b = _numeric(left), _numeric(right)
    if a is None or b is None or isinstance(left, bool) or isinstance(right, bool):
        verb = "add" if op == "+" else _VERBS[op]
        hint = (
            " (use VAL() to turn text into a number)"
            if isinstance(left, str) or isinstance(right, str)
            else ""
        )
        raise DialogValueError(f"cannot {verb} {describe(left)} and {describe(right)}{hint}")
    if op == "+":
        return _checked(a + b)
    if op == "-":
        return _checked(a - b)
    if op == "*":
        return _checked(a * b)
    if b == 0:
        raise DialogValueError("division by zero")
    if op == "mod":
        return _checked(a % b)
    if isinstance(a, int) and isinstance(b, int) and a % b == 0:
        return _checked(a // b)
    return _checked(a / b)


def measure(value: Value, *, max_bytes: int, max_depth: int) -> int:
    """Roughly how many bytes ``value`` takes as JSON, giving up past the limits.

    Iterative and stopping early, so a list that holds itself many times over (cheap in
    memory, huge as JSON) costs at most ``max_bytes`` work before it is refused.
    Raises DialogValueError when too large or too deeply nested.
    """
    total = 0
    stack: list[tuple[Value, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise DialogValueError(f"value nested more than {max_depth} levels deep")
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, list):
            total += 2 + len(item)
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            total += 2 + len(item)
            for key, child in item.items():
                total += len(key) + 3
                stack.append((child, depth + 1))
        else:
            total += 8
        if total > max_bytes:
            raise DialogValueError(f"value larger than {max_bytes} bytes")
    return total


def to_value(obj: object, *, _depth: int = 0) -> Value:
    """Turn what a host returned into a BASIC value: JSON types only, tuples as lists.

    Raises DialogValueError for anything JSON cannot hold (sets, objects, NaN).
    """
    if _depth > 200:
        raise DialogValueError("value nested too deeply")
    if obj is None or isinstance(obj, str | bool | int):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise DialogValueError("number out of range")
        return obj
    if isinstance(obj, list | tuple):
        return [to_value(item, _depth=_depth + 1) for item in obj]
    if isinstance(obj, dict):
        return {str(key): to_value(item, _depth=_depth + 1) for key, item in obj.items()}
    raise DialogValueError(f"not a JSON value: {type(obj).__name__}")
