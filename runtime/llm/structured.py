"""Asking a model for JSON and getting valid JSON, or a clear reason why not.

The model is asked again, told what was wrong, up to a few times; every caller (episode
summaries, roll-ups, fact extraction) gets the same validation and the same failure.
"""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mnemobot.runtime.errors import InvalidAnswer
from mnemobot.runtime.llm.client import LLM

__all__ = ["InvalidAnswer", "ask_for_json"]

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


def _json_object(answer: str) -> Any:
    """The JSON object in ``answer``, tolerating code fences and a sentence around it."""
    text = answer.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    start, end = text.find("{"), text.rfind("}")
    if start == -1 or end < start:
        raise ValueError("the answer holds no JSON object")
    try:
        return json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise ValueError(f"the answer is not valid JSON ({exc.msg} at char {exc.pos})") from None


def _problem(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or 'the object'}: {err['msg']}"
            for err in exc.errors()[:5]
        ]
        return "; ".join(parts)
    return str(exc)


async def ask_for_json(
    llm: LLM,
    messages: list[dict[str, str]],
    schema: type[M],
    *,
    model: str,
    bot: str,
    user_id: str | None,
    purpose: str,
    tries: int = 3,
) -> M:
    """Ask until the answer validates against ``schema``, telling the model what was wrong.

    Raises:
        InvalidAnswer: ``tries`` answers in a row were not valid (the reason is the last one).
        LLMError: the model could not be reached; the caller decides when to try again.
    """
    conversation = list(messages)
    problem = "no answer"
    for attempt in range(1, tries + 1):
        answer = await llm.complete(
            conversation, model=model, bot=bot, user_id=user_id, purpose=purpose
        )
        try:
            return schema.model_validate(_json_object(answer))
        except ValueError as exc:
            problem = _problem(exc)
        logger.info("invalid %s answer (try %d of %d): %s", purpose, attempt, tries, problem)
        conversation = [
            *messages,
            {"role": "assistant", "content": answer[:4000]},
            {
                "role": "user",
                "content": f"That answer was not valid: {problem}. "
                "Reply again with only the JSON object, in the shape asked for, no other text.",
            },
        ]
    raise InvalidAnswer(f"no valid JSON from the model after {tries} tries: {problem}")
