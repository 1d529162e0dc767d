"""Full-text search of one person's memory, in the database's own index.

The index (migrations 0005 and 0008) is SQLite FTS5 tables kept by triggers, or PostgreSQL generated
``tsvector`` columns with GIN indexes; either way it changes in the same transaction as the
row it indexes, and goes when the row goes (forget, retention, TTL). This module is the only
place that knows which of the two it is talking to: callers hand it search terms and get rows
back with a score where higher is better, whatever the dialect ranks by (FTS5's ``bm25`` is
lower-is-better; PostgreSQL's ``ts_rank_cd`` higher-is-better).

Every query is filtered by ``user_id`` inside the statement: a search never crosses people.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, TextualSelect, and_, bindparam, func, select, text, tuple_

from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.dialect import dialect_of
from mnemobot.runtime.storage.folding import (
    SPACED_FUNCTION,
    Fold,
    Fts5Folding,
    latin_fold,
    spaced,
    units,
)
from mnemobot.runtime.storage.prepared import Prepared
from mnemobot.runtime.storage.tables import (
    EPISODES,
    SESSIONS,
    TURNS,
    USER_MEMORIES,
    USER_MEMORY,
)

__all__ = [
    "SOURCES",
    "FullText",
    "SearchTerm",
    "Source",
    "Weights",
    "lines_at",
    "outside_the_models",
    "place_lines",
]

Source = Literal["turns", "episodes", "user_memory", "fact_history", "user_memories"]
SOURCES: tuple[Source, ...] = (
    "turns",
    "episodes",
    "user_memory",
    "fact_history",
    "user_memories",  # free-text memories (0008)
)

# The transcript's lines (of everyone) and each term's, by word (None: not known)
Weights = tuple[int, Mapping[str, int] | None]

_DATETIME = TURNS.c.created_at.type
_JSON = USER_MEMORY.c.value.type


@dataclass(frozen=True, slots=True)
class SearchTerm:
    """One word to look for: already folded to lowercase without accents, ``\\w`` only.

    ``prefix`` matches every word that starts with it ("rese" finds "research", "reserved").
    """

    word: str
    prefix: bool = False


def _fts5_query(terms: Sequence[SearchTerm]) -> str:
    # Each term quoted (FTS5 syntax characters in a message can never break the query),
    # joined with OR: FTS5's implicit AND would ask for every word of a question at once. A
    # pair of Chinese or Japanese characters is a phrase of two words, as the index has them
    # (storage.folding.spaced).
    return " OR ".join(f'"{spaced(t.word)}"' + ("*" if t.prefix else "") for t in terms)


def _tsquery(terms: Sequence[SearchTerm]) -> str:
    return " | ".join(f"'{t.word}'" + (":*" if t.prefix else "") for t in terms)


def _gated_fts5_query(terms: Sequence[SearchTerm], gate: Sequence[SearchTerm]) -> str:
    # Rows holding a gate term, ranked by every term: "all NOT (others NOT gate)". bm25 sums
    # only the phrases of sub-expressions that matched the row; the right-hand side never
    # matches a row that is kept, so each row scores exactly as it does under "all".
    others = [t for t in terms if t not in gate]
    return f"({_fts5_query(terms)}) NOT (({_fts5_query(others)}) NOT ({_fts5_query(gate)}))"


# What each source returns: its columns, and the joins that date and place it. The SQLite
# form finds the best rows in the FTS table first (joined to the source only to keep this
# person's), then reads those rows whole.
_SELECT = {
    "turns": (
        "t.id, t.session_id, t.bot, t.role, t.text, t.seq, t.line, t.created_at, s.channel, "
        "s.started_at",
        "JOIN sessions s ON s.id = t.session_id",
    ),
    "episodes": (
        "e.id, e.conversation_id, e.bot, e.summary, e.topics, e.created_at, "
        "s.channel, s.started_at",
        "LEFT JOIN sessions s ON s.id = e.conversation_id",
    ),
    "user_memory": (
        "m.id, m.key, m.value, m.memory_type, m.updated_at",
        "",
    ),
    "fact_history": (
        "h.id, h.key, h.value, h.action, h.session_id, h.bot, h.superseded_at, h.created_at",
        "",
    ),
    "user_memories": (
        "n.id, n.memory, n.topics, n.source, n.bot, n.session_id, n.updated_at",
        "",
    ),
}
# The columns each source's index holds (migrations 0005, 0008), as its triggers write them.
_INDEXED: dict[Source, tuple[str, ...]] = {
    "turns": ("text",),
    "episodes": ("summary", "topics"),
    "user_memory": ("key", "value"),
    "fact_history": ("key", "value"),
    "user_memories": ("memory", "topics"),
}
_ALIAS = {
    "turns": "t",
    "episodes": "e",
    "user_memory": "m",
    "fact_history": "h",
    "user_memories": "n",
}
_WHERE = {  # beyond the person: what is live and worth recalling
    "turns": "",
    "episodes": "",
    "user_memory": " AND (m.ttl IS NULL OR m.ttl > :now)",
    "fact_history": " AND h.superseded_at IS NOT NULL",  # earlier values; the live one is above
    "user_memories": "",
}
_TYPES: dict[Source, dict[str, Any]] = {
    "turns": {"created_at": _DATETIME, "started_at": SESSIONS.c.started_at.type},
    "episodes": {
        "created_at": _DATETIME,
        "started_at": SESSIONS.c.started_at.type,
        "topics": EPISODES.c.topics.type,
    },
    "user_memory": {"value": _JSON, "updated_at": _DATETIME},
    "fact_history": {"value": _JSON, "superseded_at": _DATETIME, "created_at": _DATETIME},
    "user_memories": {"topics": USER_MEMORIES.c.topics.type, "updated_at": _DATETIME},
}


# SQLite: the index on a source's user_id holds (user_id, rowid), so "is this hit the
# person's?" is one seek in that small index instead of reading the source row (2.4 instead of
# 5.2 us a hit at 100,000 lines, most of a search's cost before ranking). CROSS JOIN keeps the
# full-text scan outermost: the planner otherwise may walk the person's rows and run the
# full-text query once for each.
_PERSON_INDEX: dict[Source, str] = {
    "turns": " INDEXED BY ix_turns_user_id",
    "episodes": " INDEXED BY ix_episodes_user_id",
    "user_memory": "",  # few rows a person, and the ttl is read from the row anyway
    "fact_history": "",
    "user_memories": "",  # free-text memories: few a person, like user_memory
}


def _sqlite_statement(source: Source) -> TextualSelect:
    columns, joins = _SELECT[source]
    a = _ALIAS[source]
    sql = (
        f"WITH hits AS (SELECT f.rowid AS r, -bm25({source}_fts) AS score "
        f"FROM {source}_fts f CROSS JOIN {source} {a}{_PERSON_INDEX[source]} "
        f"ON {a}.rowid = f.rowid "
        f"WHERE {source}_fts MATCH :query AND {a}.user_id = :user_id{_WHERE[source]} "
        f"ORDER BY bm25({source}_fts) LIMIT :limit) "
        f"SELECT {columns}, hits.score FROM hits "
        f"JOIN {source} {a} ON {a}.rowid = hits.r {joins} "
        f"ORDER BY hits.score DESC"
    )
    return text(sql).columns(**_TYPES[source])


# PostgreSQL ranks as FTS5 does, by BM25 (FTS5's constants): ts_rank_cd has no IDF, so a
# question's commonest word (the person's own name, in every other line) counted as much as
# its rarest, and it favours lines that repeat a word. On LoCoMo's development split
# (bench/recall.py --backend postgresql) evidence-session recall was 0.864 with ts_rank_cd
# against SQLite's 0.963. A term's occurrences in a row are ts_rank_cd of that term alone with
# every label weighing 1; a row's length is its distinct words (length(tsvector)); each
# term's IDF and the source's average length come in as parameters (:meth:`FullText._run`).
BM25_K1 = 1.2
BM25_B = 0.75


# PostgreSQL: a tsquery folded by the index's own expression (unaccent(lower(...)) where the
# unaccent extension was there at 0005; migration 0012), so a query word matches what the
# index stored whatever the query side left of its accents (storage.folding).
_QUERY = "mnemobot_search_query"


def _postgresql_statement(source: Source, terms: int) -> TextualSelect:
    # :match finds the rows (every term, or the gate's), :q<i> rank them, weighed :w<i>
    columns, joins = _SELECT[source]
    a = _ALIAS[source]
    queries = ", ".join(f"{_QUERY}(:q{i}) AS q{i}" for i in range(terms))
    found = ", ".join(
        f"ts_rank_cd('{{1,1,1,1}}', {a}.search, q.q{i}) AS f{i}" for i in range(terms)
    )
    norm = f"{BM25_K1} * (1 - {BM25_B} + {BM25_B} * length({a}.search) / :average)"
    score = " + ".join(f":w{i} * f.f{i} * {BM25_K1 + 1} / (f.f{i} + {norm})" for i in range(terms))
    sql = (
        f"SELECT {columns}, {score} AS score "
        f"FROM {source} {a} {joins} CROSS JOIN (SELECT {queries}) AS q "
        f"CROSS JOIN LATERAL (SELECT {found}) AS f "
        f"WHERE {a}.user_id = :user_id "
        f"AND {a}.search @@ {_QUERY}(:match){_WHERE[source]} "
        f"ORDER BY score DESC LIMIT :limit"
    )
    return text(sql).columns(**_TYPES[source])


def _idf(lines: int, holding: int) -> float:
    """A term's weight as FTS5's bm25 gives it (never below a millionth).

    ``lines`` may be PostgreSQL's estimate from the last ANALYZE (or CREATE INDEX), and
    ``holding`` an exact count made since: a word in every line written after it can be in
    more lines than the estimate has.
    """
    lines = max(lines, holding)
    return max(math.log((lines - holding + 0.5) / (holding + 0.5)), 1e-6)


# A term's line count is read again once the transcript has this share more lines than when
# it was counted: the counts only say which words are too common to search (a share of all
# lines), which a 1% drift cannot change much, and reading them costs as much as a search (the
# vocabulary table walks each word's whole doclist: 0.75 ms for a prefix at 100,000 lines).
RECOUNT_GROWTH = 0.01


def _still_true(lines_then: int, lines: int) -> bool:
    """Whether a figure read when the transcript had ``lines_then`` lines holds with ``lines``
    now: it has grown by less than ``RECOUNT_GROWTH``, and not been renumbered."""
    return lines_then <= lines <= lines_then * (1 + RECOUNT_GROWTH)


COUNTS_KEPT = 50_000  # terms remembered at most; past this the memory starts again

_PREFIX_LINES = text("SELECT sum(doc) FROM turns_fts_terms WHERE term >= :low AND term < :high")
_WORD_LINES = text("SELECT doc FROM turns_fts_terms WHERE term = :word")

# PostgreSQL: the statistics ANALYZE (and autovacuum) keeps of the index column: its most
# common lexemes (up to 10 x the statistics target, 1,000 by default) and the share of sampled
# rows holding each. Counting a word exactly would read every row holding it, which is what a
# search of a common word must not do; reltuples is the table's row estimate of the same pass.
_PG_LINES = text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('turns')")
_PG_COMMON_WORDS = text(
    "SELECT most_common_elems::text::text[] AS words, most_common_elem_freqs AS shares "
    "FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'turns' "
    "AND attname = 'search'"
)
# A word the statistics do not list is rarer than every listed one: its lines are counted
# through the GIN index (cheap, as they are few; at most COUNTED_AT_MOST): FullText._count
_PG_ALL_LINES = text("SELECT count(*) FROM (SELECT 1 FROM turns LIMIT :most) AS every")
COUNTED_AT_MOST = 100_000  # PostgreSQL: lines counted one by one, before statistics say more


@dataclass(frozen=True)
class _CommonWords:
    """PostgreSQL's most common lexemes of the transcript, as shares of its lines."""

    lines: int  # the row estimate they were read with
    shares: dict[str, float]

    def count(self, term: SearchTerm, lines: int) -> int | None:
        """About how many of ``lines`` hold ``term`` (a prefix: the listed words it starts);
        None when it is not listed: rarer than every listed word, to be counted."""
        if term.prefix:
            share = sum(v for word, v in self.shares.items() if word.startswith(term.word))
        else:
            share = self.shares.get(term.word, 0.0)
        return round(share * lines) if share else None


