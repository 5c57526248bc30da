"""Demo mode: no calendar provider configured, so the bundled emulator plays Google and
Microsoft 365, and every capability can be tried from the banner in five minutes.

On every start the demo users are (re)connected with fresh emulator grants — the emulator keeps
its state in memory, so grants from an earlier run are gone: `demo` on Google Calendar and
`demo-outlook` on Microsoft 365 / Outlook. Each calendar gets a few events so availability
answers are interesting: a daily stand-up series (a recurring event, expanded like the provider
does), lunch, focus time shown as free, and an all-day offsite the day after tomorrow (busy
from midnight to midnight in the demo users' zone). Once the server answers, an appointment is
booked for the demo caller through the tool pipeline itself, so find / reschedule / cancel
answer at once. `ana`, the user of the bundled webhook fixtures (tests/fixtures/vapi/), is
connected and linked as the fixtures expect, so `vapi-calendar replay --relative-to-now`
answers them. A third user, `newcomer`, is left for the reader to connect through a printed
connect link — with either provider, no credentials needed.

The banner (stderr) prints an admin token (generated into the data directory, demo mode only),
and working curl commands for the five tools and the admin API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import shlex
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from vapi_calendar.emulator.control import EmulatorControl
from vapi_calendar.emulator.events import build_new_event
from vapi_calendar.emulator.microsoft.control import MicrosoftControl
from vapi_calendar.emulator.microsoft.graph import seed_event
from vapi_calendar.emulator.state import EmulatorState
from vapi_calendar.ports.oauth import Grant
from vapi_calendar.ports.stores import MICROSOFT, AlreadyExists, User
from vapi_calendar.providers.microsoft.oauth import SCOPES as MICROSOFT_SCOPES
from vapi_calendar.server.admin import OPENAPI_PATH
from vapi_calendar.server.config import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_MICROSOFT_CLIENT_ID,
    DEMO_MICROSOFT_CLIENT_SECRET,
)
from vapi_calendar.server.http import until_serving
from vapi_calendar.server.logs import write_text
from vapi_calendar.server.services import ADMIN_TOKEN_FILE, Services, embedded_data_dir
from vapi_calendar.server.vapi.protocol import parse_server_message
from vapi_calendar.tools.rules import TIMEZONE_SOURCE

log = logging.getLogger(__name__)

DEMO_USER = "demo"
DEMO_ASSISTANT = "demo-assistant"
DEMO_EMAIL = "demo@example.com"
DEMO_TIMEZONE = "America/New_York"
DEMO_OUTLOOK_USER = "demo-outlook"
DEMO_OUTLOOK_ASSISTANT = "demo-outlook-assistant"
DEMO_OUTLOOK_EMAIL = "demo@contoso.example"
# Outlook keeps the mailbox's zone as a Windows name.
DEMO_OUTLOOK_ZONE = "Eastern Standard Time"
NEWCOMER = "newcomer"
NEWCOMER_ASSISTANT = "newcomer-assistant"
# The caller of the banner's tool calls; the seeded appointment was booked from this number.
DEMO_CALLER = "+14155550100"
# The cast of the bundled webhook fixtures (tests/fixtures/vapi/README.md).
FIXTURE_USER = "ana"
FIXTURE_EMAIL = "ana@example.com"
FIXTURE_ASSISTANT = "asst_ana_haircuts"
FIXTURE_PHONE_NUMBER_ID = "7d1c2f0e-5a7b-4c3d-9e8f-0a1b2c3d4e5f"
# What the banner's admin commands create.
EXAMPLE_USER = "sam"
EXAMPLE_ASSISTANT = "sam-assistant"
# Open every day, so the banner's "tomorrow" example has free slots even on a weekend.
DEMO_RULES = {
    "workingHours": {
        day: [{"start": "09:00", "end": "17:00"}]
        for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    }
}


def _demo_day() -> date:
    """Tomorrow where the demo user lives: the day the events and the banner talk about."""
    return (datetime.now(ZoneInfo(DEMO_TIMEZONE)) + timedelta(days=1)).date()


def _demo_events() -> list[dict[str, Any]]:
    tz, day = ZoneInfo(DEMO_TIMEZONE), _demo_day()

    def at(hour: int, on: date = day) -> str:
        return datetime.combine(on, time(hour), tzinfo=tz).isoformat()

    offsite = day + timedelta(days=1)
    return [
        {
            "summary": "Team stand-up",
            # A recurring series from today: tomorrow's 10:00 is one of its instances.
            "start": {"dateTime": at(10, day - timedelta(days=1)), "timeZone": DEMO_TIMEZONE},
            "end": {"dateTime": at(11, day - timedelta(days=1)), "timeZone": DEMO_TIMEZONE},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=30"],
        },
        {
            "summary": "Offsite (all day)",
            "start": {"date": offsite.isoformat()},
            "end": {"date": (offsite + timedelta(days=1)).isoformat()},
        },
        {"summary": "Lunch", "start": {"dateTime": at(12)}, "end": {"dateTime": at(13)}},
        {
            "summary": "Focus time (shown as free)",
            "transparency": "transparent",
            "start": {"dateTime": at(14)},
            "end": {"dateTime": at(16)},
        },
    ]


def _outlook_events() -> list[dict[str, Any]]:
    """The same day as `_demo_events`, in Graph's shapes."""
    day = _demo_day()

    def at(hour: int, on: date = day) -> dict[str, str]:
        return {
            "dateTime": datetime.combine(on, time(hour)).isoformat(),
            "timeZone": DEMO_OUTLOOK_ZONE,
        }

    yesterday, offsite = day - timedelta(days=1), day + timedelta(days=1)
    return [
        {
            "subject": "Team stand-up",
            "start": at(10, yesterday),
            "end": at(11, yesterday),
            "recurrence": {
                "pattern": {"type": "daily", "interval": 1},
                "range": {
                    "type": "numbered",
                    "startDate": yesterday.isoformat(),
                    "numberOfOccurrences": 30,
                },
            },
        },
        {
            "subject": "Offsite (all day)",
            "isAllDay": True,
            "start": at(0, offsite),
            "end": at(0, offsite + timedelta(days=1)),
        },
        {"subject": "Lunch", "start": at(12), "end": at(13)},
        {"subject": "Focus time (shown as free)", "showAs": "free", "start": at(14), "end": at(16)},
    ]


