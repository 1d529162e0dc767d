"""A person's free-text memories over the admin API (issue 16): list, add, edit (PUT and
PATCH), delete one and several at once, each audited; bad input is a clear 4xx that changes
nothing. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

USERS = "/admin/api/users"


async def _memories(api: Any, who: str) -> list[dict[str, Any]]:
    answer = await api.get(f"{USERS}/{who}/memories")
    assert answer.status_code == 200, answer.text
    return answer.json()["memories"]


async def test_add_edit_and_bulk_delete_memories(api, meet):
    ana = await meet("ana", "Ana")
    base = f"{USERS}/{ana}/memories"
    ids = []
    for text, topics in (("Prefers tea", ["drinks"]), ("Lives in Lisbon", []), ("Has a cat", [])):
        added = await api.post(base, json={"memory": text, "topics": topics, "input": "said so"})
        assert added.status_code == 200, added.text
        note = added.json()
        assert (note["text"], note["memory"], note["topics"]) == (text, text, topics)
        assert note["source"] == "admin" and note["input"] == "said so"
        ids.append(note["id"])

    put = await api.put(f"{base}/{ids[0]}", json={"memory": "Prefers green tea"})
    assert put.status_code == 200, put.text
    assert put.json()["topics"] == ["drinks"]  # kept when not given
    patch = await api.patch(f"{base}/{ids[0]}", json={"topics": ["drinks", "tea"]})
    assert patch.status_code == 200, patch.text
    assert (patch.json()["text"], patch.json()["topics"]) == (
        "Prefers green tea",
        ["drinks", "tea"],
    )

    bulk = await api.request("DELETE", base, json={"ids": [ids[1], ids[2]]})
    assert bulk.status_code == 200, bulk.text
    assert bulk.json() == {"deleted": [ids[1], ids[2]]}
    [left] = await _memories(api, "console:ana")  # any way of naming the person
    assert (left["id"], left["memory"]) == (ids[0], "Prefers green tea")
    detail = (await api.get(f"{USERS}/{ana}")).json()
    assert [m["id"] for m in detail["memories"]] == [ids[0]]

    one = await api.delete(f"{base}/{ids[0]}")
    assert one.status_code == 200 and one.json() == {"deleted": ids[0]}
    assert await _memories(api, ana) == []
    audit = (await api.get("/admin/api/audit", params={"user_id": ana})).json()["entries"]
    actions = [e["action"] for e in reversed(audit)]
    assert actions == ["memories.add"] * 3 + ["memories.edit"] * 2 + ["memories.delete"] * 2
    assert all("tea" not in str(e) for e in audit)  # ids and counts, never the text


async def test_bad_memory_input_is_a_clear_4xx_and_changes_nothing(api, meet):
    ana = await meet("ana", "Ana")
    base = f"{USERS}/{ana}/memories"
    kept = (await api.post(base, json={"memory": "Lives in Lisbon"})).json()

    cases = [
        ("POST", base, {"memory": ""}, 422, "invalid body: memory"),
        ("POST", base, {"memory": "   "}, 422, "is empty"),
        ("POST", base, {"memory": "x" * 2001}, 422, "invalid body: memory"),
        ("POST", base, {"memory": "ok", "topics": "work"}, 422, "invalid body: topics"),
        ("POST", base, {"memory": "ok", "topics": [1]}, 422, "invalid body: topics"),
        ("POST", base, {"memory": "ok", "extra": 1}, 422, "invalid body: extra"),
        ("POST", base, {"text": "ok"}, 422, "invalid body"),
        ("PUT", f"{base}/nope", {"memory": "x"}, 404, "has no memory 'nope'"),
        ("PATCH", f"{base}/nope", {"topics": ["x"]}, 404, "has no memory 'nope'"),
        ("DELETE", f"{base}/nope", None, 404, "has no memory 'nope'"),
        ("DELETE", base, {"ids": [kept["id"], "nope"]}, 404, "nothing was changed"),
        ("DELETE", base, {"ids": []}, 422, "invalid body: ids"),
        ("DELETE", base, {"ids": "abc"}, 422, "invalid body: ids"),
        ("POST", f"{USERS}/nobody@x.test/memories", {"memory": "x"}, 404, "no user"),
    ]
    for method, path, body, status, problem in cases:
        answer = await api.request(method, path, json=body)
        assert answer.status_code == status, (method, path, body, answer.text)
        assert problem in answer.json()["error"], (method, path, body, answer.text)
    [still] = await _memories(api, ana)
    assert still == kept


async def test_recall_over_the_api_finds_a_memory_with_its_id(api, meet):
    ana = await meet("ana", "Ana")
    note = (
        await api.post(f"{USERS}/{ana}/memories", json={"memory": "Plays the cello on Sundays"})
    ).json()

    answer = await api.get(f"{USERS}/{ana}/recall", params={"q": "cello"})

    assert answer.status_code == 200, answer.text
    [hit] = [r for r in answer.json()["results"] if r["kind"] == "memory"]
    assert (hit["id"], hit["text"]) == (note["id"], "Plays the cello on Sundays")
