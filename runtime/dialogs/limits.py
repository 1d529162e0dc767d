"""The bounds on one dialog run, chosen by the caller (a bot's ``dialog_step_budget``).

A module of their own because both halves of a run enforce them: the evaluator
(:mod:`runtime.dialogs.evaluator`) caps every value it builds or exchanges with the host,
and the interpreter (:mod:`runtime.dialogs.interpreter`) counts steps and caps the state
saved at ``HEAR``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "DialogLimits"]


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
