"""Deployment settings: mnemobot.toml, overridden by MNEMOBOT_... environment variables.

The autouse ``_offline`` fixture clears every ``MNEMOBOT_*`` variable first, and each test
runs in an empty working directory, so nothing from the repository's own config leaks in.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mnemobot.runtime.errors import ConfigError
from mnemobot.runtime.settings import DEFAULT_CONFIG_PATH, load_settings, parse_duration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def write_toml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_without_a_file_the_built_in_defaults_apply():
    settings = load_settings()

    assert settings.source is None
    assert settings.database.url == "sqlite:///data/mnemobot.db"
    assert settings.bots.dir == Path("bots")
    assert settings.bots.default is None
    assert settings.sessions.timeout == 1800
    assert settings.memory.retention == {}
    assert settings.link.code_ttl == 600
    assert settings.janitor.interval == 120
    assert settings.llm.default is None
    assert settings.channels == []


def test_config_mnemobot_toml_in_the_working_directory_is_the_default_file(tmp_path):
    path = write_toml(
        tmp_path / DEFAULT_CONFIG_PATH,
        """
        [sessions]
        timeout = 90
        """,
    )

    settings = load_settings()

    assert settings.source == DEFAULT_CONFIG_PATH
    assert path.resolve() == (tmp_path / settings.source).resolve()
    assert settings.sessions.timeout == 90


def test_a_given_file_is_read(tmp_path):
    path = write_toml(
        tmp_path / "deploy.toml",
        """
        [database]
        url = "postgresql+psycopg://bot@127.0.0.1/mnemobot"

        [llm]
        default = "openai/gpt-4o-mini"
        fast = "ollama/llama3"
        api_base = "http://127.0.0.1:11434"

        [bots]
        dir = "/srv/bots"
        default = "support-bot"

        [sessions]
        timeout = 600

        [memory.retention]
        email = "60d"
        mood = "1d"

        [[channels]]
        name = "sales-telegram"
        kind = "telegram"
        mode = "polling"
        bot = "sales-bot"
        token_env = "TELEGRAM_SALES_TOKEN"
        """,
    )

    settings = load_settings(path)

    assert settings.source == path
    assert settings.database.url == "postgresql+psycopg://bot@127.0.0.1/mnemobot"
    assert settings.llm.default == "openai/gpt-4o-mini"
    assert settings.llm.fast == "ollama/llama3"
    assert settings.llm.api_base == "http://127.0.0.1:11434"
    assert settings.bots.dir == Path("/srv/bots")
    assert settings.bots.default == "support-bot"
    assert settings.sessions.timeout == 600
    assert settings.memory.retention == {"email": 60 * 86400, "mood": 86400}
    [channel] = settings.channels
    assert (channel.name, channel.kind, channel.mode, channel.bot, channel.token_env) == (
        "sales-telegram",
        "telegram",
        "polling",
        "sales-bot",
        "TELEGRAM_SALES_TOKEN",
    )


def test_the_shipped_config_loads():
    settings = load_settings(REPO / "config" / "mnemobot.toml")

    assert settings.database.url == "sqlite:///data/mnemobot.db"
    assert settings.bots.dir == Path("bots")
    assert settings.bots.default == "sales-bot"
    assert settings.sessions.timeout == 1800
    assert settings.channels == []


def test_environment_variables_override_the_defaults(monkeypatch):
    monkeypatch.setenv("MNEMOBOT_SESSIONS__TIMEOUT", "600")
    monkeypatch.setenv("MNEMOBOT_DATABASE_URL", "postgresql+psycopg://127.0.0.1/env")
    monkeypatch.setenv("MNEMOBOT_BOTS_DIR", "/srv/env-bots")
    monkeypatch.setenv("MNEMOBOT_LLM__DEFAULT", "openai/gpt-4o")

    settings = load_settings()

    assert settings.sessions.timeout == 600
    assert settings.database.url == "postgresql+psycopg://127.0.0.1/env"
    assert settings.bots.dir == Path("/srv/env-bots")
    assert settings.llm.default == "openai/gpt-4o"


def test_the_environment_wins_over_the_file_key_by_key(tmp_path, monkeypatch):
    path = write_toml(
        tmp_path / "deploy.toml",
        """
        [database]
        url = "sqlite:///file.db"
        echo = true

        [bots]
        dir = "file-bots"
        default = "support-bot"

        [sessions]
        timeout = 60

        [link]
        code_ttl = 100
        max_attempts = 3
        """,
    )
    monkeypatch.setenv("MNEMOBOT_DATABASE_URL", "sqlite:///env.db")
    monkeypatch.setenv("MNEMOBOT_BOTS_DIR", "env-bots")
    monkeypatch.setenv("MNEMOBOT_SESSIONS__TIMEOUT", "900")
    monkeypatch.setenv("MNEMOBOT_LINK__CODE_TTL", "30")

    settings = load_settings(path)

    assert settings.database.url == "sqlite:///env.db"
    assert settings.database.echo is True  # the rest of the section still comes from the file
    assert settings.bots.dir == Path("env-bots")
    assert settings.bots.default == "support-bot"
    assert settings.sessions.timeout == 900
    assert (settings.link.code_ttl, settings.link.max_attempts) == (30, 3)


def test_mnemobot_config_names_the_file(tmp_path, monkeypatch):
    path = write_toml(tmp_path / "elsewhere" / "mine.toml", "[sessions]\ntimeout = 42\n")
    write_toml(tmp_path / DEFAULT_CONFIG_PATH, "[sessions]\ntimeout = 7\n")
    monkeypatch.setenv("MNEMOBOT_CONFIG", str(path))

    settings = load_settings()

    assert settings.source == path
    assert settings.sessions.timeout == 42


def test_an_explicit_path_wins_over_mnemobot_config(tmp_path, monkeypatch):
    given = write_toml(tmp_path / "given.toml", "[sessions]\ntimeout = 11\n")
    from_env = write_toml(tmp_path / "env.toml", "[sessions]\ntimeout = 22\n")
    monkeypatch.setenv("MNEMOBOT_CONFIG", str(from_env))

    assert load_settings(given).sessions.timeout == 11


def test_a_missing_file_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as caught:
        load_settings(Path("missing.toml"))
    assert str(caught.value) == "config file not found: missing.toml"

    monkeypatch.setenv("MNEMOBOT_CONFIG", "gone.toml")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == "config file not found: gone.toml (from MNEMOBOT_CONFIG)"


def test_a_value_of_the_wrong_type_names_the_file_and_the_field(tmp_path):
    path = write_toml(tmp_path / "deploy.toml", '[sessions]\ntimeout = "soon"\n')

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    assert str(caught.value) == (
        f"{path}: sessions.timeout: not a duration: 'soon' (use e.g. 90, 5m, 12h, 60d)"
    )


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ("[sessions]\ntimeout = 0\n", "sessions.timeout: must be more than 0, got 0"),
        ("[sessions]\ntimeout = 1.5\n", "sessions.timeout: 1.5 is not a whole number of seconds"),
        ("[sessions]\ntimout = 60\n", "sessions: unknown key 'timout' (did you mean timeout?)"),
        ("[sesions]\ntimeout = 60\n", "unknown section 'sesions' (did you mean sessions?)"),
        ("[frobnicate]\nx = 1\n", "unknown section 'frobnicate'"),
        ('[server]\nport = "http"\n', 'server.port: "http" is not a whole number'),
        ('[database]\necho = "maybe"\n', 'database.echo: "maybe" is not true or false'),
        ("sessions = 5\n", "sessions: should be a table ([sessions]), got 5"),
        (
            '[memory.retention]\nemail = "sixty days"\n',
            "memory.retention: not a duration: 'sixty days' (use e.g. 90, 5m, 12h, 60d)",
        ),
        ('[[channels]]\nname = "x"\nkind = "telegram"\n', "channels[0]: 'bot' is required"),
    ],
)
def test_a_bad_value_or_an_unknown_name_is_said_in_our_words(tmp_path, toml, problem):
    path = write_toml(tmp_path / "deploy.toml", toml)

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    assert str(caught.value) == f"{path}: {problem}"


def test_every_problem_in_the_file_is_reported_at_once(tmp_path):
    path = write_toml(
        tmp_path / "deploy.toml",
        """
        [sessions]
        timeout = "soon"
        [janitor]
        interval = -1
        """,
    )

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    assert "sessions.timeout" in str(caught.value)
    assert "janitor.interval" in str(caught.value)


def test_a_bad_value_from_the_environment_names_the_variable(tmp_path, monkeypatch):
    # The file says 60; blaming the file for "soon" would send the reader to the wrong place.
    path = write_toml(tmp_path / "deploy.toml", "[sessions]\ntimeout = 60\n")
    monkeypatch.setenv("MNEMOBOT_SESSIONS__TIMEOUT", "soon")

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    assert "MNEMOBOT_SESSIONS__TIMEOUT" in str(caught.value)


def test_invalid_toml_is_an_error_naming_the_file_and_line(tmp_path):
    path = write_toml(tmp_path / "deploy.toml", "[sessions]\ntimeout = \n")

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    message = str(caught.value)
    assert message.startswith(f"{path}: not valid TOML: ")
    assert "line 2" in message


def test_keyword_overrides_win_over_the_file(tmp_path):
    path = write_toml(tmp_path / "deploy.toml", '[sessions]\ntimeout = 60\n[bots]\ndir = "b"\n')

    settings = load_settings(path, sessions={"timeout": 5}, database={"url": "sqlite:///x.db"})

    assert settings.sessions.timeout == 5
    assert settings.database.url == "sqlite:///x.db"
    assert settings.bots.dir == Path("b")


# --- retention durations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("5m", 300),
        ("12h", 12 * 3600),
        ("1d", 86400),
        ("60d", 60 * 86400),
        ("2w", 14 * 86400),
        (" 1D ", 86400),
        ("1.5h", 5400),
        (45, 45),
    ],
)
def test_durations_are_parsed(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "soon", "5 minutes", "m5", "-5m", "-1"])
def test_a_bad_duration_is_a_value_error(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_retention_in_the_file_is_parsed_to_seconds(tmp_path):
    path = write_toml(
        tmp_path / "deploy.toml",
        """
        [memory.retention]
        email = "60d"
        mood = "5m"
        code = "90"
        otp = 30
        """,
    )

    retention = load_settings(path).memory.retention

    assert retention == {"email": 60 * 86400, "mood": 300, "code": 90, "otp": 30}


@pytest.mark.parametrize("value", ["-5", '"inf"', '"nan"', "true"])
def test_a_retention_that_is_not_a_duration_is_a_config_error(tmp_path, value):
    # Negative, infinite or boolean TOML values must neither crash the loader with a bare
    # OverflowError nor quietly mean "keep forever" (-5) or "one second" (true).
    path = write_toml(tmp_path / "deploy.toml", f"[memory.retention]\nemail = {value}\n")

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    assert str(caught.value).startswith(f"{path}: memory.retention")


def test_a_fractional_retention_reads_like_the_same_text(tmp_path):
    # email = 1.5 (a TOML float) must mean what email = "1.5" means, not an AttributeError.
    path = write_toml(tmp_path / "deploy.toml", "[memory.retention]\nemail = 90.5\n")

    assert load_settings(path).memory.retention == {"email": parse_duration("90.5")}


def test_handled_rows_are_kept_for_durations_with_defaults(tmp_path):
    janitor = load_settings(None).janitor
    day = 86400
    assert (janitor.inbox_payloads, janitor.inbox_rows) == (7 * day, 30 * day)
    assert (janitor.outbox_sent, janitor.turns) == (7 * day, 365 * day)
    path = write_toml(
        tmp_path / "deploy.toml",
        """
        [janitor]
        inbox_payloads = "12h"
        inbox_rows = "1d"
        outbox_sent = 0
        turns = "2w"
        """,
    )
    janitor = load_settings(path).janitor
    assert (janitor.inbox_payloads, janitor.inbox_rows) == (12 * 3600, day)
    assert (janitor.outbox_sent, janitor.turns) == (0, 14 * day)


def test_every_duration_setting_takes_units(tmp_path):
    path = write_toml(
        tmp_path / "deploy.toml",
        """
        [janitor]
        interval = "2m"
        [sessions]
        timeout = "30m"
        [link]
        code_ttl = "10m"
        [workers]
        reclaim_after = "1.5m"
        send_lease = 90
        [llm]
        timeout = "2m"
        backoff = "0.5"
        """,
    )
    settings = load_settings(path)
    assert settings.janitor.interval == 120
    assert settings.sessions.timeout == 1800
    assert settings.link.code_ttl == 600
    assert (settings.workers.reclaim_after, settings.workers.send_lease) == (90, 90)
    assert (settings.llm.timeout, settings.llm.backoff) == (120, 0.5)


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ('[janitor]\ninterval = "2x"\n', "janitor.interval: not a duration: '2x'"),
        ('[janitor]\ninterval = "-2m"\n', "janitor.interval: a duration must be a finite"),
        ('[janitor]\ninterval = "1.5"\n', "janitor.interval: 1.5 is not a whole number of seconds"),
        (
            '[llm]\ndefualt = "openai/gpt-4o-mini"\n',
            "llm: unknown key `defualt` (did you mean `default`?)",
        ),
        ("[llm]\ntimeuot = 30\n", "llm: unknown key `timeuot` (did you mean `timeout`?)"),
        (
            '[llm]\nlocal = { model = "openai/x", api_bsae = "http://127.0.0.1:1/v1" }\n',
            "llm: alias `local`: unknown key `api_bsae` (did you mean `api_base`?)",
        ),
        ("[llm]\nwhatever = 5\n", "llm: `whatever` is not a setting, and not a model alias"),
        ('[janitor]\ninbox_rows = "12h"\n', "janitor.inbox_rows: must be 0 (keep forever) or at"),
        ('[janitor]\nturns = "1h"\n', "janitor.turns: must be 0 (keep forever) or at least 1d"),
        ('[janitor]\noutbox_sent = "-1d"\n', "janitor.outbox_sent: a duration must be a finite"),
    ],
)
def test_a_duration_or_llm_typo_is_refused_naming_the_key(tmp_path, toml, problem):
    path = write_toml(tmp_path / "deploy.toml", toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"{path}: {problem}")


def test_model_aliases_far_from_any_setting_are_kept(tmp_path):
    path = write_toml(
        tmp_path / "deploy.toml",
        """
        [llm]
        default = "openai/gpt-4o-mini"
        fastest = "openai/gpt-4.1-nano"
        local = { model = "openai/llama3", api_base = "http://127.0.0.1:11434/v1" }
        """,
    )
    extra = load_settings(path).llm.model_extra or {}
    assert set(extra) == {"fastest", "local"}
