"""The `CalendarProvider` port's contract, run against every provider adapter.

Each adapter is driven over real HTTP to the bundled emulator of its vendor: Google's through
its real client library, Microsoft's through the plain Graph requests it makes. What the tools
rely on is checked here once per provider — busy time, our tags, creating an event exactly once,
moving and deleting it, the errors each failure becomes, and how a refused token is replaced —
through a `Vendor` that knows how to set each emulator up. Where the providers really differ
(Google keeps cancelled events, Microsoft moves them to Deleted Items; Google's freeBusy vs
Graph's calendarView), each has its own tests below the shared ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from tests.harness.app import CLIENT_ID, MS_CLIENT_ID, Emulator
from vapi_calendar.ports.calendar import CalendarProvider, DuplicateEvent, NewEvent
from vapi_calendar.providers.google.calendar import GoogleCalendarApi
from vapi_calendar.providers.google.endpoints import GoogleEndpoints
from vapi_calendar.providers.google.http import GoogleHttp
from vapi_calendar.providers.microsoft.calendar import MicrosoftCalendarApi
from vapi_calendar.providers.microsoft.endpoints import MicrosoftEndpoints
from vapi_calendar.providers.microsoft.http import MicrosoftHttp
from vapi_calendar.providers.microsoft.oauth import SCOPES as MICROSOFT_SCOPES
from vapi_calendar.server.config import DEFAULT_SCOPES
from vapi_calendar.support.budget import time_budget
from vapi_calendar.support.metrics import Metrics
from vapi_calendar.tools.errors import (
    CalendarAccessDenied,
    CalendarNotFound,
    CalendarRejected,
    CalendarUnavailable,
    EventGone,
    EventNotFound,
    OrganizerOnly,
    ReconnectRequired,
    UsageLimitReached,
)

PROVIDERS = ["google", "microsoft"]
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


class Vendor(Protocol):
    """What the shared tests need of a provider's emulator, in the provider's own terms."""

    name: str
    meeting_host: str  # where a video meeting link points

    def mint(self) -> str: ...

    def open(self, tokens: Tokens) -> tuple[CalendarProvider, Callable[[], Awaitable[None]]]: ...

    def seed(self, start: datetime, end: datetime, show: str = "busy") -> str:
        """An event the owner made; `show`: busy, free (transparent) or cancelled."""
        ...

    def seed_all_day(self, day: date) -> str: ...

    def expire_access_tokens(self) -> None: ...

    def kind(self, operation: str) -> str:
        """The emulator's request kind of an operation (insert, find, list, busy, move)."""
        ...

    def fault(self, operation: str, status: int, reason: str | None) -> None: ...

    def set_page_size(self, size: int) -> int:
        """Pages of at most `size`; how many list requests three such events then take."""
        ...

    def set_meeting_pending(self, reads: int) -> None: ...

    def requests(self) -> dict[str, int]: ...

    def reset_requests(self) -> None: ...


