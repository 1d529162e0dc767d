"""The syntax tree of a dialog: immutable nodes with the line and column they came from.

The interpreter never looks at lark trees; it walks these, so the grammar can change without
touching execution, and a saved position (a path of indices into blocks) stays meaningful as
long as the source text is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from mnemobot.runtime.dialogs.values import Value

__all__ = [
    "AddUserMemory",
    "Arith",
    "ArrayLit",
    "Assign",
    "AssignLlm",
    "AssignRecall",
    "Block",
    "Branch",
    "Call",
    "Compare",
    "ExitLoop",
    "Expr",
    "ForEach",
    "ForRange",
    "GetBotMemory",
    "GetBotMemoryInto",
    "GetSession",
    "GetUserMemory",
    "Hear",
    "If",
    "Index",
    "Lit",
    "Logic",
    "MapLit",
    "Member",
    "Negate",
    "Not",
    "Pos",
    "Print",
    "SetMemory",
    "Stmt",
    "SummarizeSession",
    "Talk",
    "Transfer",
    "UserFacts",
    "UserMemories",
    "Var",
    "While",
]


@dataclass(frozen=True, slots=True)
class Pos:
    """Where a node starts in the source (1-based, as editors count)."""

    line: int
    column: int


# ---- expressions ----


@dataclass(frozen=True, slots=True)
class Lit:
    value: Value
    pos: Pos


@dataclass(frozen=True, slots=True)
class Var:
    name: str  # lower case: identifiers are case-insensitive
    pos: Pos


@dataclass(frozen=True, slots=True)
class Member:
    obj: Expr
    name: str  # as written; lookup tries the exact key first, then ignoring case
    pos: Pos


@dataclass(frozen=True, slots=True)
class Index:
    obj: Expr
    index: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # lower case
    args: tuple[Expr, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class ArrayLit:
    items: tuple[Expr, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class MapLit:
    pairs: tuple[tuple[str, Expr], ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    pos: Pos


ArithOp: TypeAlias = Literal["+", "-", "&", "*", "/", "mod"]


@dataclass(frozen=True, slots=True)
class Arith:
    """A left-associative chain ``a + b - c``, flat so long chains cost no recursion."""

    first: Expr
    rest: tuple[tuple[ArithOp, Pos, Expr], ...]
    pos: Pos


CompareOp: TypeAlias = Literal["=", "<>", "<", ">", "<=", ">="]


@dataclass(frozen=True, slots=True)
class Compare:
    left: Expr
    op: CompareOp
    right: Expr
    pos: Pos  # of the operator


@dataclass(frozen=True, slots=True)
class Logic:
    """``a AND b AND c`` (or OR): evaluated left to right, stopping as soon as it is decided."""

    op: Literal["and", "or"]
    operands: tuple[Expr, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class GetUserMemory:
    key: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class GetBotMemory:
    key: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class GetTemp:
    """``GET TEMP key``: this dialog's temp memory (Botpress's ``temp``)."""

    key: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class GetSession:
    """``GET key``: session memory, or an HTTP fetch when the key is an http(s) URL."""

    key: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class UserFacts:
    pos: Pos


@dataclass(frozen=True, slots=True)
class UserMemories:
    """``USER MEMORIES()``: the person's free-text memories, each a map (id, text, topics...)."""

    pos: Pos


Expr: TypeAlias = (
    Lit
    | Var
    | Member
    | Index
    | Call
    | ArrayLit
    | MapLit
    | Negate
    | Not
    | Arith
    | Compare
    | Logic
    | GetUserMemory
    | GetBotMemory
    | GetTemp
    | GetSession
    | UserFacts
    | UserMemories
)

# ---- statements ----

Target: TypeAlias = tuple[str, ...]  # variable (lower case) then member names as written


@dataclass(frozen=True, slots=True)
class Talk:
    expr: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Hear:
    """``HEAR x`` / ``x = HEAR word``: suspend until the person's next message."""

    target: Target
    pos: Pos


@dataclass(frozen=True, slots=True)
class Print:
    expr: Expr
    pos: Pos


MemoryScope: TypeAlias = Literal["user", "fact", "bot", "session", "context", "temp"]


@dataclass(frozen=True, slots=True)
class SetMemory:
    scope: MemoryScope
    key: Expr
    value: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class GetBotMemoryInto:
    key: Expr
    target: Target
    pos: Pos


@dataclass(frozen=True, slots=True)
class Assign:
    target: Target
    expr: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class AssignLlm:
    target: Target
    prompt: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class AssignRecall:
    """``found = RECALL "query"[, limit]``: what the person's memory holds about the query."""

    target: Target
    query: Expr
    limit: Expr | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class Transfer:
    bot: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class SummarizeSession:
    """``SUMMARIZE SESSION``: ask for this session's episode, written when it ends."""

    pos: Pos


@dataclass(frozen=True, slots=True)
class AddUserMemory:
    """``ADD USER MEMORY text[, topics]``: remember a free-text memory about the person."""

    text: Expr
    topics: Expr | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class ExitLoop:
    kind: Literal["for", "while"]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Branch:
    cond: Expr
    body: Block


@dataclass(frozen=True, slots=True)
class If:
    """Block and one-line IF alike; child block k is branch k, then ELSE."""

    branches: tuple[Branch, ...]
    else_body: Block | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class ForEach:
    var: str
    iterable: Expr
    body: Block
    pos: Pos


@dataclass(frozen=True, slots=True)
class ForRange:
    var: str
    start: Expr
    end: Expr
    step: Expr | None
    body: Block
    pos: Pos


@dataclass(frozen=True, slots=True)
class While:
    cond: Expr
    body: Block
    pos: Pos


Stmt: TypeAlias = (
    Talk
    | Hear
    | Print
    | SetMemory
    | GetBotMemoryInto
    | Assign
    | AssignLlm
    | AssignRecall
    | Transfer
    | SummarizeSession
    | AddUserMemory
    | ExitLoop
    | If
    | ForEach
    | ForRange
    | While
)
Block: TypeAlias = tuple[Stmt, ...]
