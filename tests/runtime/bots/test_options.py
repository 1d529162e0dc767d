"""A bot's folder: config.csv options with the seed defaults, bot.py handlers, strict errors.

Every error names the file (and the row or line) and the problem, because a bot that half
loads would only fail later, in front of a person.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mnemobot.runtime.bots.options import OPTIONS, BotOptions, load_options
from mnemobot.runtime.bots.registry import load_bot, load_bots
from mnemobot.runtime.errors import ConfigError, UnknownBot
from tests.support import write_bot

REPO = Path(__file__).resolve().parents[3]

ON_MESSAGE = """
async def on_message(ctx):
    await ctx.say("hi")
"""


def options_of(tmp_path: Path, csv_text: str, name: str = "a-bot") -> BotOptions:
    folder = write_bot(tmp_path, name, config=csv_text)
    return load_options(folder / "config.csv", name)


def config_error(tmp_path: Path, csv_text: str) -> str:
    folder = write_bot(tmp_path, "a-bot", config=csv_text)
    with pytest.raises(ConfigError) as caught:
        load_options(folder / "config.csv", "a-bot")
    return str(caught.value)


# --- options and their defaults -------------------------------------------------------------


def test_every_default_is_the_seed_default(tmp_path):
    options = options_of(tmp_path, "name,value\n")

    assert options.name == "a-bot"
    assert options.user_memory_enabled is True
    assert options.user_memory_max_keys == 1000
    assert options.user_memory_default_ttl == 0
    assert options.episodic_memory_enabled is True
    assert options.episodic_memory_threshold == 4
    assert options.episodic_memory_history == 2
    assert options.episodic_memory_model == "fast"
    assert options.episodic_memory_max_episodes == 100
    assert options.episodic_memory_retention_days == 365
    assert options.episodic_memory_auto_summarize is True


def test_a_missing_config_csv_gives_the_defaults(tmp_path):
    options = load_options(tmp_path / "nowhere" / "config.csv", "lonely")

    assert options == BotOptions(name="lonely")


def test_every_seed_option_is_read_from_the_file(tmp_path):
    options = options_of(
        tmp_path,
        """
        name,value
        description,Sells plans
        model,fast
        user-memory-enabled,false
        user-memory-max-keys,5
        user-memory-default-ttl,3600
        episodic-memory-enabled,no
        episodic-memory-threshold,6
        episodic-memory-history,3
        episodic-memory-model,default
        episodic-memory-max-episodes,7
        episodic-memory-retention-days,30
        episodic-memory-auto-summarize,off
        """,
    )

    assert options.description == "Sells plans"
    assert options.model == "fast"
    assert options.user_memory_enabled is False
    assert options.user_memory_max_keys == 5
    assert options.user_memory_default_ttl == 3600
    assert options.episodic_memory_enabled is False
    assert options.episodic_memory_threshold == 6
    assert options.episodic_memory_history == 3
    assert options.episodic_memory_model == "default"
    assert options.episodic_memory_max_episodes == 7
    assert options.episodic_memory_retention_days == 30
    assert options.episodic_memory_auto_summarize is False


def test_a_quoted_prompt_keeps_its_commas_and_quotes(tmp_path):
    options = options_of(
        tmp_path,
        """
        name,value
        prompt,"Be brief, be kind, and say ""thanks""."
        """,
    )

    assert options.prompt == 'Be brief, be kind, and say "thanks".'


def test_comments_and_blank_rows_are_skipped(tmp_path):
    options = options_of(
        tmp_path,
        """
        name,value
        # limits, tuned for the demo

        user-memory-max-keys,12
          # an indented comment
        ,
        episodic-memory-threshold,2
        """,
    )

    assert options.user_memory_max_keys == 12
    assert options.episodic_memory_threshold == 2


def test_a_comment_above_the_header_is_allowed(tmp_path):
    # Comments are allowed on any row, so the header is the first row that is not one.
    options = options_of(
        tmp_path,
        """
        # sales-bot: learns the person's name and language
        name,value
        user-memory-max-keys,12
        """,
    )

    assert options.user_memory_max_keys == 12


def test_text_values_are_trimmed_like_numbers(tmp_path):
    # "model, fast" must mean the alias fast, not " fast" (which no [llm] alias matches).
    options = options_of(
        tmp_path,
        """
        name,value
        model, fast
        episodic-memory-model, default
        description,  Sells plans
        user-memory-max-keys, 10
        """,
    )

    assert options.model == "fast"
    assert options.episodic_memory_model == "default"
    assert options.description == "Sells plans"
    assert options.user_memory_max_keys == 10


def test_booleans_accept_the_usual_spellings(tmp_path):
    for text, expected in [("TRUE", True), ("Yes", True), ("1", True), ("off", False)]:
        options = options_of(tmp_path, f"name,value\nuser-memory-enabled,{text}\n")
        assert options.user_memory_enabled is expected, text


def test_every_option_is_documented_in_config_readme():
    # Every "unknown option" error sends the reader to config/README.md.
    readme = REPO / "config" / "README.md"
    assert readme.is_file(), "config/README.md (the list of config.csv options) is missing"
    text = readme.read_text(encoding="utf-8")
    missing = [name for name in OPTIONS if name != "name" and name not in text]
    assert missing == []


# --- errors name the file, the row and the problem ---------------------------------------


def test_an_unknown_option_is_an_error_naming_file_and_row(tmp_path):
    message = config_error(
        tmp_path,
        """
        name,value
        user-memory-enabled,true
        user-memory-max-key,5
        """,
    )

    path = tmp_path / "a-bot" / "config.csv"
    assert message.startswith(f"{path} row 3: unknown option 'user-memory-max-key'")


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("user-memory-max-keys,lots", "user-memory-max-keys must be a whole number, got 'lots'"),
        ("episodic-memory-threshold,4.5", "episodic-memory-threshold must be a whole number"),
        ("user-memory-max-keys,", "user-memory-max-keys must be a whole number, got ''"),
        ("user-memory-default-ttl,-1", "user-memory-default-ttl must not be negative, got -1"),
        ("episodic-memory-retention-days,-30", "must not be negative"),
        ("user-memory-enabled,maybe", "user-memory-enabled must be true or false, got 'maybe'"),
        ("episodic-memory-auto-summarize,", "must be true or false"),
        ("http-timeout,soon", "http-timeout must be a number, got 'soon'"),
        ("http-timeout,0", "http-timeout must be positive"),
        ("http-timeout,nan", "http-timeout must be"),
        ("http-timeout,inf", "http-timeout must be"),
    ],
)
def test_a_value_of_the_wrong_kind_is_an_error_naming_file_and_row(tmp_path, row, problem):
    message = config_error(tmp_path, f"name,value\ndescription,x\n{row}\n")

    path = tmp_path / "a-bot" / "config.csv"
    assert message.startswith(f"{path} row 3: ")
    assert problem in message


def test_three_columns_is_an_error_that_says_to_quote(tmp_path):
    message = config_error(tmp_path, "name,value\nprompt,Be brief, be kind\n")

    path = tmp_path / "a-bot" / "config.csv"
    assert message.startswith(f"{path} row 2: expected 2 columns (name,value), got 3")
    assert 'prompt,"Be brief, be kind"' in message


def test_one_column_is_an_error(tmp_path):
    message = config_error(tmp_path, "name,value\nuser-memory-enabled\n")

    assert "row 2: expected 2 columns (name,value), got 1" in message


def test_the_same_option_twice_is_an_error(tmp_path):
    message = config_error(
        tmp_path,
        """
        name,value
        user-memory-max-keys,10
        model,fast
        user-memory-max-keys,20
        """,
    )

    path = tmp_path / "a-bot" / "config.csv"
    assert message == f"{path} row 4: user-memory-max-keys is set twice"


def test_the_name_comes_from_the_folder_not_the_file(tmp_path):
    message = config_error(tmp_path, "name,value\nname,other-bot\n")

    assert "row 2: the bot's name is its folder name ('a-bot')" in message


def test_a_file_that_is_not_utf8_is_an_error(tmp_path):
    folder = write_bot(tmp_path, "a-bot")
    (folder / "config.csv").write_bytes(b"name,value\ndescription,caf\xe9\n")

    with pytest.raises(ConfigError, match="not UTF-8"):
        load_options(folder / "config.csv", "a-bot")


# --- bot folders -------------------------------------------------------------------------------


def test_a_folder_with_bot_py_loads_its_handlers(tmp_path):
    folder = write_bot(
        tmp_path,
        "greeter",
        config="name,value\ndescription,Says hi\n",
        bot_py=ON_MESSAGE
        + """