@dataclass
class GoogleVendor:
    emulator: Emulator
    name: str = "google"
    meeting_host: str = "https://meet.google.com/"

    def mint(self) -> str:
        minted = self.emulator.control.mint_tokens(EMAIL, CLIENT_ID, DEFAULT_SCOPES)
        return str(minted["access_token"])

    def open(self, tokens: Tokens) -> tuple[CalendarProvider, Callable[[], Awaitable[None]]]:
        http = GoogleHttp(max_connections=4, timeout_seconds=5)
        endpoints = GoogleEndpoints.for_base(self.emulator.url)
        api = GoogleCalendarApi(http, endpoints.calendar_api, Metrics())
        return api.for_user(tokens), http.close

    def seed(self, start: datetime, end: datetime, show: str = "busy") -> str:
        body: dict[str, Any] = {
            "summary": "Seeded",
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": end.isoformat()},
        }
        if show == "free":
            body["transparency"] = "transparent"
        elif show == "cancelled":
            body["status"] = "cancelled"
        return str(self.emulator.control.seed_event(EMAIL, body)["id"])

    def seed_all_day(self, day: date) -> str:
        body = {
            "summary": "Holiday",
            "start": {"date": day.isoformat()},
            "end": {"date": (day + timedelta(days=1)).isoformat()},
        }
        return str(self.emulator.control.seed_event(EMAIL, body)["id"])

    def expire_access_tokens(self) -> None:
        self.emulator.control.expire_access_tokens(EMAIL)

    def kind(self, operation: str) -> str:
        return {
            "insert": "events.insert",
            "find": "events.get",
            "list": "events.list",
            "busy": "freebusy",
            "move": "events.patch",
        }[operation]

    def fault(self, operation: str, status: int, reason: str | None) -> None:
        self.emulator.control.add_fault(self.kind(operation), status, reason)

    def set_page_size(self, size: int) -> int:
        self.emulator.control.set_list_paging(size, empty_pages=True)
        return 6  # three empty pages, three of one event each

    def set_meeting_pending(self, reads: int) -> None:
        self.emulator.control.set_meet_pending(reads)

    def requests(self) -> dict[str, int]:
        return self.emulator.control.requests()

    def reset_requests(self) -> None:
        self.emulator.control.reset_requests()


@dataclass
class MicrosoftVendor:
    emulator: Emulator
    name: str = "microsoft"
    meeting_host: str = "https://teams.microsoft.com/"

    def mint(self) -> str:
        minted = self.emulator.microsoft.mint_tokens(EMAIL, MS_CLIENT_ID, MICROSOFT_SCOPES)
        return str(minted["access_token"])

    def open(self, tokens: Tokens) -> tuple[CalendarProvider, Callable[[], Awaitable[None]]]:
        http = MicrosoftHttp(max_connections=4, timeout_seconds=5)
        graph = MicrosoftEndpoints.for_base(self.emulator.url, "common").graph
        return MicrosoftCalendarApi(http, graph, Metrics()).for_user(tokens), http.close

    def _when(self, moment: datetime) -> dict[str, str]:
        return {
            "dateTime": moment.replace(tzinfo=None).isoformat(),
            "timeZone": "Eastern Standard Time",
        }

    def seed(self, start: datetime, end: datetime, show: str = "busy") -> str:
        body: dict[str, Any] = {
            "subject": "Seeded",
            "start": self._when(start.astimezone(NY)),
            "end": self._when(end.astimezone(NY)),
        }
        if show == "free":
            body["showAs"] = "free"
        elif show == "cancelled":
            # An invitation the organizer cancelled stays in an attendee's calendar.
            body["isCancelled"] = True
        return str(self.emulator.microsoft.seed_event(EMAIL, body)["id"])

    def seed_all_day(self, day: date) -> str:
        midnight = datetime.combine(day, datetime.min.time())
        body = {
            "subject": "Holiday",
            "isAllDay": True,
            "start": self._when(midnight),
            "end": self._when(midnight + timedelta(days=1)),
        }
        return str(self.emulator.microsoft.seed_event(EMAIL, body)["id"])

    def expire_access_tokens(self) -> None:
        self.emulator.microsoft.expire_access_tokens(EMAIL)

    def kind(self, operation: str) -> str:
        return {
            "insert": "graph.events.create",
            # Our events are found by their extended property: a filtered listing.
            "find": "graph.events.list",
            "list": "graph.calendarView",
            "busy": "graph.calendarView",
            "move": "graph.events.update",
        }[operation]

    def fault(self, operation: str, status: int, reason: str | None) -> None:
        self.emulator.microsoft.add_fault(self.kind(operation), status, reason)

    def set_page_size(self, size: int) -> int:
        self.emulator.microsoft.configure(page_size=size)
        return 3  # Graph never sends an empty page with a next link

    def set_meeting_pending(self, reads: int) -> None:
        self.emulator.microsoft.configure(join_url_pending_reads=reads)

    def requests(self) -> dict[str, int]:
        return self.emulator.microsoft.requests()

    def reset_requests(self) -> None:
        self.emulator.microsoft.reset_requests()


