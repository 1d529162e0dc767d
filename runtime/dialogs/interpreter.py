"""Run a parsed dialog for one message: from the top, or from where ``HEAR`` left it.

The run is a loop over an explicit frame stack (``state.Frame``), never Python recursion over
statements, so at ``HEAR`` everything there is to know is in ``frames`` and ``variables`` and
goes back to the caller as JSON.

Safety: a step budget per run (statements and loop iterations) ends runaway loops; text,
lists, maps and every value crossing to the host or into the saved state are size-capped.
Every error names the file, line and column.

Expressions, variables and the size checks on values live in :mod:`runtime.dialogs.evaluator`
(the base of a run), the limits themselves in :mod:`runtime.dialogs.limits`, and the JSON
form of a waiting run in :mod:`runtime.dialogs.state`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.dialogs import nodes as n
from mnemobot.runtime.dialogs.errors import DialogRuntimeError, DialogStateError
from mnemobot.runtime.dialogs.evaluator import Evaluator
from mnemobot.runtime.dialogs.host import DialogHost
from mnemobot.runtime.dialogs.limits import DEFAULT_LIMITS, DialogLimits
from mnemobot.runtime.dialogs.parser import Dialog
from mnemobot.runtime.dialogs.state import Frame, child_block, dump_state, load_state
from mnemobot.runtime.dialogs.values import (
    DialogValueError,
    Value,
    arith,
    describe,
    format_value,
    is_missing,
    is_number,
    measure,
    to_number,
    truthy,
)
from mnemobot.runtime.errors import MnemobotError

__all__ = ["DialogOutcome", "DialogStatus", "run_dialog"]

logger = logging.getLogger(__name__)

DialogStatus = Literal["finished", "waiting", "transferred"]

RECALL_LIMIT = 5  # results of ``RECALL "query"`` without a limit
MAX_RECALL_LIMIT = 50


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


class _Run(Evaluator):
    """One run of one dialog; discarded when the run returns.

    The statements and the frame stack are here; expressions, variables and the value checks
    come from :class:`Evaluator`.
    """

    def __init__(
        self,
        dialog: Dialog,
        host: DialogHost,
        limits: DialogLimits,
        now: Callable[[], float],
        frames: list[Frame],
        variables: dict[str, Value],
    ) -> None:
        super().__init__(dialog, host, limits, now, variables)
        self.frames = frames
        self.steps = 0

    # ---- the step budget ----

    def tick(self, pos: n.Pos) -> None:
        self.where = pos
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise self.error(
                f"step budget of {self.limits.max_steps} used up in one turn (an endless loop?)",
                pos,
            )

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
        elif isinstance(stmt, n.AssignRecall):
            query = format_value(await self.eval(stmt.query))
            self.check_boundary(query, stmt.pos)
            given = RECALL_LIMIT if stmt.limit is None else await self.eval(stmt.limit)
            limit = to_number(given)
            if limit is None or not 1 <= limit <= MAX_RECALL_LIMIT:
                raise self.error(
                    f"RECALL's limit must be a number from 1 to {MAX_RECALL_LIMIT}, "
                    f"got {describe(given)}",
                    stmt.pos,
                )
            found = await self.host.recall(query, int(limit))
            self.assign(stmt.target, self.from_host(found, stmt.pos), stmt.pos)
        elif isinstance(stmt, n.Transfer):
            bot = format_value(await self.eval(stmt.bot)).strip()
            if not bot:
                raise self.error("TRANSFER CONVERSATION TO needs a bot name", stmt.pos)
            await self.host.transfer(bot)
            return _Transfer(bot)
        elif isinstance(stmt, n.SummarizeSession):
            await self.host.summarize_session()
        elif isinstance(stmt, n.AddUserMemory):
            note = self.check_boundary(await self.eval(stmt.text), stmt.pos)
            topics = None
            if stmt.topics is not None:
                topics = self.check_boundary(await self.eval(stmt.topics), stmt.pos)
            await self.host.user_memory_add(note, topics)
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
        elif stmt.scope == "temp":
            await self.host.temp_set(key, value)
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
            except DialogValueError as exc:
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
        except DialogValueError as exc:
            raise self.error(f"dialog state too large to save at HEAR: {exc}") from None
        logger.debug("%s: waiting at line %d", self.dialog.filename, self.where.line)
        return DialogOutcome("waiting", self.steps, state=state)


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
    except DialogValueError as exc:
        raise run.error(str(exc)) from None
    except DialogRuntimeError as exc:
        if exc.located:
            raise
        raise run.error(exc.cause) from exc
    except RecursionError:
        raise run.error("value or expression nested too deeply") from None
    except MnemobotError as exc:
        raise run.error(f"{type(exc).__name__}: {exc}") from exc
