"""What may be stored in memory: JSON, exactly, and not too much of it.

Values must survive a round trip unchanged, so anything JSON would silently alter is refused
up front: tuples (would come back as lists), non-string object keys (would come back as
strings), NaN and infinities (not JSON), sets, datetimes and other objects.
"""

from __future__ import annotations

import json
import math
from typing import Any

from mnemobot.runtime.errors import InvalidKey, InvalidValue

__all__ = ["MAX_KEY_LENGTH", "MEMORY_TYPES", "check_key", "check_value", "memory_type_for"]

MAX_KEY_LENGTH = 255
MAX_DEPTH = 64
MEMORY_TYPES = ("preference", "fact", "context")

# The seed's naming convention: fact_name is a fact, ctx_last_topic context, pref_x preference.
_PREFIX_TYPES = {"fact_": "fact", "ctx_": "context", "pref_": "preference"}


def check_key(key: object) -> str:
    """Return ``key`` if it is a usable memory key, else raise InvalidKey."""
    if not isinstance(key, str):
        raise InvalidKey(f"memory key must be a string, got {type(key).__name__}")
    if not key or not key.strip():
        raise InvalidKey("memory key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"memory key longer than {MAX_KEY_LENGTH} characters: {key[:40]!r}...")
    return key


def _check_shape(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidValue(f"value nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValue(f"value is not JSON: {value!r} (NaN and infinity have no JSON form)")
        return
    if isinstance(value, list):
        for item in value:
            _check_shape(item, depth + 1)
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise InvalidValue(f"value is not JSON: object key {k!r} is not a string")
            _check_shape(item, depth + 1)
        return
    raise InvalidValue(
        f"value is not JSON: {type(value).__name__} "
        "(use strings, numbers, booleans, null, lists and dicts)"
    )


def check_value(value: Any, max_bytes: int) -> str:
    """Validate ``value`` and return its JSON text (used for the size check and raw SQL)."""
    _check_shape(value, 0)
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise InvalidValue(
            f"value too large: {size} bytes, the limit is {max_bytes} "
            "(memory.max_value_bytes); store a reference instead"
        )
    return text


def memory_type_for(key: str, explicit: str | None = None) -> str:
    """The memory_type of a write: as given, else from the key's prefix, else preference."""
    if explicit is not None:
        if explicit not in MEMORY_TYPES:
            raise InvalidValue(f"memory_type must be one of {', '.join(MEMORY_TYPES)}")
        return explicit
    for prefix, kind in _PREFIX_TYPES.items():
        if key.startswith(prefix):
            return kind
    return "preference"
