"""Lark tree -> dialog nodes: the Transformer with one method per grammar rule.

Kept apart from :mod:`runtime.dialogs.parser`, which drives the parse (source checks, lark,
the nesting check, turning errors into DialogSyntaxError), because this is the part that
changes with ``grammar.lark``: a new rule there is a new method here, and nothing else about
parsing moves. Literals are decoded here too (string escapes, numbers).
"""

from __future__ import annotations

import re
from typing import Any, cast

from lark import Token
from lark.tree import Meta
from lark.visitors import Transformer_NonRecursive, v_args

from mnemobot.runtime.dialogs import nodes as n

__all__ = ["Builder"]

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_STRING_PART = re.compile(r'\\(.)|""')


class _Located(Exception):
    """A problem at a line and column, raised while building the nodes or checking their
    nesting; the parser turns it into a DialogSyntaxError with the source line."""

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
class Builder(Transformer_NonRecursive[Token, Any]):
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

    def set_temp(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.SetMemory("temp", children[0], children[1], _pos(meta))

    def set_context(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.SetMemory("context", children[0], children[1], _pos(meta))

    def legacy_get_bot(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.GetBotMemoryInto(children[0], children[1], _pos(meta))

    def assign(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.Assign(children[0], children[2], _pos(meta))

    def assign_llm(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.AssignLlm(children[0], children[2], _pos(meta))

    def assign_recall(self, meta: Meta, children: list[Any]) -> n.Stmt:
        limit = children[3] if len(children) > 3 else None
        return n.AssignRecall(children[0], children[2], limit, _pos(meta))

    def assign_hear(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.Hear(children[0], _pos(meta))

    def transfer(self, meta: Meta, children: list[Any]) -> n.Stmt:
        return n.Transfer(children[0], _pos(meta))

    def summarize_session(self, meta: Meta, children: list[Any]) -> n.Stmt:
        verb = children[0]
        if str(verb).upper() != "SUMMARIZE":
            raise _Located(
                verb.line,
                verb.column,
                f"unknown statement {str(verb).upper()} SESSION; did you mean SUMMARIZE SESSION?",
            )
        return n.SummarizeSession(_pos(meta))

    def add_user_memory(self, meta: Meta, children: list[Any]) -> n.Stmt:
        verb = children[0]
        if str(verb).upper() != "ADD":
            raise _Located(
                verb.line,
                verb.column,
                f"unknown statement {str(verb).upper()} USER MEMORY; did you mean "
                'ADD USER MEMORY "text" or SET USER MEMORY "key", value?',
            )
        topics = children[2] if len(children) > 2 else None
        return n.AddUserMemory(children[1], topics, _pos(meta))

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

    def get_temp(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.GetTemp(children[0], _pos(meta))

    def get_session(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.GetSession(children[0], _pos(meta))

    def user_facts(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.UserFacts(_pos(meta))

    def user_memories(self, meta: Meta, children: list[Any]) -> n.Expr:
        return n.UserMemories(_pos(meta))
