"""Expressions, variables and value checks of a dialog run: everything but control flow.

Kept apart from :mod:`runtime.dialogs.interpreter`, which runs the statements over an explicit
frame stack and builds on :class:`Evaluator`, because this part knows nothing of frames,
steps or ``HEAR``: it turns an expression into a value, reading variables and asking the
host, and checks every value against :class:`~runtime.dialogs.limits.DialogLimits`.
Expressions are evaluated recursively, which is safe because the parser bounds their
nesting.
"""

from __future__ import annotations

from collections.abc import Callable

from mnemobot.runtime.dialogs import nodes as n
from mnemobot.runtime.dialogs.builtins import FUNCTIONS, CallContext
from mnemobot.runtime.dialogs.errors import DialogRuntimeError
from mnemobot.runtime.dialogs.host import DialogHost
from mnemobot.runtime.dialogs.limits import DialogLimits
from mnemobot.runtime.dialogs.parser import Dialog
from mnemobot.runtime.dialogs.values import (
    DialogValueError,
    Value,
    arith,
    compare_order,
    describe,
    equals,
    format_value,
    is_missing,
    is_number,
    measure,
    to_value,
    truthy,
)

__all__ = ["Evaluator"]


class Evaluator:
    """The values of one run: its variables, the host it reads from, and the size checks.

    Every error it raises names ``where``, the statement being run, unless given a position.
    """

    def __init__(
        self,
        dialog: Dialog,
        host: DialogHost,
        limits: DialogLimits,
        now: Callable[[], float],
        variables: dict[str, Value],
    ) -> None:
        self.dialog = dialog
        self.host = host
        self.limits = limits
        self.variables = variables
        self.calls = CallContext(now=now, max_text=limits.max_text)
        self.where = n.Pos(1, 1)

    # ---- errors and limits ----

    def error(self, cause: str, pos: n.Pos | None = None) -> DialogRuntimeError:
        at = pos or self.where
        return DialogRuntimeError(
            cause, filename=self.dialog.filename, line=at.line, column=at.column
        )

    def check(self, value: Value, pos: n.Pos) -> Value:
        """Cheap size check on every value an operation builds."""
        if isinstance(value, str) and len(value) > self.limits.max_text:
            raise self.error(f"text longer than {self.limits.max_text} characters", pos)
        if isinstance(value, list | dict) and len(value) > self.limits.max_items:
            raise self.error(f"{describe(value)}: more than {self.limits.max_items} items", pos)
        return value

    def check_boundary(self, value: Value, pos: n.Pos) -> Value:
        """Full size and depth check on a value crossing to or from the host."""
        try:
            measure(
                value,
                max_bytes=self.limits.max_value_bytes,
                max_depth=self.limits.max_value_depth,
            )
        except DialogValueError as exc:
            raise self.error(str(exc), pos) from None
        return value

    def from_host(self, obj: object, pos: n.Pos) -> Value:
        """A host's answer as a BASIC value: JSON only, missing as ``""``, size-checked."""
        try:
            value = to_value(obj)
        except DialogValueError as exc:
            raise self.error(f"the runtime returned {exc}", pos) from None
        if value is None:
            return ""
        return self.check_boundary(self.check(value, pos), pos)

    # ---- variables ----

    def assign(self, target: n.Target, value: Value, pos: n.Pos) -> None:
        """Set a variable or a member path (``profile.name = x``) without mutating shared
        maps: each map on the path is copied, so another variable holding it is unaffected."""
        name, members = target[0], target[1:]
        if not members:
            self.variables[name] = value
            return
        containers: list[dict[str, Value]] = []
        keys: list[str] = []
        current: Value = self.variables.get(name, "")
        for member in members:
            if is_missing(current):
                current = {}
            if not isinstance(current, dict):
                raise self.error(f"cannot set .{member} on {describe(current)}", pos)
            key = _find_key(current, member) or member
            containers.append(current)
            keys.append(key)
            current = current.get(key, "")
        result = value
        for container, key in zip(reversed(containers), reversed(keys), strict=True):
            result = {**container, key: result}
        self.variables[name] = self.check(result, pos)

    # ---- expressions ----

    async def eval(self, expr: n.Expr) -> Value:
        if isinstance(expr, n.Lit):
            return expr.value
        if isinstance(expr, n.Var):
            value = self.variables.get(expr.name, "")
            return "" if value is None else value
        if isinstance(expr, n.Member):
            obj = await self.eval(expr.obj)
            if isinstance(obj, dict):
                key = _find_key(obj, expr.name)
                found = obj.get(key) if key is not None else ""
                return "" if found is None else found
            return ""
        if isinstance(expr, n.Index):
            return _index(await self.eval(expr.obj), await self.eval(expr.index))
        if isinstance(expr, n.Call):
            return await self.call(expr)
        if isinstance(expr, n.ArrayLit):
            return self.check([await self.eval(item) for item in expr.items], expr.pos)
        if isinstance(expr, n.MapLit):
            return self.check({key: await self.eval(item) for key, item in expr.pairs}, expr.pos)
        if isinstance(expr, n.Negate):
            operand = await self.eval(expr.operand)
            if is_missing(operand):
                return 0
            if not is_number(operand):
                raise self.error(f"cannot negate {describe(operand)}", expr.pos)
            assert isinstance(operand, int | float)
            return -operand
        if isinstance(expr, n.Not):
            return not truthy(await self.eval(expr.operand))
        if isinstance(expr, n.Arith):
            result = await self.eval(expr.first)
            for op, pos, term in expr.rest:
                right = await self.eval(term)
                try:
                    result = arith(op, result, right)
                except DialogValueError as exc:
                    raise self.error(str(exc), pos) from None
                self.check(result, pos)
            return result
        if isinstance(expr, n.Compare):
            left, right = await self.eval(expr.left), await self.eval(expr.right)
            if expr.op == "=":
                return equals(left, right)
            if expr.op == "<>":
                return not equals(left, right)
            try:
                return compare_order(left, right, expr.op)
            except DialogValueError as exc:
                raise self.error(str(exc), expr.pos) from None
        if isinstance(expr, n.Logic):
            decisive = expr.op == "or"  # OR stops at the first true, AND at the first false
            for part in expr.operands:
                if truthy(await self.eval(part)) == decisive:
                    return decisive
            return not decisive
        if isinstance(expr, n.GetUserMemory):
            key = self.key(await self.eval(expr.key), expr.pos)
            return self.from_host(await self.host.user_memory_get(key), expr.pos)
        if isinstance(expr, n.GetBotMemory):
            key = self.key(await self.eval(expr.key), expr.pos)
            return self.from_host(await self.host.bot_memory_get(key), expr.pos)
        if isinstance(expr, n.GetTemp):
            key = self.key(await self.eval(expr.key), expr.pos)
            return self.from_host(await self.host.temp_get(key), expr.pos)
        if isinstance(expr, n.GetSession):
            key_value = await self.eval(expr.key)
            if isinstance(key_value, str) and _is_url(key_value):
                return self.from_host(await self.host.http_get(key_value.strip()), expr.pos)
            key = self.key(key_value, expr.pos)
            return self.from_host(await self.host.session_get(key), expr.pos)
        if isinstance(expr, n.UserMemories):
            return self.from_host(await self.host.user_memories(), expr.pos)
        if isinstance(expr, n.UserFacts):
            facts = self.from_host(await self.host.user_facts(), expr.pos)
            return facts if facts != "" else {}
        raise self.error(f"cannot evaluate {type(expr).__name__}", expr.pos)  # pragma: no cover

    async def call(self, expr: n.Call) -> Value:
        builtin = FUNCTIONS.get(expr.name)
        if builtin is None:
            raise self.error(f"unknown function {expr.name.upper()}()", expr.pos)
        count = len(expr.args)
        if count < builtin.min_args or (builtin.max_args is not None and count > builtin.max_args):
            if builtin.max_args is None:
                wanted = f"at least {builtin.min_args}"
            elif builtin.min_args == builtin.max_args:
                wanted = str(builtin.min_args)
            else:
                wanted = f"{builtin.min_args} to {builtin.max_args}"
            raise self.error(
                f"{expr.name.upper()}() takes {wanted} argument(s), got {count}", expr.pos
            )
        args = [await self.eval(arg) for arg in expr.args]
        try:
            result = builtin.fn(args, self.calls)
        except DialogValueError as exc:
            raise self.error(f"{expr.name.upper()}(): {exc}", expr.pos) from None
        return self.check(result, expr.pos)

    def key(self, value: Value, pos: n.Pos) -> str:
        """A memory key: non-empty text (a number is accepted and used as its text)."""
        if is_number(value):
            value = format_value(value)
        if not isinstance(value, str):
            raise self.error(f"a memory key must be text, not {describe(value)}", pos)
        if not value:
            raise self.error("a memory key must not be empty", pos)
        return value


def _find_key(mapping: dict[str, Value], name: str) -> str | None:
    """The key ``name`` names: exact spelling first, else ignoring case (BASIC habits)."""
    if name in mapping:
        return name
    lowered = name.lower()
    return next((key for key in mapping if key.lower() == lowered), None)


def _index(obj: Value, index: Value) -> Value:
    """``a[i]``: list and text positions from 0, map keys; anything absent is ``""``."""
    if isinstance(obj, dict):
        key = _find_key(obj, format_value(index))
        found = obj.get(key) if key is not None else ""
        return "" if found is None else found
    if isinstance(obj, list | str) and is_number(index):
        assert isinstance(index, int | float)
        position = int(index)
        if position == index and 0 <= position < len(obj):
            item = obj[position]
            return "" if item is None else item
    return ""


def _is_url(text: str) -> bool:
    lowered = text.strip().lower()
    return lowered.startswith(("http://", "https://"))
