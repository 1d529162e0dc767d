"""The language model behind every bot, through litellm, imported only when first needed.

``import litellm`` costs seconds and, without ``LITELLM_LOCAL_MODEL_COST_MAP``, reaches for
the network; neither may happen at CLI start-up or for a bot that never asks a model
anything. A bot's ``model`` option names an alias from ``[llm]`` (``default``, ``fast``, or
any other key there) or is itself a litellm model string.

Rate limits, timeouts and server errors are retried with exponential backoff; when the
alias keeps failing, ``[llm] fallback`` names an alias to try once. A failure that waiting
cannot mend (nothing listens at the address, the host does not resolve, the key is not
set) is not retried. Every failure is said in one line naming the model, where it was
asked and why (``model openai/gpt-4o-mini at http://127.0.0.1:9/v1: connection refused``);
the SDK's traceback is kept for debug logging. Every call's tokens, cost and latency are
recorded per bot and person (``llm_usage``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mnemobot.runtime.errors import LLMError
from mnemobot.runtime.llm.tokens import CHUNK_CHARS, EncodingCount
from mnemobot.runtime.settings import LLMSettings

__all__ = [
    "LLM",
    "NO_MODEL_HELP",
    "LiteLLM",
    "ModelRoute",
    "Usage",
    "failure_cause",
    "load_litellm",
    "missing_keys",
]

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

    def describe(self) -> str:
        """``model openai/gpt-4o-mini at http://127.0.0.1:9/v1``: how failures name it."""
        where = f" at {self.api_base}" if self.api_base else ""
        return f"model {self.model}{where}"


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


def load_litellm() -> Any:
    """litellm, imported on first use (seconds of CPU) and set up once: offline cost map, no
    telemetry, no debug banners. Every caller of litellm (chat models, embeddings) gets it
    here."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm


def missing_keys(litellm: Any, route: ModelRoute) -> list[str]:
    """The environment variables ``route`` needs that are empty.

    ``api_key_env`` when the route names one; else what ``litellm`` says the provider
    reads (an ``*_API_BASE`` is not counted: ``api_base`` in ``[llm]`` stands for it).
    """
    if route.api_key_env:
        return [] if os.environ.get(route.api_key_env) else [route.api_key_env]
    try:
        found = litellm.validate_environment(model=route.model)
    except Exception:
        return []
    names = found.get("missing_keys") or [] if isinstance(found, dict) else []
    return [str(name) for name in names if not str(name).endswith("_BASE")]


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
        self._encodings: dict[str, EncodingCount | None] = {}  # model -> its encoding's count

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
            self._litellm = load_litellm()
        return self._litellm

    def warm_up(self) -> None:
        """Import litellm and count tokens once, before a server takes requests.

        The import costs seconds of CPU; done lazily by the first turn, it would stall the
        event loop, and every webhook waiting on it, for that long (Slack wants its ack
        within 3 s). ``mnemobot run`` calls this before it listens; other commands stay fast.
        """
        self._module()
        self.count_tokens("warm up")
        for warning in self.key_warnings():
            logger.warning("%s", warning)

    def key_warnings(self) -> list[str]:
        """One line per configured alias whose provider key variable is empty."""
        s = self.settings
        aliases = ["default", *(["fast"] if s.fast else []), *(s.model_extra or {})]
        warnings: list[str] = []
        for alias in aliases:
            route = self.resolve(alias)
            missing = self.missing_keys(route) if route is not None else []
            if missing:
                warnings.append(
                    f"[llm] {alias}: {route.describe() if route else alias} needs "
                    f"{' and '.join(missing)}, which is not set; its calls will fail"
                )
        return warnings

    def missing_keys(self, route: ModelRoute) -> list[str]:
        """The environment variables ``route`` needs that are empty (imports litellm)."""
        return missing_keys(self._module(), route)

    # -- tokens --------------------------------------------------------------------------

    def count_tokens(self, text: str, *, model: str = "default") -> int:
        """Tokens in ``text`` for the alias's model (an estimate when no model is set)."""
        route = self.resolve(model)
        if route is None:
            return estimate_tokens(text)
        try:
            counted = self._encoding(route.model)
            if counted is not None:
                return counted(text)
            if len(text) <= CHUNK_CHARS:
                return len(self._module().encode(model=route.model, text=text))
            return int(self._module().token_counter(model=route.model, text=text))
        except Exception:
            return estimate_tokens(text)

    def _encoding(self, model: str) -> EncodingCount | None:
        """The count by the tiktoken encoding token_counter counts ``model``'s text with, named
        as its provider names it (:mod:`llm.tokens`); None when litellm counts it with another
        tokenizer (a HuggingFace one, through ``encode`` or token_counter each time).

        token_counter encodes with ``disallowed_special=()``, which counts a special token's
        text as ordinary text: ``encode_ordinary`` does the same.
        """
        if model not in self._encodings:
            litellm = self._module()
            chosen = litellm.utils.select_tokenizer(model=model)
            openai = chosen["type"] == "openai_tokenizer"
            encoding = _provider_encoding(litellm, model) if openai else None
            self._encodings[model] = None if encoding is None else EncodingCount(encoding)
        return self._encodings[model]

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
                    tries = f" ({attempts} tries)" if attempts > 1 else ""
                    raise LLMError(f"{route.describe()}: {exc}{tries}") from exc.__cause__
                delay = min(self.settings.backoff * 2**attempt, 30.0)
                logger.info("%s: %s; retrying in %.1fs", route.describe(), exc, delay)
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
            if not kwargs["api_key"]:
                raise LLMError(f"{route.describe()}: {route.api_key_env} is not set")
        started = time.perf_counter()
        try:
            response = await litellm.acompletion(model=route.model, messages=messages, **kwargs)
        except Exception as exc:
            await self._record(route, bot, user_id, purpose, None, started, ok=False)
            logger.debug("%s failed", route.describe(), exc_info=exc)
            cause, lasting = failure_cause(litellm, exc, route)
            name = type(exc).__name__
            retryable = name in _RETRYABLE or isinstance(exc, (TimeoutError, ConnectionError))
            if retryable and not lasting:
                raise _Retryable(cause) from exc
            raise LLMError(f"{route.describe()}: {cause}") from exc
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


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything it was raised from or while handling, outermost first."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in found):
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _status(exc: BaseException) -> int | None:
    """The HTTP status a model server answered with; None when no server answered.

    litellm wraps every failure in an exception with a status (500 when nothing answered),
    so only the SDK's and httpx's own exceptions are believed.
    """
    for link in reversed(_chain(exc)):
        if type(link).__module__.startswith("litellm"):
            continue
        try:
            code = getattr(link, "status_code", None)
            if not isinstance(code, int):
                code = getattr(getattr(link, "response", None), "status_code", None)
        except Exception:  # httpx raises from some of these properties when unset
            code = None
        if isinstance(code, int):
            return code
    return None