@dataclass
class Subject:
    calendar: CalendarProvider
    tokens: Tokens
    emulator: Emulator
    vendor: Vendor
    calendar_id: str = "primary"


async def _subject(vendor: Vendor, emulator: Emulator) -> AsyncIterator[Subject]:
    tokens = Tokens(mint=vendor.mint, token=await asyncio.to_thread(vendor.mint))
    calendar, close = vendor.open(tokens)
    try:
        yield Subject(calendar, tokens, emulator, vendor)
    finally:
        await close()


@pytest_asyncio.fixture(params=PROVIDERS)
async def subject(request: pytest.FixtureRequest, emulator: Emulator) -> AsyncIterator[Subject]:
    vendor: Vendor
    if request.param == "google":
        emulator.control.create_account(EMAIL, timezone="America/New_York")
        vendor = GoogleVendor(emulator)
    else:
        emulator.microsoft.create_account(EMAIL, timezone="Eastern Standard Time")
        vendor = MicrosoftVendor(emulator)
    async for made in _subject(vendor, emulator):
        yield made


@pytest_asyncio.fixture
async def google(emulator: Emulator) -> AsyncIterator[Subject]:
    emulator.control.create_account(EMAIL, timezone="America/New_York")
    async for made in _subject(GoogleVendor(emulator), emulator):
        yield made


@pytest_asyncio.fixture
async def microsoft(emulator: Emulator) -> AsyncIterator[Subject]:
    emulator.microsoft.create_account(EMAIL, timezone="Eastern Standard Time")
    async for made in _subject(MicrosoftVendor(emulator), emulator):
        yield made


def seed(subject: Subject, start: datetime, end: datetime, **extra: Any) -> None:
    """A Google event as the owner made it (Google-only tests)."""
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


# -- busy time (both providers) -------------------------------------------------------------------


async def test_busy_counts_busy_events_only(subject: Subject) -> None:
    vendor = subject.vendor
    await asyncio.to_thread(vendor.seed, at(10), at(11))
    await asyncio.to_thread(vendor.seed, at(12), at(13), "free")
    await asyncio.to_thread(vendor.seed, at(14), at(15), "cancelled")

    times = await subject.calendar.busy([subject.calendar_id], at(0), at(23), "America/New_York")

    assert times.unreadable == {}
    assert [(s.astimezone(NY).hour, e.astimezone(NY).hour) for s, e in times.busy] == [(10, 11)]
    assert all(s.tzinfo is not None and e.tzinfo is not None for s, e in times.busy)


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


async def test_listing_follows_every_page(subject: Subject) -> None:
    for number, hour in enumerate((9, 11, 14)):
        await subject.calendar.insert_event(
            subject.calendar_id, new_event(f"page0000{number}", at(hour)), send_updates="none"
        )
    expected_requests = await asyncio.to_thread(subject.vendor.set_page_size, 1)
    await asyncio.to_thread(subject.vendor.reset_requests)
    found = await subject.calendar.list_events(
        subject.calendar_id, time_min=at(0), tags={"vapiCalendar": "1"}
    )
    assert [e.id for e in found] == ["page00000", "page00001", "page00002"]
    counts = await asyncio.to_thread(subject.vendor.requests)
    assert sum(counts.values()) == expected_requests, counts


async def test_listing_filters_by_our_tags_and_the_time_range(subject: Subject) -> None:
    await asyncio.to_thread(subject.vendor.seed, at(9), at(10))  # the owner's own event
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
    everything = await subject.calendar.list_events(
        subject.calendar_id, time_min=at(0), time_max=at(23)
    )
    assert [e.summary for e in everything] == ["Seeded", "Haircut", "Haircut"]


async def test_an_all_day_event_has_no_times(subject: Subject) -> None:
    seeded = await asyncio.to_thread(subject.vendor.seed_all_day, DAY.date())
    event = await subject.calendar.get_event(subject.calendar_id, seeded)
    assert (event.start, event.end) == (None, None)


