"""The admin API creates a person before first contact and ties accounts to them (issue 16),
as ``mnemobot people add|link`` do; each change audited. SQLite and PostgreSQL."""

from __future__ import annotations

from tests.support import Chat

USERS = "/admin/api/users"


async def test_create_a_person_give_them_facts_and_their_first_message_is_theirs(api, runtime):
    created = await api.post(
        USERS,
        json={"name": "Ana Souza", "email": "ana@acme.test", "accounts": ["console:ana"]},
    )
    assert created.status_code == 200, created.text
    person = created.json()
    assert person["accounts"] == ["console:ana"] and person["email"] == "ana@acme.test"
    ana = person["id"]

    # memory by the e-mail, a fact by the account: both name the new person
    put = await api.put(f"{USERS}/ana@acme.test/memory/name", json={"value": "Ana"})
    assert put.status_code == 200, put.text
    fact = await api.put(f"{USERS}/console:ana/facts/company", json={"value": "Acme"})
    assert fact.status_code == 200, fact.text

    replies = await Chat(runtime, bot="support-bot", user="ana").say("hello")
    assert replies[0].startswith("support-bot: Hello, Ana!"), replies
    detail = (await api.get(f"{USERS}/{ana}")).json()
    assert [i["external_id"] for i in detail["identities"]] == ["ana"]
    assert [f["key"] for f in detail["facts"]] == ["company"]
    audit = (await api.get("/admin/api/audit", params={"user_id": ana})).json()["entries"]
    assert [e["action"] for e in reversed(audit)] == ["user.create", "memory.set", "fact.set"]


async def test_tie_an_account_on_merging_the_person_it_had(api, runtime, meet):
    bob = (await api.post(USERS, json={"email": "bob@acme.test"})).json()["id"]
    stranger = await meet("bob", "Bob")  # console account bob, a person of its own

    linked = await api.post(f"{USERS}/bob@acme.test/identities", json={"account": "console:bob"})

    assert linked.status_code == 200, linked.text
    assert linked.json() == {"linked": "console:bob", "user_id": bob, "merged_from": stranger}
    assert runtime.identity.find("console:bob") == bob
    memory = (await api.get(f"{USERS}/{bob}")).json()["memory"]
    assert {m["key"]: m["value"] for m in memory}["name"] == "Bob"
    [entry] = [
        e
        for e in (await api.get("/admin/api/audit")).json()["entries"]
        if e["action"] == "identity.link"
    ]
    assert (entry["target"], entry["details"]) == ("console:bob", {"merged_from": stranger})


async def test_bad_seeding_is_a_clear_4xx_and_writes_nothing(api, runtime):
    first = await api.post(USERS, json={"accounts": ["telegram:5550001"]})
    ana = first.json()["id"]

    cases = [
        (USERS, {"accounts": ["telgram:1"]}, 422, "did you mean telegram?"),
        (USERS, {"accounts": ["telegram:ana"]}, 422, "numeric user id"),
        (USERS, {"email": "not-an-address"}, 422, "is not an e-mail address"),
        (USERS, {"name": "Nobody"}, 422, "say who the person is"),
        (USERS, {"accounts": ["telegram:5550001"]}, 409, "already the account of user"),
        (USERS, {"accounts": "telegram:1"}, 422, "invalid body: accounts"),
        (f"{USERS}/nobody@x.test/identities", {"account": "console:x"}, 404, "no user"),
        (f"{USERS}/{ana}/identities", {"account": "telegram:5550001"}, 409, "already this"),
        (f"{USERS}/{ana}/identities", {"account": "slack:U1"}, 422, "TEAM:USER"),
    ]
    for path, body, status, problem in cases:
        answer = await api.post(path, json=body)
        assert answer.status_code == status, (body, answer.text)
        assert problem in answer.json()["error"], (body, answer.text)
    found = (await api.get(USERS, params={"q": "telegram:5550001"})).json()["users"]
    assert [u["id"] for u in found] == [ana]
    entries = (await api.get("/admin/api/audit")).json()["entries"]
    assert [e["action"] for e in entries] == ["user.create"]
