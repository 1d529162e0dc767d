"""Parse BASIC source into a ``Dialog``: the grammar in ``grammar.lark``, lark's LALR parser,
and a non-recursive transformer that builds the nodes in ``nodes.py``.

Parsing happens once, when a bot loads, so every problem a program can show without running
(bad syntax, ``NEXT y`` closing ``FOR EACH x``, absurd nesting) is reported here as one
``DialogSyntaxError`` and the bot refuses to load.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

from lark import Lark, Token
from lark.exceptions import UnexpectedInput, VisitError
from lark.tree import Meta
from lark.visitors import Transformer_NonRecursive, v_args

from runtime.dialogs import nodes as n
from runtime.dialogs.errors import DialogSyntaxError
from runtime.dialogs.syntax_errors import excerpt, from_lark, terminal_names
from runtime.errors import ConfigError

__all__ = ["MAX_NESTING", "MAX_SOURCE_BYTES", "Dialog", "load_dialog", "parse_dialog"]

logger = logging.getLogger(__name__)

MAX_SOURCE_BYTES = 1_000_000
MAX_NESTING = 40  # blocks inside blocks, and expressions inside expressions

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_STRING_PART = re.compile(r'\\(.)|""')


@dataclass(frozen=True, slots=True)
class Dialog:
    """A parsed program, ready to run any number of times (it holds no run state)."""

    filename: str
    body: n.Block
    source_hash: str  # a saved state only resumes the exact program that saved it


@functools.cache
def _lark() -> Lark:
    grammar = resources.files("runtime.dialogs").joinpath("grammar.lark").read_text("utf-8")
    return Lark(
        grammar,
        parser="lalr",
        propagate_positions=True,
        cache=True,  # the LALR tables take ~0.2 s to build; reused across processes
        maybe_placeholders=False,
    )


@functools.cache
def _terminal_names() -> dict[str, str]:
    return terminal_names(_lark().terminals)


class _Located(Exception):
    """Raised inside the transformer; turned into a DialogSyntaxError with the source line."""

    def __init__(self, line: int, column: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.column = column
        self.reason = reason


def _pos(meta: Meta) -> n.Pos:
    return n.Pos(getattr(meta, "line", 1), getattr(meta, "column", 1))


def _tok_pos(token: Token) -> n.Pos:
    return n.Pos(token.line or 1, token.column or 1)


def _decode_string(token: Token) -> str:
    """A string literal's text: ``""`` is a quote, and ``\\n \\t \\r \\" \\\\`` escapes work;
    any other backslash stays as written (Windows paths survive)."""
    body = str(token)[1:-1]

    def replace(match: re.Match[str]) -> str:
        escaped = match.group(1)
        if escaped is None:
            return '"'
        return _ESCAPES.get(escaped, "\\" + escaped)

    return _STRING_PART.sub(replace, body)


def _number(token: Token) -> int | float:
    text = str(token)
    if any(ch in text for ch in ".eE"):
        return float(text)
    return int(text)


class _ElseBody:
    """Marks the ELSE block among an if_block's children."""

    __slots__ = ("body",)

    def __init__(self, body: n.Block) -> None:
        self.body = body


_COMPARE_OPS: dict[str, n.CompareOp] = {
    "=": "=",
    "==": "=",
    "<>": "<>",
    "!=": "<>",
    "<": "<",
    ">": ">",
    "<=": "<=",
    ">=": ">=",
}
_ARITH_OPS: dict[str, n.ArithOp] = {
    "+": "+",
    "-": "-",
    "&": "&",
    "*": "*",
    "/": "/",
    "mod": "mod",
}