async def on_transfer(ctx):
    await ctx.say("over to me")
""",
    )

    bot = load_bot(folder)

    assert bot.name == "greeter"
    assert bot.folder == folder
    assert bot.options.description == "Says hi"
    assert bot.on_message is not None and bot.on_message.__name__ == "on_message"
    assert bot.on_transfer is not None and bot.on_transfer.__name__ == "on_transfer"
    assert bot.dialog is None


def test_a_folder_with_only_config_csv_is_an_llm_bot(tmp_path):
    bot = load_bot(write_bot(tmp_path, "chatty", config="name,value\nprompt,Be nice\n"))

    assert (bot.on_message, bot.on_transfer, bot.dialog) == (None, None, None)
    assert bot.options.prompt == "Be nice"


def test_a_syntax_error_in_bot_py_names_the_file_and_line(tmp_path):
    folder = write_bot(
        tmp_path,
        "broken",
        bot_py="""
        # a bot with a typo

        async def on_message(ctx)
            await ctx.say("hi")
        """,
    )

    with pytest.raises(ConfigError) as caught:
        load_bot(folder)

    message = str(caught.value)
    assert message.startswith(f"{folder / 'bot.py'} line 3: syntax error")


def test_a_bot_py_that_fails_on_import_is_an_error_naming_the_file(tmp_path):
    folder = write_bot(tmp_path, "crashy", bot_py="import no_such_module_here\n" + ON_MESSAGE)

    with pytest.raises(ConfigError) as caught:
        load_bot(folder)

    assert str(caught.value).startswith(f"{folder / 'bot.py'}: failed to import")
    assert "no_such_module_here" in str(caught.value)


def test_a_handler_that_is_not_async_is_an_error(tmp_path):
    folder = write_bot(
        tmp_path,
        "syncy",
        bot_py="""
        def on_message(ctx):
            ctx.say("hi")
        """,
    )

    with pytest.raises(ConfigError) as caught:
        load_bot(folder)

    assert str(caught.value) == (
        f"{folder / 'bot.py'}: on_message must be defined with 'async def on_message(ctx)'"
    )


def test_a_non_async_on_transfer_is_an_error_too(tmp_path):
    folder = write_bot(tmp_path, "half", bot_py=ON_MESSAGE + "\ndef on_transfer(ctx):\n    pass\n")

    with pytest.raises(ConfigError, match=r"on_transfer must be defined with 'async def"):
        load_bot(folder)


def test_a_bot_py_with_neither_handler_is_an_error(tmp_path):
    folder = write_bot(
        tmp_path,
        "quiet",
        bot_py="""
        async def handle(ctx):  # not a handler name (a typo of one: see below)
            await ctx.say("hi")
        """,
    )

    with pytest.raises(ConfigError) as caught:
        load_bot(folder)

    assert str(caught.value) == (
        f"{folder / 'bot.py'}: defines neither on_message(ctx) nor on_transfer(ctx)"
    )


@pytest.mark.parametrize("name", ["my bot", "-dash-first", "über-bot", "a$", ".hidden"])
def test_a_bad_folder_name_is_an_error(tmp_path, name):
    folder = write_bot(tmp_path, name, bot_py=ON_MESSAGE)

    with pytest.raises(ConfigError) as caught:
        load_bot(folder)

    assert str(caught.value) == (
        f"{folder}: bot folder names use letters, digits, '-', '_' and '.'"
    )


def test_a_bad_config_csv_stops_the_bot_loading(tmp_path):
    folder = write_bot(
        tmp_path, "typo-bot", config="name,value\nuser-memory-max-key,5\n", bot_py=ON_MESSAGE
    )

    with pytest.raises(ConfigError, match=re.escape(f"{folder / 'config.csv'} row 2")):
        load_bot(folder)


# --- a bots directory ----------------------------------------------------------------------------


def test_load_bots_on_a_missing_directory_says_how_to_set_it(tmp_path):
    missing = tmp_path / "no-bots-here"

    with pytest.raises(ConfigError) as caught:
        load_bots(missing)

    assert str(caught.value) == (
        f"bots directory not found: {missing} (set [bots] dir or MNEMOBOT_BOTS_DIR)"
    )


def test_load_bots_on_an_empty_directory_is_an_error(tmp_path):
    (tmp_path / "notes").mkdir()  # a folder with no bot files is not a bot
    (tmp_path / "README.md").write_text("bots go here\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_bots(tmp_path)

    assert str(caught.value) == (f"no bots in {tmp_path}: add a folder with config.csv or bot.py")


def test_load_bots_finds_every_bot_folder_and_skips_other_things(tmp_path):
    write_bot(tmp_path, "beta", bot_py=ON_MESSAGE)
    write_bot(tmp_path, "alpha", config="name,value\ndescription,First\n")
    (tmp_path / "notes").mkdir()
    (tmp_path / "README.md").write_text("bots go here\n", encoding="utf-8")

    bots = load_bots(tmp_path)

    assert bots.names() == ["alpha", "beta"]
    assert "alpha" in bots and "notes" not in bots
    assert bots.get("alpha").options.description == "First"
    assert [bot.name for bot in bots] == ["alpha", "beta"]


def test_one_broken_bot_stops_the_whole_directory_loading(tmp_path):
    write_bot(tmp_path, "good", bot_py=ON_MESSAGE)
    bad = write_bot(tmp_path, "bad", config="name,value\nuser-memory-enabled,perhaps\n")

    with pytest.raises(ConfigError, match=re.escape(f"{bad / 'config.csv'} row 2")):
        load_bots(tmp_path)


def test_loaded_leniently_a_broken_bot_is_set_aside_with_its_error(tmp_path):
    write_bot(tmp_path, "good", bot_py=ON_MESSAGE)
    bad = write_bot(tmp_path, "bad", config="name,value\nuser-memory-enabled,perhaps\n")

    bots = load_bots(tmp_path, strict=False)

    assert bots.names() == ["good"]
    assert "bad" not in bots and [bot.name for bot in bots] == ["good"]
    assert list(bots.broken) == ["bad"]
    assert str(bots.broken["bad"]).startswith(f"{bad / 'config.csv'} row 2: ")
    # Asking for the broken bot says what is wrong with it, not "unknown bot".
    with pytest.raises(ConfigError) as caught:
        bots.get("bad")
    assert not isinstance(caught.value, UnknownBot)
    assert str(caught.value) == str(bots.broken["bad"])


def test_a_misspelt_option_gets_a_suggestion(tmp_path):
    message = config_error(tmp_path, "name,value\ndescripton,Sells things\n")

    assert message == (
        f"{tmp_path / 'a-bot' / 'config.csv'} row 2: unknown option 'descripton'; "
        "did you mean description? known options are listed in config/README.md"
    )


def test_a_misspelt_handler_name_gets_a_suggestion(tmp_path):
    source = "async def on_mesage(ctx):\n    await ctx.say('hi')\n"
    folder = write_bot(tmp_path, "typo", bot_py=source)

    with pytest.raises(ConfigError) as caught:
        load_bot(folder)

    assert str(caught.value) == (
        f"{folder / 'bot.py'}: on_mesage is not a handler name and would never run; "
        "did you mean on_message?"
    )


def test_helpers_with_other_names_are_not_taken_for_typos(tmp_path):
    source = (
        "from json import dumps as on_messages_dump\n"  # imported: not the bot's own
        "def on_save(x):\n    return x\n"
        "def _on_mesage(x):\n    return x\n"
        "async def on_message(ctx):\n    await ctx.say('hi')\n"
    )
    folder = write_bot(tmp_path, "helpers", bot_py=source)

    assert load_bot(folder).on_message is not None


def test_an_unknown_bot_close_to_a_known_one_gets_a_suggestion(tmp_path):
    write_bot(tmp_path, "sales-bot", bot_py=ON_MESSAGE)

    with pytest.raises(UnknownBot) as caught:
        load_bots(tmp_path).get("sale-bot")

    assert str(caught.value) == (
        "unknown bot 'sale-bot' (did you mean sales-bot?); bots here: sales-bot"
    )


def test_an_unknown_bot_names_the_bots_there(tmp_path):
    write_bot(tmp_path, "beta", bot_py=ON_MESSAGE)
    write_bot(tmp_path, "alpha", bot_py=ON_MESSAGE)

    with pytest.raises(UnknownBot) as caught:
        load_bots(tmp_path).get("nobody")

    assert str(caught.value) == "unknown bot 'nobody'; bots here: alpha, beta"


def test_the_shipped_bots_load():
    bots = load_bots(REPO / "bots")

    # Every folder under bots/ loads; the two example bots of the shared-memory story are there.
    shipped = sorted(p.name for p in (REPO / "bots").iterdir() if (p / "config.csv").is_file())
    assert bots.names() == shipped
    assert {"sales-bot", "support-bot"} <= set(bots.names())
    sales, support = bots.get("sales-bot"), bots.get("support-bot")
    assert sales.on_message is not None and sales.on_transfer is None
    assert support.on_message is not None and support.on_transfer is not None
    assert sales.options.prompt == (
        "You are the sales assistant of a small software shop. Be brief and friendly. "
        "Always answer in the person's preferred language (their language in what you know "
        "about them)."
    )
    assert sales.options.description.startswith("Learns your name and language")
    assert support.options.description.startswith("Greets you by name")
    assert sales.options.user_memory_max_keys == 1000
    assert support.options.episodic_memory_threshold == 4


def test_user_memories_is_one_of_three_words_manual_by_default(tmp_path):
    assert options_of(tmp_path, "name,value\n").user_memories == "manual"
    for word in ("off", "manual", "Agentic"):
        chosen = options_of(tmp_path, f"name,value\nuser-memories,{word}\n")
        assert chosen.user_memories == word.lower()


def test_a_misspelt_user_memories_option_or_value_says_what_was_meant(tmp_path):
    with pytest.raises(ConfigError, match="did you mean agentic"):
        options_of(tmp_path, "name,value\nuser-memories,agentc\n")
    with pytest.raises(ConfigError, match="must be one of off, manual, agentic, got 'yes'"):
        options_of(tmp_path, "name,value\nuser-memories,yes\n")
    with pytest.raises(ConfigError, match="did you mean user-memories"):
        options_of(tmp_path, "name,value\nuser-memorys,manual\n")