async def test_a_meeting_link_comes_back_when_asked_for(subject: Subject) -> None:
    created = await subject.calendar.insert_event(
        subject.calendar_id, new_event("meet00001", at(10), add_meeting=True), send_updates="none"
    )
    assert created.meeting_link and created.meeting_link.startswith(subject.vendor.meeting_host)
    assert not created.meeting_pending


async def test_a_pending_meeting_link_is_read_again_within_the_budget(subject: Subject) -> None:
    vendor = subject.vendor
    await asyncio.to_thread(vendor.set_meeting_pending, 2)
    await asyncio.to_thread(vendor.reset_requests)
    with time_budget(10):
        created = await subject.calendar.insert_event(
            subject.calendar_id,
            new_event("meet00002", at(11), add_meeting=True),
            send_updates="none",
        )
    assert created.meeting_link and created.meeting_link.startswith(vendor.meeting_host)
    assert not created.meeting_pending
    assert (await asyncio.to_thread(vendor.requests))[vendor.kind("find")] == 2

    await asyncio.to_thread(vendor.set_meeting_pending, 1000)  # never within this call
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
    assert moved.tags["vapiCalendar"] == "1" and moved.id == "move00001"
    again = await subject.calendar.get_event(subject.calendar_id, "move00001")
    assert (again.start, again.end) == (at(15), at(15, 45))


async def test_an_unknown_event_is_not_found(subject: Subject) -> None:
    with pytest.raises(EventNotFound):
        await subject.calendar.get_event(subject.calendar_id, "nosuch0001")


async def test_refusals_become_their_own_errors_and_are_sent_once(subject: Subject) -> None:
    """Each refusal a retry cannot fix, per operation: its own sentence, one request."""
    vendor = subject.vendor
    google = vendor.name == "google"
    await subject.calendar.insert_event(
        subject.calendar_id, new_event("refused01", at(10)), send_updates="none"
    )

    async def refused(operation: str, status: int, reason: str | None, call: Any) -> Exception:
        await asyncio.to_thread(vendor.fault, operation, status, reason)
        await asyncio.to_thread(vendor.reset_requests)
        with pytest.raises(Exception) as caught:
            await call()
        assert (await asyncio.to_thread(vendor.requests)) == {vendor.kind(operation): 1}
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
        return subject.calendar.list_events(subject.calendar_id, time_min=at(0), time_max=at(23))

    quota = "quotaExceeded" if google else "ErrorQuotaExceeded"
    denied = "requiredAccessLevel" if google else "ErrorAccessDenied"
    usage = await refused("insert", 403, quota, insert)
    assert isinstance(usage, UsageLimitReached)
    assert ("Google" if google else "Microsoft") in str(usage)
    writer = await refused("insert", 403, denied, insert)
    assert type(writer) is CalendarAccessDenied and "change" in str(writer)
    reader = await refused("list", 403, denied, listing)
    assert type(reader) is CalendarAccessDenied and "read" in str(reader)
    event_gone = await refused("move", 404, None, move)
    assert type(event_gone) is EventNotFound


async def test_the_calendar_time_zone_is_the_accounts(subject: Subject) -> None:
    assert await subject.calendar.timezone() == "America/New_York"


# -- tokens ----------------------------------------------------------------------------------------


async def test_a_refused_token_is_replaced_once_and_the_request_sent_again(
    subject: Subject,
) -> None:
    refused = subject.tokens.token
    await asyncio.to_thread(subject.vendor.expire_access_tokens)
    times = await subject.calendar.busy([subject.calendar_id], at(0), at(23), "UTC")
    assert times.unreadable == {}
    assert subject.tokens.rejected_tokens == [refused]


async def test_a_replacement_that_is_refused_too_is_the_end(subject: Subject) -> None:
    subject.tokens.mint = lambda: "not-a-token"
    await asyncio.to_thread(subject.vendor.expire_access_tokens)
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
    again = await subject.calendar.get_event(subject.calendar_id, "secs00001")
    assert again.start == start