def _outlook_in_process(state: EmulatorState) -> Grant:
    microsoft = state.microsoft
    microsoft.register_client(DEMO_MICROSOFT_CLIENT_ID, DEMO_MICROSOFT_CLIENT_SECRET)
    microsoft.ensure_account(DEMO_OUTLOOK_EMAIL, timezone=DEMO_OUTLOOK_ZONE)
    for body in _outlook_events():
        seed_event(microsoft, DEMO_OUTLOOK_EMAIL, body)
    access, grant = microsoft.issue_tokens(
        email=DEMO_OUTLOOK_EMAIL, client_id=DEMO_MICROSOFT_CLIENT_ID, scopes=MICROSOFT_SCOPES
    )
    return Grant(
        access_token=access.token,
        refresh_token=grant.refresh_token if grant else None,
        expiry=datetime.fromtimestamp(access.expires_at, UTC),
        scopes=access.scopes,
    )


def _outlook_remote(base_url: str) -> Grant:
    with MicrosoftControl(base_url) as control:
        control.register_client(DEMO_MICROSOFT_CLIENT_ID, DEMO_MICROSOFT_CLIENT_SECRET)
        control.create_account(DEMO_OUTLOOK_EMAIL, timezone=DEMO_OUTLOOK_ZONE)
        for body in _outlook_events():
            control.seed_event(DEMO_OUTLOOK_EMAIL, body)
        minted = control.mint_tokens(DEMO_OUTLOOK_EMAIL, DEMO_MICROSOFT_CLIENT_ID, MICROSOFT_SCOPES)
    return Grant(
        access_token=minted["access_token"],
        refresh_token=minted["refresh_token"],
        expiry=datetime.now(UTC) + timedelta(seconds=int(minted["expires_in"])),
        scopes=tuple(minted["scope"].split()),
    )


