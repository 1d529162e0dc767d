"""Typed settings of a ``[[channels]]`` entry: the fields every kind has, and reading one.

The runtime loads a ``[[channels]]`` entry knowing only its name, kind and bot (it knows no
platform); the rest belongs to the channel kind, which declares it as a pydantic model in its
own package (``adapters/telegram/settings.py`` and so on) extending :class:`ChannelOptions`.
:func:`read_settings` checks an entry against that model, so a typo (``api_urll``,
``cookie_secret_evn``) or a bad value (``poll = -1``) stops start-up with one line naming the
channel, the key and, when one is close, the key that was meant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from mnemobot.runtime import ChannelSettings
from mnemobot.runtime.errors import ConfigError
from mnemobot.runtime.settings import close_match

__all__ = ["ChannelOptions", "read_settings"]

T = TypeVar("T", bound="ChannelOptions")


class ChannelOptions(BaseModel):
    """What every channel kind's settings have; a kind adds its own fields (unknown keys are
    refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    kind: str
    bot: str


def read_settings(model: type[T], settings: ChannelSettings) -> T:
    """``settings`` as ``model``; ConfigError with one clause per problem otherwise."""
    try:
        return model.model_validate(settings.model_dump(exclude_none=True))
    except ValidationError as exc:
        problems = [_problem(model, err) for err in exc.errors()]
        raise ConfigError(f"channel {settings.name!r}: " + "; ".join(problems)) from None


def _fields_at(model: type[BaseModel], path: Sequence[Any]) -> list[str]:
    """The field names of the (nested) model at ``path``, for suggestions."""
    current = model
    for part in path:
        info = current.model_fields.get(str(part))
        annotation = info.annotation if info is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        current = annotation
    return list(current.model_fields)


def _number(value: Any) -> Any:
    """``0`` rather than ``0.0`` in a message."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _problem(model: type[BaseModel], err: Any) -> str:
    loc = tuple(err["loc"])
    key = ".".join(str(part) for part in loc)
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind == "extra_forbidden":
        close = close_match(str(loc[-1]), _fields_at(model, loc[:-1]))
        hint = f" (did you mean `{'.'.join([*map(str, loc[:-1]), close])}`?)" if close else ""
        return f"unknown key `{key}`{hint}"
    if kind == "missing":
        return f"`{key}` is required"
    if kind == "literal_error":
        return f"{key} must be {ctx.get('expected')}, not {value!r}"
    if kind == "greater_than":
        return f"{key} must be more than {_number(ctx.get('gt'))}, not {value!r}"
    if kind == "greater_than_equal":
        return f"{key} must be {_number(ctx.get('ge'))} or more, not {value!r}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{key} must be a whole number, not {value!r}"
    if kind in ("float_parsing", "float_type"):
        return f"{key} must be a number, not {value!r}"
    if kind in ("string_type",):
        return f"{key} must be text, not {value!r}"
    if kind in ("model_type", "dict_type"):
        return f"{key} must be a table, not {value!r}"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{key}: {message}"