@v_args(meta=True)
class _Builder(Transformer_NonRecursive[Token, Any]):
    """Lark tree -> nodes. Non-recursive, so a long program cannot overflow Python's stack."""

    # ---- program structure ----

    def start(self, meta: Meta, children: list[Any]) -> n.Block:
        return cast(n.Block, children[0])

    def block(self, meta: Meta, children: list[Any]) -> n.Block:
        return tuple(children)

    def target(self, meta: Meta, children: list[Token]) -> n.Target:
        return (str(children[0]).lower(), *(str(name) for name in children[1:]))

    # ---- simple statements ----

    def talk(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.Talk(children[0], _pos(meta))

    def hear(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.Hear(children[0], _pos(meta))

    def print(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.Print(children[0], _pos(meta))

    def set_user_memory(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.SetMemory("user", children[0], children[1], _pos(meta))

    def set_user_fact(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.SetMemory("fact", children[0], children[1], _pos(meta))

    def set_bot_memory(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.SetMemory("bot", children[0], children[1], _pos(meta))

    def legacy_set_bot(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.SetMemory("bot", children[0], children[-1], _pos(meta))

    def set_session(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.SetMemory("session", children[0], children[1], _pos(meta))

    def set_context(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.SetMemory("context", children[0], children[1], _pos(meta))

    def legacy_get_bot(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.GetBotMemoryInto(children[0], children[1], _pos(meta))

    def assign(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.Assign(children[0], children[2], _pos(meta))

    def assign_llm(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.AssignLlm(children[0], children[2], _pos(meta))

    def assign_hear(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.Hear(children[0], _pos(meta))

    def transfer(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.Transfer(children[0], _pos(meta))

    def exit_for(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.ExitLoop("for", _pos(meta))

    def exit_while(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.ExitLoop("while", _pos(meta))

    # ---- compound statements ----

    def if_line(self, meta: Meta, children: list[Any]) -> n.Stmt:
        cond, then_stmt, *rest = children
        else_body: n.Block | None = (rest[0],) if rest else None
        return n.If((n.Branch(cond, (then_stmt,)),), else_body, _pos(meta))

    def if_block(self, meta: Meta, children: list[Any]) -> n.Stmt:
        branches = [n.Branch(children[0], children[1])]
        else_body: n.Block | None = None
        for child in children[2:]:
            if isinstance(child, n.Branch):
                branches.append(child)
            elif isinstance(child, _ElseBody):
                else_body = child.body
        return n.If(tuple(branches), else_body, _pos(meta))

    def elseif(self, meta: Meta, children: list[Any]) -> n.Branch:
        return n.Branch(children[0], children[1])

    def else_block(self, meta: Meta, children: list[Any]) -> _ElseBody:
        return _ElseBody(children[0])

    def _check_next(self, var: Token, closing: list[Any]) -> None:
        """``NEXT y`` must name the loop's own variable, or a typo would go unnoticed."""
        for item in closing:
            if isinstance(item, Token) and str(item).lower() != str(var).lower():
                raise _Located(
                    item.line or 1,
                    item.column or 1,
                    f'"NEXT {item}" does not match the loop variable "{var}" '
                    f"of the FOR on line {var.line}",
                )

    def for_each(self, meta: Meta, children: list[Any]) -> n.Stmt:
        var, iterable, body, *closing = children
        self._check_next(var, closing)
        return n.ForEach(str(var).lower(), iterable, body, _pos(meta))

    def for_range(self, meta: Meta, children: list[Any]) -> n.Stmt:
        var = children[0]
        body_at = next(i for i, child in enumerate(children) if isinstance(child, tuple))
        exprs = children[2:body_at]  # children[1] is the "=" token
        self._check_next(var, children[body_at + 1 :])
        step = exprs[2] if len(exprs) > 2 else None
        return n.ForRange(str(var).lower(), exprs[0], exprs[1], step, children[body_at], _pos(meta))

    def while_loop(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.While(children[0], children[1], _pos(meta))

    # ---- expressions ----

    def or_expr(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.Logic("or", tuple(children), _pos(meta))

    def and_expr(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.Logic("and", tuple(children), _pos(meta))

    def not_(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.Not(children[0], _pos(meta))

    def compare(self, meta: Meta, children: list[Any]) -> n.Expr:
        left, op, right = children
        return n.Compare(left, _COMPARE_OPS[str(op)], right, _tok_pos(op))

    def _chain(self, meta: Meta, children: list[Any]) -> n.Expr:
        rest = tuple(
            (_ARITH_OPS[str(op).lower()], _tok_pos(op), operand)
            for op, operand in zip(children[1::2], children[2::2], strict=True)
        )
        return n.Arith(children[0], rest, _pos(meta))

    def sum(self, meta: Meta, children: list[Any]) -> n.Expr:
        return self._chain(meta, children)

    def term(self, meta: Meta, children: list[Any]) -> n.Expr:
        return self._chain(meta, children)

    def negate(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.Negate(children[1], _pos(meta))

    def unary(self, meta: Meta, children: list[Any]) -> n.Expr:  # unary plus: no effect
        return cast(n.Expr, children[1])

    def member(self, meta: Meta, children: list[Any]) -> n.Expr:
        obj, name = children
        return n.Member(obj, str(name), _tok_pos(name))

    def index(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.Index(children[0], children[1], _pos(meta))

    def number(self, meta: Meta, children: list[Token]) -> n.Expr:
        return n.Lit(_number(children[0]), _pos(meta))

    def string(self, meta: Meta, children: list[Token]) -> n.Expr:
        return n.Lit(_decode_string(children[0]), _pos(meta))

    def true(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.Lit(True, _pos(meta))

    def false(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.Lit(False, _pos(meta))

    def var(self, meta: Meta, children: list[Token]) -> n.Expr:
        return n.Var(str(children[0]).lower(), _pos(meta))

    def var_key(self, meta: Meta, children: list[Token]) -> n.Expr:
        return n.Var(str(children[0]).lower(), _pos(meta))

    def call(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.Call(str(children[0]).lower(), tuple(children[1:]), _pos(meta))

    def array(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.ArrayLit(tuple(children), _pos(meta))

    def map(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.MapLit(tuple(children), _pos(meta))

    def pair(self, meta: Meta, children: list[Any]) -> tuple[str, n.Expr]:
        key, value = children
        text = _decode_string(key) if key.type == "STRING" else str(key)
        return (text, value)

    def get_user_memory(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.GetUserMemory(children[0], _pos(meta))

    def get_bot_memory(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.GetBotMemory(children[0], _pos(meta))

    def get_session(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.GetSession(children[0], _pos(meta))

    def user_facts(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.UserFacts(_pos(meta))


def _expr_children(expr: n.Expr) -> tuple[n.Expr, ...]:
    if isinstance(expr, n.Member | n.Negate | n.Not):
        return (expr.obj,) if isinstance(expr, n.Member) else (expr.operand,)
    if isinstance(expr, n.Index):
        return (expr.obj, expr.index)
    if isinstance(expr, n.Call):
        return expr.args
    if isinstance(expr, n.ArrayLit):
        return expr.items
    if isinstance(expr, n.MapLit):
        return tuple(value for _, value in expr.pairs)
    if isinstance(expr, n.Arith):
        return (expr.first, *(operand for _, _, operand in expr.rest))
    if isinstance(expr, n.Compare):
        return (expr.left, expr.right)
    if isinstance(expr, n.Logic):
        return expr.operands
    if isinstance(expr, n.GetUserMemory | n.GetBotMemory | n.GetSession):
        return (expr.key,)
    return ()


def _stmt_parts(stmt: n.Stmt) -> tuple[tuple[n.Expr, ...], tuple[n.Block, ...]]:
    """A statement's expressions and child blocks, for the nesting check."""
    if isinstance(stmt, n.Talk | n.Print):
        return (stmt.expr,), ()
    if isinstance(stmt, n.SetMemory):
        return (stmt.key, stmt.value), ()
    if isinstance(stmt, n.GetBotMemoryInto):
        return (stmt.key,), ()
    if isinstance(stmt, n.Assign):
        return (stmt.expr,), ()
    if isinstance(stmt, n.AssignLlm):
        return (stmt.prompt,), ()
    if isinstance(stmt, n.Transfer):
        return (stmt.bot,), ()
    if isinstance(stmt, n.If):
        blocks = tuple(branch.body for branch in stmt.branches)
        if stmt.else_body is not None:
            blocks += (stmt.else_body,)
        return tuple(branch.cond for branch in stmt.branches), blocks
    if isinstance(stmt, n.ForEach):
        return (stmt.iterable,), (stmt.body,)
    if isinstance(stmt, n.ForRange):
        exprs = (stmt.start, stmt.end) + ((stmt.step,) if stmt.step is not None else ())
        return exprs, (stmt.body,)
    if isinstance(stmt, n.While):
        return (stmt.cond,), (stmt.body,)
    return (), ()


def _check_nesting(body: n.Block) -> None:
    """Refuse programs nested deeper than MAX_NESTING, so running them cannot exhaust the
    Python stack (expressions are evaluated recursively) or bloat the saved state."""
    blocks: list[tuple[n.Block, int]] = [(body, 0)]
    while blocks:
        block, depth = blocks.pop()
        for stmt in block:
            if depth > MAX_NESTING:
                raise _Located(
                    stmt.pos.line, stmt.pos.column, f"blocks nested more than {MAX_NESTING} deep"
                )
            exprs, children = _stmt_parts(stmt)
            blocks.extend((child, depth + 1) for child in children)
            pending: list[tuple[n.Expr, int]] = [(expr, 1) for expr in exprs]
            while pending:
                expr, level = pending.pop()
                if level > MAX_NESTING:
                    raise _Located(
                        expr.pos.line,
                        expr.pos.column,
                        f"expression nested more than {MAX_NESTING} deep",
                    )
                pending.extend((child, level + 1) for child in _expr_children(expr))


def parse_dialog(source: str, filename: str = "<dialog>") -> Dialog:
    """Parse BASIC source. Raises DialogSyntaxError naming file, line and column."""
    if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise DialogSyntaxError(filename, 1, 1, f"program larger than {MAX_SOURCE_BYTES} bytes")
    text = source.replace("\r\n", "\n").replace("\r", "\n")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    try:
        tree = _lark().parse(text + "\n")
        body = cast(n.Block, _Builder().transform(tree))
        _check_nesting(body)
    except UnexpectedInput as exc:
        raise from_lark(exc, lines, filename, _terminal_names()) from None
    except VisitError as exc:
        inner = exc.orig_exc
        if not isinstance(inner, _Located):
            raise
        raise DialogSyntaxError(
            filename,
            inner.line,
            inner.column,
            inner.reason,
            excerpt(lines, inner.line, inner.column),
        ) from None
    except _Located as exc:
        raise DialogSyntaxError(
            filename, exc.line, exc.column, exc.reason, excerpt(lines, exc.line, exc.column)
        ) from None
    except RecursionError:
        raise DialogSyntaxError(filename, 1, 1, "program nested too deeply") from None
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    logger.debug("parsed dialog %s: %d top-level statements", filename, len(body))
    return Dialog(filename=filename, body=body, source_hash=digest)


def load_dialog(path: str | Path) -> Dialog:
    """Read and parse a ``.bas`` file; the error names the file as given."""
    file = Path(path)
    try:
        source = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read dialog: {exc}") from exc
    return parse_dialog(source, str(file))