def _seed_in_process(
    state: EmulatorState, scopes: tuple[str, ...], base_url: str, email: str, seed: bool
) -> Grant:
    state.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
    state.ensure_account(email, timezone=DEMO_TIMEZONE)
    calendar = state.get_calendar(email)
    assert calendar is not None
    for body in _demo_events() if seed else ():
        event = build_new_event(body, calendar, email, base_url=base_url, conference_version=0)
        state.insert_event(calendar, event)
    access, grant = state.issue_tokens(email=email, client_id=DEMO_CLIENT_ID, scopes=scopes)
    return Grant(
        access_token=access.token,
        refresh_token=grant.refresh_token if grant else None,
        expiry=datetime.fromtimestamp(access.expires_at, UTC),
        scopes=access.scopes,
    )


def _seed_remote(base_url: str, scopes: tuple[str, ...], email: str, seed: bool) -> Grant:
    with EmulatorControl(base_url) as control:
        control.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
        control.create_account(email, timezone=DEMO_TIMEZONE)
        for body in _demo_events() if seed else ():
            control.seed_event(email, body)
        minted = control.mint_tokens(email, DEMO_CLIENT_ID, scopes)
    return Grant(
        access_token=minted["access_token"],
        refresh_token=minted["refresh_token"],
        expiry=datetime.now(UTC) + timedelta(seconds=int(minted["expires_in"])),
        scopes=tuple(minted["scope"].split()),
    )


async def _user(
    services: Services, user_id: str, links: dict[str, str], rules: dict[str, Any] | None = None
) -> None:
    """The user (created once) and its links: assistant ids, and Vapi phone-number ids."""
    with contextlib.suppress(AlreadyExists):
        await services.store.create_user(
            User(user_id, DEMO_TIMEZONE, datetime.now(UTC), rules=rules or {})
        )
    for linked, kind in links.items():
        if kind == "phone-number":
            await services.store.link_phone_number(linked, user_id)
        else:
            await services.store.link_assistant(linked, user_id)


@dataclass(frozen=True, slots=True)
class DemoRun:
    """What one start of demo mode prints: ids are fresh per run, because answers are kept per
    tool call id in the database (a redelivery is answered from them) while the emulator
    forgets everything when the server stops."""

    run: str
    connect_url: str
    admin_token: str | None
    admin_token_file: str | None
    as_json: bool

    @property
    def call_id(self) -> str:
        return f"demo-call-{self.run}"

    def tool_call_id(self, name: str) -> str:
        return f"demo-{self.run}-{name}"

    @property
    def seeded_call_id(self) -> str:
        return self.tool_call_id("seed")

    @property
    def seeded_event_id(self) -> str:
        from vapi_calendar.tools.booking import event_id_for

        return event_id_for(DEMO_USER, self.seeded_call_id)


async def start_demo(
    services: Services, state: EmulatorState | None, *, as_json: bool = False
) -> DemoRun:
    """Seed the emulator and the demo users (before serving); `announce_when_serving` books
    the demo appointment and prints the banner once the server answers."""
    settings = services.settings
    base = settings.google_base_url
    assert base is not None
    if state is not None:  # mounted in this app: not serving yet, so seed directly
        grant = _seed_in_process(state, settings.scopes, base, DEMO_EMAIL, True)
        fixtures = _seed_in_process(state, settings.scopes, base, FIXTURE_EMAIL, False)
        outlook = _outlook_in_process(state)
    else:  # an external emulator (GOOGLE_EMULATOR_URL): its HTTP hooks, off the loop
        grant = await asyncio.to_thread(_seed_remote, base, settings.scopes, DEMO_EMAIL, True)
        fixtures = await asyncio.to_thread(
            _seed_remote, base, settings.scopes, FIXTURE_EMAIL, False
        )
        outlook = await asyncio.to_thread(_outlook_remote, settings.microsoft_base_url or base)
    await _user(services, DEMO_USER, {DEMO_ASSISTANT: "assistant"}, DEMO_RULES)
    await services.grants.store_grant(DEMO_USER, grant, email=DEMO_EMAIL, subject=None)
    await _user(services, DEMO_OUTLOOK_USER, {DEMO_OUTLOOK_ASSISTANT: "assistant"}, DEMO_RULES)
    await services.grants.store_grant(
        DEMO_OUTLOOK_USER, outlook, email=DEMO_OUTLOOK_EMAIL, subject=None, provider=MICROSOFT
    )
    # The fixtures' user keeps the default rules (Monday to Friday, 9 to 5), as in the tests.
    await _user(
        services,
        FIXTURE_USER,
        {FIXTURE_ASSISTANT: "assistant", FIXTURE_PHONE_NUMBER_ID: "phone-number"},
    )
    await services.grants.store_grant(FIXTURE_USER, fixtures, email=FIXTURE_EMAIL, subject=None)
    # Someone to connect by hand: no zone of its own, so it takes the calendar's.
    with contextlib.suppress(AlreadyExists):
        await services.store.create_user(
            User(
                NEWCOMER,
                settings.default_timezone,
                datetime.now(UTC),
                rules={**DEMO_RULES, TIMEZONE_SOURCE: "default"},
            )
        )
    await services.store.link_assistant(NEWCOMER_ASSISTANT, NEWCOMER)
    link = services.links.create(NEWCOMER, allow_account_change=True)
    data_dir = embedded_data_dir(settings)
    generated = settings.admin_token is None
    return DemoRun(
        run=secrets.token_hex(3),
        connect_url=link.url,
        admin_token=services.admin_token if generated else None,
        admin_token_file=str(data_dir / ADMIN_TOKEN_FILE) if generated and data_dir else None,
        as_json=as_json,
    )


