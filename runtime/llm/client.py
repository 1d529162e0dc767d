"""The language model behind every bot, through litellm, imported only when first needed.

``import litellm`` costs seconds and, without ``LITELLM_LOCAL_MODEL_COST_MAP``, reaches for
the network; neither may happen at CLI start-up or for a bot that never asks a model
anything. A bot's ``model`` option names an alias from ``[llm]`` (``default``, ``fast``, or
any other key there) or is itself a litellm model string.

Rate limits, timeouts and server errors are retried with exponential backoff; when the
alias keeps failing, ``[llm] fallback`` names an alias to try once. Every call's tokens,
cost and latency are recorded per bot and person (``llm_usage``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mnemobot.runtime.errors import LLMError
from mnemobot.runtime.settings import LLMSettings

__all__ = ["LLM", "NO_MODEL_HELP", "LiteLLM", "ModelRoute", "Usage"]

logger = logging.getLogger(__name__)

NO_MODEL_HELP = (
    "I can only follow my scripted dialog: no language model is configured. "
    "Set [llm] default in config/mnemobot.toml (or MNEMOBOT_LLM__DEFAULT) to a litellm "
    "model such as openai/gpt-4o-mini."
)

_RETRYABLE = (
    "RateLimitError",
    "Timeout",
    "APIConnectionError",
    "ServiceUnavailableError",
    "InternalServerError",
    "BadGatewayError",
    "APIError",
)


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """Where an alias goes: a litellm model string and how to reach it."""

    alias: str
    model: str
    api_base: str | None = None
    api_key_env: str | None = None
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class Usage:
    """One model call, as recorded."""

    bot: str
    user_id: str | None
    purpose: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    latency_ms: int
    ok: bool


class LLM(Protocol):
    """Anything that turns chat messages into an answer.

    Raises LLMError when no answer can be had (not configured, down after retries).
    """

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        model: str = "default",
        bot: str = "",
        user_id: str | None = None,
        purpose: str = "answer",
    ) -> str: ...

    def count_tokens(self, text: str, *, model: str = "default") -> int: ...


class LiteLLM:
    """The real model client, configured from ``[llm]``.

    Args:
        settings: the ``[llm]`` section.
        on_usage: called after every call (the runtime stores it in ``llm_usage``).
        sleep: how to wait between retries (tests pass a fast one).
    """

    def __init__(
        self,
        settings: LLMSettings,
        *,
        on_usage: Callable[[Usage], Awaitable[None]] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.on_usage = on_usage
        self._sleep = sleep
        self._litellm: Any = None

    # -- configuration -------------------------------------------------------------------

    def resolve(self, alias: str) -> ModelRoute | None:
        """The route for an alias (or a litellm model string); None if it names nothing set."""
        s = self.settings
        extra = dict(s.model_extra or {})
        entries: dict[str, Any] = {"default": s.default, "fast": s.fast or s.default, **extra}
        entry = entries.get(alias, alias if alias not in ("default", "fast") else None)
        if not entry:
            return None
        if isinstance(entry, dict):
            model = entry.get("model")
            if not isinstance(model, str) or not model:
                return None
            return ModelRoute(
                alias,
                model,
                entry.get("api_base", s.api_base),
                entry.get("api_key_env", s.api_key_env),
                float(entry.get("timeout", s.timeout)),
            )
        return ModelRoute(alias, str(entry), s.api_base, s.api_key_env, s.timeout)

    def _module(self) -> Any:
        if self._litellm is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm

            litellm.telemetry = False
            litellm.suppress_debug_info = True
            self._litellm = litellm
        return self._litellm

    def warm_up(self) -> None:
        """Import litellm and count tokens once, before a server takes requests.

        The import costs seconds of CPU; done lazily by the first turn, it would stall the
        event loop, and every webhook waiting on it, for that long (Slack wants its ack
        within 3 s). ``mnemobot run`` calls this before it listens; other commands stay fast.
        """
        self._module()
        self.count_tokens("warm up")

    # -- tokens --------------------------------------------------------------------------

    def count_tokens(self, text: str, *, model: str = "default") -> int:
        """Tokens in ``text`` for the alias's model (an estimate when no model is set)."""
        route = self.resolve(model)
        if route is None:
            return estimate_tokens(text)
        try:
            return int(self._module().token_counter(model=route.model, text=text))
        except Exception:
            return estimate_tokens(text)

    # -- calls ---------------------------------------------------------------------------

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        model: str = "default",
        bot: str = "",
        user_id: str | None = None,
        purpose: str = "answer",
    ) -> str:
        route = self.resolve(model)
        if route is None:
            raise LLMError(NO_MODEL_HELP)
        try:
            return await self._with_retries(route, messages, bot, user_id, purpose)
        except LLMError:
            fallback = self.settings.fallback
            backup = self.resolve(fallback) if fallback and fallback != route.alias else None
            if backup is None or backup.model == route.model:
                raise
            logger.warning("model %s failed; falling back to %s", route.alias, backup.alias)
            return await self._with_retries(backup, messages, bot, user_id, purpose)

    async def _with_retries(
        self,
        route: ModelRoute,
        messages: list[dict[str, str]],
        bot: str,
        user_id: str | None,
        purpose: str,
    ) -> str:
        attempts = self.settings.retries + 1
        for attempt in range(attempts):
            try:
                return await self._call(route, messages, bot, user_id, purpose)
            except _Retryable as exc:
                if attempt + 1 >= attempts:
                    raise LLMError(
                        f"the model {route.model!r} did not answer after {attempts} tries: {exc}"
                    ) from exc.__cause__
                delay = min(self.settings.backoff * 2**attempt, 30.0)
                logger.info("model %s: %s; retrying in %.1fs", route.model, exc, delay)
                await self._sleep(delay)
        raise AssertionError("unreachable")

    async def _call(
        self,
        route: ModelRoute,
        messages: list[dict[str, str]],
        bot: str,
        user_id: str | None,
        purpose: str,
    ) -> str:
        litellm = self._module()
        kwargs: dict[str, Any] = {"timeout": route.timeout, "num_retries": 0}
        if route.api_base:
            kwargs["api_base"] = route.api_base
        if route.api_key_env:
            kwargs["api_key"] = os.environ.get(route.api_key_env, "")
        started = time.perf_counter()
        try:
            response = await litellm.acompletion(model=route.model, messages=messages, **kwargs)
        except Exception as exc:
            await self._record(route, bot, user_id, purpose, None, started, ok=False)
            name = type(exc).__name__
            if name in _RETRYABLE or isinstance(exc, (TimeoutError, ConnectionError)):
                raise _Retryable(f"{name}") from exc
            raise LLMError(f"the model {route.model!r} refused the request: {name}") from exc
        await self._record(route, bot, user_id, purpose, response, started, ok=True)
        content = response.choices[0].message.content
        return str(content or "").strip()

    async def _record(
        self,
        route: ModelRoute,
        bot: str,
        user_id: str | None,
        purpose: str,
        response: Any,
        started: float,
        *,
        ok: bool,
    ) -> None:
        if self.on_usage is None:
            return
        usage = getattr(response, "usage", None)
        cost = 0.0
        if response is not None:
            try:
                cost = float(self._module().completion_cost(completion_response=response) or 0)
            except Exception:
                cost = 0.0  # unknown model price: tokens are still recorded
        try:
            await self.on_usage(
                Usage(
                    bot=bot,
                    user_id=user_id,
                    purpose=purpose,
                    model=route.model,
                    prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                    completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                    cost=cost,
                    latency_ms=int((time.perf_counter() - started) * 1000),
                    ok=ok,
                )
            )
        except Exception:
            logger.exception("could not record LLM usage")


class _Retryable(Exception):
    """A failure worth another try (rate limit, timeout, server error)."""


def estimate_tokens(text: str) -> int:
    """About four characters a token: the estimate when no tokenizer is at hand."""
    return max(1, (len(text) + 3) // 4)
