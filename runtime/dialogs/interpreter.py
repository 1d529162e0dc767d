"""Run a parsed dialog for one message: from the top, or from where ``HEAR`` left it.

The run is a loop over an explicit frame stack (``state.Frame``), never Python recursion over
statements, so at ``HEAR`` everything there is to know is in ``frames`` and ``variables`` and
goes back to the caller as JSON. Expressions are evaluated recursively, which is safe because
the parser bounds their nesting.

Safety: a step budget per run (statements and loop iterations) ends runaway loops; text,
lists, maps and every value crossing to the host or into the saved state are size-capped.
Every error names the file, line and column.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from runtime.clock import Clock
from runtime.dialogs import nodes as n
from runtime.dialogs.builtins import FUNCTIONS, CallContext
from runtime.dialogs.errors import DialogRuntimeError, DialogStateError
from runtime.dialogs.host import DialogHost
from runtime.dialogs.parser import Dialog
from runtime.dialogs.state import Frame, child_block, dump_state, load_state
from runtime.dialogs.values import (
    Value,
    ValueTypeError,
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
from runtime.errors import MnemobotError

__all__ = ["DEFAULT_LIMITS", "DialogLimits", "DialogOutcome", "DialogStatus", "run_dialog"]

logger = logging.getLogger(__name__)

DialogStatus = Literal["finished", "waiting", "transferred"]


@dataclass(frozen=True, slots=True)
class DialogLimits:
    """Bounds on one run, so a faulty or hostile program costs little and fails clearly."""

    max_steps: int = 10_000  # statements plus loop iterations per run
    max_text: int = 1_000_000  # characters in one text value
    max_items: int = 100_000  # elements in one list or map
    max_value_bytes: int = 1_000_000  # one value sent to or received from the host
    max_value_depth: int = 64  # nesting of lists and maps in such a value
    max_state_bytes: int = 4_000_000  # everything saved at HEAR


DEFAULT_LIMITS = DialogLimits()


@dataclass(frozen=True, slots=True)
class DialogOutcome:
    """How a run ended. ``state`` is set only when waiting: store it, pass it back later."""

    status: DialogStatus
    steps: int
    state: dict[str, Any] | None = None
    transfer_to: str | None = None

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    @property
    def waiting(self) -> bool:
        return self.status == "waiting"

    @property
    def transferred(self) -> bool:
        return self.status == "transferred"


@dataclass(frozen=True, slots=True)
class _Suspend:
    target: n.Target


@dataclass(frozen=True, slots=True)
class _Transfer:
    bot: str


_Signal = _Suspend | _Transfer | None


class _Run:
    """One run of one dialog; discarded when the run returns."""

    def __init__(
        self,
        dialog: Dialog,
        host: DialogHost,
        limits: DialogLimits,
        now: Callable[[], float],
        frames: list[Frame],
        variables: dict[str, Value],
    ) -> None:
        self.dialog = dialog
        self.host = host
        self.limits = limits
        self.frames = frames
        self.variables = variables
        self.steps = 0
        self.calls = CallContext(now=now, max_text=limits.max_text)
        self.where = n.Pos(1, 1)

    # ---- errors and limits ----

    def error(self, cause: str, pos: n.Pos | None = None) -> DialogRuntimeError:
        at = pos or self.where
        return DialogRuntimeError(
            cause, filename=self.dialog.filename, line=at.line, column=at.column
        )

    def tick(self, pos: n.Pos) -> None:
        self.where = pos
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise self.error(
                f"step budget of {self.limits.max_steps} used up in one turn (an endless loop?)",
                pos,
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
        except ValueTypeError as exc:
            raise self.error(str(exc), pos) from None
        return value

    def from_host(self, obj: object, pos: n.Pos) -> Value:
        """A host's answer as a BASIC value: JSON only, missing as ``""``, size-checked."""
        try:
            value = to_value(obj)
        except ValueTypeError as exc:
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
                except ValueTypeError as exc:
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
            except ValueTypeError as exc:
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
        if isinstance(expr, n.GetSession):
            key_value = await self.eval(expr.key)
            if isinstance(key_value, str) and _is_url(key_value):
                return self.from_host(await self.host.http_get(key_value.strip()), expr.pos)
            key = self.key(key_value, expr.pos)
            return self.from_host(await self.host.session_get(key), expr.pos)
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
        except ValueTypeError as exc:
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

    # ---- statements ----

    async def execute(self, stmt: n.Stmt, frame: Frame) -> _Signal:
        if isinstance(stmt, n.Talk):
            text = format_value(await self.eval(stmt.expr))
            self.check_boundary(text, stmt.pos)
            if text:
                await self.host.talk(text)
        elif isinstance(stmt, n.Print):
            text = format_value(await self.eval(stmt.expr))
            logger.info(
                "PRINT %s (%s:%d): %s",
                self.host.bot_name,
                self.dialog.filename,
                stmt.pos.line,
                text,
            )
        elif isinstance(stmt, n.Hear):
            return _Suspend(stmt.target)
        elif isinstance(stmt, n.SetMemory):
            await self.set_memory(stmt)
        elif isinstance(stmt, n.GetBotMemoryInto):
            key = self.key(await self.eval(stmt.key), stmt.pos)
            value = self.from_host(await self.host.bot_memory_get(key), stmt.pos)
            self.assign(stmt.target, value, stmt.pos)
        elif isinstance(stmt, n.Assign):
            self.assign(stmt.target, await self.eval(stmt.expr), stmt.pos)
        elif isinstance(stmt, n.AssignLlm):
            prompt = format_value(await self.eval(stmt.prompt))
            self.check_boundary(prompt, stmt.pos)
            answer = self.from_host(await self.host.llm(prompt), stmt.pos)
            self.assign(stmt.target, answer, stmt.pos)
        elif isinstance(stmt, n.Transfer):
            bot = format_value(await self.eval(stmt.bot)).strip()
            if not bot:
                raise self.error("TRANSFER CONVERSATION TO needs a bot name", stmt.pos)
            await self.host.transfer(bot)
            return _Transfer(bot)
        elif isinstance(stmt, n.ExitLoop):
            self.exit_loop(stmt)
        elif isinstance(stmt, n.If):
            await self.enter_if(stmt, frame)
        elif isinstance(stmt, n.ForEach):
            await self.enter_for_each(stmt, frame)
        elif isinstance(stmt, n.ForRange):
            await self.enter_for_range(stmt, frame)
        elif isinstance(stmt, n.While) and truthy(await self.eval(stmt.cond)):
            self.push(frame, stmt, 0)
        return None

    async def set_memory(self, stmt: n.SetMemory) -> None:
        key = self.key(await self.eval(stmt.key), stmt.pos)
        value = self.check_boundary(await self.eval(stmt.value), stmt.pos)
        if stmt.scope == "user":
            await self.host.user_memory_set(key, value)
        elif stmt.scope == "fact":
            await self.host.user_fact_set(key, value)
        elif stmt.scope == "bot":
            await self.host.bot_memory_set(key, value)
        elif stmt.scope == "session":
            await self.host.session_set(key, value)
        else:
            await self.host.context_set(key, value)

    def push(self, frame: Frame, stmt: n.Stmt, child: int, **loop: Any) -> Frame:
        """Enter child block ``child`` of ``stmt``, the statement just before frame.pc."""
        found = child_block(stmt, child)
        assert found is not None
        block, kind = found
        path = (*frame.path, frame.pc - 1, child)
        inner = Frame(path=path, block=block, kind=kind, **loop)
        self.frames.append(inner)
        return inner

    async def enter_if(self, stmt: n.If, frame: Frame) -> None:
        for index, branch in enumerate(stmt.branches):
            if truthy(await self.eval(branch.cond)):
                self.push(frame, stmt, index)
                return
        if stmt.else_body is not None:
            self.push(frame, stmt, len(stmt.branches))

    async def enter_for_each(self, stmt: n.ForEach, frame: Frame) -> None:
        collection = await self.eval(stmt.iterable)
        items: list[Value]
        if is_missing(collection):
            items = []
        elif isinstance(collection, list):
            items = list(collection)
        elif isinstance(collection, dict):
            items = list(collection.keys())
        else:
            raise self.error(
                f"FOR EACH needs a list or a map, not {describe(collection)}", stmt.pos
            )
        if items:
            self.variables[stmt.var] = items[0]
            self.push(frame, stmt, 0, var=stmt.var, items=items, index=0)

    async def enter_for_range(self, stmt: n.ForRange, frame: Frame) -> None:
        bounds = []
        for part in (stmt.start, stmt.end, stmt.step):
            value = 1 if part is None else await self.eval(part)
            if not is_number(value):
                raise self.error(f"FOR needs numbers, not {describe(value)}", stmt.pos)
            bounds.append(value)
        start, end, step = bounds
        assert isinstance(start, int | float) and isinstance(end, int | float)
        assert isinstance(step, int | float)
        if step == 0:
            raise self.error("FOR with STEP 0 would never end", stmt.pos)
        self.variables[stmt.var] = start
        if (step > 0 and start <= end) or (step < 0 and start >= end):
            self.push(frame, stmt, 0, var=stmt.var, end=end, step=step)

    def exit_loop(self, stmt: n.ExitLoop) -> None:
        wanted = ("each", "range") if stmt.kind == "for" else ("while",)
        for depth in range(len(self.frames) - 1, 0, -1):
            if self.frames[depth].kind in wanted:
                del self.frames[depth:]
                return
        raise self.error(f"EXIT {stmt.kind.upper()} outside a {stmt.kind.upper()} loop", stmt.pos)

    async def loop_again(self, frame: Frame) -> bool:
        """At the end of a loop body: move the loop on; False when the loop is over."""
        owner = self.frames[-2].block[frame.path[-2]]
        self.tick(owner.pos)
        if frame.kind == "each":
            frame.index += 1
            if frame.index >= len(frame.items):
                return False
            self.variables[frame.var] = frame.items[frame.index]
            return True
        if frame.kind == "range":
            current = self.variables.get(frame.var)
            if not is_number(current):
                raise self.error(
                    f"FOR variable {frame.var} is no longer a number: {describe(current)}",
                    owner.pos,
                )
            assert isinstance(current, int | float)
            try:
                following = arith("+", current, frame.step)
            except ValueTypeError as exc:
                raise self.error(str(exc), owner.pos) from None
            assert isinstance(following, int | float)
            self.variables[frame.var] = following
            return following <= frame.end if frame.step > 0 else following >= frame.end
        assert isinstance(owner, n.While)
        return truthy(await self.eval(owner.cond))

    # ---- the loop ----

    async def run(self) -> DialogOutcome:
        while self.frames:
            frame = self.frames[-1]
            if frame.pc >= len(frame.block):
                if frame.kind != "block" and await self.loop_again(frame):
                    frame.pc = 0
                else:
                    self.frames.pop()
                continue
            stmt = frame.block[frame.pc]
            frame.pc += 1
            self.tick(stmt.pos)
            signal = await self.execute(stmt, frame)
            if isinstance(signal, _Suspend):
                return self.suspend(signal.target)
            if isinstance(signal, _Transfer):
                logger.debug("%s: transferred to %s", self.dialog.filename, signal.bot)
                return DialogOutcome("transferred", self.steps, transfer_to=signal.bot)
        return DialogOutcome("finished", self.steps)

    def suspend(self, target: n.Target) -> DialogOutcome:
        state = dump_state(self.dialog.source_hash, self.frames, self.variables, target)
        try:
            measure(
                state,
                max_bytes=self.limits.max_state_bytes,
                max_depth=self.limits.max_value_depth + 4,
            )
        except ValueTypeError as exc:
            raise self.error(f"dialog state too large to save at HEAR: {exc}") from None
        logger.debug("%s: waiting at line %d", self.dialog.filename, self.where.line)
        return DialogOutcome("waiting", self.steps, state=state)


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


