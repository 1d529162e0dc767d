"""A model in-process: the :class:`LLM` protocol answered by a function, for benches and demos.

The runtime is exercised end to end without a provider: a bench replays a recorded
conversation by answering each turn with the recorded reply, and a summary request with the
recorded summary. Tokens are counted with the tokenizer of a real model (``tokenizer``,
through litellm, when given) so that what a bench reports about prompt size is what a
provider would bill.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mnemobot.runtime.llm.client import estimate_tokens

__all__ = ["ModelRequest", "ScriptedLLM"]


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One call as the model would see it."""

    messages: list[dict[str, str]]
    model: str
    bot: str
    user_id: str | None
    purpose: str  # "answer", "episode", "facts"


class ScriptedLLM:
    """Answers with ``answer(request)``; keeps the requests it was sent, newest last.

    Args:
        answer: the text to answer a request with.
        tokenizer: a litellm model name whose tokenizer counts tokens; None: an estimate.
        delay: seconds each answer takes, waited without using the CPU.
    """

    def __init__(
        self,
        answer: Callable[[ModelRequest], str],
        *,
        tokenizer: str | None = None,
        delay: float = 0.0,
    ) -> None:
        self.answer = answer
        self.tokenizer = tokenizer
        self.delay = delay
        self.requests: list[ModelRequest] = []
        self._counter: Any = None

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        model: str = "default",
        bot: str = "",
        user_id: str | None = None,
        purpose: str = "answer",
    ) -> str:
        request = ModelRequest(messages, model, bot, user_id, purpose)
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.answer(request)

    def count_tokens(self, text: str, *, model: str = "default") -> int:
        if self.tokenizer is None:
            return estimate_tokens(text)
        if self._counter is None:
            import litellm  # seconds to import: only when tokens are counted for real

            self._counter = litellm.token_counter
        return int(self._counter(model=self.tokenizer, text=text))
