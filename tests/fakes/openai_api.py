"""A fake OpenAI-compatible chat server, for litellm to call over real HTTP on 127.0.0.1.

Tests queue answers (or a rule that computes one from the messages) and then read back every
request, so they can assert what the model was shown.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from tests.fakes import FakeHTTPServer, RecordedRequest, Reply

__all__ = ["FakeOpenAI"]

Rule = Callable[[list[dict[str, Any]]], str]


class FakeOpenAI(FakeHTTPServer):
    """``POST /v1/chat/completions``; answers from a queue, else from ``rule``, else "ok"."""

    def __init__(self, rule: Rule | None = None) -> None:
        super().__init__()
        self.rule = rule
        self._answers: deque[str | Reply] = deque()
        self._ids = itertools.count(1)

    @property
    def api_base(self) -> str:
        return f"{self.url}/v1"

    def answer(self, *texts: str) -> None:
        """The next answers, in order."""
        self._answers.extend(texts)

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        for _ in range(times):
            self._answers.append(Reply(status, {"error": {"message": "fake failure"}}))

    def chats(self) -> list[list[dict[str, Any]]]:
        """The messages of every chat completion request, in order."""
        return [r.params["messages"] for r in self.requests("chat.completions")]

    def route(
        self, path: str, headers: dict[str, str], params: dict[str, Any]
    ) -> tuple[str, str | None]:
        if path.rstrip("/").endswith("/chat/completions"):
            return "chat.completions", headers.get("authorization")
        return "", None

    def handle(self, request: RecordedRequest) -> Reply:
        if request.api_method != "chat.completions":
            return Reply(404, {"error": {"message": f"no route {request.path}"}})
        queued = self._answers.popleft() if self._answers else None
        if isinstance(queued, Reply):
            return queued
        messages = request.params.get("messages", [])
        text = queued if queued is not None else (self.rule(messages) if self.rule else "ok")
        return Reply(
            200,
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "created": 0,
                "model": request.params.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            },
        )