# == Google ========================================================================================


async def test_google_busy_names_a_calendar_it_cannot_read(google: Subject) -> None:
    times = await google.calendar.busy(
        [google.calendar_id, "someone-else@example.com"], at(0), at(23), "America/New_York"
    )
    assert times.unreadable == {"someone-else@example.com": "notFound"}


async def test_google_busy_names_calendars_with_errors_or_left_out_and_reads_the_rest(
    google: Subject,
) -> None:
    control = google.emulator.control
    shared = "shared@group.calendar.google.com"
    await asyncio.to_thread(control.add_calendar, EMAIL, shared, "Shared")
    await asyncio.to_thread(seed, google, at(10), at(11))
    await asyncio.to_thread(control.set_freebusy_error, shared, "internalError")
    times = await google.calendar.busy([google.calendar_id, shared], at(0), at(23), "UTC")
    assert times.unreadable == {shared: "internalError"}
    assert [(s.astimezone(NY).hour, e.astimezone(NY).hour) for s, e in times.busy] == [(10, 11)]

    # An answer that leaves a requested calendar out must not read it as free.
    partial = {"kind": "calendar#freeBusy", "calendars": {google.calendar_id: {"busy": []}}}
    await asyncio.to_thread(control.add_fault, "freebusy", 200, body=partial)
    times = await google.calendar.busy([google.calendar_id, shared], at(0), at(23), "UTC")
    assert times.unreadable == {shared: "notReturned"}


async def test_google_busy_counts_occurrences_declines_and_event_types_as_google_does(
    google: Subject,
) -> None:
    control = google.emulator.control
    zone = {"timeZone": "America/New_York"}
    daily = {
        "summary": "Stand-up",
        "start": {"dateTime": at(9).replace(tzinfo=None).isoformat(), **zone},
        "end": {"dateTime": at(9, 15).replace(tzinfo=None).isoformat(), **zone},
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
    }
    series = await asyncio.to_thread(control.seed_event, EMAIL, daily)
    await asyncio.to_thread(
        seed, google, at(11), at(12), attendees=[{"email": EMAIL, "responseStatus": "declined"}]
    )
    await asyncio.to_thread(seed, google, at(13), at(14), eventType="workingLocation")
    await asyncio.to_thread(seed, google, at(15), at(16), eventType="outOfOffice")
    next_day = {"start": {"date": "2031-03-12"}, "end": {"date": "2031-03-13"}, "summary": "Off"}
    await asyncio.to_thread(control.seed_event, EMAIL, next_day)

    times = await google.calendar.busy(
        [google.calendar_id], at(0), at(0) + timedelta(days=2), "America/New_York"
    )
    assert [(s.astimezone(NY), e.astimezone(NY)) for s, e in times.busy] == [
        (at(9), at(9, 15)),
        (at(15), at(16)),
        # Wednesday: the all-day event covers the stand-up, midnight to midnight New York.
        (at(0) + timedelta(days=1), at(0) + timedelta(days=2)),
    ]
    # Listed as single events, with the series' id on each instance.
    listed = await google.calendar.list_events(
        google.calendar_id, time_min=at(0), time_max=at(0) + timedelta(days=3)
    )
    stand_ups = [e for e in listed if e.summary == "Stand-up"]
    assert [e.start for e in stand_ups] == [at(9) + timedelta(days=d) for d in range(3)]
    assert len({e.id for e in stand_ups}) == 3 and series["id"] not in {e.id for e in stand_ups}


async def test_google_deleting_twice_is_event_gone_and_the_event_reads_cancelled(
    google: Subject,
) -> None:
    await google.calendar.insert_event(
        google.calendar_id, new_event("gone00001", at(10)), send_updates="none"
    )
    await google.calendar.delete_event(google.calendar_id, "gone00001", send_updates="none")
    assert (await google.calendar.get_event(google.calendar_id, "gone00001")).cancelled
    with pytest.raises(EventGone):
        await google.calendar.delete_event(google.calendar_id, "gone00001", send_updates="none")


