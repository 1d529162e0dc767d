"""Several processes doing one thing at the same moment, as workers starting together do."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any, Literal


def at_once(
    target: Callable[..., None],
    args: tuple[Any, ...],
    processes: int,
    *,
    start: Literal["fork", "spawn"],
    within: float = 120.0,
) -> list[Any]:
    """What each of ``processes`` running ``target(*args, gate, results)`` put in ``results``.

    ``gate`` is a barrier the processes pass together once each is ready, so the work after
    it overlaps however long each took to start. ``start``: "spawn" for a process of its own
    (Alembic's context is process-global), "fork" where starting fast matters.
    """
    context = multiprocessing.get_context(start)
    gate, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=target, args=(*args, gate, results)) for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        return [results.get(timeout=within) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=30)