class FullText:
    """Searches one database's recall index; statements built once per source."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._postgres = db.dialect == "postgresql"
        self._statements = {} if self._postgres else {s: _sqlite_statement(s) for s in SOURCES}
        self._ranked: dict[tuple[Source, int], TextualSelect] = {}  # PostgreSQL's, by terms
        self._averages: dict[Source, tuple[float, int]] = {}  # average length, lines then
        # (word, prefix) -> (lines holding it, all lines when counted); see RECOUNT_GROWTH
        self._counted: dict[tuple[str, bool], tuple[int, int]] = {}
        self._common: _CommonWords | None = None  # PostgreSQL's, read again when lines change
        # a query's words folded as this index folds text (storage.folding): on PostgreSQL
        # the database folds them again with the index's own expression (_QUERY)
        self.fold: Fold = latin_fold if self._postgres else Fts5Folding()

    def search(
        self,
        conn: Connection,
        source: Source,
        user_id: str,
        terms: Sequence[SearchTerm],
        *,
        limit: int,
        now: datetime,
        gates: Sequence[Sequence[SearchTerm]] = (),
        enough: int | None = None,
        weights: Weights | None = None,
    ) -> list[dict[str, Any]]:
        """The best ``limit`` rows of ``source`` for ``terms``, best first, with ``score``.

        ``gates`` (each some of ``terms``, the rarest; narrowest first): the first of them
        that at least ``enough`` (default ``limit``) of the person's rows hold one word of is
        the search: only those rows are ranked (each scored by every term, as without a
        gate); when none is, every row holding any term is. The work of a search is the rows
        it ranks: a gate of words in a few hundred lines bounds it however long the history,
        where a word in thousands of lines would have them all scored to keep the best few.
        A caller that uses only the first few rows says so with ``enough``: a gate that falls
        short of ``limit`` but fills those is kept, and a wider gate is tried before none.
        ``weights``: :meth:`lines` and :meth:`line_counts` for ``terms``, when the caller
        has them (PostgreSQL's BM25 weighs each term by them; else they are read here).
        """
        if not terms:
            return []
        needed = limit if enough is None else min(enough, limit)
        for gate in gates:
            gate = [t for t in gate if t in terms]
            if not gate or len(gate) == len(terms):
                continue  # every term: the search below
            rows = self._run(conn, source, user_id, terms, gate, limit, now, weights)
            if len(rows) >= needed:
                return rows
        return self._run(conn, source, user_id, terms, terms, limit, now, weights)

    def _run(
        self,
        conn: Connection,
        source: Source,
        user_id: str,
        terms: Sequence[SearchTerm],
        gate: Sequence[SearchTerm],
        limit: int,
        now: datetime,
        weights: Weights | None,
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"user_id": user_id, "limit": limit, "now": now}
        if self._postgres:
            statement = self._ranked.get((source, len(terms)))
            if statement is None:
                statement = self._ranked[source, len(terms)] = _postgresql_statement(
                    source, len(terms)
                )
            if weights is None:
                lines = self.lines(conn)
                weights = lines, self.line_counts(conn, terms, lines)
            lines, counts = weights[0], weights[1] or {}
            params |= {"match": _tsquery(gate), "average": self._average(conn, source, lines)}
            for i, term in enumerate(terms):
                params[f"q{i}"] = _tsquery([term])
                params[f"w{i}"] = _idf(max(lines, 1), counts.get(term.word, 0))
        else:
            statement = self._statements[source]
            params["query"] = (
                _fts5_query(terms) if len(gate) == len(terms) else _gated_fts5_query(terms, gate)
            )
        result = conn.execute(statement, params)
        names = list(result.keys())  # rows as tuples made dicts: ~2 us a row less than mappings
        return [dict(zip(names, row, strict=True)) for row in result.all()]

    def _average(self, conn: Connection, source: Source, lines: int) -> float:
        """PostgreSQL: the average length (distinct words) of ``source``'s rows, as BM25
        normalises by; from up to 1,000 of them, read again as the transcript grows."""
        known = self._averages.get(source)
        if known is not None and _still_true(known[1], lines):
            return known[0]
        sql = f"SELECT avg(length(search)) FROM (SELECT search FROM {source} LIMIT 1000) AS s"
        average = max(float(conn.execute(text(sql)).scalar() or 1.0), 1.0)
        self._averages[source] = (average, lines)
        return average

    def line_counts(
        self, conn: Connection, terms: Sequence[SearchTerm], lines: int
    ) -> dict[str, int] | None:
        """How many transcript lines (of everyone) hold each term.

        ``lines`` is :meth:`lines` now. SQLite's FTS5 keeps these counts in its vocabulary.
        PostgreSQL's exact equivalent, ``ts_stat``, reads the whole index, and counting the
        lines of a common word reads every one of them: its planner statistics of the index
        column say which words are common, and about how common (:class:`_CommonWords`,
        read again after each ANALYZE); any other word is rare, and its lines are counted
        through the index. A count is remembered until the transcript has grown by
        ``RECOUNT_GROWTH`` (or been renumbered).
        """
        common = self._common_words(conn, lines) if self._postgres else None
        counts: dict[str, int] = {}
        uncounted: list[SearchTerm] = []
        for term in terms:
            estimate = common.count(term, lines) if common is not None else None
            if estimate is not None:
                counts[term.word] = estimate
                continue
            known = self._counted.get((term.word, term.prefix))
            if known is not None and _still_true(known[1], lines):
                counts[term.word] = known[0]
            else:
                uncounted.append(term)
        if not uncounted:
            return counts
        if len(self._counted) + len(uncounted) > COUNTS_KEPT:
            self._counted.clear()
        for term, count in zip(uncounted, self._count(conn, uncounted), strict=True):
            counts[term.word] = count
            self._counted[term.word, term.prefix] = (count, lines)
        return counts

    def _count(self, conn: Connection, terms: Sequence[SearchTerm]) -> list[int]:
        """Each term's lines, counted: in FTS5's vocabulary; on PostgreSQL, in one pass over
        the lines holding any of them through the GIN index (they are rare words, so few)."""
        if self._postgres:
            each = ", ".join(
                f"count(*) FILTER (WHERE search @@ {_QUERY}(:q{i}))" for i in range(len(terms))
            )
            sql = (
                f"SELECT {each} FROM (SELECT search FROM turns "
                f"WHERE search @@ {_QUERY}(:any) LIMIT :most) AS holding"
            )
            params: dict[str, Any] = {"any": _tsquery(terms), "most": COUNTED_AT_MOST}
            params |= {f"q{i}": _tsquery([term]) for i, term in enumerate(terms)}
            return [int(n) for n in conn.execute(text(sql), params).one()]
        counted = []
        for term in terms:
            pair = units(term.word)
            if len(pair) > 1:  # a pair of characters: its rarer one's lines
                counted.append(min(self._count(conn, [SearchTerm(c) for c in pair])))
                continue
            if term.prefix:
                row = conn.execute(_PREFIX_LINES, {"low": term.word, "high": term.word + "\uffff"})
            else:
                row = conn.execute(_WORD_LINES, {"word": term.word})
            counted.append(int(row.scalar() or 0))
        return counted

    def lines(self, conn: Connection) -> int:
        """About how many transcript lines there are, of everyone (SQLite: the last row number;
        PostgreSQL: the row estimate of the last ANALYZE or VACUUM; before the first, a new
        database's few lines counted, up to ``COUNTED_AT_MOST``)."""
        if self._postgres:
            estimate = self._estimated_lines(conn)
            if estimate > 0:
                return estimate
            return int(conn.execute(_PG_ALL_LINES, {"most": COUNTED_AT_MOST}).scalar() or 0)
        return int(conn.execute(text("SELECT max(rowid) FROM turns")).scalar() or 0)

    @staticmethod
    def _estimated_lines(conn: Connection) -> int:
        """PostgreSQL's row estimate of the transcript, from its last ANALYZE or VACUUM; 0
        for a table never analysed, or analysed empty (whose statistics, if any, are of rows
        since gone: ANALYZE of an empty table leaves them)."""
        return max(0, int(conn.execute(_PG_LINES).scalar() or 0))

    def _common_words(self, conn: Connection, lines: int) -> _CommonWords | None:
        """PostgreSQL's most common transcript words; read once per ANALYZE, None while
        there are none to trust. ``lines`` is :meth:`lines`: the row estimate they were read
        with when it is theirs (ANALYZE changes it), so a prompt reads the estimate once."""
        if self._common is not None and self._common.lines == lines:
            return self._common
        estimated = self._estimated_lines(conn)
        if estimated <= 0:
            return None
        row = conn.execute(_PG_COMMON_WORDS).first()
        if row is None or row.words is None:
            return None  # analysed before any line held a word
        shares = dict(zip(row.words, row.shares[: len(row.words)], strict=True))
        self._common = _CommonWords(estimated, shares)
        return self._common

    def newest_lines(self, conn: Connection, user_id: str, limit: int) -> list[str]:
        """The text of the person's ``limit`` newest transcript lines (recall counts how
        common a question's words are in them). SQLite takes them backwards along the
        (user_id, rowid) index, with no sort; PostgreSQL by a top-N sort of the person's rows.
        """
        newest = TURNS.c.created_at.desc() if self._postgres else text("turns.rowid DESC")
        query = select(TURNS.c.text).where(TURNS.c.user_id == user_id)
        return list(conn.execute(query.order_by(newest).limit(limit)).scalars())

    def rebuild(self) -> None:
        """Re-index every existing row (after a restore, or a VACUUM that renumbered rowids).

        PostgreSQL's generated columns cannot go stale; SQLite's external-content tables
        follow their source's rowids, which only a VACUUM renumbers. PostgreSQL's planner
        statistics can: they say which words are common (:meth:`line_counts`), and after a
        restore or a bulk import there are none, or old ones, until autovacuum comes by. So
        there every source is analysed now.
        """
        if self._postgres:
            with self.db.write() as conn:
                for source in SOURCES:
                    conn.execute(text(f"ANALYZE {source}"))
            return
        with self.db.write() as conn:  # FTS5's own 'rebuild' would read the text unspaced
            for source in SOURCES:
                fts, columns = f"{source}_fts", _INDEXED[source]
                read = ", ".join(f"{SPACED_FUNCTION}({c})" for c in columns)
                conn.execute(text(f"INSERT INTO {fts}({fts}) VALUES ('delete-all')"))
                conn.execute(
                    text(
                        f"INSERT INTO {fts}(rowid, {', '.join(columns)}) "
                        f"SELECT rowid, {read} FROM {source}"
                    )
                )

    def rows(
        self,
        conn: Connection,
        source: Source,
        user_id: str,
        ids: Sequence[str],
        *,
        now: datetime,
    ) -> dict[str, dict[str, Any]]:
        """Rows of ``source`` by id, with the same columns a search gives (``score`` None):
        for what semantic recall found that the words did not. Only ``user_id``'s."""
        if not ids:
            return {}
        columns, joins = _SELECT[source]
        a = _ALIAS[source]
        statement = (
            text(
                f"SELECT {columns}, NULL AS score FROM {source} {a} {joins} "
                # by id, then the person's: "|| ''" keeps SQLite off the user_id index, which
                # it would otherwise walk (every line of the person) for a list of ids
                f"WHERE {a}.user_id || '' = :user_id AND {a}.id IN :ids{_WHERE[source]}"
            )
            .bindparams(bindparam("ids", expanding=True))
            .columns(**_TYPES[source])
        )
        params = {"user_id": user_id, "ids": list(ids), "now": now}
        found = conn.execute(statement, params).mappings().all()
        return {row["id"]: dict(row) for row in found}


def outside_the_models(obj: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
    """Alembic's ``include_object``: False for the recall index, which no model declares.

    The index is made by migration 0005 in each dialect's own form (FTS5 tables and their
    shadow tables, ``search`` columns and their GIN indexes); comparing the models with the
    database must not see it as something to drop.
    """
    if kind == "table" and name is not None and "_fts" in name:
        return False
    if kind == "column" and name == "search":
        return False
    return not (kind == "index" and name is not None and name.endswith("_search"))


def purge_deleted_in(conn: Connection) -> None:
    """Make deleted rows' words leave the index itself (forget), inside the caller's transaction.

    SQLite's FTS5 marks a deleted row's tokens deleted and drops them only when it merges
    segments; ``optimize`` merges them now (SQLite 3.40 has no ``secure-delete``). PostgreSQL's
    index columns live in the rows themselves and go with them.
    """
    if dialect_of(conn) == "postgresql":
        return
    for source in SOURCES:
        conn.execute(text(f"INSERT INTO {source}_fts({source}_fts) VALUES ('optimize')"))


# A person's transcript lines by their place in their session (``turns.line``, 0011): the
# lines around recall's best hits (recall.around). On SQLite the places come as one JSON
# array, so the statement is compiled once (an expanding list of row values was compiled each
# time, and SQLite did not seek the (session_id, line) index for it), and the lines are checked
# to be the person's with "user_id || ''": SQLite would otherwise walk every line of the person
# in the user_id index. PostgreSQL seeks the index for a list of row values.
_AT_COLUMNS = (
    TURNS.c.id,
    TURNS.c.session_id,
    TURNS.c.role,
    TURNS.c.text,
    TURNS.c.seq,
    TURNS.c.line,
    TURNS.c.created_at,
    TURNS.c.bot,
)
_WANTED = func.json_each(bindparam("wanted")).table_valued("value", name="wanted")
_AT_SQLITE = Prepared(
    select(*_AT_COLUMNS)
    .select_from(_WANTED)
    .join(
        TURNS,
        and_(
            TURNS.c.session_id == func.json_extract(_WANTED.c.value, "$[0]"),
            TURNS.c.line == func.json_extract(_WANTED.c.value, "$[1]"),
        ),
    )
    .where(TURNS.c.user_id.concat("") == bindparam("user_id"))
)
_AT = select(*_AT_COLUMNS).where(
    TURNS.c.user_id == bindparam("user_id"),
    tuple_(TURNS.c.session_id, TURNS.c.line).in_(bindparam("wanted", expanding=True)),
)


def lines_at(
    conn: Connection, user_id: str, wanted: Sequence[tuple[str, int]]
) -> list[dict[str, Any]]:
    """``user_id``'s transcript lines at ``wanted`` places (session id, line), in no order;
    a place that holds no line of theirs gives nothing."""
    if not wanted:
        return []
    if dialect_of(conn) == "sqlite":
        params = {"user_id": user_id, "wanted": json.dumps(list(wanted))}
        names = [column.name for column in _AT_COLUMNS]
        return [dict(zip(names, row, strict=True)) for row in _AT_SQLITE.all(conn, params)]
    rows = conn.execute(_AT, {"user_id": user_id, "wanted": list(wanted)}).mappings().all()
    return [dict(row) for row in rows]


# A line written by a worker older than migration 0011 while a newer one ran (a rolling
# upgrade) has no place: recall ranks it alone, without the lines around it. Its session is
# numbered again whole, in the order 0011 numbered the lines it found (time, seq, id), which
# is the order the turns' commits number them in.
_UNPLACED = text("SELECT count(*), count(DISTINCT session_id) FROM turns WHERE line IS NULL")
_PLACED_AGAIN = text(
    "UPDATE turns SET line = numbered.line FROM ("
    "SELECT id, row_number() OVER (PARTITION BY session_id ORDER BY created_at, seq, id) - 1 "
    "AS line FROM turns WHERE session_id IN (SELECT session_id FROM turns WHERE line IS NULL)"
    ") AS numbered WHERE numbered.id = turns.id"
)


def place_lines(conn: Connection) -> tuple[int, int]:
    """Number the sessions that hold lines without a place; returns (lines that had none,
    their sessions). Run once no worker older than 0011 is left: a session it writes to
    after this gets unplaced lines again."""
    lines, sessions = conn.execute(_UNPLACED).one()
    if lines:
        conn.execute(_PLACED_AGAIN)
    return int(lines), int(sessions)