async def run_dialog(
    dialog: Dialog,
    host: DialogHost,
    state: dict[str, Any] | None = None,
    message: str | None = None,
    *,
    limits: DialogLimits = DEFAULT_LIMITS,
    clock: Clock | None = None,
) -> DialogOutcome:
    """Run ``dialog`` until it finishes, waits at ``HEAR`` or transfers the conversation.

    With ``state=None`` the program starts at the top and ``message`` (the one that opened
    the session) is not taken as an answer. With a state from an earlier waiting outcome,
    ``message`` is the answer to that ``HEAR`` and the run continues after it.

    Raises DialogRuntimeError (file, line, column, cause) when the program fails; the
    caller should roll back the turn's writes. DialogStateError (a subclass) means the state
    does not fit this program: drop it and start over.
    """

    def now() -> float:
        return clock.now().timestamp() if clock is not None else time.time()

    if state is None:
        run = _Run(dialog, host, limits, now, [Frame(path=(), block=dialog.body)], {})
    else:
        saved = load_state(dialog.body, dialog.source_hash, state)
        if message is None:
            raise DialogStateError("a dialog waiting at HEAR needs the person's message")
        run = _Run(dialog, host, limits, now, saved.frames, saved.variables)
        top = saved.frames[-1]
        hear_pos = top.block[top.pc - 1].pos if top.pc > 0 else n.Pos(1, 1)
        run.where = hear_pos
        run.check(message, hear_pos)
        run.check_boundary(message, hear_pos)
        run.assign(saved.hear_target, message, hear_pos)
    try:
        return await run.run()
    except DialogRuntimeError as exc:
        if exc.located:
            raise
        raise run.error(exc.cause) from exc
    except ValueTypeError as exc:
        raise run.error(str(exc)) from None
    except RecursionError:
        raise run.error("value or expression nested too deeply") from None
    except MnemobotError as exc:
        raise run.error(f"{type(exc).__name__}: {exc}") from exc
