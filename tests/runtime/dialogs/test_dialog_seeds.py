"""The seed documents' BASIC programs, run as written through the interpreter.

Where a seed program is only a fragment (it reads variables it never sets, or its IF bodies
are comments), the test completes it minimally and says how; the seed text itself is used
unchanged, with any completion added before or after it or, for comment-only bodies,
substituted for the comment line.
"""

from __future__ import annotations

import json
import logging

import pytest

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.dialogs import parse_dialog, run_dialog
from tests.runtime.dialogs import seed_programs as seeds
from tests.runtime.dialogs.fakehost import FakeHost, Memory, converse


def _split(program: str, marker: str) -> tuple[str, str]:
    """Cut a two-bot seed snippet at the comment that starts the second bot's part."""
    at = program.index(marker)
    return program[:at], program[at:]


def _complete(program: str, comment: str, code: str) -> str:
    """Replace one comment-only line (an IF body in the seed) with ``code``."""
    assert program.count(comment) == 1
    return program.replace(comment, code)


@pytest.mark.parametrize("name", sorted(seeds.ALL_PROGRAMS))
def test_every_seed_program_parses(name: str) -> None:
    dialog = parse_dialog(seeds.ALL_PROGRAMS[name], f"{name}.bas")
    assert dialog.body, f"{name} parsed to an empty program"


@pytest.mark.parametrize(
    ("program", "question"),
    [
        (seeds.S000_PERSONALIZATION, "Welcome! What's your name?"),
        (seeds.S002_PERSONALIZED_GREETING, "Hello! What's your name?"),
    ],
)
async def test_personalised_greeting_across_two_sessions(program: str, question: str) -> None:
    dialog = parse_dialog(program, "start.bas")
    host = FakeHost()
    first = await run_dialog(dialog, host, None, "hi")  # the opening message is no answer
    assert first.waiting and first.state is not None
    assert host.said == [question] and host.memory.user == {}
    second = await run_dialog(dialog, host, json.loads(json.dumps(first.state)), "Ana")
    assert second.finished
    assert host.said == [question, "Nice to meet you, Ana!"]
    assert host.memory.user == {"name": "Ana"}

    returning = FakeHost(memory=host.memory)  # a later session: new host, same memory
    outcome = await run_dialog(dialog, returning, None, "hi again")
    assert outcome.finished
    assert returning.said == ["Welcome back, Ana!"]


async def test_basic_usage_stores_preferences(host: FakeHost) -> None:
    outcome = await run_dialog(parse_dialog(seeds.S000_BASIC_USAGE), host)
    assert outcome.finished and outcome.steps == 4
    assert host.memory.user == {
        "language": "pt-BR",
        "timezone": "America/Sao_Paulo",
        "theme": "dark",
    }
    assert host.said == ["Preferences saved!"]


async def test_complex_object_keeps_its_fields(host: FakeHost, clock: ManualClock) -> None:
    # Completion: the seed reads username and useremail without setting them.
    program = 'username = "Ana"\nuseremail = "ana@example.com"\n' + seeds.S000_COMPLEX_OBJECTS
    await run_dialog(parse_dialog(program), host, clock=clock)
    assert host.memory.user["profile"] == {
        "name": "Ana",
        "email": "ana@example.com",
        "plan": "premium",
        "signupDate": int(clock.now().timestamp()),
    }
    assert host.said == ["Profile updated successfully!"]


async def test_complex_object_as_written_reads_unset_variables_as_empty(host: FakeHost) -> None:
    await run_dialog(parse_dialog(seeds.S000_COMPLEX_OBJECTS), host)
    profile = host.memory.user["profile"]
    assert profile["name"] == "" and profile["email"] == "" and profile["plan"] == "premium"


async def test_cross_bot_purchase_is_read_by_another_bot() -> None:
    sales_part, support_part = _split(seeds.S000_CROSS_BOT_SHARING, "' In support-bot")
    memory = Memory()
    sales = FakeHost("sales-bot", memory=memory)
    # Completion: the seed's sales part uses orderid and total without setting them.
    await run_dialog(parse_dialog('orderid = "A-1001"\ntotal = 59.9\n' + sales_part), sales)
    assert memory.user["lastPurchase"]["orderId"] == "A-1001"
    assert memory.user["lastPurchase"]["amount"] == 59.9

    support = FakeHost("support-bot", memory=memory)
    await run_dialog(parse_dialog(support_part), support)
    assert support.said == ["I see your last order was #A-1001"]


async def test_user_facts_as_memory_keys(host: FakeHost) -> None:
    await run_dialog(parse_dialog(seeds.S000_USER_FACTS), host)
    assert host.memory.user == {
        "fact_occupation": "software engineer",
        "fact_interests": "AI, automation, productivity",
        "fact_company": "Acme Corp",
    }


