"""Splitting long replies for platforms with a message size limit.

Telegram refuses messages over 4096 characters and Slack truncates around 4000; a long
answer is cut into parts, in order, at the best boundary available within the limit:
a blank line, then a line break, then a sentence end, then a space, and only as a last
resort inside a word.
"""

from __future__ import annotations

__all__ = ["split_text"]

_BOUNDARIES = ("\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " ")


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, whitespace at the cuts dropped."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = -1
        for boundary in _BOUNDARIES:
            at = window.rfind(boundary)
            if at >= limit // 2:  # never leave a tiny first part when a later cut exists
                cut = at + len(boundary.rstrip()) if boundary.strip() else at
                break
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts
