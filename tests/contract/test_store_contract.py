"""One contract suite for every `Store` backend, plus SQLite-specific multi-connection checks.

Backend-specific setup lives only in the `make_store` fixture: add a backend to `BACKENDS` and a
branch there, and every contract test runs against it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiosqlite
import pymongo
import pytest
import pytest_asyncio

from tests.harness import mongo
from tests.harness.servers import free_port
from vapi_calendar.ports.stores import (
    AlreadyExists,
    ApiKey,
    CalendarWarning,
    Connection,
    NotFound,
    OAuthState,
    Store,
    StoreError,
    User,
)
from vapi_calendar.stores import store_from_url
from vapi_calendar.stores.mongo import MongoStore
from vapi_calendar.stores.sqlite import SCHEMA_VERSION, SQLiteStore
from vapi_calendar.stores.sqlite.store import MIGRATIONS

BACKENDS = ["sqlite", "mongo"]

StoreFactory = Callable[[], Store]


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A factory of unopened stores that all share the same backing database."""
    if request.param == "sqlite":
        # A not-yet-existing directory also checks that open() creates it.
        path = str(tmp_path / "data" / "store.db")
        yield lambda: SQLiteStore(path)
    elif request.param == "mongo":
        base: str = request.getfixturevalue("mongodb_url")
        url = mongo.with_database(base, mongo.unique_database_name())
        try:
            yield lambda: MongoStore(url)
        finally:
            mongo.drop_database(url)
    else:
        raise AssertionError(f"unknown backend {request.param}")


@pytest_asyncio.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[Store]:
    s = make_store()
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _user(user_id: str = "u1", **kwargs: Any) -> User:
    kwargs.setdefault("timezone", "Europe/Berlin")
    kwargs.setdefault("created_at", _utc(2025, 1, 2, 3, 4, 5, 123456))
    return User(id=user_id, **kwargs)


def _connection(user_id: str = "u1", **kwargs: Any) -> Connection:
    defaults: dict[str, Any] = {
        "access_token": "enc:access",
        "refresh_token": "enc:refresh",
        "expiry": _utc(2025, 6, 1, 12, 0, 0, 987654),
        "scopes": ("openid", "https://www.googleapis.com/auth/calendar.events"),
        "email": "person@example.com",
        "subject": "1234567890",
        "status": "connected",
        "updated_at": _utc(2025, 6, 1, 11, 0, 0, 1),
    }
    return Connection(user_id=user_id, **(defaults | kwargs))


def _state(state_hash: str = "h1", *, expires_in: float = 600, **kwargs: Any) -> OAuthState:
    kwargs.setdefault("user_id", "u1")
    kwargs.setdefault("code_verifier", "enc:verifier")
    expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
    return OAuthState(state_hash=state_hash, expires_at=expires_at, **kwargs)


def _assert_aware_utc(value: datetime | None) -> None:
    assert value is not None
    assert value.utcoffset() == timedelta(0)


# -- life cycle --------------------------------------------------------------------------------


async def test_ping_succeeds_on_open_store(store: Store) -> None:
    await store.ping()


async def test_open_is_idempotent(store: Store) -> None:
    await store.create_user(_user())
    await store.open()
    assert await store.get_user("u1") == _user()


async def test_operations_on_a_closed_store_raise_store_error(make_store: StoreFactory) -> None:
    s = make_store()
    with pytest.raises(StoreError):
        await s.ping()
    await s.open()
    await s.close()
    with pytest.raises(StoreError):
        await s.get_user("u1")


async def test_reopen_keeps_data(make_store: StoreFactory) -> None:
    first = make_store()
    await first.open()
    await first.create_user(_user(rules={"buffer": 15}))
    await first.link_assistant("a1", "u1")
    await first.link_phone_number("pn1", "u1")
    await first.save_connection(_connection())
    assert await first.put_record("k", "v", 60)
    await first.close()

    second = make_store()
    await second.open()
    try:
        assert await second.get_user("u1") == _user(rules={"buffer": 15})
        assert await second.user_for_assistant("a1") == "u1"
        assert await second.user_for_phone_number("pn1") == "u1"
        assert await second.get_connection("u1") == _connection()
        assert await second.get_record("k") == "v"
    finally:
        await second.close()


# -- users ---------------------------------------------------------------------------------------


async def test_create_and_get_user_round_trips(store: Store) -> None:
    user = _user(rules={"working_hours": {"mon": ["09:00", "17:00"]}, "buffer_minutes": 10})
    await store.create_user(user)
    got = await store.get_user("u1")
    assert got == user
    assert got is not None
    _assert_aware_utc(got.created_at)


async def test_get_unknown_user_is_none(store: Store) -> None:
    assert await store.get_user("nobody") is None


async def test_create_existing_user_raises_and_keeps_the_original(store: Store) -> None:
    await store.create_user(_user(timezone="UTC"))
    with pytest.raises(AlreadyExists):
        await store.create_user(_user(timezone="Asia/Tokyo"))
    got = await store.get_user("u1")
    assert got is not None and got.timezone == "UTC"