async def test_legacy_set_and_get_bot_memory_into(host: FakeHost) -> None:
    outcome = await run_dialog(parse_dialog(seeds.S001_EXAMPLE), host)
    assert outcome.finished
    assert host.bot_memory == {"last_greeting": "Hello, world!"}
    assert host.said == ["Hello, world!"]


async def test_legacy_syntax_line(host: FakeHost) -> None:
    await run_dialog(parse_dialog(seeds.S001_SYNTAX), host)
    assert host.bot_memory == {"key": "value"}


async def test_user_memory_keywords(host: FakeHost) -> None:
    # Completion: the seed stores a variable named value that it never sets; set it first,
    # and show the facts it reads at the end.
    program = 'value = "stored"\n' + seeds.S002_USER_KEYWORDS + "TALK facts.occupation\n"
    await run_dialog(parse_dialog(program), host)
    assert host.memory.user == {"key": "stored"}
    assert host.memory.facts == {"occupation": "software engineer"}
    assert host.said == ["software engineer"]


@pytest.mark.parametrize(
    ("language", "greeting"),
    [("pt-BR", "Olá! Como posso ajudar?"), ("en", "Hello! How can I help?")],
)
async def test_cross_bot_preferences(language: str, greeting: str) -> None:
    store_part, use_part = _split(seeds.S002_CROSS_BOT_PREFERENCES, "' In any other bot")
    memory = Memory()
    await run_dialog(parse_dialog(store_part), FakeHost("bot-a", memory=memory))
    assert memory.user == {"language": "pt-BR", "timezone": "America/Sao_Paulo"}
    memory.user["language"] = language  # the person changed it meanwhile
    other = FakeHost("bot-b", memory=memory)
    await run_dialog(parse_dialog(use_part), other)
    assert other.said == [greeting]


async def test_user_facts_feed_the_llm_context(host: FakeHost) -> None:
    # Completion: show the LLM's answer, which the seed only assigns.
    program = seeds.S002_USER_FACTS_AI + "TALK response\n"
    await run_dialog(parse_dialog(program), host)
    facts = {
        "company": "Acme Corp",
        "role": "Product Manager",
        "interests": "AI, automation, productivity",
    }
    assert host.memory.facts == facts
    assert host.context == {"user_profile": facts}
    assert host.prompts == ["Help me draft a product roadmap"]
    assert host.said == ["LLM answer to: Help me draft a product roadmap"]


async def test_bot_memory_keywords(host: FakeHost) -> None:
    # Completion: set the variable the seed stores.
    program = "value = 42\n" + seeds.S002_BOT_KEYWORDS + "TALK value + 1\n"
    await run_dialog(parse_dialog(program), host)
    assert host.bot_memory == {"key": 42}
    assert host.said == ["43"]


async def test_bot_statistics_counter(caplog: pytest.LogCaptureFixture) -> None:
    dialog = parse_dialog(seeds.S002_BOT_STATISTICS)
    memory = Memory()
    caplog.set_level(logging.INFO, logger="mnemobot.runtime.dialogs")
    for user in range(3):  # three conversations, each a new session of the same bot
        await run_dialog(dialog, FakeHost("stats-bot", memory=memory), None, f"hi {user}")
    assert memory.bots["stats-bot"] == {"total_conversations": 3}
    printed = [r.getMessage() for r in caplog.records if "PRINT" in r.getMessage()]
    assert printed[-1].endswith("This bot has had 3 conversations")
    assert len(printed) == 3


async def test_feature_flags(host: FakeHost) -> None:
    # Completion: the seed's IF body is a comment; make it say something.
    program = _complete(seeds.S002_FEATURE_FLAGS, "' Enable voice features", 'TALK "voice on"')
    await run_dialog(parse_dialog(program), host)
    assert host.bot_memory == {
        "enable_voice": True,
        "max_retries": 3,
        "welcome_message": "Hello! I'm your assistant.",
    }
    assert host.said == ["voice on"]