async def test_google_refusals_of_its_own(google: Subject) -> None:
    control = google.emulator.control
    await google.calendar.insert_event(
        google.calendar_id, new_event("refused01", at(10)), send_updates="none"
    )
    await asyncio.to_thread(control.add_fault, "events.patch", 403, "forbiddenForNonOrganizer")
    with pytest.raises(OrganizerOnly):
        await google.calendar.move_event(
            google.calendar_id, "refused01", at(12), at(12, 30), timezone="UTC", send_updates="all"
        )
    await asyncio.to_thread(control.add_fault, "freebusy", 404)
    with pytest.raises(CalendarNotFound) as calendar_gone:
        await google.calendar.busy([google.calendar_id], at(0), at(23), "UTC")
    assert "appointment" not in str(calendar_gone.value)

    # A rate limit, by contrast, is retried and passes.
    await asyncio.to_thread(control.add_fault, "freebusy", 403, "rateLimitExceeded")
    await asyncio.to_thread(control.reset_requests)
    with time_budget(10):
        assert (
            await google.calendar.busy([google.calendar_id], at(0), at(23), "UTC")
        ).unreadable == {}
    assert (await asyncio.to_thread(control.requests)) == {"freebusy": 2}


# == Microsoft 365 =================================================================================


def ms_when(moment: datetime, zone: str = "Eastern Standard Time") -> dict[str, str]:
    return {"dateTime": moment.replace(tzinfo=None).isoformat(), "timeZone": zone}


async def test_microsoft_busy_follows_show_as_series_and_all_day_events(microsoft: Subject) -> None:
    control = microsoft.emulator.microsoft

    def seed_ms(start: datetime, end: datetime, **extra: Any) -> None:
        control.seed_event(
            EMAIL, {"subject": "Seeded", "start": ms_when(start), "end": ms_when(end), **extra}
        )

    daily = {
        "type": "daily",
        "interval": 1,
    }
    stand_up = {
        "subject": "Stand-up",
        "start": ms_when(at(9)),
        "end": ms_when(at(9, 15)),
        "recurrence": {
            "pattern": daily,
            "range": {"type": "numbered", "startDate": "2031-03-11", "numberOfOccurrences": 3},
        },
    }
    await asyncio.to_thread(control.seed_event, EMAIL, stand_up)
    await asyncio.to_thread(seed_ms, at(10), at(11), showAs="tentative")
    await asyncio.to_thread(seed_ms, at(11), at(12), showAs="workingElsewhere")
    await asyncio.to_thread(seed_ms, at(13), at(14), showAs="free")
    await asyncio.to_thread(seed_ms, at(15), at(16), showAs="oof")
    off = DAY.replace(tzinfo=None) + timedelta(days=1)
    await asyncio.to_thread(
        control.seed_event,
        EMAIL,
        {
            "subject": "Off",
            "isAllDay": True,
            "start": ms_when(off),
            "end": ms_when(off + timedelta(days=1)),
        },
    )

    times = await microsoft.calendar.busy(
        [microsoft.calendar_id], at(0), at(0) + timedelta(days=2), "America/New_York"
    )
    wednesday = at(0) + timedelta(days=1)
    assert [(s.astimezone(NY), e.astimezone(NY)) for s, e in times.busy] == [
        (at(9), at(9, 15)),
        (at(10), at(11)),  # tentative counts unless configured otherwise
        (at(15), at(16)),  # out of office; working elsewhere and free do not count
        # Wednesday: the all-day event, midnight to midnight New York, and the stand-up.
        (wednesday, wednesday + timedelta(days=1)),
        (wednesday.replace(hour=9), wednesday.replace(hour=9, minute=15)),
    ]
    listed = await microsoft.calendar.list_events(
        microsoft.calendar_id, time_min=at(0), time_max=at(0) + timedelta(days=3)
    )
    stand_ups = [e for e in listed if e.summary == "Stand-up"]
    assert [e.start for e in stand_ups] == [at(9) + timedelta(days=d) for d in range(3)]
    assert len({e.id for e in stand_ups}) == 3


