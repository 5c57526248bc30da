"""The `CalendarProvider` port's contract, run against every provider adapter.

Each adapter is driven through its real client library over HTTP to the bundled emulator of its
vendor. What the tools rely on is checked here once per provider: busy time, our tags, creating
an event exactly once, moving and deleting it, the errors each failure becomes, and how a
refused token is replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from tests.harness.app import CLIENT_ID, Emulator
from vapi_calendar.ports.calendar import CalendarProvider, DuplicateEvent, NewEvent
from vapi_calendar.providers.google.calendar import GoogleCalendarApi
from vapi_calendar.providers.google.endpoints import GoogleEndpoints
from vapi_calendar.providers.google.http import GoogleHttp
from vapi_calendar.server.config import DEFAULT_SCOPES
from vapi_calendar.support.budget import time_budget
from vapi_calendar.support.metrics import Metrics
from vapi_calendar.tools.errors import (
    CalendarAccessDenied,
    CalendarNotFound,
    EventGone,
    EventNotFound,
    OrganizerOnly,
    ReconnectRequired,
    UsageLimitReached,
)

PROVIDERS = ["google"]
EMAIL = "pat@example.com"
NY = ZoneInfo("America/New_York")
DAY = datetime(2031, 3, 11, tzinfo=NY)


def at(hour: int, minute: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


@dataclass
class Tokens:
    """A `TokenSource` that mints a new token whenever the API refuses one."""

    mint: Callable[[], str]
    token: str
    rejected_tokens: list[str] = field(default_factory=list)
    give_up_after: int = 1

    async def access_token(self) -> str:
        return self.token

    async def rejected(self, token: str) -> str:
        self.rejected_tokens.append(token)
        if len(self.rejected_tokens) > self.give_up_after:
            raise ReconnectRequired()
        self.token = await asyncio.to_thread(self.mint)
        return self.token


@dataclass
class Subject:
    calendar: CalendarProvider
    tokens: Tokens
    emulator: Emulator
    calendar_id: str


def _google(
    emulator: Emulator, tokens: Tokens
) -> tuple[CalendarProvider, Callable[[], Awaitable[None]]]:
    metrics = Metrics()
    http = GoogleHttp(max_connections=4, timeout_seconds=5)
    endpoints = GoogleEndpoints.for_base(emulator.url)
    return GoogleCalendarApi(http, endpoints.calendar_api, metrics).for_user(tokens), http.close


@pytest_asyncio.fixture(params=PROVIDERS)
async def subject(request: pytest.FixtureRequest, emulator: Emulator) -> AsyncIterator[Subject]:
    emulator.control.create_account(EMAIL, timezone="America/New_York")

    def mint() -> str:
        return str(emulator.control.mint_tokens(EMAIL, CLIENT_ID, DEFAULT_SCOPES)["access_token"])

    tokens = Tokens(mint=mint, token=await asyncio.to_thread(mint))
    calendar, close = _google(emulator, tokens)
    try:
        yield Subject(calendar, tokens, emulator, "primary")
    finally:
        await close()


def seed(subject: Subject, start: datetime, end: datetime, **extra: Any) -> None:
    body = {"summary": "Seeded", "start": {"dateTime": start.isoformat()}}
    body["end"] = {"dateTime": end.isoformat()}
    subject.emulator.control.seed_event(EMAIL, {**body, **extra})


def new_event(event_id: str, start: datetime, minutes: int = 30, **extra: Any) -> NewEvent:
    values: dict[str, Any] = {
        "id": event_id,
        "summary": "Haircut",
        "description": "Booked by phone.",
        "start": start,
        "end": start + timedelta(minutes=minutes),
        "timezone": "America/New_York",
        "attendees": ("sam@example.com",),
        "tags": {"vapiCalendar": "1", "attendeePhone": "+14155550123"},
    }
    return NewEvent(**{**values, **extra})


# -- busy time -----------------------------------------------------------------------------------


async def test_busy_counts_opaque_events_only(subject: Subject) -> None:
    await asyncio.to_thread(seed, subject, at(10), at(11))
    await asyncio.to_thread(seed, subject, at(12), at(13), transparency="transparent")
    await asyncio.to_thread(seed, subject, at(14), at(15), status="cancelled")

    times = await subject.calendar.busy([subject.calendar_id], at(0), at(23), "America/New_York")

    assert times.unreadable == {}
    assert [(s.astimezone(NY).hour, e.astimezone(NY).hour) for s, e in times.busy] == [(10, 11)]
    assert all(s.tzinfo is not None and e.tzinfo is not None for s, e in times.busy)


async def test_busy_names_a_calendar_it_cannot_read(subject: Subject) -> None:
    times = await subject.calendar.busy(
        [subject.calendar_id, "someone-else@example.com"], at(0), at(23), "America/New_York"
    )
    assert times.unreadable == {"someone-else@example.com": "notFound"}


async def test_busy_names_calendars_with_errors_or_left_out_and_reads_the_rest(
    subject: Subject,
) -> None:
    control = subject.emulator.control
    shared = "shared@group.calendar.google.com"
    await asyncio.to_thread(control.add_calendar, EMAIL, shared, "Shared")
    await asyncio.to_thread(seed, subject, at(10), at(11))
    await asyncio.to_thread(control.set_freebusy_error, shared, "internalError")
    times = await subject.calendar.busy([subject.calendar_id, shared], at(0), at(23), "UTC")
    assert times.unreadable == {shared: "internalError"}
    assert [(s.astimezone(NY).hour, e.astimezone(NY).hour) for s, e in times.busy] == [(10, 11)]

    # An answer that leaves a requested calendar out must not read it as free.
    partial = {"kind": "calendar#freeBusy", "calendars": {subject.calendar_id: {"busy": []}}}
    await asyncio.to_thread(control.add_fault, "freebusy", 200, body=partial)
    times = await subject.calendar.busy([subject.calendar_id, shared], at(0), at(23), "UTC")
    assert times.unreadable == {shared: "notReturned"}


async def test_busy_counts_occurrences_declines_and_event_types_as_google_does(
    subject: Subject,
) -> None:
    control = subject.emulator.control
    zone = {"timeZone": "America/New_York"}
    daily = {
        "summary": "Stand-up",
        "start": {"dateTime": at(9).replace(tzinfo=None).isoformat(), **zone},
        "end": {"dateTime": at(9, 15).replace(tzinfo=None).isoformat(), **zone},
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
    }
    series = await asyncio.to_thread(control.seed_event, EMAIL, daily)
    await asyncio.to_thread(
        seed, subject, at(11), at(12), attendees=[{"email": EMAIL, "responseStatus": "declined"}]
    )
    await asyncio.to_thread(seed, subject, at(13), at(14), eventType="workingLocation")
    await asyncio.to_thread(seed, subject, at(15), at(16), eventType="outOfOffice")
    next_day = {"start": {"date": "2031-03-12"}, "end": {"date": "2031-03-13"}, "summary": "Off"}
    await asyncio.to_thread(control.seed_event, EMAIL, next_day)

    times = await subject.calendar.busy(
        [subject.calendar_id], at(0), at(0) + timedelta(days=2), "America/New_York"
    )
    assert [(s.astimezone(NY), e.astimezone(NY)) for s, e in times.busy] == [
        (at(9), at(9, 15)),
        (at(15), at(16)),
        # Wednesday: the all-day event covers the stand-up, midnight to midnight New York.
        (at(0) + timedelta(days=1), at(0) + timedelta(days=2)),
    ]
    # Listed as single events, with the series' id on each instance.
    listed = await subject.calendar.list_events(
        subject.calendar_id, time_min=at(0), time_max=at(0) + timedelta(days=3)
    )
    stand_ups = [e for e in listed if e.summary == "Stand-up"]
    assert [e.start for e in stand_ups] == [at(9) + timedelta(days=d) for d in range(3)]
    assert len({e.id for e in stand_ups}) == 3 and series["id"] not in {e.id for e in stand_ups}


# -- creating, reading, listing --------------------------------------------------------------------


async def test_an_event_is_created_once_and_read_back_as_created(subject: Subject) -> None:
    created = await subject.calendar.insert_event(
        subject.calendar_id, new_event("abc12345", at(10)), send_updates="none"
    )
    assert (created.id, created.summary, created.status) == ("abc12345", "Haircut", "confirmed")
    assert created.start == at(10) and created.end == at(10, 30)
    assert created.tags["attendeePhone"] == "+14155550123"
    assert created.attendees == ("sam@example.com",)

    with pytest.raises(DuplicateEvent):
        await subject.calendar.insert_event(
            subject.calendar_id, new_event("abc12345", at(11)), send_updates="none"
        )
    again = await subject.calendar.get_event(subject.calendar_id, "abc12345")
    assert (again.start, again.end, again.tags) == (created.start, created.end, created.tags)


async def test_listing_follows_every_page_even_short_and_empty_ones(subject: Subject) -> None:
    for number, hour in enumerate((9, 11, 14)):
        await subject.calendar.insert_event(
            subject.calendar_id, new_event(f"page0000{number}", at(hour)), send_updates="none"
        )
    await asyncio.to_thread(subject.emulator.control.set_list_paging, 1, empty_pages=True)
    await asyncio.to_thread(subject.emulator.control.reset_requests)
    found = await subject.calendar.list_events(
        subject.calendar_id, time_min=at(0), tags={"vapiCalendar": "1"}
    )
    assert [e.id for e in found] == ["page00000", "page00001", "page00002"]
    counts = await asyncio.to_thread(subject.emulator.control.requests)
    assert counts["events.list"] == 6  # three empty pages, three of one event each


async def test_listing_filters_by_our_tags_and_the_time_range(subject: Subject) -> None:
    await asyncio.to_thread(seed, subject, at(9), at(10))  # the owner's own event
    for event_id, hour in (("ours00001", 10), ("ours00002", 14)):
        await subject.calendar.insert_event(
            subject.calendar_id, new_event(event_id, at(hour)), send_updates="none"
        )

    ours = await subject.calendar.list_events(
        subject.calendar_id, time_min=at(0), tags={"vapiCalendar": "1"}
    )
    assert [e.id for e in ours] == ["ours00001", "ours00002"]
    morning = await subject.calendar.list_events(
        subject.calendar_id, time_min=at(0), time_max=at(12), tags={"vapiCalendar": "1"}
    )
    assert [e.id for e in morning] == ["ours00001"]


async def test_an_all_day_event_has_no_times(subject: Subject) -> None:
    day = {"start": {"date": "2031-03-11"}, "end": {"date": "2031-03-12"}, "summary": "Holiday"}
    seeded = await asyncio.to_thread(subject.emulator.control.seed_event, EMAIL, day)
    event = await subject.calendar.get_event(subject.calendar_id, seeded["id"])
    assert (event.start, event.end) == (None, None)


async def test_a_meeting_link_comes_back_when_asked_for(subject: Subject) -> None:
    created = await subject.calendar.insert_event(
        subject.calendar_id, new_event("meet00001", at(10), add_meeting=True), send_updates="none"
    )
    assert created.meeting_link and created.meeting_link.startswith("https://")
    assert not created.meeting_pending


async def test_a_pending_meeting_link_is_read_again_within_the_budget(subject: Subject) -> None:
    control = subject.emulator.control
    await asyncio.to_thread(control.set_meet_pending, 2)
    await asyncio.to_thread(control.reset_requests)
    with time_budget(10):
        created = await subject.calendar.insert_event(
            subject.calendar_id,
            new_event("meet00002", at(11), add_meeting=True),
            send_updates="none",
        )
    assert created.meeting_link and created.meeting_link.startswith("https://meet.google.com/")
    assert not created.meeting_pending
    assert (await asyncio.to_thread(control.requests))["events.get"] == 2

    await asyncio.to_thread(control.set_meet_pending, 1000)  # never within this call
    with time_budget(2.5):
        slow = await subject.calendar.insert_event(
            subject.calendar_id,
            new_event("meet00003", at(12), add_meeting=True),
            send_updates="none",
        )
    assert slow.meeting_pending and slow.meeting_link is None
    assert slow.id == "meet00003"


# -- moving and deleting ---------------------------------------------------------------------------


async def test_moving_changes_start_and_end_together(subject: Subject) -> None:
    await subject.calendar.insert_event(
        subject.calendar_id, new_event("move00001", at(10)), send_updates="none"
    )
    moved = await subject.calendar.move_event(
        subject.calendar_id,
        "move00001",
        at(15),
        at(15, 45),
        timezone="America/New_York",
        send_updates="none",
    )
    assert (moved.start, moved.end) == (at(15), at(15, 45))
    assert moved.tags["vapiCalendar"] == "1"


async def test_deleting_twice_is_event_gone_and_the_event_reads_cancelled(
    subject: Subject,
) -> None:
    await subject.calendar.insert_event(
        subject.calendar_id, new_event("gone00001", at(10)), send_updates="none"
    )
    await subject.calendar.delete_event(subject.calendar_id, "gone00001", send_updates="none")
    assert (await subject.calendar.get_event(subject.calendar_id, "gone00001")).cancelled
    with pytest.raises(EventGone):
        await subject.calendar.delete_event(subject.calendar_id, "gone00001", send_updates="none")


async def test_an_unknown_event_is_not_found(subject: Subject) -> None:
    with pytest.raises(EventNotFound):
        await subject.calendar.get_event(subject.calendar_id, "nosuch0001")


async def test_refusals_become_their_own_errors_and_are_sent_once(subject: Subject) -> None:
    """Each refusal a retry cannot fix, per operation: its own sentence, one request."""
    control = subject.emulator.control
    await subject.calendar.insert_event(
        subject.calendar_id, new_event("refused01", at(10)), send_updates="none"
    )

    async def refused(kind: str, status: int, reason: str | None, call: Any) -> Exception:
        await asyncio.to_thread(control.add_fault, kind, status, reason)
        await asyncio.to_thread(control.reset_requests)
        with pytest.raises(Exception) as caught:
            await call()
        assert (await asyncio.to_thread(control.requests)) == {kind: 1}, kind
        return caught.value

    def insert() -> Any:
        return subject.calendar.insert_event(
            subject.calendar_id, new_event("refused02", at(11)), send_updates="all"
        )

    def move() -> Any:
        return subject.calendar.move_event(
            subject.calendar_id,
            "refused01",
            at(12),
            at(12, 30),
            timezone="America/New_York",
            send_updates="all",
        )

    def listing() -> Any:
        return subject.calendar.list_events(subject.calendar_id, time_min=at(0))

    def busy() -> Any:
        return subject.calendar.busy([subject.calendar_id], at(0), at(23), "UTC")

    quota = await refused("events.insert", 403, "quotaExceeded", insert)
    assert isinstance(quota, UsageLimitReached)
    writer = await refused("events.insert", 403, "requiredAccessLevel", insert)
    assert type(writer) is CalendarAccessDenied and "change" in str(writer)
    reader = await refused("events.list", 403, "requiredAccessLevel", listing)
    assert type(reader) is CalendarAccessDenied and "read" in str(reader)
    organizer = await refused("events.patch", 403, "forbiddenForNonOrganizer", move)
    assert isinstance(organizer, OrganizerOnly)
    calendar_gone = await refused("freebusy", 404, None, busy)
    assert type(calendar_gone) is CalendarNotFound
    assert "appointment" not in str(calendar_gone)
    event_gone = await refused("events.patch", 404, None, move)
    assert type(event_gone) is EventNotFound

    # A rate limit, by contrast, is retried and passes.
    await asyncio.to_thread(control.add_fault, "freebusy", 403, "rateLimitExceeded")
    await asyncio.to_thread(control.reset_requests)
    with time_budget(10):
        assert (await busy()).unreadable == {}
    assert (await asyncio.to_thread(control.requests)) == {"freebusy": 2}


async def test_the_calendar_time_zone_is_the_accounts(subject: Subject) -> None:
    assert await subject.calendar.timezone() == "America/New_York"


# -- tokens ----------------------------------------------------------------------------------------


async def test_a_refused_token_is_replaced_once_and_the_request_sent_again(
    subject: Subject,
) -> None:
    refused = subject.tokens.token
    await asyncio.to_thread(subject.emulator.control.expire_access_tokens, EMAIL)
    times = await subject.calendar.busy([subject.calendar_id], at(0), at(23), "UTC")
    assert times.unreadable == {}
    assert subject.tokens.rejected_tokens == [refused]


async def test_a_replacement_that_is_refused_too_is_the_end(subject: Subject) -> None:
    subject.tokens.mint = lambda: "not-a-token"
    await asyncio.to_thread(subject.emulator.control.expire_access_tokens, EMAIL)
    with pytest.raises(ReconnectRequired):
        await subject.calendar.busy([subject.calendar_id], at(0), at(23), "UTC")
    assert len(subject.tokens.rejected_tokens) == 2


async def test_times_are_aware_and_exact_to_the_second(subject: Subject) -> None:
    start = datetime(2031, 3, 11, 14, 5, 7, tzinfo=UTC)
    created = await subject.calendar.insert_event(
        subject.calendar_id, new_event("secs00001", start), send_updates="none"
    )
    assert created.start == start and created.start is not None
    assert created.start.utcoffset() == timedelta(0)
