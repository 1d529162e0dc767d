"""Deployment configuration: ``config/mnemobot.toml`` overridden by ``MNEMOBOT_...`` variables.

Where the file comes from: ``--config PATH``, else ``$MNEMOBOT_CONFIG``, else
``config/mnemobot.toml`` when it exists, else built-in defaults (SQLite at
``./data/mnemobot.db``, bots from ``./bots``). Any value can be overridden from the
environment as ``MNEMOBOT_<SECTION>__<KEY>``; ``MNEMOBOT_DATABASE_URL`` and
``MNEMOBOT_BOTS_DIR`` are accepted as the short forms DESIGN.md promises. Secrets are never
read from the file: a channel names the environment variable that holds its token.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mnemobot.runtime.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ChannelSettings",
    "Seconds",
    "Settings",
    "close_match",
    "load_settings",
    "parse_duration",
    "parse_seconds",
]

DEFAULT_CONFIG_PATH = Path("config/mnemobot.toml")

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | int | float) -> int:
    """Seconds in ``"90"``, ``"5m"``, ``"1d"``, ``"60d"`` (Botpress-style retention periods).

    Numbers are seconds. Negative, infinite and boolean values are refused: each would
    silently mean "keep forever" or "one second".
    """
    return int(parse_seconds(text))


def parse_seconds(text: str | int | float) -> float:
    """:func:`parse_duration` keeping fractions: ``"1.5"`` and ``"1500ms"`` are not 1."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r} (use e.g. 90, 5m, 12h, 60d)")
    if isinstance(text, (int, float)):
        value, scale = float(text), 1.0
    elif isinstance(text, str):
        raw = text.strip().lower()
        if raw.endswith("ms"):
            number, scale = raw[:-2], 0.001
        elif raw[-1:] in _DURATION_UNITS:
            number, scale = raw[:-1], float(_DURATION_UNITS[raw[-1]])
        else:
            number, scale = raw, 1.0
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"not a duration: {text!r} (use e.g. 90, 5m, 12h, 60d)") from None
    else:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90, 5m, 12h, 60d)")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"a duration must be a finite number of seconds, not negative: {text!r}")
    return value * scale


def _seconds(value: Any) -> Any:
    """A duration setting: a number of seconds as it is, text like ``"2m"`` in seconds."""
    if isinstance(value, str):
        seconds = parse_seconds(value)
        return int(seconds) if seconds.is_integer() else seconds
    return value


Seconds = Annotated[float, BeforeValidator(_seconds)]
"""A setting in seconds that also takes ``"90"``, ``"2m"``, ``"12h"``, ``"1d"``."""
WholeSeconds = Annotated[int, BeforeValidator(_seconds)]


def close_match(name: str, known: list[str] | set[str], *, cutoff: float = 0.6) -> str | None:
    """The known name ``name`` is most likely a typo of, if one is close."""
    found = difflib.get_close_matches(name, sorted(known), n=1, cutoff=cutoff)
    return found[0] if found else None


class DatabaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = "sqlite:///data/mnemobot.db"
    echo: bool = False
    # SQLite's DB-API module: "sqlean" (sqlean.py, the sqlite-vec extra) can load sqlite-vec
    # where this Python's own sqlite3 cannot (storage/sqlite_vec.py)
    sqlite_driver: Literal["sqlite3", "sqlean"] = "sqlite3"


class LLMSettings(BaseModel):
    """Model aliases; a bot's ``model`` option names an alias or a litellm model string.

    Any other key is an alias too, either a model string or a table with ``model``,
    ``api_base``, ``api_key_env`` and ``timeout`` (a local Ollama or vLLM server, say).
    """

    model_config = ConfigDict(extra="allow")
    default: str | None = None
    fast: str | None = None
    api_base: str | None = None
    api_key_env: str | None = None
    timeout: Seconds = Field(default=60.0, gt=0)
    retries: int = Field(default=2, ge=0)
    backoff: Seconds = Field(default=1.0, ge=0)  # seconds before the first retry, doubling
    fallback: str | None = None  # an alias to try when the bot's alias keeps failing
    prompt_budget: int = Field(default=3000, gt=0)  # tokens for the prompt
    answer_reserve: int = Field(default=512, ge=0)  # tokens left for the answer

    @model_validator(mode="after")
    def _aliases(self) -> LLMSettings:
        """An alias is a model string or a table with ``model``; a key this close to a
        setting's name (``defualt``) is a typo, not an alias."""
        known = [name for name in type(self).model_fields]
        for alias, entry in (self.model_extra or {}).items():
            typo = close_match(alias, known, cutoff=0.8)
            if typo is not None:
                raise ValueError(
                    f"unknown key `{alias}` (did you mean `{typo}`?); other keys are model "
                    "aliases, and this one is too close to a setting to be one"
                )
            if isinstance(entry, str) and entry:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("model"), str):
                unknown = sorted(set(entry) - {"model", "api_base", "api_key_env", "timeout"})
                if unknown:
                    hint = close_match(unknown[0], ["model", "api_base", "api_key_env", "timeout"])
                    said = f" (did you mean `{hint}`?)" if hint else ""
                    raise ValueError(f"alias `{alias}`: unknown key `{unknown[0]}`{said}")
                continue
            raise ValueError(
                f"`{alias}` is not a setting, and not a model alias either (an alias is a "
                'litellm model string, or a table { model = "...", api_base = "..." })'
            )
        return self


class BotsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dir: Path = Path("bots")
    default: str | None = None  # the bot `mnemobot chat` opens without --bot


class SessionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeout: WholeSeconds = Field(default=1800, gt=0)


class MemorySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_value_bytes: int = Field(default=65536, gt=0)
    retention: dict[str, int] = Field(default_factory=dict)  # key -> seconds
    recall_budget: int = Field(default=1500, ge=0)  # prompt tokens for what recall finds
    # semantic recall: a litellm embedding model, an [llm] alias, or "local" (the
    # local-embeddings extra); unset = lexical only
    embedding: str | None = None

    @field_validator("retention", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): parse_duration(v) for k, v in value.items()}
        return value


class MessageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_chars: int = Field(default=20_000, gt=0)  # longer inbound messages are refused


class LinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code_ttl: WholeSeconds = Field(default=600, gt=0)
    max_attempts: int = Field(default=5, gt=0)  # wrong codes per user per code_ttl window
    by_email: bool = False  # accounts with the same platform-verified e-mail are one person


_DAY = 86400


class JanitorSettings(BaseModel):
    """Sweeps, and how long handled rows are kept (durations; 0 keeps them forever).

    ``inbox_rows`` and ``turns`` are at least a day: an inbox row's event id is what stops a
    platform's redelivery (Telegram's, up to 24 hours) from being handled twice, and a turn
    younger than that may belong to a conversation still going on.
    """

    model_config = ConfigDict(extra="forbid")
    interval: WholeSeconds = Field(default=120, gt=0)
    batch: int = Field(default=500, gt=0)
    inbox_payloads: WholeSeconds = Field(default=7 * _DAY, ge=0)  # what a handled event said
    inbox_rows: WholeSeconds = Field(default=30 * _DAY, ge=0)  # its event id: the dedupe point
    outbox_sent: WholeSeconds = Field(default=7 * _DAY, ge=0)  # replies already sent
    turns: WholeSeconds = Field(default=365 * _DAY, ge=0)  # the turn log (transcript, recall)
    user_memories: WholeSeconds = Field(default=0, ge=0)  # free-text memories unchanged this long

    @field_validator("inbox_rows", "turns")
    @classmethod
    def _at_least_a_day(cls, value: int, info: ValidationInfo) -> int:
        if 0 < value < _DAY:
            why = (
                "an event id is what keeps a platform's redelivery (up to 24 hours) from "
                "being handled twice"
                if info.field_name == "inbox_rows"
                else "younger turns may belong to a conversation still going on"
            )
            raise ValueError(f"must be 0 (keep forever) or at least 1d: {why}")
        return value


class WorkersSettings(BaseModel):
    """Several worker processes on one PostgreSQL: what a dead worker leaves is taken over."""

    model_config = ConfigDict(extra="forbid")
    reclaim_interval: Seconds = Field(default=10.0, gt=0)  # seconds between reclaimer passes
    reclaim_after: Seconds = Field(default=60.0, ge=0)  # an event unanswered this long is retried
    send_lease: Seconds = Field(default=60.0, ge=0)  # a claimed unsent reply is retried after this
    max_turns: int = Field(default=16, gt=0)  # turns holding a conversation lock, per process


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = 8080


class ChannelSettings(BaseModel):
    """One channel instance (a Telegram bot account, a Slack app, ...)."""

    model_config = ConfigDict(extra="allow")
    name: str
    kind: str
    bot: str
    mode: str | None = None
    token_env: str | None = None