def failure_cause(litellm: Any, exc: BaseException, route: ModelRoute) -> tuple[str, bool]:
    """Why a call to ``route`` failed, in a few words, and whether trying again soon cannot
    help: chat and embedding calls alike. A key that is not set is named: litellm then
    stops before asking anyone, and says only "500"."""
    cause, lasting = _cause_of(exc, route)
    if not lasting and not route.api_key_env and not _status(exc):
        missing = missing_keys(litellm, route)
        if missing:
            return f"{' and '.join(missing)} is not set", True
    return cause, lasting


def _cause_of(exc: BaseException, route: ModelRoute) -> tuple[str, bool]:
    """Why a call failed, in a few words, and whether trying again soon cannot help."""
    chain = _chain(exc)
    for link in chain:
        if isinstance(link, ConnectionRefusedError):
            return "connection refused (is the model server running?)", True
        if isinstance(link, socket.gaierror):
            return "cannot resolve the host name", True
    for link in chain:
        if isinstance(link, TimeoutError) or "Timeout" in type(link).__name__:
            return f"no answer within {route.timeout:g} s", False
    status = _status(exc)
    if status in (401, 403):
        return f"the API key was refused (HTTP {status})", True
    if status == 404:
        return "the server does not know this model (HTTP 404)", True
    text = _server_message(exc) or (
        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    )
    text = text.split(" - ", 1)[-1] if "Exception - " in text else text
    text = text[:200]
    return (f"HTTP {status}: {text}" if status else text), False


def _server_message(exc: BaseException) -> str | None:
    """The message in an OpenAI-style error body (``{"error": {"message": ...}}``), which
    the SDK's own text wraps in "Error code: 503 - {...}"."""
    for link in _chain(exc):
        body = getattr(link, "body", None)
        error = body.get("error", body) if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        if isinstance(message, str) and message.strip():
            return message.strip().splitlines()[0]
    return None


def _provider_encoding(litellm: Any, model: str) -> Any:
    """The tiktoken encoding of ``model`` without its provider prefix ("openai/gpt-4o-mini":
    gpt-4o-mini's, o200k_base), as token_counter chooses it for that name."""
    from litellm.litellm_core_utils.token_counter import openai_tokenizer_encoding

    try:
        named = litellm.get_llm_provider(model)[0]
    except Exception:  # a name litellm cannot place: counted as token_counter counts it
        named = model
    return openai_tokenizer_encoding(named)


def estimate_tokens(text: str) -> int:
    """About four characters a token: the estimate when no tokenizer is at hand."""
    return max(1, (len(text) + 3) // 4)
