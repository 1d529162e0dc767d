"""Parse BASIC source into a ``Dialog``: the grammar in ``grammar.lark``, lark's LALR parser,
and a non-recursive transformer that builds the nodes in ``nodes.py``.

Parsing happens once, when a bot loads, so every problem a program can show without running
(bad syntax, ``NEXT y`` closing ``FOR EACH x``, absurd nesting) is reported here as one
``DialogSyntaxError`` and the bot refuses to load.

The transformer (lark tree -> nodes, one method per grammar rule) lives in
:mod:`runtime.dialogs.tree_builder`; this module drives the parse, checks the nesting of what
it built and turns every failure into that one error.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import cast

from lark import Lark
from lark.exceptions import UnexpectedInput, VisitError

from mnemobot.runtime.dialogs import nodes as n
from mnemobot.runtime.dialogs.errors import DialogSyntaxError
from mnemobot.runtime.dialogs.syntax_errors import excerpt, from_lark, terminal_names
from mnemobot.runtime.dialogs.tree_builder import Builder, _Located
from mnemobot.runtime.errors import ConfigError

__all__ = ["MAX_NESTING", "MAX_SOURCE_BYTES", "Dialog", "load_dialog", "parse_dialog"]

logger = logging.getLogger(__name__)

MAX_SOURCE_BYTES = 1_000_000
MAX_NESTING = 40  # blocks inside blocks, and expressions inside expressions


@dataclass(frozen=True, slots=True)
class Dialog:
    """A parsed program, ready to run any number of times (it holds no run state)."""

    filename: str
    body: n.Block
    source_hash: str  # a saved state only resumes the exact program that saved it


@functools.cache
def _lark() -> Lark:
    grammar = (
        resources.files("mnemobot.runtime.dialogs").joinpath("grammar.lark").read_text("utf-8")
    )
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
    if isinstance(expr, n.GetUserMemory | n.GetBotMemory | n.GetTemp | n.GetSession):
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
    if isinstance(stmt, n.AddUserMemory):
        return (stmt.text,) if stmt.topics is None else (stmt.text, stmt.topics), ()
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
        body = cast(n.Block, Builder().transform(tree))
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
