"""The admin API over HTTP, against a real runtime on SQLite and PostgreSQL.

People are created by chatting with the example bots; every route is called as a web page
or ``curl`` would, and what the bots say afterwards shows the correction took effect.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from mnemobot.adapters.admin.api import admin_routes
from mnemobot.adapters.admin.auth import ADMIN_TOKEN_ENV, admin_status_line, admin_tokens
from mnemobot.runtime.errors import ConfigError
from mnemobot.runtime.people.privacy import export_user
from mnemobot.runtime.storage.tables import AUDIT_LOG, EPISODES, IDENTITIES, new_id
from tests.adapters.admin.conftest import ACTOR, TOKEN, admin_app, http
from tests.support import Chat

BOTS = "/admin/api/bots"
SALES_GOT_IT = (
    "Got it, Ana (en). We sell Basic, Pro and Team plans. "
    "Ask me anything, or say 'support' for help with a problem."
)


def users(uid: str, rest: str = "") -> str:
    return f"/admin/api/users/{uid}{rest}"


def audit_count(runtime: Any) -> int:
    with runtime.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(AUDIT_LOG)).scalar_one())


def snapshot(runtime: Any, uid: str) -> Any:
    return (
        export_user(runtime.db, uid),
        runtime.memory.read_rows(runtime.memory.bot_ref("sales-bot")),
        audit_count(runtime),
    )


# --- switched on, switched off, and who may call --------------------------------------------


async def test_without_a_token_the_api_is_not_mounted_and_start_up_says_so(runtime):
    assert admin_routes(runtime, environ={}) == []
    assert admin_status_line({}) == (
        "admin API off: set MNEMOBOT_ADMIN_TOKEN to serve it at /admin/api/"
    )
    async with http(admin_app(runtime, env={})) as client:
        assert (await client.get("/admin/api/users?q=ana")).status_code == 404
        assert (await client.get("/admin/api/openapi.json")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200


def test_tokens_name_their_holder_and_must_be_long():
    env = {ADMIN_TOKEN_ENV: f"alice:{TOKEN}, bob:{TOKEN}x,{TOKEN}y"}
    assert admin_tokens(env) == {TOKEN: "alice", TOKEN + "x": "bob", TOKEN + "y": "admin"}
    assert admin_status_line(env).startswith("admin API on at /admin/api/")
    with pytest.raises(ConfigError, match="shorter than 16"):
        admin_tokens({ADMIN_TOKEN_ENV: "short"})


async def test_every_route_wants_the_bearer_token(runtime):
    app = admin_app(runtime)
    paths = [
        ("GET", "/admin/api/openapi.json"),
        ("GET", "/admin/api/users?q=ana"),
        ("GET", users("x")),
        ("DELETE", users("x")),
        ("GET", users("x", "/export")),
        ("PUT", users("x", "/memory/k")),
        ("DELETE", users("x", "/facts/k")),
        ("DELETE", users("x", "/identities/i")),
        ("GET", users("x", "/memories")),
        ("POST", users("x", "/memories")),
        ("PATCH", users("x", "/memories/m")),
        ("DELETE", users("x", "/memories")),
        ("GET", BOTS),
        ("PUT", BOTS + "/sales-bot/memory/k"),
        ("POST", "/admin/api/prompt"),
        ("GET", "/admin/api/audit"),
        ("GET", "/admin/api/no-such-route"),
    ]
    for token in (None, "wrong-token-0123456789abcdef", TOKEN[:-1]):
        async with http(app, token=token) as client:
            for method, path in paths:
                answer = await client.request(method, path, json={"value": 1})
                assert answer.status_code == 401, (token, method, path)
                assert answer.headers["www-authenticate"].startswith("Bearer")
                assert "bearer token" in answer.json()["error"]
    async with http(app, token=None) as client:
        basic = await client.get(BOTS, headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
    async with http(app) as client:
        missing = await client.get("/admin/api/no-such-route")
        assert missing.status_code == 404 and missing.json() == {"error": "no such admin route"}
        assert (await client.get(BOTS)).status_code == 200


async def test_the_openapi_document_describes_every_route(api):
    document = (await api.get("/admin/api/openapi.json")).json()

    assert document["openapi"].startswith("3.1")
    operations = {
        (method.upper(), path) for path, ops in document["paths"].items() for method in ops
    }
    assert operations == {
        ("GET", "/admin/api/users"),
        ("POST", "/admin/api/users"),
        ("GET", "/admin/api/users/{user}"),
        ("DELETE", "/admin/api/users/{user}"),
        ("GET", "/admin/api/users/{user}/export"),
        ("GET", "/admin/api/users/{user}/recall"),
        ("PUT", "/admin/api/users/{user}/memory/{key}"),
        ("DELETE", "/admin/api/users/{user}/memory/{key}"),
        ("PUT", "/admin/api/users/{user}/facts/{key}"),
        ("DELETE", "/admin/api/users/{user}/facts/{key}"),
        ("DELETE", "/admin/api/users/{user}/episodes/{episode_id}"),
        ("POST", "/admin/api/users/{user}/identities"),
        ("DELETE", "/admin/api/users/{user}/identities/{identity_id}"),
        ("GET", "/admin/api/users/{user}/memories"),
        ("POST", "/admin/api/users/{user}/memories"),
        ("DELETE", "/admin/api/users/{user}/memories"),
        ("PUT", "/admin/api/users/{user}/memories/{memory_id}"),
        ("PATCH", "/admin/api/users/{user}/memories/{memory_id}"),
        ("DELETE", "/admin/api/users/{user}/memories/{memory_id}"),
        ("GET", "/admin/api/bots"),
        ("GET", "/admin/api/bots/{bot}/memory"),
        ("PUT", "/admin/api/bots/{bot}/memory/{key}"),
        ("DELETE", "/admin/api/bots/{bot}/memory/{key}"),
        ("POST", "/admin/api/prompt"),
        ("GET", "/admin/api/audit"),
    }
    text = json.dumps(document)
    for ref in set(_refs(document)):
        _, components, section, name = ref.split("/")
        assert name in document[components][section], ref
    put = document["paths"]["/admin/api/users/{user}/memory/{key}"]["put"]
    body = document["components"]["schemas"]["MemoryWrite"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "MemoryWrite"
    )
    assert set(body["properties"]) == {"value", "ttl", "memory_type"}
    assert "value" in body["required"]
    assert {"200", "401", "404", "422"} <= set(put["responses"])
    assert "ForgetReceipt" in text


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


# --- looking ------------------------------------------------------------------------------


async def test_search_by_name_account_or_id(api, meet):
    ana = await meet("ana", "Ana")
    bruno = await meet("bruno", "Bruno")

    by_name = (await api.get("/admin/api/users", params={"q": "AN"})).json()["users"]
    assert [u["id"] for u in by_name] == [ana]
    assert by_name[0]["identities"] == [{"kind": "console", "external_id": "ana"}]
    by_account = (await api.get("/admin/api/users", params={"q": "console:bruno"})).json()
    assert [u["id"] for u in by_account["users"]] == [bruno]
    by_id = (await api.get("/admin/api/users", params={"q": bruno})).json()
    assert [u["id"] for u in by_id["users"]] == [bruno]
    assert (await api.get("/admin/api/users", params={"q": "zed"})).json() == {"users": []}
    assert (await api.get("/admin/api/users", params={"q": "%"})).json() == {"users": []}
    empty = await api.get("/admin/api/users")
    assert empty.status_code == 422 and "?q=" in empty.json()["error"]


async def test_a_persons_detail_shows_every_scope_with_its_metadata(api, meet, runtime):
    ana = await meet("ana", "Ana")

    detail = (await api.get(users(ana))).json()

    assert detail["user"]["id"] == ana and detail["user"]["display_name"] == "ana"
    assert [(i["channel_kind"], i["external_id"]) for i in detail["identities"]] == [
        ("console", "ana")
    ]
    memory = {row["key"]: row for row in detail["memory"]}
    assert memory["name"]["value"] == "Ana"
    assert memory["name"]["memory_type"] == "fact"  # one name, not a copy as fact_name
    assert "fact_name" not in memory
    assert memory["language"]["value"] == "en"
    assert memory["language"]["ttl"] is None
    assert memory["language"]["created_at"] and memory["language"]["updated_at"]
    assert [(f["key"], f["value"], f["live"]) for f in detail["facts"]] == [("name", "Ana", True)]
    [session] = detail["sessions"]
    assert session["active_bot"] == "sales-bot" and session["ended_at"] is None
    assert {row["key"]: row["value"] for row in session["memory"]} == {"greeted": True}
    assert [t["role"] for t in session["turns"]] == ["user", "bot"] * 3
    assert session["turns"][0]["text"] == "hi"
    assert detail["episodes"] == []
    limited = (await api.get(users("console:ana"), params={"turns": 2})).json()
    assert [t["text"] for t in limited["sessions"][0]["turns"]] == ["English", SALES_GOT_IT]
    assert (await api.get(users("nobody"))).status_code == 404
    assert (await api.get(users(ana), params={"turns": "many"})).status_code == 422


# --- correcting memory -------------------------------------------------------------------


async def test_a_key_set_through_the_api_is_in_the_bots_next_answer(api, meet, runtime):
    ana = await meet("ana", "Ana")

    answer = await api.put(users(ana, "/memory/language"), json={"value": "es"})

    assert answer.status_code == 200
    assert answer.json()["key"] == "language" and answer.json()["value"] == "es"
    support = Chat(runtime, bot="support-bot", user="ana")
    assert await support.say("hola") == [
        "support-bot: ¡Hola, Ana! Soy el bot de soporte. ¿En qué puedo ayudarte?"
    ]


async def test_set_with_type_and_ttl_then_delete(api, meet, runtime, clock):
    ana = await meet("ana", "Ana")
    body = {"value": {"topic": "billing", "open": [1, 2]}, "ttl": 60, "memory_type": "context"}

    stored = (await api.put(users(ana, "/memory/ctx/last topic"), json=body)).json()

    assert stored["key"] == "ctx/last topic"
    assert stored["value"] == {"topic": "billing", "open": [1, 2]}
    assert stored["memory_type"] == "context" and stored["ttl"] is not None
    kept = (await api.put(users(ana, "/memory/note"), json={"value": None, "ttl": 0})).json()
    assert kept["value"] is None and kept["ttl"] is None
    clock.advance(61)
    keys = {row["key"] for row in (await api.get(users(ana))).json()["memory"]}
    assert "ctx/last topic" not in keys and "note" in keys
    assert (await api.delete(users(ana, "/memory/note"))).json() == {"deleted": "note"}
    again = await api.delete(users(ana, "/memory/note"))
    assert again.status_code == 404 and "no key 'note'" in again.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/memory/", {"value": 1}, 422, "memory key must not be empty"),
        ("/memory/" + "k" * 300, {"value": 1}, 422, "longer than 255"),
        ("/memory/k", "not json", 400, "body is not JSON"),
        ("/memory/k", b'{"value": NaN}', 400, "body is not JSON"),
        ("/memory/k", b"[" * 4000 + b"]" * 4000, 400, "JSON nested deeper than 100 levels"),
        ("/memory/k", b'{"value": ' + b"[" * 4000 + b"]" * 4000 + b"}", 400, "nested deeper"),
        ("/memory/k", b'{"value": "caf\xe9"}', 400, "body is not UTF-8"),
        ("/memory/ctl%1B%5B31mred", {"value": 1}, 422, "control character"),
        ("/memory/cr%0Dkey", {"value": 1}, 422, "control character"),
        ("/facts/tab%09key", {"value": 1}, 422, "control character"),
        ("/memory/k", b"", 400, "a JSON body is required"),
        ("/memory/k", {}, 422, "value: Field required"),
        ("/memory/k", {"value": 1, "colour": "red"}, 422, "colour"),
        ("/memory/k", {"value": 1, "ttl": -5}, 422, "ttl"),
        ("/memory/k", {"value": 1, "ttl": "5"}, 422, "ttl"),
        ("/memory/k", {"value": 1, "memory_type": "secret"}, 422, "memory_type"),
        ("/memory/k", {"value": ""}, 422, "use DELETE"),
        ("/memory/k", {"value": "x" * 70000}, 422, "value too large"),
        ("/facts/k", [1, 2], 422, "invalid body"),
        ("/facts/language", None, 409, "not a fact"),
        ("/episodes/nope", None, 404, "no episode"),
        ("/identities/nope", None, 404, "no identity"),
    ],
)
async def test_bad_input_is_a_clear_4xx_and_writes_nothing(
    api, meet, runtime, path, body, status, message
):
    ana = await meet("ana", "Ana")
    before = snapshot(runtime, ana)
    if body is None:
        answer = await api.delete(users(ana, path))
    elif isinstance(body, (bytes, str)):
        answer = await api.put(users(ana, path), content=body)
    else:
        answer = await api.put(users(ana, path), json=body)

    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]
    assert snapshot(runtime, ana) == before


async def test_unknown_people_and_bots_are_404(api, meet, runtime):
    ana = await meet("ana", "Ana")
    before = snapshot(runtime, ana)
    calls = [
        api.put(users("nobody", "/memory/k"), json={"value": 1}),
        api.delete(users("nobody")),
        api.get(users("nobody", "/export")),
        api.put(BOTS + "/no-bot/memory/k", json={"value": 1}),
        api.get(BOTS + "/no-bot/memory"),
        api.post("/admin/api/prompt", json={"user": ana, "bot": "no-bot"}),
        api.post("/admin/api/prompt", json={"user": "nobody", "bot": "sales-bot"}),
    ]
    for call in calls:
        answer = await call
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"].startswith(("no user", "unknown bot", "no bot")), answer.text
    assert snapshot(runtime, ana) == before


async def test_facts_are_set_and_deleted_with_their_history(api, meet):
    ana = await meet("ana", "Ana")

    stored = await api.put(users(ana, "/facts/name"), json={"value": "Ana Maria"})
    added = await api.put(users(ana, "/facts/city"), json={"value": "Lisbon"})

    assert stored.json()["memory_type"] == "fact" and added.status_code == 200
    facts = {f["key"]: f for f in (await api.get(users(ana))).json()["facts"]}
    changes = [(h["value"], h["action"], h["source"]) for h in facts["name"]["history"]]
    assert changes == [("Ana", "add", "bot"), ("Ana Maria", "update", "admin")]
    assert facts["name"]["history"][0]["superseded_at"] is not None
    assert [(h["action"], h["source"]) for h in facts["city"]["history"]] == [("add", "admin")]

    assert (await api.delete(users(ana, "/facts/city"))).json() == {"deleted": "city"}
    facts = {f["key"]: f for f in (await api.get(users(ana))).json()["facts"]}
    assert facts["city"]["live"] is False and facts["city"]["value"] is None
    assert [h["action"] for h in facts["city"]["history"]] == ["add", "delete"]


async def test_bot_memory_per_bot(api, meet):
    await meet("ana", "Ana")
    bots = (await api.get(BOTS)).json()["bots"]
    assert {b["name"] for b in bots} >= {"sales-bot", "support-bot", "welcome-bot"}
    assert {b["name"]: b["kind"] for b in bots}["welcome-bot"] == "dialog"

    put = await api.put(BOTS + "/support-bot/memory/tickets", json={"value": 41})

    assert put.status_code == 200 and put.json()["value"] == 41
    memory = (await api.get(BOTS + "/support-bot/memory")).json()
    assert memory["bot"] == "support-bot"
    assert [(r["key"], r["value"]) for r in memory["memory"]] == [("tickets", 41)]
    assert (await api.get(BOTS + "/sales-bot/memory")).json()["memory"] == []
    assert (await api.delete(BOTS + "/support-bot/memory/tickets")).status_code == 200
    assert (await api.delete(BOTS + "/support-bot/memory/tickets")).status_code == 404


async def test_an_episode_is_deleted_only_for_its_owner(api, meet, runtime):
    ana = await meet("ana", "Ana")
    bruno = await meet("bruno", "Bruno")
    episode = new_id()
    with runtime.db.write() as conn:
        conn.execute(
            insert(EPISODES).values(
                id=episode,
                user_id=ana,
                conversation_id=new_id(),
                bot="sales-bot",
                summary="Ana asked about plans",
                topics=["plans"],
                created_at=runtime.clock.now(),
            )
        )
    shown = (await api.get(users(ana))).json()["episodes"]
    assert [(e["id"], e["summary"]) for e in shown] == [(episode, "Ana asked about plans")]

    assert (await api.delete(users(bruno, f"/episodes/{episode}"))).status_code == 404
    assert (await api.delete(users(ana, f"/episodes/{episode}"))).json() == {"deleted": episode}
    assert (await api.get(users(ana))).json()["episodes"] == []


async def test_unlinking_an_account_but_never_the_last_one(api, meet, runtime):
    ana = await meet("ana", "Ana")
    [console] = (await api.get(users(ana))).json()["identities"]

    refused = await api.delete(users(ana, f"/identities/{console['id']}"))
    assert refused.status_code == 409 and "forget the person instead" in refused.json()["error"]

    with runtime.db.write() as conn:
        conn.execute(
            insert(IDENTITIES).values(
                id=new_id(),
                channel_kind="telegram",
                external_id="4242",
                user_id=ana,
                display_name="Ana",
                created_at=runtime.clock.now(),
            )
        )
    answer = await api.delete(users(ana, f"/identities/{console['id']}"))

    assert answer.json() == {"unlinked": "console:ana", "sessions_ended": 1}
    detail = (await api.get(users(ana))).json()
    assert [i["external_id"] for i in detail["identities"]] == ["4242"]
    assert detail["sessions"][0]["end_reason"] == "unlinked"
    again = Chat(runtime, bot="support-bot", user="ana")
    assert (await again.say("hi"))[0].startswith("support-bot: Hello! I'm the support bot. I don't")
    assert await again.user_id() != ana


# --- the whole person -----------------------------------------------------------------------


async def test_forget_answers_the_clis_receipt_and_the_person_is_gone(
    api, meet, runtime, db_url, monkeypatch, tmp_path
):
    ana = await meet("ana", "Ana")
    bea = await meet("bea", "Ana")  # the same conversation, for the CLI to forget

    answer = await api.delete(users(ana))

    from mnemobot.runtime.cli.commands import app

    monkeypatch.setenv("MNEMOBOT_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)  # no config/mnemobot.toml here: the built-in defaults
    # the command runs its own event loops, as in its own process: not on this test's loop
    result = await asyncio.to_thread(CliRunner().invoke, app, ["forget", bea, "--yes"])
    assert result.exit_code == 0, result.output
    cli_receipt = json.loads(result.output)
    assert answer.status_code == 200
    assert answer.json() == {"forgotten": ana, "removed": cli_receipt["removed"]}
    assert answer.json()["removed"]["user_memory"] == 2  # name and language
    assert (await api.get(users(ana))).status_code == 404
    assert (await api.get("/admin/api/users", params={"q": "ana"})).json() == {"users": []}
    assert (await api.delete(users(ana))).status_code == 404


async def test_export_is_the_clis_document(api, meet, runtime):
    ana = await meet("ana", "Ana")

    document = (await api.get(users("console:ana", "/export"))).json()

    assert document == json.loads(json.dumps(export_user(runtime.db, ana)))
    assert document["user_memory"] and document["identities"]


async def test_prompt_preview_is_what_the_bot_would_send(api, meet):
    ana = await meet("ana", "Ana")

    answer = await api.post(
        "/admin/api/prompt", json={"user": "console:ana", "bot": "support-bot", "message": "hi"}
    )

    preview = answer.json()
    assert answer.status_code == 200, answer.text
    assert preview["user_id"] == ana and preview["bot"] == "support-bot"
    assert preview["counted_with"] == "estimate"
    assert preview["messages"][0]["role"] == "system"
    assert "support assistant" in preview["messages"][0]["content"]
    assert any(i["section"] == "facts" and "Ana" in i["text"] for i in preview["items"])
    assert preview["report"].startswith("tokens: ")
    bad = await api.post("/admin/api/prompt", json={"user": ana})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid body: bot: Field required"


# --- the audit log -----------------------------------------------------------------------


async def test_every_write_is_audited_without_values_and_survives_forget(api, meet):
    ana = await meet("ana", "Ana")
    secret = "hunter2-do-not-log"
    await api.put(users(ana, "/memory/wifi"), json={"value": secret})
    await api.put(users(ana, "/facts/city"), json={"value": "Porto"})
    await api.delete(users(ana, "/memory/wifi"))
    await api.put(BOTS + "/sales-bot/memory/motd", json={"value": secret})
    await api.put(users(ana, "/memory/"), json={"value": 1})  # refused: not audited
    await api.get(users(ana, "/export"))
    receipt = (await api.delete(users(ana))).json()

    entries = (await api.get("/admin/api/audit")).json()["entries"]

    assert [(e["action"], e["target"]) for e in reversed(entries)] == [
        ("memory.set", "wifi"),
        ("fact.set", "city"),
        ("memory.delete", "wifi"),
        ("bot_memory.set", "motd"),
        ("user.export", None),
        ("user.forget", None),
    ]
    assert {e["actor"] for e in entries} == {ACTOR}
    assert entries[0]["route"] == "DELETE /admin/api/users/{user}"
    assert entries[0]["details"] == receipt["removed"]
    assert entries[-1]["route"] == "PUT /admin/api/users/{user}/memory/{key}"
    assert {e["user_id"] for e in entries if e["action"] != "bot_memory.set"} == {ana}
    text = json.dumps(entries)
    assert secret not in text and "Porto" not in text and TOKEN not in text
    mine = (await api.get("/admin/api/audit", params={"user_id": ana, "limit": 2})).json()
    assert [e["action"] for e in mine["entries"]] == ["user.forget", "user.export"]


async def test_recall_searches_one_persons_memory_with_where_each_result_came_from(
    api, meet, runtime
):
    ana = await meet("ana", "Ana", "Português")
    await meet("bea", "Bea", "Português")

    answer = await api.get(f"/admin/api/users/{ana}/recall", params={"q": "portugues"})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["user_id"], body["query"]) == (ana, "portugues")
    said = [r for r in body["results"] if r["kind"] == "turn" and r["role"] == "user"]
    assert [(r["text"], r["bot"], r["channel"], r["date"]) for r in said] == [
        ("Português", "sales-bot", "console:sales-bot", "2026-01-01")
    ]
    assert answer.headers["cache-control"] == "no-store"
    missing = await api.get(f"/admin/api/users/{ana}/recall")
    assert missing.status_code == 422 and "?q=" in missing.json()["error"]
    assert (await api.get("/admin/api/users/nobody/recall", params={"q": "x"})).status_code == 404