async def test_cache_with_ttl_via_now(clock: ManualClock) -> None:
    url = "https://api.exchangerate.host/latest"
    rates = {"base": "EUR", "rates": {"USD": 1.08}}
    # Completion: show which rates the program ended up with.
    dialog = parse_dialog(seeds.S002_CACHE_API + "TALK rates.rates.USD\n")
    memory = Memory()

    def run_once() -> FakeHost:
        return FakeHost("fx-bot", memory=memory, http={url: rates})

    first = run_once()
    await run_dialog(dialog, first, clock=clock)
    assert first.fetched == [url]
    assert memory.bots["fx-bot"]["exchange_rates"] == rates
    assert memory.bots["fx-bot"]["exchange_rates_time"] == int(clock.now().timestamp())
    assert first.said == ["1.08"]

    clock.advance(3000)  # still fresh: served from bot memory
    second = run_once()
    await run_dialog(dialog, second, clock=clock)
    assert second.fetched == [] and second.said == ["1.08"]

    clock.advance(601)  # more than an hour since the fetch
    third = run_once()
    await run_dialog(dialog, third, clock=clock)
    assert third.fetched == [url]
    assert memory.bots["fx-bot"]["exchange_rates_time"] == int(clock.now().timestamp())


async def test_session_keywords(host: FakeHost) -> None:
    # Completion: set the variable the seed stores and show what GET read back.
    program = 'value = "v1"\n' + seeds.S002_SESSION_KEYWORDS + "TALK value\n"
    await run_dialog(parse_dialog(program), host)
    assert host.session == {"key": "v1"}
    assert host.context == {"topic": "billing inquiry"}
    assert host.said == ["v1"]


async def test_conversation_state_in_session(host: FakeHost) -> None:
    # Completion: set the two variables the seed stores; the IF body says it continues.
    program = 'username = "Ana"\nuseremail = "ana@example.com"\n' + _complete(
        seeds.S002_CONVERSATION_STATE, "' Continue collecting", 'TALK "continuing"'
    )
    await run_dialog(parse_dialog(program), host)
    assert host.session == {
        "current_step": "collecting_info",
        "collected_name": "Ana",
        "collected_email": "ana@example.com",
    }
    assert host.said == ["continuing"]


async def test_multi_turn_context(host: FakeHost) -> None:
    # Completion: set the ids the seed puts into the context.
    program = 'customerid = "C-7"\norderid = 9001\n' + seeds.S002_MULTI_TURN_CONTEXT
    await run_dialog(parse_dialog(program), host)
    assert host.context == {"customer_id": "C-7", "issue_type": "refund", "order_id": 9001}
    assert host.prompts == ["Help resolve this customer issue"]


async def test_episodes_go_into_context(host: FakeHost) -> None:
    episodes = [{"summary": "asked about refunds", "topics": ["refunds"]}]
    host.memory.user["recent_episodes"] = episodes
    await run_dialog(parse_dialog(seeds.S002_EPISODIC), host)
    assert host.context == {"previous_interactions": episodes}


async def test_profile_builder_as_written(host: FakeHost) -> None:
    await run_dialog(parse_dialog(seeds.S002_PROFILE_BUILDER), host)
    assert host.memory.user == {"profile": {}}

    host.memory.user["profile"] = {"name": "Ana", "preferences": ["tea"]}
    await run_dialog(parse_dialog(seeds.S002_PROFILE_BUILDER), host)
    assert host.memory.user == {"profile": {"name": "Ana", "preferences": ["tea"]}}


async def test_profile_builder_completed_asks_for_the_name(host: FakeHost) -> None:
    # Completion: the seed's "ask for name" body is a comment; ask with HEAR instead.
    program = _complete(
        seeds.S002_PROFILE_BUILDER,
        "' Ask for name when appropriate",
        'TALK "What should I call you?"\nHEAR answer\nprofile.name = answer',
    )
    dialog = parse_dialog(program)
    first, second = await converse(dialog, host, ["Ana"])
    assert first.waiting and second.finished
    assert host.memory.user == {"profile": {"name": "Ana"}}

    again = FakeHost(memory=host.memory)  # next session: name known, nothing asked
    assert (await run_dialog(dialog, again)).finished
    assert again.said == []


async def test_preference_learning_with_append_and_llm(clock: ManualClock) -> None:
    dialog = parse_dialog(seeds.S002_PREFERENCE_LEARNING)
    memory = Memory()
    choices = ["pizza", "sushi", "pizza", "salad", "pizza", "tacos", "pizza", "sushi", "ramen"]
    for index, choice in enumerate(choices):
        host = FakeHost(memory=memory, llm=lambda prompt: "likes pizza")
        first, second = await converse(dialog, host, [choice], clock=clock)
        assert first.waiting and second.finished
        assert len(memory.user["choices_history"]) == index + 1
        assert host.prompts == []
        clock.advance(60)
    assert memory.user["choices_history"][0] == {
        "choice": "pizza",
        "context": "",
        "timestamp": int(ManualClock().now().timestamp()),
    }

    tenth = FakeHost(memory=memory, llm=lambda prompt: "likes pizza")
    await converse(dialog, tenth, ["pizza"], clock=clock)
    assert len(memory.user["choices_history"]) == 10
    assert len(tenth.prompts) == 1
    prefix = "Analyze these choices and identify preferences: "
    assert tenth.prompts[0].startswith(prefix + '[{"choice": "pizza"')
    assert memory.user["learned_preferences"] == "likes pizza"


