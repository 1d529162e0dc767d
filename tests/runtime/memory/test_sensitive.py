"""Which keys and values a bot's sensitive-keys / sensitive-values hide, and how config.csv
spells them (typos refused); the scenario is tests/system/scenarios/test_sensitive_keys.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnemobot.runtime.bots.options import load_options
from mnemobot.runtime.errors import ConfigError
from mnemobot.runtime.memory.sensitive import HIDDEN, SensitiveRule, masker
from tests.support import write_bot

RULE = SensitiveRule(keys=("password", "*_PIN", "card*"), values=("card-number", "iban"))


@pytest.mark.parametrize(
    ("key", "value", "hidden"),
    [
        ("password", "x", True),
        ("Password", "x", True),  # keys match without regard to case
        ("door_pin", 1234, True),
        ("cardholder", "Ana", True),
        ("passwords_count", 3, False),  # a glob matches the whole key
        ("note", "card 4111-1111-1111-1111 exp 12/29", True),
        ("note", {"pay": ["4111 1111 1111 1111"]}, True),  # nested strings are looked at
        ("note", "4111 1111 1111 1112", False),  # fails the Luhn check: not a card
        ("iban_note", "DE89 3704 0044 0532 0130 00", True),
        ("company", "Acme", False),
        ("ssn_like", "123-45-6789", False),  # ssn was not asked for
    ],
)
def test_keys_by_glob_and_values_by_kind(key: str, value: object, hidden: bool) -> None:
    assert RULE.hides(key, value) is hidden
    assert RULE.shown(key, value) == (HIDDEN if hidden else value)


def test_the_empty_rule_hides_nothing_and_rules_add_up() -> None:
    assert not SensitiveRule() and not SensitiveRule().hides("password", "4111111111111111")
    both = SensitiveRule.union([SensitiveRule(keys=("Secret",)), SensitiveRule(values=("ssn",))])
    assert both.hides("secret", 1) and both.hides("x", "123-45-6789")
    assert not both.hides("x", "4111111111111111")


def test_sensitive_values_written_are_masked_in_text_that_repeats_them() -> None:
    texts = RULE.hidden_texts([("password", "hunter2"), ("pin_hint", "no"), ("name", "Ana")])
    assert texts == ["hunter2"]
    assert SensitiveRule(keys=("*_hint",)).hidden_texts([("pin_hint", "no")]) == []  # too short
    assert masker(texts)("my password is hunter2, ok") == "my password is (hidden), ok"


def test_config_csv_spelling_and_typos(tmp_path: Path) -> None:
    folder = write_bot(
        tmp_path,
        "a-bot",
        config='name,value\nsensitive-keys,password; *_token\nsensitive-values,"card-number, ssn"\n',
    )
    options = load_options(folder / "config.csv", "a-bot")
    assert options.sensitive == SensitiveRule(("password", "*_token"), ("card-number", "ssn"))

    bad = write_bot(tmp_path, "b-bot", config="sensitive-values,card-numbers\n")
    with pytest.raises(ConfigError) as kind_typo:
        load_options(bad / "config.csv", "b-bot")
    assert str(kind_typo.value) == (
        f"{bad / 'config.csv'} row 1: sensitive-values: unknown kind 'card-numbers'; did you "
        "mean card-number? known kinds: card-number, iban, ssn, token"
    )
    typo = write_bot(tmp_path, "c-bot", config="sensitive-key,password\n")
    with pytest.raises(
        ConfigError, match="unknown option 'sensitive-key'; did you mean sensitive-keys"
    ):
        load_options(typo / "config.csv", "c-bot")
