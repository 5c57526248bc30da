"""`pipeline.answers.CallAnswers` on a real SQLite store: what each step costs in store round
trips, and that the answers it gives are the same either way."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from vapi_calendar.pipeline.answers import CallAnswers
from vapi_calendar.stores.sqlite import SQLiteStore


class CountingStore(SQLiteStore):
    """The real store, counting the record operations the pipeline asks of it."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.calls: Counter[str] = Counter()

    async def get_record(self, key: str) -> str | None:
        self.calls["get_record"] += 1
        return await super().get_record(key)

    async def put_record(self, key: str, value: str, ttl: float, **kw: Any) -> bool:
        self.calls["put_record"] += 1
        return await super().put_record(key, value, ttl, **kw)

    async def put_record_and_read(
        self, key: str, value: str, ttl: float, **kw: Any
    ) -> tuple[bool, str | None]:
        self.calls["put_record_and_read"] += 1
        # Not through put_record/get_record: one statement when it stores.
        return await super().put_record_and_read(key, value, ttl, **kw)


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    s = CountingStore(str(tmp_path / "answers.db"))
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def _answers(store: CountingStore, call_id: str = "call-1") -> CallAnswers:
    return CallAnswers(store, "booking", "u1", call_id, retention_seconds=60)


async def test_a_first_delivery_claims_and_looks_up_in_one_store_operation(
    store: CountingStore,
) -> None:
    answers = _answers(store)
    assert await answers.claim() is None
    assert await answers.first_attempt() is True  # answered from the claim
    assert store.calls == Counter(put_record_and_read=1)
    assert await answers.record({"booked": True}) == {"booked": True}
    assert store.calls == Counter(put_record_and_read=1, put_record=1)


async def test_a_later_delivery_gets_the_recorded_answer_and_is_not_first(
    store: CountingStore,
) -> None:
    first = _answers(store)
    await first.claim()
    await first.record({"booked": True, "eventId": "e1"})
    again = _answers(store)
    assert await again.claim() == {"booked": True, "eventId": "e1"}
    assert again.settled is True
    assert await again.first_attempt() is False


async def test_a_delivery_that_came_between_is_not_first_and_finds_no_answer_yet(
    store: CountingStore,
) -> None:
    first, second = _answers(store), _answers(store)
    assert await first.claim() is None
    assert await second.claim() is None
    assert (await first.first_attempt(), await second.first_attempt()) == (True, False)
    # The second finishes first; the first delivery's own answer then loses to it.
    assert await second.record({"booked": True, "by": "second"}) == {"booked": True, "by": "second"}
    assert await first.record({"booked": False}) == {"booked": True, "by": "second"}


async def test_without_a_claim_first_attempt_takes_the_marker_itself(
    store: CountingStore,
) -> None:
    answers = _answers(store, "call-2")
    assert await answers.recorded() is None
    assert await answers.first_attempt() is True
    assert await answers.first_attempt() is True  # asked again: the same delivery
    assert await _answers(store, "call-2").first_attempt() is False
    assert store.calls == Counter(get_record=1, put_record=2)