class Settings(BaseSettings):
    """Everything a deployment configures. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="MNEMOBOT_", env_nested_delimiter="__", extra="forbid"
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    bots: BotsSettings = Field(default_factory=BotsSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    link: LinkSettings = Field(default_factory=LinkSettings)
    messages: MessageSettings = Field(default_factory=MessageSettings)
    janitor: JanitorSettings = Field(default_factory=JanitorSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    workers: WorkersSettings = Field(default_factory=WorkersSettings)
    channels: list[ChannelSettings] = Field(default_factory=list)
    source: Path | None = Field(default=None, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init kwargs; the environment must win over them.
        return (env_settings, init_settings)


def _config_path(explicit: Path | None) -> Path | None:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file not found: {explicit}")
        return explicit
    from_env = os.environ.get("MNEMOBOT_CONFIG")
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path} (from MNEMOBOT_CONFIG)")
        return path
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def _env_name(location: tuple[Any, ...]) -> str | None:
    """The environment variable that set the value at ``location``, if one did."""
    path = [str(part) for part in location]
    names = ["MNEMOBOT_" + "__".join(path).upper()]
    if path == ["database", "url"]:
        names.append("MNEMOBOT_DATABASE_URL")
    if path == ["bots", "dir"]:
        names.append("MNEMOBOT_BOTS_DIR")
    return next((name for name in names if os.environ.get(name)), None)


# Settings that count seconds: a bad value there is "not a number of seconds".
_SECONDS = {
    ("sessions", "timeout"),
    ("link", "code_ttl"),
    ("janitor", "interval"),
    ("workers", "reclaim_interval"),
    ("workers", "reclaim_after"),
    ("workers", "send_lease"),
    ("llm", "timeout"),
    ("llm", "backoff"),
}


def _field_name(location: tuple[Any, ...]) -> str:
    """``sessions.timeout``, ``channels[0].kind``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _shown(value: Any) -> str:
    """A value as the operator wrote it: strings in double quotes, as TOML has them."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _keys_of(section: str) -> list[str]:
    info = Settings.model_fields.get(section)
    model = info.annotation if info is not None else None
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _problem(err: Any) -> str:
    """One validation error in our words: what is wrong, and what would be right."""
    loc, kind, value = tuple(err["loc"]), err["type"], err.get("input")
    field = _field_name(loc)
    ctx = err.get("ctx") or {}
    path = tuple(str(p) for p in loc)
    if kind == "extra_forbidden":
        if len(loc) == 1:
            sections = [name for name in Settings.model_fields if name != "source"]
            return f"unknown section {path[0]!r}{_suggest(path[0], sections)}"
        parent, key = _field_name(loc[:-1]), path[-1]
        return f"{parent}: unknown key {key!r}{_suggest(key, _keys_of(path[0]))}"
    if kind == "missing":
        return f"{_field_name(loc[:-1]) or 'settings'}: {path[-1]!r} is required"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"{field}: should be a table ([{field}]), got {_shown(value)}"
    seconds = path[-2:] in _SECONDS
    if kind in ("int_parsing", "int_type", "int_from_float", "float_parsing", "float_type"):
        if seconds:
            whole = "whole " if kind == "int_from_float" else ""
            return f"{field}: {_shown(value)} is not a {whole}number of seconds"
        whole = kind.startswith("int")
        return f"{field}: {_shown(value)} is not a {'whole number' if whole else 'number'}"
    if kind in ("bool_parsing", "bool_type"):
        return f"{field}: {_shown(value)} is not true or false"
    if kind in ("string_type",):
        return f"{field}: {_shown(value)} is not text (quote it)"
    if kind == "greater_than":
        return f"{field}: must be more than {ctx.get('gt')}, got {_shown(value)}"
    if kind == "greater_than_equal":
        return f"{field}: must be {ctx.get('ge')} or more, got {_shown(value)}"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{field}: {message}"


def _explain(exc: ValidationError, source: Path | None) -> str:
    """One line per problem, naming the variable or the file that set the bad value."""
    problems = []
    for err in exc.errors():
        where = _env_name(err["loc"]) or (str(source) if source else "defaults")
        problems.append(f"{where}: {_problem(err)}")
    return "; ".join(problems)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the config file (if any) and the environment; raise ConfigError on a bad value."""
    source = _config_path(path)
    data: dict[str, Any] = {}
    if source is not None:
        try:
            data = tomllib.loads(source.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    for env_name, section, key in (
        ("MNEMOBOT_DATABASE_URL", "database", "url"),
        ("MNEMOBOT_BOTS_DIR", "bots", "dir"),
    ):
        if os.environ.get(env_name):
            data.setdefault(section, {})[key] = os.environ[env_name]
    for section, values in overrides.items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, source)) from exc
    settings.source = source
    return settings
