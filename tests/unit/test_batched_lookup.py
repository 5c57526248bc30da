"""`support.batched.BatchedLookup`: lookups asked while a read runs go out together, on a real
thread; nothing is cached, errors and cancellations reach exactly the lookups they concern."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from vapi_calendar.support.batched import BatchedLookup, LookupsClosed


class Table:
    """A blocking `fetch_many` with a gate: each read can be held until the test lets it go."""

    def __init__(self, rows: dict[str, int]) -> None:
        self.rows = rows
        self.reads: list[list[str]] = []
        self.hold_next = False
        self.started = threading.Event()
        self.release = threading.Event()
        self.failing: set[str] = set()

    def fetch_many(self, keys: Sequence[str]) -> dict[str, int]:
        self.reads.append(list(keys))
        if self.hold_next:
            self.hold_next = False
            self.started.set()
            assert self.release.wait(30), "the test never released the read"
        if self.failing & set(keys):
            raise LookupError("the store failed")
        return {key: self.rows[key] for key in keys if key in self.rows}


@pytest.fixture
def thread() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(1)
    yield executor
    executor.shutdown(wait=True)


async def _with_a_read_in_flight(
    table: Table, lookup: BatchedLookup[str, int], key: str
) -> asyncio.Task[int | None]:
    """Start a lookup of `key` and return once its read is running (and held) on the thread."""
    table.hold_next = True
    first = asyncio.ensure_future(lookup.get(key))
    await asyncio.to_thread(table.started.wait, 30)
    return first


async def _asked(lookup: BatchedLookup[str, int], *keys: str) -> list[asyncio.Task[int | None]]:
    tasks = [asyncio.ensure_future(lookup.get(key)) for key in keys]
    await asyncio.sleep(0)  # each task runs up to its wait: all of them are now queued
    return tasks


async def test_a_lone_lookup_is_read_at_once_and_alone(thread: ThreadPoolExecutor) -> None:
    table = Table({"a": 1})
    lookup = BatchedLookup(table.fetch_many, thread)
    assert await lookup.get("a") == 1
    assert await lookup.get("missing") is None
    assert table.reads == [["a"], ["missing"]]


async def test_lookups_asked_during_a_read_go_out_together_when_it_ends(
    thread: ThreadPoolExecutor,
) -> None:
    table = Table({"a": 1, "b": 2, "c": 3})
    lookup = BatchedLookup(table.fetch_many, thread)
    first = await _with_a_read_in_flight(table, lookup, "a")
    queued = await _asked(lookup, "b", "c", "b", "nobody")
    assert table.reads == [["a"]]  # nothing else was sent while the first read ran
    table.release.set()
    assert await first == 1
    assert [await task for task in queued] == [2, 3, 2, None]
    # One read for the whole queue; the key asked twice is read once.
    assert table.reads == [["a"], ["b", "c", "nobody"]]


async def test_nothing_is_cached_a_change_between_reads_is_seen(
    thread: ThreadPoolExecutor,
) -> None:
    table = Table({"a": 1})
    lookup = BatchedLookup(table.fetch_many, thread)
    assert await lookup.get("a") == 1
    del table.rows["a"]
    assert await lookup.get("a") is None
    table.rows["a"] = 7
    assert await lookup.get("a") == 7


async def test_a_read_carries_at_most_max_batch_keys(thread: ThreadPoolExecutor) -> None:
    table = Table({key: n for n, key in enumerate("abcdef")})
    lookup = BatchedLookup(table.fetch_many, thread, max_batch=2)
    first = await _with_a_read_in_flight(table, lookup, "a")
    queued = await _asked(lookup, "b", "c", "d", "e", "f")
    table.release.set()
    assert [await first, *[await task for task in queued]] == [0, 1, 2, 3, 4, 5]
    assert table.reads == [["a"], ["b", "c"], ["d", "e"], ["f"]]
    with pytest.raises(ValueError, match="max_batch"):
        BatchedLookup(table.fetch_many, thread, max_batch=0)


async def test_a_failed_read_fails_its_lookups_only_and_the_next_read_is_made(
    thread: ThreadPoolExecutor,
) -> None:
    table = Table({"a": 1, "b": 2, "c": 3})
    lookup = BatchedLookup(table.fetch_many, thread, max_batch=2)
    first = await _with_a_read_in_flight(table, lookup, "a")
    table.failing = {"b"}
    b, c, a_again = await _asked(lookup, "b", "c", "a")
    table.release.set()
    assert await first == 1
    for failed in (b, c):  # read together, failed together
        with pytest.raises(LookupError, match="the store failed"):
            await failed
    assert await a_again == 1  # the next read went out regardless
    table.failing = set()
    assert await lookup.get("b") == 2


async def test_a_lookup_whose_caller_stopped_waiting_does_not_disturb_the_others(
    thread: ThreadPoolExecutor,
) -> None:
    table = Table({"a": 1, "b": 2, "c": 3})
    lookup = BatchedLookup(table.fetch_many, thread)
    first = await _with_a_read_in_flight(table, lookup, "a")
    first.cancel()  # the caller whose lookup is being read gives up
    b, c = await _asked(lookup, "b", "c")
    c.cancel()
    table.release.set()
    assert await b == 2
    for gone in (first, c):
        with pytest.raises(asyncio.CancelledError):
            await gone
    assert await lookup.get("c") == 3


async def test_lookups_after_the_thread_is_shut_down_fail_instead_of_hanging() -> None:
    executor = ThreadPoolExecutor(1)
    lookup = BatchedLookup(Table({"a": 1}).fetch_many, executor)
    assert await lookup.get("a") == 1
    executor.shutdown(wait=True)
    with pytest.raises(LookupsClosed):
        await asyncio.wait_for(lookup.get("a"), 30)
