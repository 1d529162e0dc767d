"""Search everything remembered about one person: transcript, episodes, facts and their history.

Each source is searched in the database's own full-text index (:mod:`storage.fulltext`) and
ranked by it; the sources are merged by reciprocal rank (a row's place in its own list, not its
raw score, since bm25 scores of different tables are not comparable). Recency is a signal,
not a gate: a transcript line of this year is lifted over one as relevant from years ago
(:mod:`recall.recency`), but a better match of last year still outranks this morning's.

With ``[memory] embedding`` on, each source is also ranked by meaning against its own kind of
vector and the two rankings fused (:mod:`recall.fusion`): a fact or a memory is found by what
it says as a transcript line is, and still comes back as a fact or a memory.
"""

from __future__ import annotations

import functools
import json
import math
from array import array
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.pipeline.commands import is_command
from mnemobot.runtime.recall.around import neighbours, ranked_in_context
from mnemobot.runtime.recall.fusion import fused_rows
from mnemobot.runtime.recall.query import meaning_query, search_terms
from mnemobot.runtime.recall.recency import reranked
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.fulltext import FullText, SearchTerm, Source, Weights, lines_at
from mnemobot.runtime.storage.vectors import InProcessIndex, VectorIndex, VectorKind

if TYPE_CHECKING:
    from mnemobot.runtime.recall.embedding import Embedder

__all__ = [
    "FUSION_CONSTANT",
    "WINDOW_HITS",
    "WINDOW_HITS_BY_MEANING",
    "Recall",
    "RecallKind",
    "RecallSet",
    "Recalled",
    "window_for",
]

RecallKind = Literal["turn", "episode", "fact", "earlier fact", "memory"]

FUSION_CONSTANT = 60  # reciprocal rank fusion's k: 1 / (k + rank), as in Cormack et al. 2009
TURNS_READ = 120  # the best transcript lines read per search (about 40 fit a prompt's memory)
# (200 -> 120: LoCoMo dev by the words, x1 / x3 / x9, evidence-session recall 0.961 / 0.949 /
# 0.951 both, strict 0.709 / 0.678 / 0.662 -> 0.710 / 0.678 / 0.659; a 100,000-turn prompt
# ~12% cheaper, bench/recall_cost.py. With meaning fused, 120 gave 0.966 / 0.777 against
# 0.970 / 0.779, so the nearest vectors keep their 200.)
TURNS_READ_BY_MEANING = 200
EPISODES_READ = 10
FACTS_READ = 20
COMMON_SHARE = 0.05  # a word in more than this share of all transcript lines tells none apart
COMMON_FLOOR = 2000  # ...unless it is in fewer lines than this (small histories keep every word)
GATE_LINES = 500  # searches rank only lines holding the rarest words, this many lines at most
# (2,000 -> 500 once a gate that fills WINDOW_HITS is kept: 100,000 turns' prompt ~9% less CPU,
# LoCoMo dev x1 unchanged, x9 strict 0.649 -> 0.648, one evidence line of 804)
WIDE_GATE_LINES = 4000  # ...and when those fill too little, of this many before none at all
WINDOW_HITS = 40  # the best transcript hits ranked with the lines around them (recall.around)
# A gated search (GATE_LINES) that found this many rows is kept though it fell short of its
# limit: the lines past the best WINDOW_HITS only fill a prompt's last places, and a summary
# holding the question's rarest words outranks those without. Searching again without the gate
# ranked every line of the commoner words: the slowest searches of a long history (10-20 ms at
# 100,000 lines, bench/recall_cost.py). LoCoMo dev (bench/recall.py) is unchanged by it:
# x1 0.963 / 0.711, x9 0.919 / 0.649 (0.648 before).
GATED_TURNS_ENOUGH = WINDOW_HITS
GATED_EPISODES_ENOUGH = 1
_KIND_OF: dict[Source, VectorKind] = {  # a source's vectors (storage.vectors)
    "turns": "turn",
    "episodes": "episode",
    "user_memory": "fact",
    "fact_history": "earlier_fact",
    "user_memories": "memory",
}
# ...when fused with meaning (dev split, MiniLM, weight 0.5: strict 0.771 / 0.774 / 0.774 at
# 40 / 60 / 80; by the words alone 60 lowered evidence-session recall 0.963 -> 0.959)
WINDOW_HITS_BY_MEANING = 60
WINDOW_BUDGET = 1500  # the memory budget (recall_budget's default) the windows were chosen for
MEANING_SAMPLE = 1000  # the person's newest lines a query's common words are counted in


