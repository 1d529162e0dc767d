"""EpisodeReader: a person's newest episodes as records, and the dicts bots are given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from mnemobot.runtime.episodes.reader import EpisodeReader, EpisodeRecord
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import EPISODES, USERS

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _episode(n: int, user_id: str, topics: list[str] | None) -> dict[str, object]:
    return {
        "id": f"{user_id}-e{n}",
        "user_id": user_id,
        "conversation_id": f"{user_id}-s{n}",
        "bot": "support",
        "summary": f"conversation {n}",
        "topics": topics,
        "sentiment": "positive" if n % 2 else None,
        "resolution": "resolved",
        "details": {"decisions": ["not shown to bots"]},
        "created_at": T0 + timedelta(hours=n),
    }


def test_the_newest_episodes_of_one_person_newest_first(database: Database) -> None:
    with database.write() as conn:
        for user_id in ("ana", "bob"):
            conn.execute(insert(USERS).values(id=user_id, display_name=user_id, created_at=T0))
        conn.execute(
            insert(EPISODES), [_episode(n, "ana", ["refunds"] if n else None) for n in range(3)]
        )
        conn.execute(insert(EPISODES), [_episode(9, "bob", ["other"])])

    found = EpisodeReader(database).recent("ana", limit=2)

    assert found == [
        EpisodeRecord(
            "ana-s2", "conversation 2", ("refunds",), None, "resolved", T0 + timedelta(hours=2)
        ),
        EpisodeRecord(
            "ana-s1",
            "conversation 1",
            ("refunds",),
            "positive",
            "resolved",
            T0 + timedelta(hours=1),
        ),
    ]
    assert [e.conversation_id for e in EpisodeReader(database).recent("ana", limit=5)] == [
        "ana-s2",
        "ana-s1",
        "ana-s0",
    ]
    assert EpisodeReader(database).recent("ana", limit=5)[-1].topics == ()  # none stored


def test_bots_are_given_the_seed_s_dict() -> None:
    record = EpisodeRecord(
        "s1", "User asked about refunds", ("refunds",), "positive", "resolved", T0
    )

    assert record.as_dict() == {
        "conversation_id": "s1",
        "summary": "User asked about refunds",
        "topics": ["refunds"],
        "sentiment": "positive",
        "resolution": "resolved",
        "created_at": "2026-03-01T09:30:00+00:00",
    }