async def test_microsoft_tentative_is_free_when_configured(
    microsoft: Subject, emulator: Emulator
) -> None:
    await asyncio.to_thread(
        emulator.microsoft.seed_event,
        EMAIL,
        {
            "subject": "Maybe",
            "showAs": "tentative",
            "start": ms_when(at(10)),
            "end": ms_when(at(11)),
        },
    )
    http = MicrosoftHttp(max_connections=2, timeout_seconds=5)
    graph = MicrosoftEndpoints.for_base(emulator.url, "common").graph
    lenient = MicrosoftCalendarApi(http, graph, Metrics(), tentative_is_busy=False)
    try:
        times = await lenient.for_user(microsoft.tokens).busy(["primary"], at(0), at(23), "UTC")
    finally:
        await http.close()
    assert times.busy == []


async def test_microsoft_busy_names_a_calendar_it_cannot_read(
    microsoft: Subject, emulator: Emulator
) -> None:
    second = await asyncio.to_thread(emulator.microsoft.add_calendar, EMAIL, "Family")
    await asyncio.to_thread(
        emulator.microsoft.seed_event,
        EMAIL,
        {"subject": "Recital", "start": ms_when(at(17)), "end": ms_when(at(18))},
        calendar_id=second,
    )
    times = await microsoft.calendar.busy(
        [microsoft.calendar_id, second, "someone-else@example.com"], at(0), at(23), "UTC"
    )
    assert times.unreadable == {"someone-else@example.com": "ErrorItemNotFound"}
    assert [(s.astimezone(NY).hour, e.astimezone(NY).hour) for s, e in times.busy] == [(17, 18)]


async def test_microsoft_a_cancelled_appointment_leaves_the_calendar(
    microsoft: Subject, emulator: Emulator
) -> None:
    """Graph moves a deleted event (and a cancelled meeting) to Deleted Items: it is no longer
    in the calendar, so it is not found any more; a meeting goes through /cancel, so its
    attendees are told, anything else is deleted."""
    calendar = microsoft.calendar
    await calendar.insert_event("primary", new_event("gone00001", at(10)), send_updates="all")
    await calendar.insert_event(
        "primary", new_event("gone00002", at(11), attendees=()), send_updates="none"
    )
    await asyncio.to_thread(emulator.microsoft.reset_requests)
    await calendar.delete_event("primary", "gone00001", send_updates="all")
    await calendar.delete_event("primary", "gone00002", send_updates="none")
    counts = await asyncio.to_thread(emulator.microsoft.requests)
    assert (counts["graph.events.cancel"], counts["graph.events.delete"]) == (1, 1)
    for event_id in ("gone00001", "gone00002"):
        with pytest.raises(EventNotFound):
            await calendar.get_event("primary", event_id)
        with pytest.raises(EventNotFound):
            await calendar.delete_event("primary", event_id, send_updates="none")
    stored = await asyncio.to_thread(emulator.microsoft.events, EMAIL)
    assert {e["folder"] for e in stored} == {"deleteditems"}
    assert [e["isCancelled"] for e in stored] == [True, False]
    assert (await calendar.busy(["primary"], at(0), at(23), "UTC")).busy == []


async def test_microsoft_an_attendee_cannot_cancel_a_meeting(
    microsoft: Subject, emulator: Emulator
) -> None:
    invited = await asyncio.to_thread(
        emulator.microsoft.seed_event,
        EMAIL,
        {
            "subject": "Their meeting",
            "isOrganizer": False,
            "attendees": [{"emailAddress": {"address": EMAIL}}],
            "start": ms_when(at(10)),
            "end": ms_when(at(11)),
        },
    )
    with pytest.raises(OrganizerOnly):
        await microsoft.calendar.delete_event("primary", invited["id"], send_updates="all")


