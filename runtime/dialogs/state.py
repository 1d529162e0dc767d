"""Where a dialog is, as data: a stack of frames, each a path into the program's blocks.

A dialog suspended at ``HEAR`` is saved in the session and may resume in another process, so
its position cannot live in Python frames. A frame names its block by a path of indices
(statement index, child block index, and again for each nesting level), keeps the index of
the next statement, and for a loop the loop's own progress. Everything is JSON.

A state is only valid for the exact program that produced it (``program`` is the source
hash); anything else is refused with DialogStateError, and the caller starts over.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

from mnemobot.runtime.dialogs import nodes as n
from mnemobot.runtime.dialogs.errors import DialogStateError
from mnemobot.runtime.dialogs.values import DialogValueError, Value, is_number, to_value

__all__ = [
    "STATE_VERSION",
    "Frame",
    "FrameKind",
    "SavedState",
    "child_block",
    "dump_state",
    "load_state",
]

STATE_VERSION = 1

FrameKind = Literal["block", "each", "range", "while"]


@dataclass(slots=True)
class Frame:
    """One level of the execution stack: a block being run and, for loops, the progress."""

    path: tuple[int, ...]
    block: n.Block
    pc: int = 0
    kind: FrameKind = "block"
    var: str = ""  # loop variable (each, range)
    items: list[Value] = field(default_factory=list)  # each: the list being walked
    index: int = 0  # each: position in items
    end: int | float = 0  # range: last value
    step: int | float = 1  # range: increment

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": list(self.path), "pc": self.pc, "kind": self.kind}
        if self.kind == "each":
            data.update(var=self.var, items=self.items, index=self.index)
        elif self.kind == "range":
            data.update(var=self.var, end=self.end, step=self.step)
        return data


@dataclass(slots=True)
class SavedState:
    """A state read back from JSON and checked against the program."""

    frames: list[Frame]
    variables: dict[str, Value]
    hear_target: n.Target


def child_block(stmt: n.Stmt, index: int) -> tuple[n.Block, FrameKind] | None:
    """Child block ``index`` of a compound statement, and the frame kind that runs it."""
    if isinstance(stmt, n.If):
        if index < len(stmt.branches):
            return stmt.branches[index].body, "block"
        if index == len(stmt.branches) and stmt.else_body is not None:
            return stmt.else_body, "block"
        return None
    if index != 0:
        return None
    if isinstance(stmt, n.ForEach):
        return stmt.body, "each"
    if isinstance(stmt, n.ForRange):
        return stmt.body, "range"
    if isinstance(stmt, n.While):
        return stmt.body, "while"
    return None


def _resolve(body: n.Block, path: list[Any]) -> tuple[n.Block, FrameKind]:
    if len(path) % 2:
        raise DialogStateError("saved state: a frame path has an odd length")
    block, kind = body, "block"
    for at in range(0, len(path), 2):
        stmt_index, child_index = path[at], path[at + 1]
        if not (isinstance(stmt_index, int) and isinstance(child_index, int)):
            raise DialogStateError("saved state: a frame path is not made of integers")
        if not 0 <= stmt_index < len(block):
            raise DialogStateError("saved state: a frame path points outside the program")
        found = child_block(block[stmt_index], child_index)
        if found is None:
            raise DialogStateError("saved state: a frame path points at no block")
        block, kind = found
    return block, kind  # type: ignore[return-value]


def _number(value: Any, what: str) -> int | float:
    if not is_number(value):
        raise DialogStateError(f"saved state: {what} is not a number")
    return value  # type: ignore[no-any-return]


def _frame(body: n.Block, data: Any) -> Frame:
    if not isinstance(data, dict):
        raise DialogStateError("saved state: a frame is not an object")
    path = data.get("path")
    if not isinstance(path, list):
        raise DialogStateError("saved state: a frame has no path")
    block, kind = _resolve(body, path)
    if data.get("kind") != kind:
        raise DialogStateError("saved state: a frame's kind does not match the program")
    pc = data.get("pc")
    if not isinstance(pc, int) or isinstance(pc, bool) or not 0 <= pc <= len(block):
        raise DialogStateError("saved state: a frame's position is out of range")
    frame = Frame(path=tuple(path), block=block, pc=pc, kind=kind)
    if kind in ("each", "range"):
        var = data.get("var")
        if not isinstance(var, str):
            raise DialogStateError("saved state: a loop frame has no variable")
        frame.var = var
    if kind == "each":
        items, index = data.get("items"), data.get("index")
        if not isinstance(items, list) or not isinstance(index, int):
            raise DialogStateError("saved state: a FOR EACH frame is incomplete")
        frame.items, frame.index = items, index
    elif kind == "range":
        frame.end = _number(data.get("end"), "a FOR end")
        frame.step = _number(data.get("step"), "a FOR step")
    return frame


def load_state(body: n.Block, program_hash: str, data: Any) -> SavedState:
    """Check a saved state against the program and rebuild its frames."""
    if not isinstance(data, dict):
        raise DialogStateError("saved state is not an object")
    if data.get("version") != STATE_VERSION:
        raise DialogStateError(f"saved state has version {data.get('version')!r}, not 1")
    if data.get("program") != program_hash:
        raise DialogStateError("the dialog changed since this state was saved")
    raw_frames = data.get("frames")
    if not isinstance(raw_frames, list) or not raw_frames:
        raise DialogStateError("saved state has no frames")
    frames = [_frame(body, item) for item in raw_frames]
    if frames[0].path:
        raise DialogStateError("saved state: the first frame is not the program's top level")
    for outer, inner in itertools.pairwise(frames):
        if inner.path[: len(outer.path)] != outer.path or len(inner.path) != len(outer.path) + 2:
            raise DialogStateError("saved state: frames are not nested")
        if inner.path[-2] != outer.pc - 1:
            raise DialogStateError("saved state: a frame is not inside its parent's statement")
    raw_vars = data.get("vars")
    if not isinstance(raw_vars, dict):
        raise DialogStateError("saved state has no variables")
    try:
        variables = {str(key): to_value(value) for key, value in raw_vars.items()}
        for frame in frames:
            frame.items = [to_value(item) for item in frame.items]
    except DialogValueError as exc:
        raise DialogStateError(f"saved state: {exc}") from None
    target = data.get("hear")
    if (
        not isinstance(target, list)
        or not target
        or not all(isinstance(part, str) and part for part in target)
    ):
        raise DialogStateError("saved state is not waiting at a HEAR")
    return SavedState(frames=frames, variables=variables, hear_target=tuple(target))


def dump_state(
    program_hash: str, frames: list[Frame], variables: dict[str, Value], target: n.Target
) -> dict[str, Any]:
    """The JSON form of a suspended run, for the caller to store."""
    return {
        "version": STATE_VERSION,
        "program": program_hash,
        "frames": [frame.to_json() for frame in frames],
        "vars": dict(variables),
        "hear": list(target),
    }