async def test_context_handoff_between_two_bots() -> None:
    memory = Memory()
    sender = FakeHost("sales-bot", memory=memory)
    # Completion: the seed's sending part reads four variables it never sets.
    setup = (
        'currentTopic = "billing"\ndetectedIntent = "refund"\n'
        'summary = "wants a refund for order 12"\nfacts = USER FACTS()\n'
    )
    memory.facts["plan"] = "premium"
    outcome = await run_dialog(parse_dialog(setup + seeds.S002_HANDOFF_SENDER), sender)
    assert outcome.transferred and outcome.transfer_to == "specialist-bot"
    assert outcome.state is None
    assert sender.transfers == ["specialist-bot"]
    assert memory.user["handoff_context"] == {
        "topic": "billing",
        "userIntent": "refund",
        "conversationSummary": "wants a refund for order 12",
        "relevantFacts": {"plan": "premium"},
    }

    receiver = FakeHost("specialist-bot", memory=memory)
    assert (await run_dialog(parse_dialog(seeds.S002_HANDOFF_RECEIVER), receiver)).finished
    assert receiver.context == {
        "background": "wants a refund for order 12",
        "intent": "refund",
    }
    assert "handoff_context" not in memory.user


async def test_whole_handoff_snippet_stops_at_transfer(host: FakeHost) -> None:
    outcome = await run_dialog(parse_dialog(seeds.S002_HANDOFF), host)
    assert outcome.transferred
    assert "handoff_context" in host.memory.user  # the receiving half did not run
    assert host.context == {}


async def test_ttl_pattern(clock: ManualClock) -> None:
    store_part, check_part = _split(seeds.S002_TTL, "' Check expiration")
    memory = Memory()
    # Completion: the seed stores authCode without setting it.
    await run_dialog(
        parse_dialog('authCode = "493817"\n' + seeds.S002_TTL),
        FakeHost(memory=memory),
        clock=clock,
    )
    stored = {"code": "493817", "expires": int(clock.now().timestamp()) + 300}
    assert memory.user["temp_auth_code"] == stored

    check = parse_dialog(check_part)
    clock.advance(299)
    await run_dialog(check, FakeHost(memory=memory), clock=clock)
    assert memory.user["temp_auth_code"] == stored  # still valid
    clock.advance(2)
    await run_dialog(check, FakeHost(memory=memory), clock=clock)
    assert "temp_auth_code" not in memory.user  # expired and cleared
    assert store_part.startswith("' Store with expiration")


async def test_key_naming_conventions(host: FakeHost) -> None:
    await run_dialog(parse_dialog(seeds.S002_KEY_NAMING), host)
    # data is never set in the seed, so "cache_products" is written as "" (cleared).
    assert host.memory.user == {
        "pref_language": "en",
        "pref_timezone": "UTC",
        "fact_name": "John",
        "fact_company": "Acme",
        "ctx_last_topic": "sales",
    }


async def test_sensitive_data_example_stores_only_set_values(host: FakeHost) -> None:
    host.memory.user["password"] = "old"
    await run_dialog(parse_dialog(seeds.S002_SENSITIVE_DATA), host)
    assert host.memory.user == {"verified": True}  # unset variables clear their keys


@pytest.mark.parametrize(("known", "greeting"), [(None, "Hello, there!"), ("Ana", "Hello, Ana!")])
async def test_missing_data_gracefully(known: str | None, greeting: str) -> None:
    host = FakeHost()
    if known:
        host.memory.user["name"] = known
    await run_dialog(parse_dialog(seeds.S002_MISSING_DATA), host)
    assert host.said == [greeting]


async def test_cleanup_runs_once_a_day(clock: ManualClock) -> None:
    dialog = parse_dialog(seeds.S002_CLEANUP)
    memory = Memory()
    await run_dialog(dialog, FakeHost("janitor", memory=memory), clock=clock)
    first = memory.bots["janitor"]["last_memory_cleanup"]
    assert first == int(clock.now().timestamp())
    clock.advance(86_000)
    await run_dialog(dialog, FakeHost("janitor", memory=memory), clock=clock)
    assert memory.bots["janitor"]["last_memory_cleanup"] == first
    clock.advance(401)
    await run_dialog(dialog, FakeHost("janitor", memory=memory), clock=clock)
    assert memory.bots["janitor"]["last_memory_cleanup"] == first + 86_401