async def test_microsoft_a_resent_create_makes_nothing_new(
    microsoft: Subject, emulator: Emulator
) -> None:
    """transactionId: "to avoid redundant POST operations in case of client retries"."""
    event = new_event("twice0001", at(10))
    first = await microsoft.calendar.insert_event("primary", event, send_updates="all")
    second = await microsoft.calendar.insert_event("primary", event, send_updates="all")
    assert second == first
    stored = await asyncio.to_thread(emulator.microsoft.events, EMAIL)
    assert [e["transactionId"] for e in stored] == ["twice0001"]


async def test_microsoft_throttling_is_waited_out_within_the_budget(
    microsoft: Subject, emulator: Emulator
) -> None:
    control = emulator.microsoft
    await asyncio.to_thread(
        control.add_fault,
        "graph.calendarView",
        429,
        "TooManyRequests",
        headers={"Retry-After": "1"},
    )
    await asyncio.to_thread(control.reset_requests)
    with time_budget(10):
        assert (await microsoft.calendar.busy(["primary"], at(0), at(23), "UTC")).busy == []
    assert (await asyncio.to_thread(control.requests)) == {"graph.calendarView": 2}

    # A suggested wait longer than the budget left: answered at once, not after it.
    await asyncio.to_thread(
        control.add_fault, "graph.calendarView", 503, headers={"Retry-After": "30"}
    )
    await asyncio.to_thread(control.reset_requests)
    started = asyncio.get_running_loop().time()
    with time_budget(5), pytest.raises(CalendarUnavailable):
        await microsoft.calendar.busy(["primary"], at(0), at(23), "UTC")
    assert asyncio.get_running_loop().time() - started < 2
    assert (await asyncio.to_thread(control.requests)) == {"graph.calendarView": 1}


async def test_microsoft_more_requests_than_a_mailbox_takes_at_once_still_answer(
    microsoft: Subject, emulator: Emulator
) -> None:
    """Graph allows 4 concurrent requests per app and mailbox and throttles more with 429
    ApplicationThrottled and Retry-After; the calls still answer within their budget."""
    http = MicrosoftHttp(max_connections=10, timeout_seconds=5)
    graph = MicrosoftEndpoints.for_base(emulator.url, "common").graph
    calendar = MicrosoftCalendarApi(http, graph, Metrics()).for_user(microsoft.tokens)
    await asyncio.to_thread(emulator.microsoft.set_latency, 1000, "graph.calendarView")
    await asyncio.to_thread(emulator.microsoft.reset_requests)
    try:
        with time_budget(10):
            answers = await asyncio.gather(
                *(calendar.busy(["primary"], at(0), at(23), "UTC") for _ in range(6))
            )
    finally:
        await http.close()
    assert all(a.busy == [] and a.unreadable == {} for a in answers)
    # Six at once: those over the limit were throttled and sent again.
    assert (await asyncio.to_thread(emulator.microsoft.requests))["graph.calendarView"] > 6


async def test_microsoft_an_account_without_a_mailbox_has_no_calendar(
    microsoft: Subject, emulator: Emulator
) -> None:
    await asyncio.to_thread(emulator.microsoft.create_account, EMAIL, mailbox=False)
    with pytest.raises(CalendarNotFound):
        await microsoft.calendar.busy(["primary"], at(0), at(23), "UTC")


@pytest.mark.parametrize(
    ("setting", "zone"),
    [
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Europe/Lisbon", "Europe/Lisbon"),
        ("UTC", "Etc/UTC"),
    ],
)
async def test_microsoft_the_mailbox_zone_is_read_as_iana(
    microsoft: Subject, emulator: Emulator, setting: str, zone: str
) -> None:
    await asyncio.to_thread(emulator.microsoft.create_account, EMAIL, setting)
    assert await microsoft.calendar.timezone() == zone


async def test_microsoft_a_custom_mailbox_zone_is_refused(
    microsoft: Subject, emulator: Emulator
) -> None:
    await asyncio.to_thread(emulator.microsoft.create_account, EMAIL, "Customized Time Zone")
    with pytest.raises(CalendarRejected):
        await microsoft.calendar.timezone()
