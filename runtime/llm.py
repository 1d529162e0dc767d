"""The language model behind every bot, through litellm, imported only when first needed.

``import litellm`` costs about three seconds and, without ``LITELLM_LOCAL_MODEL_COST_MAP``,
reaches for the network; neither may happen at CLI start-up or for a bot that never asks a
model anything. A bot's ``model`` option names an alias from ``[llm]`` (``default``,
``fast``, or any other key there) or a litellm model string.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Protocol

from runtime.errors import LLMError
from runtime.settings import LLMSettings

__all__ = ["LLM", "NO_MODEL_HELP", "LiteLLM"]

logger = logging.getLogger(__name__)

NO_MODEL_HELP = (
    "I can only follow my scripted dialog: no language model is configured. "
    "Set [llm] default in config/mnemobot.toml (or MNEMOBOT_LLM__DEFAULT) to a litellm "
    "model such as openai/gpt-4o-mini."
)


class LLM(Protocol):
    """Anything that turns chat messages into an answer."""

    async def complete(self, messages: list[dict[str, str]], *, model: str = "default") -> str: ...


class LiteLLM:
    """The real model client, configured from ``[llm]``."""

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self._litellm: Any = None

    def resolve(self, model: str) -> str | None:
        """The litellm model string for an alias (or the string itself), None if unset."""
        aliases = {"default": self.settings.default, "fast": self.settings.fast}
        aliases.update(
            {k: v for k, v in (self.settings.model_extra or {}).items() if isinstance(v, str)}
        )
        if model in aliases:
            return aliases[model] or (self.settings.default if model == "fast" else None)
        return model or None

    def _module(self) -> Any:
        if self._litellm is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm

            litellm.telemetry = False
            self._litellm = litellm
        return self._litellm

    async def complete(self, messages: list[dict[str, str]], *, model: str = "default") -> str:
        resolved = self.resolve(model)
        if not resolved:
            raise LLMError(NO_MODEL_HELP)
        kwargs: dict[str, Any] = {"timeout": self.settings.timeout}
        if self.settings.api_base:
            kwargs["api_base"] = self.settings.api_base
        if self.settings.api_key_env:
            kwargs["api_key"] = os.environ.get(self.settings.api_key_env, "")
        litellm = self._module()
        try:
            response = await litellm.acompletion(model=resolved, messages=messages, **kwargs)
        except Exception as exc:
            raise LLMError(f"the model {resolved!r} did not answer: {type(exc).__name__}") from exc
        content = response.choices[0].message.content
        return str(content or "").strip()
