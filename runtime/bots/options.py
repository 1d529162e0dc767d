"""A bot's ``config.csv``: the seed's options with the seed's defaults, checked strictly.

An unknown option or a value of the wrong kind stops the bot from loading with a message
naming the file, the row and the problem: a typo such as ``user-memory-max-key`` silently
ignored would leave a limit nobody set. ``config/README.md`` lists every option.
"""

from __future__ import annotations

import csv
import difflib
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mnemobot.runtime.errors import ConfigError
from mnemobot.runtime.memory.sensitive import SensitiveRule, check_value_kinds

__all__ = ["CHOICES", "OPTIONS", "BotOptions", "load_options"]


@dataclass(frozen=True)
class BotOptions:
    """Every option a ``config.csv`` may set, with the seed defaults."""

    name: str = ""
    description: str = ""
    prompt: str = "You are a helpful assistant."
    model: str = "default"
    user_memory_enabled: bool = True
    user_memory_max_keys: int = 1000
    user_memory_default_ttl: int = 0
    user_memory_agentic: bool = False
    user_memories: str = "manual"  # free-text memories: off, manual or agentic (CHOICES)
    episodic_memory_enabled: bool = True
    episodic_memory_threshold: int = 4
    episodic_memory_history: int = 2
    episodic_memory_model: str = "fast"
    episodic_memory_max_episodes: int = 100
    episodic_memory_retention_days: int = 365
    episodic_memory_auto_summarize: bool = True
    http_allow_hosts: tuple[str, ...] = field(default_factory=tuple)
    http_allow_private: bool = False
    http_timeout: float = 10.0
    http_max_bytes: int = 1_000_000
    dialog_step_budget: int = 10_000
    sensitive_keys: tuple[str, ...] = field(default_factory=tuple)
    sensitive_values: tuple[str, ...] = field(default_factory=tuple)

    @property
    def sensitive(self) -> SensitiveRule:
        """What this bot keeps out of prompts and shows hidden (runtime/memory/sensitive.py)."""
        return SensitiveRule(self.sensitive_keys, self.sensitive_values)


# config.csv spelling -> field name
OPTIONS: dict[str, str] = {f.name.replace("_", "-"): f.name for f in fields(BotOptions)}
# options that take one of a few words (field name -> the words)
CHOICES: dict[str, tuple[str, ...]] = {"user_memories": ("off", "manual", "agentic")}
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _convert(raw: str, default: Any, where: str, option: str) -> Any:
    text = raw.strip()
    if isinstance(default, bool):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f"{where}: {option} must be true or false, got {raw!r}")
    if isinstance(default, int):
        try:
            number = int(text)
        except ValueError:
            raise ConfigError(f"{where}: {option} must be a whole number, got {raw!r}") from None
        if number < 0:
            raise ConfigError(f"{where}: {option} must not be negative, got {number}")
        return number
    if isinstance(default, float):
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{where}: {option} must be a number, got {raw!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{where}: {option} must be positive, got {raw!r}")
        return value
    if isinstance(default, tuple):
        return tuple(part.strip() for part in text.replace(";", ",").split(",") if part.strip())
    return text


def _choice(raw: str, words: tuple[str, ...], where: str, option: str) -> str:
    word = raw.strip().lower()
    if word in words:
        return word
    close = difflib.get_close_matches(word, words, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ConfigError(f"{where}: {option} must be one of {', '.join(words)}, got {raw!r}{hint}")


def load_options(path: Path, bot_name: str) -> BotOptions:
    """Parse ``path`` (``name,value`` rows); a missing file gives the defaults."""
    defaults = BotOptions(name=bot_name)
    if not path.is_file():
        return defaults
    values: dict[str, Any] = {"name": bot_name}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    rows = list(csv.reader(text.splitlines(), skipinitialspace=True))
    header_allowed = True
    for number, row in enumerate(rows, start=1):
        where = f"{path} row {number}"
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if header_allowed and [c.strip().lower() for c in row] == ["name", "value"]:
            header_allowed = False
            continue
        header_allowed = False
        if len(row) != 2:
            raise ConfigError(
                f"{where}: expected 2 columns (name,value), got {len(row)}: {','.join(row)!r}; "
                'quote values that contain commas: prompt,"Be brief, be kind"'
            )
        option, raw = row[0].strip(), row[1]
        if option not in OPTIONS:
            close = difflib.get_close_matches(option, [o for o in OPTIONS if o != "name"], n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(
                f"{where}: unknown option {option!r}; {hint}"
                "known options are listed in config/README.md"
            )
        attr = OPTIONS[option]
        if option == "name":
            raise ConfigError(f"{where}: the bot's name is its folder name ({bot_name!r})")
        if attr in values:
            raise ConfigError(f"{where}: {option} is set twice")
        if attr in CHOICES:
            values[attr] = _choice(raw, CHOICES[attr], where, option)
        else:
            values[attr] = _convert(raw, getattr(defaults, attr), where, option)
        if attr == "sensitive_values" and (problem := check_value_kinds(values[attr], where)):
            raise ConfigError(problem)
    return BotOptions(**values)
