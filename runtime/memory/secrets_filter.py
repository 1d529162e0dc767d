"""Spotting secrets and payment data, so they are never remembered or summarised.

Used on facts before they are written and on transcripts and summaries before they reach a
model or the episodes table. Reasons name the kind of secret, never its value, so they are
safe to log.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["redact", "redact_credentials", "secret_reason", "strings_in", "value_kind_in"]


_SECRET_KEY = re.compile(
    r"(^|_)(password|passwd|passphrase|passcode|pwd|secret|secrets|token|tokens|api_?key|"
    r"access_?key|private_?key|secret_?key|credentials?|ssn|social_security|cvv|cvc|cvv2|pin|"
    r"pin_?code|card_?number|credit_?card|debit_?card|cc_?number|iban|account_?number|"
    r"routing_?number|sort_?code|otp|seed_?phrase|mnemonic|security_?code)(_|$)"
)
_TOKEN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an API key", re.compile(r"\bsk-[A-Za-z0-9_-]{16,}")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{8,}")),
    ("a GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,})")),
    ("an AWS key", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{30,}")),
    ("a JWT", re.compile(r"\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a bearer token", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}")),
    ("a long hex string", re.compile(r"\b[0-9a-fA-F]{32,}\b")),
    ("an IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b")),
    ("a social security number", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    (
        "a password",
        re.compile(
            r"(?i)\b(password|passwd|passcode|passphrase|pwd|pin|cvv|cvc|security code)"
            r"\s*(is|was|:|=|-)\s*[^\s,;]+"
        ),
    ),
)
# The patterns above that are keys or tokens (a bot's ``sensitive-values,token``)
_TOKEN_KINDS = (
    "an API key",
    "a Slack token",
    "a GitHub token",
    "an AWS key",
    "a Google API key",
    "a JWT",
    "a private key",
    "a bearer token",
)
# The patterns above that name a credential (not personal data, not any long hex string or
# path-like run, which log lines hold legitimately), plus Telegram bot tokens (also inside
# Bot API URLs, ``/bot<token>/``).
_CREDENTIAL_KINDS = (*_TOKEN_KINDS, "a password")
_CREDENTIAL_PATTERNS = (
    *(pattern for name, pattern in _TOKEN_PATTERNS if name in _CREDENTIAL_KINDS),
    re.compile(r"(?<![0-9])[0-9]{5,12}:[A-Za-z0-9_-]{30,}"),  # a Telegram bot token
)
_OPAQUE = re.compile(r"[A-Za-z0-9+/_=-]{32,}")
_CARD = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = int(char)
        if index % 2:
            number = number * 2 - 9 if number > 4 else number * 2
        total += number
    return total % 10 == 0


def _card_numbers(text: str) -> list[re.Match[str]]:
    return [
        m
        for m in _CARD.finditer(text)
        if 13 <= len(digits := re.sub(r"\D", "", m.group())) <= 19 and _luhn(digits)
    ]


def _opaque(text: str) -> list[re.Match[str]]:
    """Long runs of letters and digits mixed: keys, tokens, base64 blobs (not long words)."""
    return [
        m
        for m in _OPAQUE.finditer(text)
        if re.search(r"\d", m.group()) and re.search(r"[A-Za-z]", m.group())
    ]


def _text_secret(text: str) -> str | None:
    if _card_numbers(text):
        return "a card number"
    for name, pattern in _TOKEN_PATTERNS:
        if pattern.search(text):
            return name
    if _opaque(text):
        return "a long opaque string (a key or token?)"
    return None


def value_kind_in(text: str, kinds: Sequence[str]) -> bool:
    """Whether ``text`` holds a value of one of ``kinds``: ``a card number`` (Luhn-checked),
    ``a token`` (any key or token above, or a long opaque string), or a pattern's own name
    (``an IBAN``, ``a social security number``). A bot's ``sensitive-values`` names them."""
    for kind in kinds:
        if kind == "a card number" and _card_numbers(text):
            return True
        if kind == "a token" and (
            any(p.search(text) for name, p in _TOKEN_PATTERNS if name in _TOKEN_KINDS)
            or _opaque(text)
        ):
            return True
        if any(name == kind and p.search(text) for name, p in _TOKEN_PATTERNS):
            return True
    return False


def strings_in(value: Any) -> list[str]:
    """Every string (and number, as text) inside a JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *strings_in(v))]
    return [str(value)] if isinstance(value, int | float) and not isinstance(value, bool) else []


def secret_reason(key: str, value: Any) -> str | None:
    """Why ``key``/``value`` must not be stored (it looks like a secret), or None if it may.

    The reason names the kind of secret, never the value, so it is safe to log.
    """
    normal = re.sub(r"[^a-z0-9]+", "_", re.sub(r"([a-z])([A-Z])", r"\1_\2", key).lower())
    if _SECRET_KEY.search(normal):
        return f"the key {key!r} names a secret or payment detail"
    for text in strings_in(value):
        found = _text_secret(text)
        if found:
            return f"the value looks like {found}"
    return None


def redact(text: str) -> str:
    """``text`` with card numbers, tokens, keys and stated passwords replaced by [redacted].

    Used on transcripts before they go to the model and on summaries before they are stored.
    """
    for match in reversed(_card_numbers(text)):
        text = text[: match.start()] + "[redacted]" + text[match.end() :]
    for _name, pattern in _TOKEN_PATTERNS:
        text = pattern.sub("[redacted]", text)
    for match in reversed(_opaque(text)):
        text = text[: match.start()] + "[redacted]" + text[match.end() :]
    return text


def redact_credentials(text: str) -> str:
    """``text`` with anything shaped like a token, key or stated password made [redacted].

    Narrower than :func:`redact`: used on every log line (see ``runtime/ops/logs.py``), where
    ids, hashes and paths must stay readable.
    """
    for pattern in _CREDENTIAL_PATTERNS:
        text = pattern.sub("[redacted]", text)
    return text
