"""What may be stored in memory: JSON, exactly, and not too much of it.

Values must survive a round trip unchanged, so anything JSON would silently alter is refused
up front: tuples (would come back as lists), non-string object keys (would come back as
strings), NaN and infinities (not JSON), sets, datetimes and other objects.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

from mnemobot.runtime.errors import InvalidKey, InvalidValue

__all__ = [
    "MAX_KEY_LENGTH",
    "MEMORY_TYPES",
    "MemoryType",
    "check_key",
    "check_value",
    "memory_type_for",
]

MAX_KEY_LENGTH = 255
MAX_DEPTH = 64
MemoryType = Literal["preference", "fact", "context"]
MEMORY_TYPES: tuple[MemoryType, ...] = ("preference", "fact", "context")

# C0 and C1 controls (newlines, tabs, ESC for terminal colours, DEL), Unicode line and
# paragraph separators, and bidi overrides/isolates: each would let a key break a log line,
# a CLI listing or the inspector's table, or show as another key.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

# The seed's naming convention: fact_name is a fact, ctx_last_topic context, pref_x preference.
_PREFIX_TYPES: dict[str, MemoryType] = {"fact_": "fact", "ctx_": "context", "pref_": "preference"}


def check_key(key: object) -> str:
    """Return ``key`` if it is a usable memory key, else raise InvalidKey.

    Every write path (``ctx`` memory, facts and session, BASIC, the CLI, the admin API, fact
    extraction) checks its key here: a string of 1-255 characters, not blank, with no
    control characters (see ``_UNPRINTABLE``).
    """
    if not isinstance(key, str):
        raise InvalidKey(f"memory key must be a string, got {type(key).__name__}")
    if not key or not key.strip():
        raise InvalidKey("memory key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"memory key longer than {MAX_KEY_LENGTH} characters: {key[:40]!r}...")
    bad = _UNPRINTABLE.search(key)
    if bad is not None:
        raise InvalidKey(
            f"memory key {key[:60]!r} holds control character {bad.group()!r} at {bad.start()}: "
            "keys may not contain control characters, line breaks or direction overrides"
        )
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


def memory_type_for(key: str, explicit: str | None = None) -> MemoryType | None:
    """The memory_type of a write: as given, else from the key's prefix, else None.

    None means "whatever the key is": a rewrite keeps the stored type (a fact written again
    through ``SET USER MEMORY`` stays a fact, seed 002's ``USER FACTS()`` keep it), and a new
    key is a preference.

    ``explicit`` is a plain string because it comes from outside (the CLI, the admin API, a
    bot); one that is not a memory type is refused with InvalidValue.
    """
    if explicit is not None:
        for kind in MEMORY_TYPES:
            if explicit == kind:
                return kind
        raise InvalidValue(f"memory_type must be one of {', '.join(MEMORY_TYPES)}")
    for prefix, kind in _PREFIX_TYPES.items():
        if key.startswith(prefix):
            return kind
    return None
