"""Several real worker processes on one PostgreSQL: order, parallelism, exactly-once, crashes.

Each worker is ``mnemobot run`` in a process of its own (see ``harness.py``); the test posts
Telegram webhook updates to whichever worker it chooses, as a load balancer would.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.telegram_api import FakeTelegramAPI

from .harness import Deployment

pytestmark = pytest.mark.slow  # worker processes: minutes on a busy machine


@pytest.fixture(scope="module")
def tg() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture(scope="module")
def four_workers(
    postgres_database: str, tg: FakeTelegramAPI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """Four workers shared by the tests of this module; each test talks as other people."""
    deployment = Deployment(
        tmp_path_factory.mktemp("four"), postgres_database, tg, token="4000:four-workers"
    )
    try:
        deployment.start(4)
        yield deployment
    finally:
        deployment.stop()


async def test_one_conversation_spread_over_four_workers_is_answered_in_order(
    four_workers: Deployment,
) -> None:
    d = four_workers
    user = 101
    texts = [f"m{i}" for i in range(10)]
    rng = random.Random(6)
    async with httpx.AsyncClient(timeout=10) as client:
        for i, text in enumerate(texts):
            assert await d.post(client, d.workers[i % 4], d.update(user, text)) == 200
            await asyncio.sleep(rng.uniform(0, 0.03))

    replies = await asyncio.to_thread(d.wait_replies, user, 10)
    await asyncio.sleep(0.3)  # nothing more arrives

    assert d.replies(user) == [f"{i}: m{i}" for i in range(10)] == replies
    assert d.seen(user) == texts
    assert [status for _, status in d.inbox(user)] == ["done"] * 10
    turns = {e["pid"] for e in d.events() if e["text"] in texts and e["kind"] == "end"}
    assert len(turns) > 1, "the turns ran in more than one worker"


async def test_slow_turns_of_different_conversations_run_in_parallel(
    four_workers: Deployment,
) -> None:
    d = four_workers
    people = {201: d.workers[0], 202: d.workers[1], 203: d.workers[0]}  # across and within
    async with httpx.AsyncClient(timeout=10) as client:
        statuses = await asyncio.gather(
            *(
                d.post(client, worker, d.update(user, f"slow {user}"))
                for user, worker in people.items()
            )
        )
    assert statuses == [200, 200, 200]
    for user in people:
        assert await asyncio.to_thread(d.wait_replies, user, 1) == [f"0: slow {user}"]

    spans = {}
    for user in people:
        start = d.wait_event("start", f"slow {user}")["t"]
        end = d.wait_event("end", f"slow {user}")["t"]
        spans[user] = (start, end)
    for a in people:
        for b in people:
            if a != b:
                assert spans[a][0] < spans[b][1], f"{a} started after {b} ended: {spans}"


async def test_the_same_event_sent_to_two_workers_at_once_is_handled_once(
    four_workers: Deployment,
) -> None:
    d = four_workers
    users = list(range(301, 306))
    async with httpx.AsyncClient(timeout=10) as client:
        for user in users:
            update = d.update(user, f"twice {user}")
            statuses = await asyncio.gather(
                d.post(client, d.workers[2], update), d.post(client, d.workers[3], update)
            )
            assert statuses == [200, 200]

    for user in users:
        assert await asyncio.to_thread(d.wait_replies, user, 1) == [f"0: twice {user}"]
    await asyncio.sleep(0.5)
    for user in users:
        assert d.replies(user) == [f"0: twice {user}"]
        assert d.seen(user) == [f"twice {user}"]
        assert [status for _, status in d.inbox(user)] == ["done"]
        assert [e["kind"] for e in d.events() if e["text"] == f"twice {user}"] == ["start", "end"]


async def test_a_worker_killed_mid_turn_leaves_the_event_to_another_which_answers_it_once(
    postgres_database: str, tg: FakeTelegramAPI, tmp_path: Path
) -> None:
    d = Deployment(tmp_path, postgres_database, tg, token="4001:crash", channel="tg-crash")
    try:
        doomed, survivor = d.start(2)
        user = 401
        async with httpx.AsyncClient(timeout=10) as client:
            assert await d.post(client, doomed, d.update(user, "block me")) == 200
        started = await asyncio.to_thread(d.wait_event, "start", "block me")
        assert started["pid"] == doomed.process.pid
        d.kill(doomed)  # SIGKILL in the middle of the turn
        (tmp_path / "release").touch()

        assert await asyncio.to_thread(d.wait_replies, user, 1) == ["0: block me"]
        await asyncio.sleep(1.5)  # several reclaimer passes: nothing is sent again

        assert d.replies(user) == ["0: block me"]
        assert d.seen(user) == ["block me"]  # written once, by the survivor
        assert [status for _, status in d.inbox(user)] == ["done"]
        runs = [(e["kind"], e["pid"]) for e in d.events() if e["text"] == "block me"]
        assert runs == [
            ("start", doomed.process.pid),
            ("start", survivor.process.pid),
            ("end", survivor.process.pid),
        ]
    finally:
        d.stop()


async def test_a_second_poller_for_one_telegram_token_is_refused(
    postgres_database: str, tg: FakeTelegramAPI, tmp_path: Path
) -> None:
    token = f"4002:{secrets.token_hex(4)}"
    d = Deployment(tmp_path, postgres_database, tg, token=token, channel="tg-poll", mode="polling")
    try:
        (first,) = d.start(1)
        second = d.launch()
        assert second.process.wait(30) == 1
        assert "another mnemobot process is already polling this Telegram bot token" in (
            second.output()
        )

        tg.push_message(token, 501, 501, "still there?")  # the first poller still answers
        assert await asyncio.to_thread(d.wait_replies, 501, 1) == ["0: still there?"]
        assert first.process.poll() is None
    finally:
        d.stop()
