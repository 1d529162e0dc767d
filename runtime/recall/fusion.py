"""Semantic recall fused with lexical recall: one ranking per source from two.

With ``[memory] embedding`` on, the caller embeds the query first (``Recall.query_vector``,
one call to the model) and hands the vector to ``Recall.gather``, which ranks the person's
vectors of each source (turns, episodes, facts, earlier fact values, free-text memories) by
cosine (:class:`storage.vectors.VectorIndex`) and fuses that ranking with the full-text one
of the same source (:data:`FUSION`). By default a weighted
sum of each ranking's scores, min-max scaled per query (:data:`SEMANTIC_WEIGHT`): on LoCoMo
turns with MiniLM it beat BM25, where reciprocal rank fusion only matched it (issue 13:
strict evidence-turn recall in the top 20 turns 0.647 -> 0.706). A row found by meaning
alone is read with the same columns as a full-text hit (session date, bot, channel; a fact's
key, a live fact's TTL checked), so it reaches the prompt and the API labelled alike. Facts
and memories take the weight chosen on turns: LoCoMo has none to tune it on. Without a
vector nothing here runs.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection

from mnemobot.runtime.storage.fulltext import FullText, Source
from mnemobot.runtime.storage.vectors import VectorIndex, VectorKind

__all__ = ["FUSION", "RRF_CONSTANT", "SEMANTIC_WEIGHT", "Fusion", "fuse", "fused_rows"]

Fusion = Literal["linear", "rrf"]

# "linear": sum of each ranking's scores min-max scaled per query, weighted;
# "rrf": sum of 1 / (RRF_CONSTANT + rank) over the rankings a row is in.
FUSION: Fusion = "linear"
# linear: the semantic share; the lexical one is 1 minus this. Chosen on LoCoMo's dev split
# with the local model (bench/recall_fusion.py, bench/README.md): strict evidence-turn recall
# 0.715 / 0.723 / 0.725 / 0.711 / 0.662 at 0 / 0.2 / 0.35 / 0.5 / 0.7 when a turn's vector was
# the line alone; with the line after it in the vector and the question's common words left
# out of what is embedded, 0.770 / 0.774 / 0.775 / 0.761 at 0.35 / 0.5 / 0.6 / 0.7: a half.
SEMANTIC_WEIGHT = 0.5
RRF_CONSTANT = 60  # as recall's own FUSION_CONSTANT (Cormack et al. 2009)


def _min_max(ranked: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Scores scaled to 0..1 within this query's list (all equal: all 1)."""
    if not ranked:
        return []
    low, high = min(s for _, s in ranked), max(s for _, s in ranked)
    span = high - low
    return [(key, (s - low) / span if span > 0 else 1.0) for key, s in ranked]


def fuse(
    lexical: Sequence[tuple[str, float]],
    semantic: Sequence[tuple[str, float]],
    fusion: Fusion = FUSION,
) -> list[tuple[str, float]]:
    """Two rankings of ids (each best first, with its score, higher better) as one.

    Best first; a tie keeps the order ids were first seen in (lexical first, then semantic).
    """
    fused: dict[str, float] = {}
    if fusion == "rrf":
        for ranked in (lexical, semantic):
            for rank, (key, _) in enumerate(ranked):
                fused[key] = fused.get(key, 0.0) + 1.0 / (RRF_CONSTANT + rank)
    else:
        weighted = ((1.0 - SEMANTIC_WEIGHT, lexical), (SEMANTIC_WEIGHT, semantic))
        for weight, ranked in weighted:
            for key, scaled in _min_max(ranked):
                fused[key] = fused.get(key, 0.0) + weight * scaled
    first_seen = {key: n for n, key in enumerate(fused)}
    return sorted(fused.items(), key=lambda item: (-item[1], first_seen[item[0]]))


def fused_rows(
    conn: Connection,
    fulltext: FullText,
    index: VectorIndex,
    *,
    source: Source,
    kind: VectorKind,
    model: str,
    user_id: str,
    lexical: list[dict[str, Any]],
    query_vector: array[float],
    limit: int,
    now: datetime,
    fusion: Fusion = FUSION,
) -> list[dict[str, Any]]:
    """``lexical`` rows (full-text hits, best first, each with ``score``) fused with the
    person's ``limit`` nearest vectors: the best ``limit`` rows, each with ``similarity``
    (None where not among the nearest), ``score`` (None where the words did not match) and
    ``relevance``, the fused score."""
    near = index.nearest(conn, user_id, model, kind, query_vector, limit)
    similarity = dict(near)
    by_id = {row["id"]: row for row in lexical}
    ranked = fuse([(row["id"], row["score"]) for row in lexical], near, fusion)[:limit]
    missing = [key for key, _ in ranked if key not in by_id]
    by_id.update(fulltext.rows(conn, source, user_id, missing, now=now))
    return [
        {**by_id[key], "similarity": similarity.get(key), "relevance": fused}
        for key, fused in ranked
        if key in by_id
    ]
