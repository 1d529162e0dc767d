"""A fake OpenAI-compatible chat server, for litellm to call over real HTTP on 127.0.0.1.

Tests queue answers (or a rule that computes one from the messages) and then read back every
request, so they can assert what the model was shown. It also serves ``/v1/embeddings``:
deterministic vectors, a hashed bag of words in which the words of one ``synonyms`` group
share a dimension, so a test can arrange a query that shares no word with a line yet means
the same to the model.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mnemobot.runtime.settings import Settings, load_settings
from tests.fakes import FakeHTTPServer, RecordedRequest, Reply

__all__ = ["FakeOpenAI"]

Rule = Callable[[list[dict[str, Any]]], str]


class FakeOpenAI(FakeHTTPServer):
    """``POST /v1/chat/completions``; answers from a queue, else from ``rule``, else "ok"."""

    def __init__(
        self,
        rule: Rule | None = None,
        *,
        synonyms: list[set[str]] | None = None,
        dims: int = 512,
    ) -> None:
        super().__init__()
        self.rule = rule
        self._answers: deque[str | Reply] = deque()
        self._ids = itertools.count(1)
        self.dims = dims
        self.synonyms = {w: min(group) for group in synonyms or [] for w in group}
        self.embeddings_down = False  # True: every embeddings request answers 503

    def vector(self, text: str) -> list[float]:
        """The (unnormalised) vector served for ``text``: word counts in hashed dimensions."""
        vector = [0.0] * self.dims
        for word in re.findall(r"\w+", text.lower()):
            word = self.synonyms.get(word, word)
            digest = hashlib.sha256(word.encode()).digest()
            vector[int.from_bytes(digest[:4], "big") % self.dims] += 1.0
        return vector

    def embedded(self) -> list[list[str]]:
        """The inputs of every embeddings request, in order."""
        return [list(r.params["input"]) for r in self.requests("embeddings")]

    @property
    def api_base(self) -> str:
        return f"{self.url}/v1"

    def settings(
        self,
        database: dict[str, Any],
        bots_dir: Path,
        *,
        embedding: str | None = "embedder",
        **sections: Any,
    ) -> Settings:
        """A deployment's settings whose chat model is served here (its key from FAKE_KEY).

        ``embedding``: "embedder", an ``[llm]`` alias for this server's embeddings; another
        value is ``[memory] embedding`` as it is ("local"); None leaves embeddings off.
        """
        llm: dict[str, Any] = {
            "default": "openai/chat",
            "api_base": self.api_base,
            "api_key_env": "FAKE_KEY",
            "retries": 0,
        }
        memory: dict[str, Any] = {}
        if embedding == "embedder":
            llm["embedder"] = {"model": "openai/fake-embed", "api_base": self.api_base}
        if embedding is not None:
            memory["embedding"] = embedding
        return load_settings(
            None, database=database, bots={"dir": str(bots_dir)}, llm=llm, memory=memory,
            **sections,
        )  # fmt: skip

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
        if path.rstrip("/").endswith("/embeddings"):
            return "embeddings", headers.get("authorization")
        return "", None

    def _embeddings(self, request: RecordedRequest) -> Reply:
        if self.embeddings_down:
            return Reply(503, {"error": {"message": "fake embeddings are down"}})
        texts = request.params.get("input", [])
        texts = [texts] if isinstance(texts, str) else texts
        return Reply(
            200,
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": self.vector(t)}
                    for i, t in enumerate(texts)
                ],
                "model": request.params.get("model", "fake-embed"),
                "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
            },
        )

    def handle(self, request: RecordedRequest) -> Reply:
        if request.api_method == "embeddings":
            return self._embeddings(request)
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
