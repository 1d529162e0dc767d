"""Recency as a signal in recall, never a gate.

A person's history grows for years, and what they said this year is likelier to be what they
mean than what they said three years ago in the same words. So a transcript hit's relevance
(its BM25 score, or its fused score with meaning on) is lifted by up to :data:`LIFT` for a
conversation of today, half that for one a :data:`HALF_LIFE_DAYS` old, and towards none for
older ones: a line of last year needs a match only ~1.2 times as strong as this morning's to
outrank it, and a rare word still beats any date.

Chosen on LoCoMo's dev split (``bench/recall.py``, distractors dated before the conversation,
400 days a conversation): evidence-session recall with the other conversations first, x3 /
x9, 0.934 / 0.919 -> 0.949 / 0.951 (strict 0.673 / 0.648 -> 0.678 / 0.662), for 0.963 -> 0.961
(strict 0.711 -> 0.709) without them, whose sessions span months. A lift of 0.2 / 0.5 / 1 gave
x3 0.939 / 0.949 / 0.948; a half-life of 180 days 0.947 (x1 0.955). Lifting episodes too, or
the lines ranked around the hits, moved nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

__all__ = ["HALF_LIFE_DAYS", "LIFT", "lift", "reranked"]

LIFT = 0.5
HALF_LIFE_DAYS = 365.0
_SECONDS_A_DAY = 86_400.0


def lift(at: datetime, now: datetime) -> float:
    """How much a conversation dated ``at`` is lifted at ``now``: 1 + LIFT for today's."""
    days = max(0.0, (now - at).total_seconds() / _SECONDS_A_DAY)
    return 1.0 + LIFT * math.exp(-math.log(2.0) * days / HALF_LIFE_DAYS)


def reranked(rows: Iterable[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Transcript hits (best first, each with the date of its conversation and its
    ``relevance`` when fused with meaning, else its ``score``: higher better, never negative)
    ranked again by that times :func:`lift`, each given its lift as ``recency`` (for the
    prompt's trace).

    Only the hits a search returned are ranked again: its best by relevance
    (``recall.search.TURNS_READ``), of which the prompt holds about a third. Ties keep their
    order.
    """
    lifted = []
    for n, row in enumerate(rows):
        row["recency"] = lift(row["started_at"] or row["created_at"], now)
        lifted.append((row.get("relevance", row["score"]) * row["recency"], n, row))
    lifted.sort(key=lambda item: (-item[0], item[1]))
    return [row for _, _, row in lifted]