async def test_non_utc_created_at_comes_back_as_the_same_instant_in_utc(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    await store.create_user(_user(created_at=datetime(2025, 3, 1, 12, 0, tzinfo=plus_two)))
    got = await store.get_user("u1")
    assert got is not None
    _assert_aware_utc(got.created_at)
    assert got.created_at == _utc(2025, 3, 1, 10, 0)


async def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.create_user(_user(created_at=datetime(2025, 1, 1)))
    assert await store.get_user("u1") is None


async def test_rules_round_trip_as_a_dict(store: Store) -> None:
    rules: dict[str, Any] = {
        "working_hours": {"mon": [["09:00", "12:00"], ["13:00", "17:30"]], "sun": []},
        "buffer_minutes": 15,
        "min_notice_hours": 2.5,
        "allow_weekends": False,
        "calendar_id": None,
        "title": "Rendez-vous über Zoom ✓",
    }
    await store.create_user(_user(rules=rules))
    got = await store.get_user("u1")
    assert got is not None and got.rules == rules
    assert isinstance(got.rules, dict)


async def test_user_without_rules_has_an_empty_dict(store: Store) -> None:
    await store.create_user(_user())
    got = await store.get_user("u1")
    assert got is not None and got.rules == {}


async def test_update_user_changes_only_given_fields(store: Store) -> None:
    await store.create_user(_user(timezone="UTC", rules={"buffer": 5}))

    updated = await store.update_user("u1", timezone="America/New_York")
    assert updated == _user(timezone="America/New_York", rules={"buffer": 5})

    updated = await store.update_user("u1", rules={"buffer": 30, "extra": [1]})
    assert updated == _user(timezone="America/New_York", rules={"buffer": 30, "extra": [1]})

    updated = await store.update_user("u1", rules={})
    assert updated.rules == {}

    assert await store.get_user("u1") == updated


async def test_update_unknown_user_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.update_user("nobody", timezone="UTC")
    assert await store.get_user("nobody") is None


async def test_delete_user(store: Store) -> None:
    await store.create_user(_user())
    assert await store.delete_user("u1") is True
    assert await store.get_user("u1") is None
    assert await store.delete_user("u1") is False


# -- assistants ----------------------------------------------------------------------------------


async def test_link_unlink_and_relink_assistant(store: Store) -> None:
    await store.create_user(_user("u1"))
    await store.create_user(_user("u2"))
    assert await store.user_for_assistant("a1") is None

    await store.link_assistant("a1", "u1")
    await store.link_assistant("a2", "u1")
    assert await store.user_for_assistant("a1") == "u1"

    await store.link_assistant("a1", "u2")  # relink replaces
    assert await store.user_for_assistant("a1") == "u2"
    assert await store.user_for_assistant("a2") == "u1"

    assert await store.unlink_assistant("a1") is True
    assert await store.user_for_assistant("a1") is None
    assert await store.unlink_assistant("a1") is False
    assert await store.user_for_assistant("a2") == "u1"


async def test_link_to_unknown_user_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.link_assistant("a1", "nobody")
    assert await store.user_for_assistant("a1") is None


async def test_relink_to_unknown_user_keeps_existing_link(store: Store) -> None:
    await store.create_user(_user("u1"))
    await store.link_assistant("a1", "u1")
    with pytest.raises(NotFound):
        await store.link_assistant("a1", "nobody")
    assert await store.user_for_assistant("a1") == "u1"


# -- links of every platform ---------------------------------------------------------------------


async def test_links_are_per_platform_and_kind(store: Store) -> None:
    await store.create_user(_user("u1"))
    await store.create_user(_user("u2"))
    await store.put_link("retell", "agent", "agent_1", "u1")
    await store.put_link("elevenlabs", "agent", "agent_1", "u2")  # same id, another platform
    await store.put_link("retell", "phoneNumber", "+14155550100", "u2")
    assert await store.linked_user("retell", "agent", "agent_1") == "u1"
    assert await store.linked_user("elevenlabs", "agent", "agent_1") == "u2"
    assert await store.linked_user("vapi", "agent", "agent_1") is None
    assert await store.linked_user("retell", "phoneNumber", "agent_1") is None
    assert await store.linked_user("retell", "phoneNumber", "+14155550100") == "u2"

    await store.put_link("retell", "agent", "agent_1", "u2")  # relink replaces
    assert await store.linked_user("retell", "agent", "agent_1") == "u2"
    assert await store.delete_link("retell", "agent", "agent_1") is True
    assert await store.delete_link("retell", "agent", "agent_1") is False
    assert await store.linked_user("retell", "agent", "agent_1") is None
    assert await store.linked_user("elevenlabs", "agent", "agent_1") == "u2"
    with pytest.raises(NotFound):
        await store.put_link("retell", "agent", "agent_2", "nobody")
    assert await store.linked_user("retell", "agent", "agent_2") is None


async def test_a_tool_calls_user_and_connection_are_read_together(store: Store) -> None:
    """What every tool call reads first: the user (by id, or through a link) with its stored
    connection, exactly as the separate reads give them."""
    await store.create_user(_user("u1", rules={"slotMinutes": 20}))
    await store.create_user(_user("u2"))
    warning = CalendarWarning("team@example.com", "notFound", _utc(2025, 6, 1, 10, 0))
    await store.save_connection(_connection("u1", warnings=(warning,), provider="microsoft"))
    await store.put_link("retell", "agent", "agent_1", "u1")
    await store.put_link("vapi", "phoneNumber", "pn_2", "u2")

    found = await store.user_with_connection("u1")
    assert found is not None
    assert found.user == await store.get_user("u1")
    assert found.connection == await store.get_connection("u1")
    assert found.connection is not None and found.connection.provider == "microsoft"
    assert await store.linked_user_with_connection("retell", "agent", "agent_1") == found

    unconnected = await store.linked_user_with_connection("vapi", "phoneNumber", "pn_2")
    assert unconnected is not None
    assert unconnected.user == await store.get_user("u2") and unconnected.connection is None

    assert await store.user_with_connection("nobody") is None
    assert await store.linked_user_with_connection("retell", "agent", "pn_2") is None
    assert await store.linked_user_with_connection("vapi", "agent", "agent_1") is None
    await store.delete_user("u1")
    assert await store.linked_user_with_connection("retell", "agent", "agent_1") is None


async def test_tool_calls_reading_their_users_at_once_each_get_their_own(
    make_store: StoreFactory,
) -> None:
    """A burst of calls reads users and connections concurrently (SQLite sends reads asked
    while one runs together): each gets its own user, and a change made through another
    handle of the store is seen by the next read, with nothing cached."""
    store, admin = make_store(), make_store()
    await store.open()
    await admin.open()
    try:
        for n in range(12):
            await admin.create_user(_user(f"u{n}"))
            await admin.put_link("vapi", "agent", f"a{n}", f"u{n}")
            if n % 2 == 0:
                await admin.save_connection(_connection(f"u{n}", email=f"u{n}@example.com"))
        reads = await asyncio.gather(
            *(store.linked_user_with_connection("vapi", "agent", f"a{n}") for n in range(12)),
            *(store.user_with_connection(f"u{n}") for n in reversed(range(12))),
            store.linked_user_with_connection("vapi", "agent", "a_nobody"),
            store.linked_user_with_connection("vapi", "agent", "a3"),  # asked twice at once
        )
        by_link, by_id, nobody, again = reads[:12], reads[12:24], reads[24], reads[25]
        for n, (linked, direct) in enumerate(zip(by_link, reversed(by_id), strict=True)):
            assert linked is not None and linked == direct
            assert linked.user.id == f"u{n}"
            if n % 2 == 0:
                assert linked.connection is not None
                assert linked.connection.email == f"u{n}@example.com"
            else:
                assert linked.connection is None
        assert nobody is None
        assert again == by_link[3]

        await admin.delete_user("u4")
        await admin.put_link("vapi", "agent", "a5", "u6")
        after = await asyncio.gather(
            store.linked_user_with_connection("vapi", "agent", "a4"),
            store.user_with_connection("u4"),
            store.linked_user_with_connection("vapi", "agent", "a5"),
        )
        assert after[0] is None and after[1] is None
        assert after[2] is not None and after[2].user.id == "u6"
    finally:
        await store.close()
        await admin.close()


async def test_reads_of_users_cut_short_by_close_fail_with_a_store_error(
    make_store: StoreFactory,
) -> None:
    """Reads asked for as the store closes are answered or fail with `StoreError` (which the
    pipeline turns into a sentence); none is left waiting."""
    store = make_store()
    await store.open()
    await store.create_user(_user("u1"))
    await store.put_link("vapi", "agent", "a1", "u1")
    reads = [
        asyncio.ensure_future(store.linked_user_with_connection("vapi", "agent", "a1"))
        for _ in range(20)
    ]
    await asyncio.sleep(0)
    await store.close()
    outcomes = await asyncio.wait_for(asyncio.gather(*reads, return_exceptions=True), 30)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            assert isinstance(outcome, StoreError), repr(outcome)
        else:
            assert outcome is not None and outcome.user.id == "u1"
    with pytest.raises(StoreError):
        await store.linked_user_with_connection("vapi", "agent", "a1")


async def test_vapi_links_are_the_vapi_platforms_links(store: Store) -> None:
    """The Vapi-named methods (admin routes /api/assistants, /api/phone-numbers) and the
    platform links (/api/links/vapi/...) read and write the same data."""
    await store.create_user(_user("u1"))
    await store.link_assistant("asst_1", "u1")
    await store.put_link("vapi", "phoneNumber", "pn_1", "u1")
    assert await store.linked_user("vapi", "agent", "asst_1") == "u1"
    assert await store.user_for_phone_number("pn_1") == "u1"
    assert await store.delete_link("vapi", "agent", "asst_1") is True
    assert await store.user_for_assistant("asst_1") is None


async def test_delete_user_deletes_its_links_on_every_platform(store: Store) -> None:
    await store.create_user(_user("u1"))
    await store.create_user(_user("u2"))
    for platform in ("vapi", "retell", "elevenlabs"):
        await store.put_link(platform, "agent", "a1", "u1")
        await store.put_link(platform, "phoneNumber", "+14155550100", "u1")
        await store.put_link(platform, "agent", "b1", "u2")
    assert await store.delete_user("u1") is True
    for platform in ("vapi", "retell", "elevenlabs"):
        assert await store.linked_user(platform, "agent", "a1") is None
        assert await store.linked_user(platform, "phoneNumber", "+14155550100") is None
        assert await store.linked_user(platform, "agent", "b1") == "u2"


# -- API keys ------------------------------------------------------------------------------------


def _api_key(key_id: str, user_id: str = "u1", digest: str | None = None, **kw: Any) -> ApiKey:
    return ApiKey(
        id=key_id,
        user_id=user_id,
        digest=digest or f"digest-{key_id}",
        name=kw.get("name", ""),
        created_at=kw.get("created_at", _utc(2026, 1, 1, 12, 0, 0)),
    )


async def test_api_keys_are_created_listed_found_by_digest_and_deleted(store: Store) -> None:
    await store.create_user(_user("u1"))
    await store.create_user(_user("u2"))
    first = _api_key("k1", name="vapi prod", created_at=_utc(2026, 1, 1, 12, 0, 0, 123456))
    second = _api_key("k2", created_at=_utc(2026, 1, 2))
    await store.create_api_key(second)
    await store.create_api_key(first)
    await store.create_api_key(_api_key("k3", user_id="u2"))
    assert await store.list_api_keys("u1") == [first, second]  # oldest first, exact round trip
    assert await store.api_key_by_digest("digest-k1") == first
    assert await store.api_key_by_digest("nope") is None

    assert await store.delete_api_key("u2", "k1") is False  # not u2's key
    assert await store.api_key_by_digest("digest-k1") == first
    assert await store.delete_api_key("u1", "k1") is True
    assert await store.delete_api_key("u1", "k1") is False
    assert await store.api_key_by_digest("digest-k1") is None
    assert [k.id for k in await store.list_api_keys("u1")] == ["k2"]


async def test_api_key_ids_and_digests_are_unique_and_need_a_user(store: Store) -> None:
    await store.create_user(_user("u1"))
    await store.create_api_key(_api_key("k1"))
    with pytest.raises(AlreadyExists):
        await store.create_api_key(_api_key("k1", digest="other"))
    with pytest.raises(AlreadyExists):
        await store.create_api_key(_api_key("k2", digest="digest-k1"))
    with pytest.raises(NotFound):
        await store.create_api_key(_api_key("k3", user_id="nobody"))
    assert [k.id for k in await store.list_api_keys("u1")] == ["k1"]
    assert await store.list_api_keys("nobody") == []


async def test_delete_user_deletes_its_api_keys(store: Store) -> None:
    await store.create_user(_user("u1"))
    await store.create_user(_user("u2"))
    await store.create_api_key(_api_key("k1"))
    await store.create_api_key(_api_key("k2", user_id="u2"))
    assert await store.delete_user("u1") is True
    assert await store.api_key_by_digest("digest-k1") is None
    assert await store.list_api_keys("u1") == []
    assert await store.api_key_by_digest("digest-k2") is not None


async def test_delete_user_cascades_to_links_and_connection(store: Store) -> None:
    await store.create_user(_user("u1"))
    await store.create_user(_user("u2"))
    await store.link_assistant("a1", "u1")
    await store.link_assistant("a2", "u1")
    await store.link_assistant("b1", "u2")
    await store.save_connection(_connection("u1"))
    await store.save_connection(_connection("u2"))

    assert await store.delete_user("u1") is True

    assert await store.user_for_assistant("a1") is None
    assert await store.user_for_assistant("a2") is None
    assert await store.get_connection("u1") is None
    # The other user is untouched.
    assert await store.user_for_assistant("b1") == "u2"
    assert await store.get_connection("u2") == _connection("u2")
    assert [c.user_id for c in await store.list_connections()] == ["u2"]
    # A recreated user starts clean rather than inheriting old links.
    await store.create_user(_user("u1"))
    assert await store.user_for_assistant("a1") is None
    assert await store.get_connection("u1") is None


async def test_delete_user_takes_its_records_leases_and_pending_consents(store: Store) -> None:
    await store.create_user(_user("u1"))
    await store.create_user(_user("u2"))
    for owner in ("u1", "u2"):
        await store.put_record(f"answer:{owner}", "what the caller heard", 600, owner=owner)
        assert await store.acquire_lease(f"refresh:{owner}", "h", 600, owner=owner)
        await store.put_oauth_state(_state(f"s-{owner}", user_id=owner))
    await store.put_record("shared", "no owner", 600)

    assert await store.delete_user("u1") is True

    assert await store.get_record("answer:u1") is None
    assert await store.acquire_lease("refresh:u1", "someone-else", 600)  # free again
    assert await store.consume_oauth_state("s-u1", datetime.now(UTC)) is None
    # Nothing of anyone else's.
    assert await store.get_record("answer:u2") == "what the caller heard"
    assert await store.get_record("shared") == "no owner"
    assert not await store.acquire_lease("refresh:u2", "someone-else", 600)
    assert await store.consume_oauth_state("s-u2", datetime.now(UTC)) is not None


async def test_purge_deletes_what_has_expired_and_nothing_else(store: Store) -> None:
    await store.create_user(_user("u1"))
    await store.put_record("old", "v", 0.01, owner="u1")
    await store.put_record("live", "v", 600, owner="u1")
    assert await store.acquire_lease("old-lease", "h", 0.01)
    assert await store.acquire_lease("live-lease", "h", 600)
    await store.put_oauth_state(_state("old-state", expires_in=-1))
    await store.put_oauth_state(_state("live-state"))
    await asyncio.sleep(0.05)

    assert await store.purge_expired() >= 3
    assert await store.purge_expired() == 0
    assert await store.get_record("live") == "v"
    assert not await store.acquire_lease("live-lease", "other", 600)
    assert await store.consume_oauth_state("live-state", datetime.now(UTC)) is not None


async def test_consent_state_keeps_its_link_and_browser_binding(store: Store) -> None:
    await store.put_oauth_state(_state("s1", link="enc:link", browser="digest"))
    got = await store.consume_oauth_state("s1", datetime.now(UTC))
    assert got is not None and (got.link, got.browser) == ("enc:link", "digest")


# -- phone numbers -------------------------------------------------------------------------------


async def test_link_unlink_and_relink_phone_number(store: Store) -> None:
    await store.create_user(_user("u1"))
    await store.create_user(_user("u2"))
    assert await store.user_for_phone_number("pn1") is None

    await store.link_phone_number("pn1", "u1")
    await store.link_phone_number("pn2", "u1")
    assert await store.user_for_phone_number("pn1") == "u1"

    await store.link_phone_number("pn1", "u2")  # relink replaces
    assert await store.user_for_phone_number("pn1") == "u2"
    assert await store.user_for_phone_number("pn2") == "u1"

    assert await store.unlink_phone_number("pn1") is True
    assert await store.user_for_phone_number("pn1") is None
    assert await store.unlink_phone_number("pn1") is False
    assert await store.user_for_phone_number("pn2") == "u1"


async def test_phone_number_to_unknown_user_raises_not_found_and_keeps_the_link(
    store: Store,
) -> None:
    with pytest.raises(NotFound):
        await store.link_phone_number("pn1", "nobody")
    assert await store.user_for_phone_number("pn1") is None
    await store.create_user(_user("u1"))
    await store.link_phone_number("pn1", "u1")
    with pytest.raises(NotFound):
        await store.link_phone_number("pn1", "nobody")
    assert await store.user_for_phone_number("pn1") == "u1"


async def test_phone_number_and_assistant_links_are_separate(store: Store) -> None:
    await store.create_user(_user("u1"))
    await store.create_user(_user("u2"))
    await store.link_assistant("same-id", "u1")
    await store.link_phone_number("same-id", "u2")
    assert await store.user_for_assistant("same-id") == "u1"
    assert await store.user_for_phone_number("same-id") == "u2"
    assert await store.unlink_phone_number("same-id") is True
    assert await store.user_for_assistant("same-id") == "u1"


async def test_delete_user_removes_its_phone_number_links(store: Store) -> None:
    await store.create_user(_user("u1"))
    await store.create_user(_user("u2"))
    await store.link_phone_number("pn1", "u1")
    await store.link_phone_number("pn2", "u1")
    await store.link_phone_number("pn3", "u2")

    assert await store.delete_user("u1") is True

    assert await store.user_for_phone_number("pn1") is None
    assert await store.user_for_phone_number("pn2") is None
    assert await store.user_for_phone_number("pn3") == "u2"
    await store.create_user(_user("u1"))
    assert await store.user_for_phone_number("pn1") is None


# -- calendar connections --------------------------------------------------------------------------


async def test_connection_round_trips_every_field(store: Store) -> None:
    await store.create_user(_user())
    conn = _connection()
    await store.save_connection(conn)
    got = await store.get_connection("u1")
    assert got == conn
    assert got is not None
    assert isinstance(got.scopes, tuple)
    _assert_aware_utc(got.expiry)
    _assert_aware_utc(got.updated_at)


async def test_a_connection_says_which_provider_it_is_with(store: Store) -> None:
    await store.create_user(_user())
    assert _connection().provider == "google"  # the default, as for connections made before
    outlook = _connection(provider="microsoft", subject="tenant-id/object-id")
    await store.save_connection(outlook)
    assert await store.get_connection("u1") == outlook
    assert [c.provider for c in await store.list_connections()] == ["microsoft"]
    await store.set_connection_status("u1", "needs_reconnect")
    flagged = await store.get_connection("u1")
    assert flagged is not None and flagged.provider == "microsoft"
    await store.save_connection(_connection(provider="google"))  # switched back
    switched = await store.get_connection("u1")
    assert switched is not None and switched.provider == "google"


async def test_connection_round_trips_optional_fields_as_none(store: Store) -> None:
    await store.create_user(_user())
    conn = _connection(refresh_token=None, expiry=None, email=None, subject=None, scopes=())
    await store.save_connection(conn)
    assert await store.get_connection("u1") == conn


async def test_get_unknown_connection_is_none(store: Store) -> None:
    assert await store.get_connection("nobody") is None


async def test_save_connection_stamps_updated_at_when_missing(store: Store) -> None:
    await store.create_user(_user())
    before = datetime.now(UTC)
    await store.save_connection(_connection(updated_at=None))
    got = await store.get_connection("u1")
    assert got is not None
    _assert_aware_utc(got.updated_at)
    assert got.updated_at is not None
    assert before - timedelta(seconds=1) <= got.updated_at <= datetime.now(UTC)


async def test_save_connection_for_unknown_user_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.save_connection(_connection("nobody"))
    assert await store.get_connection("nobody") is None


async def test_save_connection_replaces_every_field(store: Store) -> None:
    await store.create_user(_user())
    await store.save_connection(_connection())
    replacement = _connection(
        access_token="enc:access2",
        refresh_token=None,  # a None must overwrite, not keep, the old value
        expiry=_utc(2026, 1, 1),
        scopes=("openid",),
        email="other@example.com",
        subject="999",
        status="needs_reconnect",
        updated_at=_utc(2026, 1, 1, 0, 0, 1),
    )
    await store.save_connection(replacement)
    assert await store.get_connection("u1") == replacement
    assert len(await store.list_connections()) == 1


async def test_concurrent_saves_leave_exactly_one_whole_version(store: Store) -> None:
    await store.create_user(_user())
    versions = [
        _connection(
            access_token=f"enc:access{i}",
            refresh_token=f"enc:refresh{i}",
            email=f"p{i}@example.com",
            subject=str(i),
            scopes=tuple(f"scope{j}" for j in range(i % 4)),
        )
        for i in range(30)
    ]
    await asyncio.gather(*(store.save_connection(v) for v in versions))
    got = await store.get_connection("u1")
    assert got in versions  # never a mix of two writes


async def test_set_connection_status(store: Store) -> None:
    await store.create_user(_user())
    await store.save_connection(_connection(updated_at=_utc(2020, 1, 1)))

    assert await store.set_connection_status("u1", "needs_reconnect") is True
    got = await store.get_connection("u1")
    assert got is not None and got.status == "needs_reconnect"
    # Everything else is unchanged except the modification time, which moves forward.
    assert got.access_token == "enc:access" and got.scopes == _connection().scopes
    assert got.updated_at is not None and got.updated_at > _utc(2020, 1, 1)

    assert await store.set_connection_status("u1", "connected") is True
    got = await store.get_connection("u1")
    assert got is not None and got.status == "connected"

    assert await store.set_connection_status("nobody", "connected") is False
    assert await store.get_connection("nobody") is None


async def test_delete_connection(store: Store) -> None:
    await store.create_user(_user())
    await store.save_connection(_connection())
    assert await store.delete_connection("u1") is True
    assert await store.get_connection("u1") is None
    assert await store.delete_connection("u1") is False
    assert await store.get_user("u1") is not None  # the user stays


async def test_list_connections(store: Store) -> None:
    assert await store.list_connections() == []
    for user_id in ("u1", "u2", "u3"):
        await store.create_user(_user(user_id))
    await store.save_connection(_connection("u1"))
    await store.save_connection(_connection("u3", status="needs_reconnect"))
    listed = await store.list_connections()
    assert sorted(listed, key=lambda c: c.user_id) == [
        _connection("u1"),
        _connection("u3", status="needs_reconnect"),
    ]


async def test_calendar_warnings_round_trip_and_change_nothing_else(store: Store) -> None:
    await store.create_user(_user())
    assert await store.set_calendar_warnings("u1", ()) is False  # no connection yet
    await store.save_connection(_connection())
    assert (await store.get_connection("u1")).warnings == ()  # type: ignore[union-attr]
    warnings = (
        CalendarWarning("a@group.calendar.google.com", "notFound", _utc(2025, 6, 2, 1, 2, 3, 4567)),
        CalendarWarning("b@example.com", "internalError", _utc(2025, 6, 3)),
    )
    assert await store.set_calendar_warnings("u1", warnings) is True
    got = await store.get_connection("u1")
    assert got == _connection(warnings=warnings)  # updated_at untouched too
    assert got is not None
    _assert_aware_utc(got.warnings[0].since)
    assert await store.set_calendar_warnings("u1", warnings[1:]) is True
    assert (await store.get_connection("u1")).warnings == warnings[1:]  # type: ignore[union-attr]
    assert await store.set_calendar_warnings("nobody", warnings) is False


async def test_save_connection_writes_the_warnings_it_is_given(store: Store) -> None:
    await store.create_user(_user())
    warning = CalendarWarning("shared@example.com", "notFound", _utc(2025, 6, 2))
    await store.save_connection(_connection(warnings=(warning,)))
    assert (await store.get_connection("u1")).warnings == (warning,)  # type: ignore[union-attr]
    await store.save_connection(_connection())  # a new grant starts without warnings
    assert (await store.get_connection("u1")).warnings == ()  # type: ignore[union-attr]


# -- OAuth state ---------------------------------------------------------------------------------


async def test_oauth_state_round_trips_and_is_single_use(store: Store) -> None:
    state = _state()
    await store.put_oauth_state(state)
    now = datetime.now(UTC)
    got = await store.consume_oauth_state("h1", now)
    assert got == state
    assert got is not None
    _assert_aware_utc(got.expires_at)
    assert await store.consume_oauth_state("h1", now) is None


async def test_oauth_state_keeps_the_provider_it_was_started_with(store: Store) -> None:
    await store.put_oauth_state(_state("google-state"))
    await store.put_oauth_state(_state("microsoft-state", provider="microsoft"))
    google = await store.consume_oauth_state("google-state", datetime.now(UTC))
    microsoft = await store.consume_oauth_state("microsoft-state", datetime.now(UTC))
    assert google is not None and google.provider == "google"
    assert microsoft is not None and microsoft.provider == "microsoft"


async def test_consume_unknown_oauth_state_is_none(store: Store) -> None:
    assert await store.consume_oauth_state("missing", datetime.now(UTC)) is None


async def test_concurrent_consumes_have_exactly_one_winner(store: Store) -> None:
    await store.put_oauth_state(_state())
    now = datetime.now(UTC)
    results = await asyncio.gather(*(store.consume_oauth_state("h1", now) for _ in range(30)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].state_hash == "h1"


async def test_expired_oauth_state_is_none_and_gone(store: Store) -> None:
    state = _state(expires_in=600)
    await store.put_oauth_state(state)
    after_expiry = state.expires_at + timedelta(seconds=1)
    assert await store.consume_oauth_state("h1", after_expiry) is None
    # It was removed, so even a caller whose clock says "still valid" cannot use it.
    assert await store.consume_oauth_state("h1", datetime.now(UTC)) is None


async def test_oauth_states_are_independent(store: Store) -> None:
    await store.put_oauth_state(_state("h1", user_id="u1"))
    await store.put_oauth_state(_state("h2", user_id="u2"))
    now = datetime.now(UTC)
    first = await store.consume_oauth_state("h1", now)
    second = await store.consume_oauth_state("h2", now)
    assert first is not None and first.user_id == "u1"
    assert second is not None and second.user_id == "u2"


# -- leases ----------------------------------------------------------------------------------------


async def test_concurrent_acquires_have_exactly_one_winner(store: Store) -> None:
    holders = [f"holder-{i}" for i in range(50)]
    results = await asyncio.gather(*(store.acquire_lease("refresh:u1", h, 30) for h in holders))
    assert results.count(True) == 1
    winner = holders[results.index(True)]
    # The winner really holds it: it can re-acquire, nobody else can.
    assert await store.acquire_lease("refresh:u1", winner, 30) is True
    assert await store.acquire_lease("refresh:u1", "someone-else", 30) is False


async def test_concurrent_takeover_of_an_expired_lease_has_exactly_one_winner(
    store: Store,
) -> None:
    # The harder race: the key exists, so uniqueness alone does not decide; replacing the
    # expired holder must still be a single atomic step.
    for round_ in range(3):
        name = f"lock-{round_}"
        assert await store.acquire_lease(name, "old", 0.05) is True
        await asyncio.sleep(0.1)
        holders = [f"holder-{i}" for i in range(30)]
        results = await asyncio.gather(*(store.acquire_lease(name, h, 30) for h in holders))
        assert results.count(True) == 1, results
        assert await store.acquire_lease(name, "old", 30) is False


async def test_leases_with_different_names_are_independent(store: Store) -> None:
    assert await store.acquire_lease("a", "h1", 30) is True
    assert await store.acquire_lease("b", "h2", 30) is True
    assert await store.acquire_lease("a", "h2", 30) is False


async def test_reentrant_acquire_extends_the_lease(store: Store) -> None:
    assert await store.acquire_lease("lock", "h1", 0.3) is True
    assert await store.acquire_lease("lock", "h1", 30) is True  # extend
    await asyncio.sleep(0.5)  # past the first TTL, within the extended one
    assert await store.acquire_lease("lock", "h2", 30) is False


async def test_expired_lease_can_be_taken_over(store: Store) -> None:
    assert await store.acquire_lease("lock", "h1", 0.1) is True
    assert await store.acquire_lease("lock", "h2", 30) is False
    await asyncio.sleep(0.25)
    assert await store.acquire_lease("lock", "h2", 30) is True
    assert await store.acquire_lease("lock", "h1", 30) is False


async def test_release_by_non_holder_does_nothing(store: Store) -> None:
    assert await store.acquire_lease("lock", "h1", 30) is True
    await store.release_lease("lock", "h2")
    assert await store.acquire_lease("lock", "h2", 30) is False


async def test_release_by_holder_frees_the_lease(store: Store) -> None:
    assert await store.acquire_lease("lock", "h1", 30) is True
    await store.release_lease("lock", "h1")
    assert await store.acquire_lease("lock", "h2", 30) is True
    await store.release_lease("missing", "h1")  # releasing nothing is harmless


async def test_stale_holder_cannot_release_a_taken_over_lease(store: Store) -> None:
    assert await store.acquire_lease("lock", "h1", 0.1) is True
    await asyncio.sleep(0.25)
    assert await store.acquire_lease("lock", "h2", 30) is True
    await store.release_lease("lock", "h1")  # h1 wakes up late and releases
    assert await store.acquire_lease("lock", "h3", 30) is False


# -- idempotency records -----------------------------------------------------------------------


async def test_record_first_writer_wins(store: Store) -> None:
    assert await store.get_record("k") is None
    assert await store.put_record("k", "first", 60) is True
    assert await store.put_record("k", "second", 60) is False
    assert await store.get_record("k") == "first"


async def test_concurrent_put_record_has_exactly_one_winner(store: Store) -> None:
    values = [f"value-{i}" for i in range(50)]
    results = await asyncio.gather(*(store.put_record("call-1", v, 60) for v in values))
    assert results.count(True) == 1
    assert await store.get_record("call-1") == values[results.index(True)]


async def test_expired_record_is_hidden_and_can_be_taken_over(store: Store) -> None:
    assert await store.put_record("k", "old", 0.1) is True
    await asyncio.sleep(0.25)
    assert await store.get_record("k") is None
    assert await store.put_record("k", "new", 60) is True
    assert await store.get_record("k") == "new"
    assert await store.put_record("k", "newer", 60) is False


async def test_concurrent_takeover_of_an_expired_record_has_exactly_one_winner(
    store: Store,
) -> None:
    assert await store.put_record("k", "old", 0.05) is True
    await asyncio.sleep(0.1)
    values = [f"value-{i}" for i in range(30)]
    results = await asyncio.gather(*(store.put_record("k", v, 60) for v in values))
    assert results.count(True) == 1, results
    assert await store.get_record("k") == values[results.index(True)]


async def test_two_stores_on_one_database_contend_correctly(make_store: StoreFactory) -> None:
    # Two handles are what two server processes have: separate connections (pools) to one
    # database; every guarantee must hold across them.
    a, b = make_store(), make_store()
    await a.open()
    await b.open()
    try:
        attempts = [((a, b)[i % 2], f"holder-{i}") for i in range(50)]
        results = await asyncio.gather(*(s.acquire_lease("L", h, 30) for s, h in attempts))
        assert results.count(True) == 1
        winner = attempts[results.index(True)][1]
        assert await a.acquire_lease("L", winner, 30) is True  # re-entrant through either
        assert await b.acquire_lease("L", winner, 30) is True
        await a.release_lease("L", "not-the-holder")
        assert await b.acquire_lease("L", "not-the-holder", 30) is False

        await a.put_oauth_state(_state())
        now = datetime.now(UTC)
        consumed = await asyncio.gather(
            *((a, b)[i % 2].consume_oauth_state("h1", now) for i in range(20))
        )
        assert sum(r is not None for r in consumed) == 1

        puts = await asyncio.gather(*((a, b)[i % 2].put_record("R", str(i), 60) for i in range(50)))
        assert puts.count(True) == 1
        assert await b.get_record("R") == str(puts.index(True))
    finally:
        await a.close()
        await b.close()


async def test_put_record_and_read_reads_the_other_record_as_it_stands(store: Store) -> None:
    assert await store.put_record("answer", "A", 60) is True
    assert await store.put_record_and_read("started", "1", 60, read="answer") == (True, "A")
    # Not stored the second time (first writer wins); the read still happens.
    assert await store.put_record_and_read("started", "2", 60, read="answer") == (False, "A")
    assert await store.get_record("started") == "1"
    assert await store.put_record_and_read("other", "1", 60, read="missing") == (True, None)
    assert await store.put_record("old", "x", 0.05) is True
    await asyncio.sleep(0.1)
    assert await store.put_record_and_read("third", "1", 60, read="old") == (True, None)
    # Reading the record being put sees it stored.
    assert await store.put_record_and_read("self", "v", 60, read="self") == (True, "v")


async def test_concurrent_put_record_and_read_has_exactly_one_winner(store: Store) -> None:
    results = await asyncio.gather(
        *(store.put_record_and_read("started", str(i), 60, read="answer") for i in range(30))
    )
    assert [stored for stored, _ in results].count(True) == 1
    assert {read for _, read in results} == {None}


async def test_records_that_need_not_be_durable_keep_every_guarantee(
    make_store: StoreFactory,
) -> None:
    # Another handle is another process: what one writes with durable=False the other sees at
    # once, first writer wins across both, and deleting the owner deletes it.
    a, b = make_store(), make_store()
    await a.open()
    await b.open()
    try:
        await a.create_user(_user())
        puts = await asyncio.gather(
            *(
                (a, b)[i % 2].put_record("R", str(i), 60, owner="u1", durable=i % 3 == 0)
                for i in range(30)
            )
        )
        assert puts.count(True) == 1
        assert await b.get_record("R") == await a.get_record("R") == str(puts.index(True))
        stored = await b.put_record_and_read("S", "1", 60, read="R", owner="u1", durable=False)
        assert stored == (True, str(puts.index(True)))
        assert await a.delete_user("u1") is True
        assert (await b.get_record("R"), await b.get_record("S")) == (None, None)
    finally:
        await a.close()
        await b.close()


async def test_records_are_independent(store: Store) -> None:
    assert await store.put_record("k1", "v1", 60) is True
    assert await store.put_record("k2", "v2", 60) is True
    assert (await store.get_record("k1"), await store.get_record("k2")) == ("v1", "v2")


# == SQLite only ==================================================================================


@pytest.fixture
def sqlite_path(tmp_path: Path) -> str:
    return str(tmp_path / "shared.db")


async def _user_version(path: str) -> int:
    async with aiosqlite.connect(path) as db, db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_sqlite_store_from_url(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    s = store_from_url(f"sqlite:///{path}")
    assert isinstance(s, SQLiteStore)
    await s.open()
    try:
        await s.ping()
    finally:
        await s.close()
    assert path.exists()


async def test_sqlite_commits_wait_for_the_disk_except_coordination_records(
    sqlite_path: str,
) -> None:
    # Users, tokens and single-use markers must survive a power cut (synchronous=FULL: each
    # commit waits for an fsync of the log); leases, answers and booking markers only matter
    # while the processes live, so their connection skips it (NORMAL, in WAL mode).
    s = SQLiteStore(sqlite_path)
    await s.open()
    try:
        modes = {}
        for name, db in (("durable", s._db), ("coordination", s._coordination_db)):
            assert db is not None
            (journal,) = (await db.execute_fetchall("PRAGMA journal_mode"))[0]
            (synchronous,) = (await db.execute_fetchall("PRAGMA synchronous"))[0]
            (secure,) = (await db.execute_fetchall("PRAGMA secure_delete"))[0]
            modes[name] = (journal, synchronous, secure)
        assert modes == {"durable": ("wal", 2, 1), "coordination": ("wal", 1, 1)}
    finally:
        await s.close()
    assert s._db is None and s._coordination_db is None


async def test_sqlite_writes_of_one_process_take_turns_instead_of_meeting_busy(
    sqlite_path: str,
) -> None:
    # With no busy wait allowed at all, a write that found the other connection's write lock
    # taken would fail at once ("database is busy"): this process's writes on its two
    # connections must queue for each other instead.
    s = SQLiteStore(sqlite_path, busy_timeout_ms=0)
    await s.open()
    try:
        await s.create_user(_user())
        writes = []
        for i in range(60):
            writes.append(s.put_record(f"answer-{i}", "v", 60, owner="u1", durable=False))
            writes.append(s.acquire_lease(f"lease-{i}", "h", 30, owner="u1"))
            writes.append(s.update_user("u1", rules={"round": i}))
            writes.append(s.put_record(f"used-{i}", "1", 60))
        await asyncio.gather(*writes)
        assert await s.delete_user("u1") is True
        assert await s.get_record("answer-0") is None and await s.get_record("used-0") == "1"
    finally:
        await s.close()


async def test_sqlite_reopen_keeps_schema_version(sqlite_path: str) -> None:
    first = SQLiteStore(sqlite_path)
    await first.open()
    await first.create_user(_user())
    await first.close()
    assert await _user_version(sqlite_path) == SCHEMA_VERSION >= 1

    second = SQLiteStore(sqlite_path)
    await second.open()  # must not try to re-create existing tables
    try:
        assert await second.get_user("u1") == _user()
    finally:
        await second.close()
    assert await _user_version(sqlite_path) == SCHEMA_VERSION


async def test_sqlite_upgrades_a_version_1_database_keeping_its_data(sqlite_path: str) -> None:
    # A database written by the first release: schema 1, a user with an assistant link and a
    # connection.
    async with aiosqlite.connect(sqlite_path) as db:
        for sql in MIGRATIONS[0]:
            await db.execute(sql)
        await db.execute("INSERT INTO users (id, timezone, created_at) VALUES ('u1', 'UTC', 0)")
        await db.execute("INSERT INTO assistants (assistant_id, user_id) VALUES ('a1', 'u1')")
        await db.execute(
            "INSERT INTO google_connections (user_id, access_token, scopes, status, updated_at) "
            "VALUES ('u1', 'enc:access', '[]', 'connected', 0)"
        )
        await db.execute("PRAGMA user_version=1")
        await db.commit()
    s = SQLiteStore(sqlite_path)
    await s.open()
    try:
        got = await s.get_connection("u1")
        assert got is not None and got.access_token == "enc:access" and got.warnings == ()
        assert got.provider == "google"  # connections made before Microsoft 365 are Google's
        assert await s.user_for_assistant("a1") == "u1"
        await s.link_phone_number("pn1", "u1")  # added by a later migration
        assert await s.user_for_phone_number("pn1") == "u1"
        await s.put_record("r", "v", 60, owner="u1")  # records gained an owner
    finally:
        await s.close()
    assert await _user_version(sqlite_path) == SCHEMA_VERSION == len(MIGRATIONS)


async def test_sqlite_moves_vapi_links_of_a_version_4_database_into_platform_links(
    sqlite_path: str,
) -> None:
    async with aiosqlite.connect(sqlite_path) as db:
        for statements in MIGRATIONS[:4]:
            for sql in statements:
                await db.execute(sql)
        await db.execute("INSERT INTO users (id, timezone, created_at) VALUES ('u1', 'UTC', 0)")
        await db.execute("INSERT INTO assistants (assistant_id, user_id) VALUES ('a1', 'u1')")
        await db.execute(
            "INSERT INTO phone_numbers (phone_number_id, user_id) VALUES ('pn1', 'u1')"
        )
        await db.execute("PRAGMA user_version=4")
        await db.commit()
    s = SQLiteStore(sqlite_path)
    await s.open()
    try:
        assert await s.linked_user("vapi", "agent", "a1") == "u1"
        assert await s.linked_user("vapi", "phoneNumber", "pn1") == "u1"
        assert await s.user_for_assistant("a1") == "u1"
    finally:
        await s.close()
    assert await _user_version(sqlite_path) == SCHEMA_VERSION


async def test_mongo_moves_vapi_links_of_the_old_collections_into_platform_links(
    mongodb_url: str,
) -> None:
    url = mongo.with_database(mongodb_url, mongo.unique_database_name())
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(url)
    try:
        db = client.get_default_database()
        db.users.insert_one({"_id": "u1", "timezone": "UTC", "rules": "{}", "created_at": None})
        db.assistants.insert_one({"_id": "a1", "user_id": "u1"})
        db.phone_numbers.insert_one({"_id": "pn1", "user_id": "u1"})
        s = MongoStore(url)
        await s.open()
        try:
            assert await s.user_for_assistant("a1") == "u1"
            assert await s.linked_user("vapi", "phoneNumber", "pn1") == "u1"
        finally:
            await s.close()
        assert db.assistants.count_documents({}) == 0
        assert db.phone_numbers.count_documents({}) == 0
    finally:
        client.close()
        mongo.drop_database(url)


def _in_another_process(path: str, call: str) -> None:
    """Run `await store.<call>` on a fresh store in a separate process (as a CLI command does)."""
    code = (
        "import asyncio\n"
        "from vapi_calendar.stores.sqlite import SQLiteStore\n"
        "async def main():\n"
        f"    store = SQLiteStore({path!r})\n"
        "    await store.open()\n"
        f"    await store.{call}\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_sqlite_reader_sees_other_processes_after_another_open_in_its_own(
    sqlite_path: str,
) -> None:
    # The server's store stays open while a test harness (or anything in the same process)
    # opens and closes a second one; a CLI command in another process then writes. Opening
    # must not disturb the first store's locks, or the CLI takes itself for the last
    # connection, deletes the WAL and the server keeps reading the old one.
    reader = SQLiteStore(sqlite_path)
    await reader.open()
    try:
        await reader.create_user(_user())
        second = SQLiteStore(sqlite_path)
        await second.open()
        await second.close()
        await asyncio.to_thread(_in_another_process, sqlite_path, 'link_assistant("a1", "u1")')
        assert await reader.user_for_assistant("a1") == "u1"
        await asyncio.to_thread(_in_another_process, sqlite_path, 'unlink_assistant("a1")')
        assert await reader.user_for_assistant("a1") is None
    finally:
        await reader.close()


async def test_sqlite_refuses_a_newer_schema(sqlite_path: str) -> None:
    async with aiosqlite.connect(sqlite_path) as db:
        await db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1:d}")
        await db.commit()
    s = SQLiteStore(sqlite_path)
    with pytest.raises(StoreError, match="newer"):
        await s.open()
    with pytest.raises(StoreError):
        await s.ping()  # a failed open leaves the store closed


async def test_sqlite_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "app.db"
    s = SQLiteStore(str(path))
    await s.open()
    try:
        await s.create_user(_user())  # a write, so the WAL side files exist
        files = [p for p in path.parent.iterdir() if p.name.startswith("app.db")]
        assert path in files and len(files) >= 2  # the database plus its -wal/-shm
        for p in files:
            assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p.name
    finally:
        await s.close()


async def test_sqlite_tightens_an_existing_file(sqlite_path: str) -> None:
    await asyncio.to_thread(Path(sqlite_path).write_bytes, b"")  # an empty file is a valid db
    os.chmod(sqlite_path, 0o644)
    s = SQLiteStore(sqlite_path)
    await s.open()
    await s.close()
    assert stat.S_IMODE(os.stat(sqlite_path).st_mode) == 0o600


async def test_sqlite_uses_wal(sqlite_path: str) -> None:
    s = SQLiteStore(sqlite_path)
    await s.open()
    await s.close()
    async with aiosqlite.connect(sqlite_path) as db, db.execute("PRAGMA journal_mode") as cur:
        row = await cur.fetchone()
    assert row is not None and row[0] == "wal"


async def test_two_sqlite_stores_open_a_new_file_concurrently(sqlite_path: str) -> None:
    stores = [SQLiteStore(sqlite_path) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))  # racing migrations must not fail
    try:
        await stores[0].create_user(_user())
        assert all([await s.get_user("u1") == _user() for s in stores])
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    assert await _user_version(sqlite_path) == SCHEMA_VERSION


async def test_sqlite_lock_timeout_becomes_a_short_store_error(sqlite_path: str) -> None:
    s = SQLiteStore(sqlite_path, busy_timeout_ms=50)
    await s.open()
    try:
        async with aiosqlite.connect(sqlite_path, isolation_level=None) as blocker:
            await blocker.execute("BEGIN EXCLUSIVE")
            try:
                with pytest.raises(StoreError) as excinfo:
                    await s.acquire_lease("secret-lease-name", "secret-holder", 30)
            finally:
                await blocker.execute("ROLLBACK")
        message = str(excinfo.value)
        assert "busy" in message
        assert "secret" not in message and "INSERT" not in message.upper()
        assert await s.acquire_lease("secret-lease-name", "secret-holder", 30) is True
    finally:
        await s.close()


def _lease_worker(url: str, tag: str, barrier: Any, attempts: int, results: Any) -> None:
    """Runs in a spawned process: its own event loop and store, racing for one lease."""

    async def run() -> list[str]:
        s = store_from_url(url)
        await s.open()
        try:
            await s.ping()  # connected (and, for MongoDB, indexes in place) before racing
            barrier.wait(timeout=30)  # start hammering at the same moment as the other process
            won: list[str] = []
            for i in range(attempts):
                holder = f"{tag}-{i}"
                if await s.acquire_lease("shared", holder, 60):
                    won.append(holder)
            return won
        finally:
            await s.close()

    try:
        results.put((tag, asyncio.run(run())))
    except BaseException as exc:
        results.put((tag, exc))
        raise


def _race_in_processes(url: str, attempts: int) -> dict[str, Any]:
    """Two spawned processes race for one lease; returns each one's winning holders."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_lease_worker, args=(url, tag, barrier, attempts, results))
        for tag in ("p1", "p2")
    ]
    for p in procs:
        p.start()
    try:
        outcomes = dict(results.get(timeout=120) for _ in procs)
    finally:
        deadline = time.monotonic() + 30
        for p in procs:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
    assert all(p.exitcode == 0 for p in procs), outcomes
    return outcomes


async def test_two_processes_share_one_lease(sqlite_path: str) -> None:
    await _check_two_processes_share_one_lease(f"sqlite:///{sqlite_path}")


async def _check_two_processes_share_one_lease(url: str) -> None:
    outcomes = await asyncio.to_thread(_race_in_processes, url, 200)
    assert set(outcomes) == {"p1", "p2"}
    winners = [h for won in outcomes.values() for h in won]
    assert len(winners) == 1, winners

    s = store_from_url(url)
    await s.open()
    try:
        assert await s.acquire_lease("shared", winners[0], 60) is True
        loser = "p2-0" if winners[0].startswith("p1") else "p1-0"
        assert await s.acquire_lease("shared", loser, 60) is False
    finally:
        await s.close()


# == MongoDB only =================================================================================


@pytest.fixture
def mongo_url(mongodb_url: str) -> Iterator[str]:
    url = mongo.with_database(mongodb_url, mongo.unique_database_name())
    try:
        yield url
    finally:
        mongo.drop_database(url)


def test_mongo_store_from_url_takes_the_database_from_the_path() -> None:
    s = store_from_url("mongodb://db1.example.net:27017,db2.example.net/calendar?replicaSet=rs0")
    assert isinstance(s, MongoStore) and s.database_name == "calendar"
    srv = store_from_url("mongodb+srv://user:pw@cluster0.example.net/prod?retryWrites=true")
    assert isinstance(srv, MongoStore) and srv.database_name == "prod"
    assert MongoStore("mongodb://127.0.0.1:1").database_name == "vapi_calendar"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mongodb://", "hostname"),
        ("mongodb://h:99999/db", "Port"),
        ("mongodb://admin:s3cr3t:x@h/db", "escaped"),
        ("mongodb+srv://h:27017/db", "port"),
        ("mongodb://h/bad name", "database"),
    ],
)
def test_malformed_mongo_url_fails_clearly_without_echoing_it(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match="not a valid MongoDB URL") as excinfo:
        store_from_url(url)
    assert reason.lower() in str(excinfo.value).lower()
    assert "s3cr3t" not in str(excinfo.value)


async def test_mongo_unreachable_at_open_is_not_fatal_but_ping_fails_fast() -> None:
    port = free_port()  # nothing listens there
    s = MongoStore(f"mongodb://127.0.0.1:{port}/x?serverSelectionTimeoutMS=300")
    await s.open()  # the server must be able to start while the database is down
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="unreachable"):
            await s.ping()
        assert time.monotonic() - started < 5
        # Callers waiting for the database fail together, not one server timeout after another.
        started = time.monotonic()
        results = await asyncio.gather(
            *(s.get_user(f"u{i}") for i in range(20)), return_exceptions=True
        )
        assert all(isinstance(r, StoreError) and "unreachable" in str(r) for r in results)
        assert time.monotonic() - started < 3
    finally:
        await s.close()


async def test_mongo_indexes_are_created_idempotently(mongo_url: str) -> None:
    first, second = MongoStore(mongo_url), MongoStore(mongo_url)
    await first.open()
    await second.open()
    try:
        await first.ping()
        await second.ping()  # the same indexes again: no conflict
        raw = pymongo.AsyncMongoClient(mongo_url)
        try:
            db = raw.get_default_database()
            for collection in ("leases", "records"):
                info = await db[collection].index_information()
                unique = [spec for spec in info.values() if spec.get("unique")]
                assert [spec["key"] for spec in unique] == [[("key", 1)]], collection
        finally:
            await raw.close()
    finally:
        await first.close()
        await second.close()


async def test_mongo_stores_times_as_bson_dates(mongo_url: str) -> None:
    s = MongoStore(mongo_url)
    await s.open()
    try:
        await s.create_user(_user())
        raw = pymongo.AsyncMongoClient(mongo_url, tz_aware=True)
        try:
            doc = await raw.get_default_database().users.find_one({"_id": "u1"})
        finally:
            await raw.close()
        assert doc is not None
        # A real date (sortable, TTL-able) to the millisecond; the microseconds ride alongside.
        assert doc["created_at"] == _utc(2025, 1, 2, 3, 4, 5, 123000)
        assert doc["created_at_us"] == 456
    finally:
        await s.close()


async def test_two_processes_share_one_lease_on_mongo(mongo_url: str) -> None:
    await _check_two_processes_share_one_lease(mongo_url)
