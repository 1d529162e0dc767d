"""Sensitive memory: values a bot may read in its code but no model and no operator sees.

Seed 002 advises against storing passwords and card numbers; a bot that must (a verification
code it checks, a card it hands to a payment API) names them in ``config.csv``:

* ``sensitive-keys``: key names or glob patterns (``password``, ``*_token``, ``card*``),
  matched without regard to case;
* ``sensitive-values``: kinds of value, whatever the key: ``card-number`` (Luhn-checked),
  ``iban``, ``ssn``, ``token`` (API keys, bearer tokens, JWTs, private keys).

A matching key is left out of prompts whole (facts, session context, recall's facts and
memories; the prompt trace counts what was kept out), its value is shown as ``(hidden)`` in
the inspector and the admin API, and where it appears in the turn that wrote it (the
person's answer, a reply) the turn log keeps ``(hidden)`` instead, so the transcript that
recall, summaries and later prompts read never holds it. Bot code reads the value as stored.
User memory is shared by every bot, so the rules of all loaded bots apply together
(:meth:`SensitiveRule.union`): a key one bot declares sensitive stays out of every prompt.

The detectors are :mod:`runtime.memory.secrets_filter`'s, which already redacts the
transcript of card numbers and tokens before it is stored.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mnemobot.runtime.memory.secrets_filter import strings_in, value_kind_in

__all__ = ["HIDDEN", "VALUE_KINDS", "SensitiveRule", "check_value_kinds", "masker"]

HIDDEN = "(hidden)"
VALUE_KINDS: dict[str, str] = {  # config.csv name -> the secrets filter's kind
    "card-number": "a card number",
    "iban": "an IBAN",
    "ssn": "a social security number",
    "token": "a token",
}
SHORTEST_MASKED = 4  # shorter values are not looked for in text ("no", "1" are everywhere)


def check_value_kinds(names: Iterable[str], where: str) -> str | None:
    """Why ``names`` are not all known value kinds (with a did-you-mean), or None."""
    for name in names:
        if name not in VALUE_KINDS:
            close = difflib.get_close_matches(name, list(VALUE_KINDS), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            return (
                f"{where}: sensitive-values: unknown kind {name!r}; {hint}known kinds: "
                + ", ".join(VALUE_KINDS)
            )
    return None


@dataclass(frozen=True, slots=True)
class SensitiveRule:
    """Which keys and values are sensitive; the empty rule hides nothing."""

    keys: tuple[str, ...] = ()
    values: tuple[str, ...] = ()

    @classmethod
    def union(cls, rules: Iterable[SensitiveRule]) -> SensitiveRule:
        keys: dict[str, None] = {}
        values: dict[str, None] = {}
        for rule in rules:
            keys.update(dict.fromkeys(k.lower() for k in rule.keys))
            values.update(dict.fromkeys(rule.values))
        return cls(tuple(keys), tuple(values))

    def __bool__(self) -> bool:
        return bool(self.keys or self.values)

    def key_hidden(self, key: str | None) -> bool:
        folded = (key or "").lower()
        return bool(folded) and any(fnmatch.fnmatchcase(folded, k.lower()) for k in self.keys)

    def text_hidden(self, text: str) -> bool:
        """``text`` holds a value of a sensitive kind."""
        return bool(self.values) and value_kind_in(text, [VALUE_KINDS[v] for v in self.values])

    def hides(self, key: str | None, value: Any) -> bool:
        """``key``/``value`` is sensitive: by its key, or by a string inside its value."""
        if not self:
            return False
        return self.key_hidden(key) or any(self.text_hidden(s) for s in strings_in(value))

    def shown(self, key: str | None, value: Any) -> Any:
        """``value`` as an operator may see it: HIDDEN when it is sensitive."""
        return HIDDEN if self.hides(key, value) else value

    def shown_memory(self, memory: dict[str, Any]) -> dict[str, Any]:
        """A free-text memory (``Memory.as_dict()``) as an operator may see it: a text, or
        the input it came from, that holds a sensitive value is HIDDEN."""
        shown = dict(memory)
        for field in ("text", "memory", "input", "feedback"):
            if isinstance(shown.get(field), str) and self.hides(None, shown[field]):
                shown[field] = HIDDEN
        return shown

    def hidden_texts(self, pairs: Iterable[tuple[str, Any]]) -> list[str]:
        """The strings inside the sensitive values of ``pairs`` (key, value), longest first,
        to mask in text that repeats them."""
        found = {
            text
            for key, value in pairs
            if self.hides(key, value)
            for text in strings_in(value)
            if len(text) >= SHORTEST_MASKED
        }
        return sorted(found, key=len, reverse=True)


def masker(texts: list[str]) -> Callable[[str], str]:
    """A function that replaces each of ``texts`` in a text by HIDDEN."""

    def mask(text: str) -> str:
        for secret in texts:
            text = text.replace(secret, HIDDEN)
        return text

    return mask