def _tool_body(demo: DemoRun, name: str, arguments: dict[str, Any], *, key: str = "") -> str:
    body = {
        "message": {
            "type": "tool-calls",
            "call": {
                "id": demo.call_id,
                "assistantId": DEMO_ASSISTANT,
                "customer": {"number": DEMO_CALLER},
            },
            "toolCallList": [
                {
                    "id": demo.tool_call_id(key or name),
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        }
    }
    return json.dumps(body, separators=(",", ":"))


def _at(hour: int) -> str:
    return datetime.combine(_demo_day(), time(hour)).isoformat()


async def book_demo_appointment(services: Services, demo: DemoRun) -> str | None:
    """Book tomorrow 11:00 for the demo caller through the tool pipeline, as a webhook would
    (the emulator is served by this very server, so this runs once it answers)."""
    body = _tool_body(
        demo,
        "scheduleAppointment",
        {"startDateTime": _at(11), "summary": "Haircut", "attendeeName": "Demo Caller"},
        key="seed",
    )
    (outcome,) = await services.pipeline.answer(parse_server_message(body.encode()).tool_request())
    if outcome.result is None or not outcome.result.get("booked"):
        log.warning("demo mode could not book its appointment", extra={"outcome": str(outcome)})
        return None
    return str(outcome.result["eventId"])


def commands(public_url: str, services: Services, demo: DemoRun, event_id: str | None) -> list[str]:
    """The banner's commands, each runnable as printed after the `export` line."""
    webhook = [
        "curl -s \"$URL/vapi/webhook\" -H 'content-type: application/json'",
        *(['-H "X-Vapi-Secret: $VAPI_SECRET"'] if services.webhook_auth.configured else []),
    ]
    tools: list[tuple[str, dict[str, Any]]] = [
        ("checkAvailability", {"startDateTime": _at(9), "endDateTime": _at(17)}),
        ("scheduleAppointment", {"startDateTime": _at(16), "summary": "Beard trim"}),
        ("findAppointments", {}),
    ]
    if event_id is not None:
        tools += [
            ("rescheduleAppointment", {"eventId": event_id, "startDateTime": _at(15)}),
            ("cancelAppointment", {"eventId": event_id}),
        ]
    admin = '-H "Authorization: Bearer $ADMIN_TOKEN"'
    new_user = json.dumps({"id": EXAMPLE_USER, "timezone": DEMO_TIMEZONE})
    link = json.dumps({"userId": EXAMPLE_USER})
    return [
        *(
            " ".join([*webhook, "-d", shlex.quote(_tool_body(demo, name, arguments))])
            for name, arguments in tools
        ),
        f'curl -s -X POST "$URL/api/users" {admin} -d {shlex.quote(new_user)}',
        f'curl -s -X PUT "$URL/api/assistants/{EXAMPLE_ASSISTANT}" {admin} -d {shlex.quote(link)}',
        f'curl -s -X POST "$URL/api/users/{EXAMPLE_USER}/connect-link" {admin}',
    ]


def export_line(public_url: str, demo: DemoRun) -> str:
    token = f" ADMIN_TOKEN={shlex.quote(demo.admin_token)}" if demo.admin_token else ""
    return f"export URL={shlex.quote(public_url)}{token}"


def banner(public_url: str, services: Services, demo: DemoRun, event_id: str | None) -> str:
    day = _demo_day().strftime("%A %B %-d")
    token = (
        f" The admin token was generated into {demo.admin_token_file} (demo mode only).\n"
        if demo.admin_token_file
        else " The admin token is generated for this process (demo mode only).\n"
        if demo.admin_token
        else " ADMIN_TOKEN is yours, from the environment: export it too.\n"
    )
    seeded = (
        f"a haircut at 11:00 booked for caller {DEMO_CALLER}, "
        if event_id
        else "(the demo appointment could not be booked: see the log) "
    )
    auth = (
        " Webhooks need your VAPI_SECRET (export it).\n"
        if services.webhook_auth.configured
        else " Webhooks are accepted without a secret (demo mode only).\n"
    )
    lines = commands(public_url, services, demo, event_id)
    tool_lines, admin_lines = lines[:-3], lines[-3:]
    return (
        "\n"
        "================================ DEMO MODE ================================\n"
        " No GOOGLE_CLIENT_ID or MICROSOFT_CLIENT_ID is set: Google and Microsoft 365\n"
        f" are played by the bundled emulator at {services.settings.google_base_url}\n"
        " Nothing here touches a real calendar.\n"
        f" User '{DEMO_USER}' (America/New_York, Google) is linked to '{DEMO_ASSISTANT}',\n"
        f" '{DEMO_OUTLOOK_USER}' (Outlook) to '{DEMO_OUTLOOK_ASSISTANT}'. {day}: stand-up\n"
        f" 10:00, {seeded}lunch 12:00, focus time (free)\n"
        " 14:00-16:00; the next day is an all-day offsite.\n"
        f"{auth}{token}\n"
        f"{export_line(public_url, demo)}\n\n"
        f"# The five tools, as Vapi calls them (caller {DEMO_CALLER}):\n"
        + "".join(f"{line}\n" for line in tool_lines)
        + f"\n# The admin API (described at $URL{OPENAPI_PATH}):\n"
        + "".join(f"{line}\n" for line in admin_lines)
        + f"\n Or connect a calendar yourself (user '{NEWCOMER}', assistant\n"
        f" '{NEWCOMER_ASSISTANT}', either provider, any email) with this single-use link:\n"
        f"   {demo.connect_url}\n"
        "===========================================================================\n"
    )


def announcement(public_url: str, services: Services, demo: DemoRun, event_id: str | None) -> str:
    """`serve --json`: the banner's facts as one JSON object (stdout)."""
    return json.dumps(
        {
            "url": public_url,
            "openapi": public_url + OPENAPI_PATH,
            "demo": {
                "adminToken": demo.admin_token,
                "adminTokenFile": demo.admin_token_file,
                "caller": DEMO_CALLER,
                "assistantId": DEMO_ASSISTANT,
                "eventId": event_id,
                "connectLink": demo.connect_url,
                "environment": export_line(public_url, demo),
                "commands": commands(public_url, services, demo, event_id),
            },
        }
    )


async def announce_when_serving(services: Services, demo: DemoRun) -> None:
    """A lifespan task: once this server answers (its own emulator with it), book the demo
    appointment and print the banner."""
    public_url = services.settings.public_url
    await until_serving(public_url)
    try:
        event_id = await book_demo_appointment(services, demo)
    except Exception:  # the banner still helps without the appointment: say why, go on
        log.exception("demo mode could not book its appointment")
        event_id = None
    if demo.as_json:
        print(announcement(public_url, services, demo, event_id), flush=True)
    else:
        # Through the log writer: after the lines logged before it, never between them.
        write_text(banner(public_url, services, demo, event_id))