def window_for(memory_budget: int, *, by_meaning: bool) -> int:
    """How many of the best transcript hits a prompt of ``memory_budget`` tokens reads with
    their neighbours (``gather``'s ``window``): the window chosen for :data:`WINDOW_BUDGET`
    tokens, wider in proportion for a larger budget.

    Only those hits and the lines next to them are candidates for the prompt, so a larger
    budget needs a wider window. LoCoMo dev at 2,500 tokens (bench/recall.py, x1): a window
    of 40 gave evidence-session recall 0.964 and strict 0.764; of 67, 0.984 / 0.760, as
    when every hit read was a candidate (0.980 / 0.761).
    """
    chosen = WINDOW_HITS_BY_MEANING if by_meaning else WINDOW_HITS
    return max(chosen, math.ceil(chosen * memory_budget / WINDOW_BUDGET))


@dataclass(slots=True)
class Recalled:
    """One remembered thing a search found, and where it came from.

    Treated as a value, never changed once made, but not frozen: a frozen dataclass sets
    each field through ``object.__setattr__``, ~2 us a result against ~0.3, and a long
    history's prompt makes ~300 of them (its hits, the lines around them, each ranked again).
    """

    kind: RecallKind
    id: str
    text: str
    score: float  # reciprocal rank within its own source: higher is better
    rank: int  # 0-based place in its own source's list (fused with semantic, when on)
    at: datetime  # turns and episodes: when the conversation was; facts: last written
    bot: str | None = None
    channel: str | None = None
    session_id: str | None = None
    role: str | None = None  # turns: "user" or "bot"
    key: str | None = None  # facts
    seq: int = 0  # turns: order within the turn's rows
    line: int | None = None  # turns: place in its session (None: not numbered, before 0011)
    said_at: datetime | None = None  # turns: the moment it was said (``at`` is its session's)
    similarity: float | None = None  # semantic recall: cosine to the query; None: not near
    hit: int | None = None  # ranked in context: its place among the hits; None: no word matched
    strength: float | None = None  # ranked in context: with the lines around it (recall.around)
    recency: float | None = None  # transcript hits: the lift their date gave (recall.recency)
    relevance: float | None = None  # transcript hits: their search's score (BM25, or fused)

    def placed(self, rank: int, *, hit: int | None, strength: float | None) -> Recalled:
        """This result at ``rank`` of a ranking in context (:mod:`recall.around`), as a new
        result: built field by field, as ``dataclasses.replace`` costs ~8 us a call."""
        return Recalled(
            self.kind, self.id, self.text, _fused(rank), rank, self.at, self.bot, self.channel,
            self.session_id, self.role, self.key, self.seq, self.line, self.said_at,
            self.similarity, hit, strength, self.recency, self.relevance,
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """The result as the API, CLI and BASIC give it: JSON values only."""
        found: dict[str, Any] = {
            "kind": self.kind,
            "text": self.text,
            "date": self.at.date().isoformat(),
            "at": self.at.isoformat(),
            "score": round(self.score, 6),
        }
        for name in ("bot", "channel", "role", "key", "session_id"):
            value = getattr(self, name)
            if value is not None:
                found[name] = value
        if self.similarity is not None:
            found["similarity"] = round(self.similarity, 6)
        if self.kind == "memory":
            found["id"] = self.id  # a bot may edit or delete what it found
        return found


@dataclass
class RecallSet:
    """What one search found, per source, each best first."""

    terms: list[SearchTerm]
    common: list[SearchTerm] = field(default_factory=list)  # left out of the transcript search
    turns: list[Recalled] = field(default_factory=list)
    episodes: list[Recalled] = field(default_factory=list)
    facts: list[Recalled] = field(default_factory=list)
    earlier_facts: list[Recalled] = field(default_factory=list)
    memories: list[Recalled] = field(default_factory=list)  # free-text memories
    limits: dict[str, int] = field(default_factory=dict)  # source -> rows read at most
    by_meaning: bool = False  # ranked by meaning too (a query vector was fused in)
    past_window: int = 0  # transcript hits read but not ranked in context (gather's window)

    def merged(self) -> list[Recalled]:
        """Every source in one list, by reciprocal rank (ties: the newest first)."""
        everything = [
            *self.turns,
            *self.episodes,
            *self.facts,
            *self.earlier_facts,
            *self.memories,
        ]
        return sorted(everything, key=lambda r: (-r.score, -r.at.timestamp()))


def _fused(rank: int) -> float:
    return 1.0 / (FUSION_CONSTANT + rank)


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class Recall:
    """Searches one person's memory; every call is scoped to a ``user_id``."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        embedder: Embedder | None = None,
        index: VectorIndex | None = None,
    ) -> None:
        """``embedder`` None (``[memory] embedding`` unset): lexical recall only."""
        self.db = db
        self.clock = clock
        self.fulltext = FullText(db)
        self.embedder = embedder
        self.index = index or InProcessIndex()

    async def query_vector(self, query: str, user_id: str | None = None) -> array[float] | None:
        """The vector :meth:`gather` fuses in for ``query`` (:mod:`recall.fusion`); None when
        embeddings are off or the model failed: recall is then lexical, the turn goes on.

        With ``user_id``, the words in many of the person's newest lines are left out of what
        is embedded (:func:`recall.query.meaning_query`).
        """
        if self.embedder is None:
            return None
        if user_id is not None and query.strip():
            # reads and splits the person's newest lines: off the event loop, as a search
            query = await self.db.run_search(self._meaning_query, user_id, query)
        return await self.embedder.embed_query(query)

    def _meaning_query(self, user_id: str, query: str) -> str:
        with self.db.read() as conn:
            lines = self.fulltext.newest_lines(conn, user_id, MEANING_SAMPLE)
        return meaning_query(query, lines)

    def gather(
        self,
        user_id: str,
        query: str,
        *,
        turns: int | None = None,
        episodes: int = EPISODES_READ,
        facts: int = FACTS_READ,
        window: int = 0,
        query_vector: array[float] | None = None,
    ) -> RecallSet:
        """Every source searched for ``query`` (blocking: run it with ``Database.run``).

        ``turns``: transcript lines to read (:data:`TURNS_READ`, or
        :data:`TURNS_READ_BY_MEANING` with ``query_vector``; at least ``window``). With
        ``window`` (:func:`window_for`), the best ``window`` transcript hits are read with the
        lines said right before and after them, in the same snapshot, and ranked with them
        and their conversation's summary (:mod:`recall.around`): ``turns`` then holds those
        lines alone, in that order, and ``past_window`` counts the other hits (read to be
        ranked by date, :mod:`recall.recency`). With ``query_vector`` (from
        :meth:`query_vector`) every source is ranked by meaning too, and fused
        (:mod:`recall.fusion`): turns, episodes, facts, earlier fact values and free-text
        memories, each against its own kind of vector, so each result still says where it
        came from.
        """
        terms = search_terms(query, self.fulltext.fold)
        model = self.embedder.model if self.embedder is not None else None
        near = None if model is None or query_vector is None else (model, query_vector)
        if turns is None:
            turns = max(TURNS_READ if near is None else TURNS_READ_BY_MEANING, window)
        found = RecallSet(terms, limits={"turns": turns, "episodes": episodes, "facts": facts})
        found.by_meaning = near is not None
        if not terms and near is None:
            return found  # only stop words ("what was it?"): nothing to match by words
        now = self.clock.now()
        with self.db.read() as conn:
            weights = self._weights(conn, terms) if terms else (0, None)
            # no terms: every search finds no rows, and meaning alone ranks
            search = functools.partial(self.fulltext.search, weights=weights)
            distinctive, gates = self._distinctive(terms, weights) if terms else ([], [])
            found.common = [t for t in terms if t not in distinctive]
            rows = search(
                conn, "turns", user_id, distinctive, limit=turns, now=now, gates=gates,
                enough=GATED_TURNS_ENOUGH,
            )  # fmt: skip
            rows = self._by_meaning(conn, near, user_id, "turns", rows, limit=turns, now=now)
            rows = reranked([row for row in rows if not _is_command(row)], now)
            found.turns = [_turn(row, rank) for rank, row in enumerate(rows)]
            rows = search(
                conn, "episodes", user_id, terms, limit=episodes, now=now, gates=gates,
                enough=GATED_EPISODES_ENOUGH,
            )  # fmt: skip
            rows = self._by_meaning(conn, near, user_id, "episodes", rows, limit=episodes, now=now)
            found.episodes = [_episode(row, rank) for rank, row in enumerate(rows)]
            rows = search(conn, "user_memory", user_id, terms, limit=facts, now=now)
            rows = self._by_meaning(conn, near, user_id, "user_memory", rows, limit=facts, now=now)
            found.facts = [_fact(row, rank) for rank, row in enumerate(rows)]
            rows = search(conn, "fact_history", user_id, terms, limit=facts, now=now)
            rows = self._by_meaning(conn, near, user_id, "fact_history", rows, limit=facts, now=now)
            found.earlier_facts = [_earlier_fact(row, rank) for rank, row in enumerate(rows)]
            rows = search(conn, "user_memories", user_id, terms, limit=facts, now=now)
            rows = self._by_meaning(
                conn, near, user_id, "user_memories", rows, limit=facts, now=now
            )
            found.memories = [_memory(row, rank) for rank, row in enumerate(rows)]
            if window > 0:
                found.turns = self._in_context(conn, user_id, found, window)
            else:
                found.turns = _without_command_answers(conn, user_id, found.turns)
        return found

    def _by_meaning(
        self,
        conn: Connection,
        near: tuple[str, array[float]] | None,
        user_id: str,
        source: Source,
        rows: list[dict[str, Any]],
        *,
        limit: int,
        now: datetime,
    ) -> list[dict[str, Any]]:
        """``rows`` of ``source``, found by the words, fused with the person's ``limit``
        nearest vectors of its kind (``near``: the model and the query's vector; None: the
        words alone)."""
        if near is None:
            return rows
        model, query_vector = near
        return fused_rows(
            conn, self.fulltext, self.index, source=source, kind=_KIND_OF[source], model=model,
            user_id=user_id, lexical=rows, query_vector=query_vector, limit=limit, now=now,
        )  # fmt: skip

    def _weights(self, conn: Connection, terms: list[SearchTerm]) -> Weights:
        """The transcript's lines and each term's: read once a search, for its gates and
        (PostgreSQL) each source's BM25."""
        lines = self.fulltext.lines(conn)
        return lines, self.fulltext.line_counts(conn, terms, lines)

    def _in_context(
        self, conn: Connection, user_id: str, found: RecallSet, window: int
    ) -> list[Recalled]:
        """The best ``window`` of ``found.turns`` and the lines around them, ranked together;
        the other hits are counted in ``found.past_window``."""
        places, rows = neighbours(conn, user_id, found.turns[:window])
        by_id = {hit.id: hit for hit in found.turns}
        commands = {row["id"] for row in rows if _is_command(row)}
        lines = [
            by_id.get(row["id"]) or _line_next_to(row, by_id[row["next_to"]])
            for row in rows
            if row["id"] not in commands
        ]
        # the runtime's answer to a command ("Conversation ended..."): a hit found by its
        # words, or a line read two after a hit that ended its session
        said = {(row["session_id"], row["line"]) for row in rows if row["id"] in commands}
        answers = {
            line.id for line in [*found.turns[:window], *lines] if _answers_command(line, said)
        }
        ranked = [
            (line, strength)
            for line, strength in ranked_in_context(found.turns, places, lines, found.episodes)
            if line.id not in answers
        ]
        found.past_window = len(found.turns) - sum(line.id in by_id for line, _ in ranked)
        return [
            line.placed(rank, hit=line.rank if line.id in by_id else None, strength=strength)
            for rank, (line, strength) in enumerate(ranked)
        ]

    def _distinctive(
        self, terms: list[SearchTerm], weights: Weights
    ) -> tuple[list[SearchTerm], list[list[SearchTerm]]]:
        """The terms worth searching the transcript for (not those in most lines of it), and
        the searches' gates (:meth:`FullText.search`): the rarest of them in at most
        ``GATE_LINES`` lines together, then in at most ``WIDE_GATE_LINES`` (each holding at
        least the rarest word some line has, whatever its count); none when unknown.

        A word in a large share of all lines ranks nothing (its IDF is near zero) but makes
        the search read every line that holds it. At least the rarest term is kept. A long
        history fills a search from its rarer words alone, so the lines holding only commoner
        ones need not be ranked; a short one does not, and is searched whole. Episodes take
        the same gates: a word rare in the transcript is rare in its summaries.
        """
        lines, counts = weights
        if counts is None:
            return terms, []
        limit = max(COMMON_SHARE * lines, COMMON_FLOOR)
        kept = [t for t in terms if counts[t.word] <= limit]
        kept = kept or [min(terms, key=lambda t: counts[t.word])]
        rarest_first = sorted(kept, key=lambda t: counts[t.word])
        gates: list[list[SearchTerm]] = []
        for most in (GATE_LINES, WIDE_GATE_LINES):
            gate: list[SearchTerm] = []
            gated_lines = 0
            for term in rarest_first:
                # words in no line match nothing: a gate of them alone would find no row, and
                # the search would go ungated, ranking every line of the commoner words
                if gated_lines > 0 and gated_lines + counts[term.word] > most:
                    break
                gate.append(term)
                gated_lines += counts[term.word]
            if not gates or len(gate) > len(gates[-1]):
                gates.append(gate)
        return kept, gates

    def search(
        self,
        user_id: str,
        query: str,
        *,
        limit: int = 10,
        query_vector: array[float] | None = None,
    ) -> list[Recalled]:
        """The ``limit`` best results across every source (the API's and CLI's search).

        Transcript lines are read as many as a prompt reads (:data:`TURNS_READ`), however few
        are asked for: recency ranks them again (:mod:`recall.recency`), so the best few by
        the words alone need not be the best few.
        """
        reach = max(limit, 1)
        turns = None if reach <= TURNS_READ else reach  # None: as many as a prompt reads
        found = self.gather(
            user_id, query, turns=turns, episodes=reach, facts=reach, query_vector=query_vector
        )
        return found.merged()[:limit]


def _is_command(row: dict[str, Any]) -> bool:
    """A person's command to the runtime (``/end``, ``/link 123456``): a line of the turn log,
    but nothing they said, so never recalled (nor read as a hit's neighbour: the ``/end``
    after a session's last line took a place in the prompt)."""
    return bool(row["role"] == "user" and is_command(row["text"]))


def _without_command_answers(
    conn: Connection, user_id: str, hits: list[Recalled]
) -> list[Recalled]:
    """``hits`` without the runtime's answers to commands ("Conversation ended. Say anything
    to start a new one."): a bot line said right after a person's command. A prompt reads
    every hit's neighbours and leaves them out there (:meth:`Recall._in_context`); a search
    without them reads the line before each bot hit, in one statement."""
    before = {
        (hit.session_id, hit.line - 1)
        for hit in hits
        if hit.role == "bot" and hit.session_id is not None and hit.line
    }
    if not before:
        return hits
    said = {
        (row["session_id"], row["line"])
        for row in lines_at(conn, user_id, sorted(before))
        if _is_command(row)
    }
    return [hit for hit in hits if not _answers_command(hit, said)]


def _answers_command(line: Recalled, commands: set[tuple[str, int]]) -> bool:
    """Whether ``line`` is the runtime's answer to a command: a bot line right after one of
    the ``commands`` (their places: session id, line)."""
    return (
        line.role == "bot"
        and line.line is not None
        and (line.session_id, line.line - 1) in commands
    )


def _turn(row: dict[str, Any], rank: int) -> Recalled:
    return Recalled(
        "turn",
        row["id"],
        row["text"],
        _fused(rank),
        rank,
        row["started_at"] or row["created_at"],
        bot=row["bot"],
        channel=row["channel"],
        session_id=row["session_id"],
        role=row["role"],
        seq=row["seq"],
        line=row["line"],
        said_at=row["created_at"],
        similarity=row.get("similarity"),
        recency=row.get("recency"),
        relevance=row.get("relevance", row["score"]),
    )


def _episode(row: dict[str, Any], rank: int) -> Recalled:
    topics = row["topics"] or []
    text = row["summary"] or ""
    if topics:
        text = f"{text} (topics: {', '.join(map(str, topics))})"
    return Recalled(
        "episode",
        row["id"],
        text,
        _fused(rank),
        rank,
        row["started_at"] or row["created_at"],  # the conversation's date, not the summary's
        bot=row["bot"],
        channel=row["channel"],
        session_id=row["conversation_id"],
        similarity=row.get("similarity"),
    )


def _fact(row: dict[str, Any], rank: int) -> Recalled:
    return Recalled(
        "fact",
        row["id"],
        f"{row['key']}: {_value_text(row['value'])}",
        _fused(rank),
        rank,
        row["updated_at"],
        key=row["key"],
        similarity=row.get("similarity"),
    )


def _earlier_fact(row: dict[str, Any], rank: int) -> Recalled:
    return Recalled(
        "earlier fact",
        row["id"],
        f"{row['key']} was: {_value_text(row['value'])}",
        _fused(rank),
        rank,
        row["created_at"],
        bot=row["bot"],
        session_id=row["session_id"],
        key=row["key"],
        similarity=row.get("similarity"),
    )


def _memory(row: dict[str, Any], rank: int) -> Recalled:
    return Recalled(
        "memory",
        row["id"],
        row["memory"],
        _fused(rank),
        rank,
        row["updated_at"],
        bot=row["bot"],
        session_id=row["session_id"],
        similarity=row.get("similarity"),
    )


def _line_next_to(row: dict[str, Any], hit: Recalled) -> Recalled:
    """A line said right before or after ``hit``: dated, placed and ranked as the hit."""
    return Recalled(
        "turn",
        row["id"],
        row["text"],
        hit.score,
        hit.rank,
        hit.at,  # its session's date, as the hit's
        bot=row["bot"],
        channel=hit.channel,
        session_id=row["session_id"],
        role=row["role"],
        seq=row["seq"],
        line=row["line"],
        said_at=row["created_at"],
    )
