"""The language model: the litellm client, JSON answers, usage records, the prompt a bot sends."""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.llm.client import LLM, LiteLLM, ModelRoute, Usage
    from mnemobot.runtime.llm.prompt import BuiltPrompt, PromptAssembler, PromptItem
    from mnemobot.runtime.llm.structured import InvalidAnswer, ask_for_json
    from mnemobot.runtime.llm.usage import UsageStore

__all__ = [
    "LLM",
    "BuiltPrompt",
    "InvalidAnswer",
    "LiteLLM",
    "ModelRoute",
    "PromptAssembler",
    "PromptItem",
    "Usage",
    "UsageStore",
    "ask_for_json",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "LLM": "client",
        "LiteLLM": "client",
        "ModelRoute": "client",
        "Usage": "client",
        "BuiltPrompt": "prompt",
        "PromptAssembler": "prompt",
        "PromptItem": "prompt",
        "InvalidAnswer": "structured",
        "ask_for_json": "structured",
        "UsageStore": "usage",
    },
)
