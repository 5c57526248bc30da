"""Demo mode: no calendar provider configured, so the bundled emulator plays Google and
Microsoft 365.

On every start two demo users are (re)connected with fresh emulator grants — the emulator keeps
its state in memory, so grants from an earlier run are gone: `demo` on Google Calendar and
`demo-outlook` on Microsoft 365 / Outlook. Each calendar gets a few events so availability
answers are interesting: a daily stand-up series (a recurring event, expanded like the provider
does), lunch, focus time shown as free, and an all-day offsite the day after tomorrow (busy
from midnight to midnight in the demo users' zone). A third user, `newcomer`, is left for the
reader to connect through a printed connect link — with either provider, no credentials
needed. A banner on stderr says how to try a tool call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
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
from vapi_calendar.server.config import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_MICROSOFT_CLIENT_ID,
    DEMO_MICROSOFT_CLIENT_SECRET,
)
from vapi_calendar.server.services import Services
from vapi_calendar.tools.rules import TIMEZONE_SOURCE

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


def _seed_in_process(state: EmulatorState, scopes: tuple[str, ...], base_url: str) -> Grant:
    state.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
    state.ensure_account(DEMO_EMAIL, timezone=DEMO_TIMEZONE)
    calendar = state.get_calendar(DEMO_EMAIL)
    assert calendar is not None
    for body in _demo_events():
        event = build_new_event(body, calendar, DEMO_EMAIL, base_url=base_url, conference_version=0)
        state.insert_event(calendar, event)
    access, grant = state.issue_tokens(email=DEMO_EMAIL, client_id=DEMO_CLIENT_ID, scopes=scopes)
    return Grant(
        access_token=access.token,
        refresh_token=grant.refresh_token if grant else None,
        expiry=datetime.fromtimestamp(access.expires_at, UTC),
        scopes=access.scopes,
    )


def _seed_remote(base_url: str, scopes: tuple[str, ...]) -> Grant:
    with EmulatorControl(base_url) as control:
        control.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
        control.create_account(DEMO_EMAIL, timezone=DEMO_TIMEZONE)
        for body in _demo_events():
            control.seed_event(DEMO_EMAIL, body)
        minted = control.mint_tokens(DEMO_EMAIL, DEMO_CLIENT_ID, scopes)
    return Grant(
        access_token=minted["access_token"],
        refresh_token=minted["refresh_token"],
        expiry=datetime.now(UTC) + timedelta(seconds=int(minted["expires_in"])),
        scopes=tuple(minted["scope"].split()),
    )


async def _demo_user(services: Services, user_id: str, assistant_id: str) -> None:
    with contextlib.suppress(AlreadyExists):
        await services.store.create_user(
            User(user_id, DEMO_TIMEZONE, datetime.now(UTC), rules=DEMO_RULES)
        )
    await services.store.link_assistant(assistant_id, user_id)


async def start_demo(services: Services, state: EmulatorState | None) -> None:
    settings = services.settings
    base = settings.google_base_url
    assert base is not None
    if state is not None:  # mounted in this app: not serving yet, so seed directly
        grant = _seed_in_process(state, settings.scopes, base)
        outlook = _outlook_in_process(state)
    else:  # an external emulator (GOOGLE_EMULATOR_URL): its HTTP hooks, off the loop
        grant = await asyncio.to_thread(_seed_remote, base, settings.scopes)
        outlook = await asyncio.to_thread(_outlook_remote, settings.microsoft_base_url or base)
    await _demo_user(services, DEMO_USER, DEMO_ASSISTANT)
    await services.grants.store_grant(DEMO_USER, grant, email=DEMO_EMAIL, subject=None)
    await _demo_user(services, DEMO_OUTLOOK_USER, DEMO_OUTLOOK_ASSISTANT)
    await services.grants.store_grant(
        DEMO_OUTLOOK_USER, outlook, email=DEMO_OUTLOOK_EMAIL, subject=None, provider=MICROSOFT
    )
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
    print(banner(settings.public_url, services, link.url), file=sys.stderr, flush=True)


def banner(public_url: str, services: Services, connect_url: str = "") -> str:
    start = datetime.combine(_demo_day(), time(9))
    body = {
        "message": {
            "type": "tool-calls",
            "call": {"id": "demo-call", "assistantId": DEMO_ASSISTANT},
            "toolCallList": [
                {
                    "id": "demo-1",
                    "type": "function",
                    "function": {
                        "name": "checkAvailability",
                        "arguments": {
                            "startDateTime": start.isoformat(),
                            "endDateTime": start.replace(hour=17).isoformat(),
                        },
                    },
                }
            ],
        }
    }
    auth = "" if not services.webhook_auth.configured else "  -H 'X-Vapi-Secret: $VAPI_SECRET' \\\n"
    return (
        "\n"
        "================================ DEMO MODE ================================\n"
        " No GOOGLE_CLIENT_ID or MICROSOFT_CLIENT_ID is set, so Google and Microsoft 365\n"
        f" are played by the bundled emulator at {services.settings.google_base_url}\n"
        " Nothing here touches a real calendar. Webhooks are accepted without a secret\n"
        " unless VAPI_SECRET / VAPI_HMAC_SECRET is set. Demo user 'demo' (America/New_York)\n"
        f" is linked to assistant '{DEMO_ASSISTANT}' (Google Calendar), and\n"
        f" '{DEMO_OUTLOOK_USER}' to '{DEMO_OUTLOOK_ASSISTANT}' (Microsoft 365 / Outlook);\n"
        " tomorrow has a few events (a daily stand-up series among them) and the day after\n"
        " is an all-day offsite. Try:\n\n"
        f"curl -s {public_url}/vapi/webhook -H 'content-type: application/json' \\\n"
        f"{auth}"
        f"  -d '{json.dumps(body)}'\n\n"
        f" (assistantId '{DEMO_OUTLOOK_ASSISTANT}' asks the Outlook calendar.) Connect a\n"
        f" calendar yourself — user '{NEWCOMER}', assistant '{NEWCOMER_ASSISTANT}', either\n"
        " provider, any email address — with this single-use link:\n"
        f"   {connect_url}\n"
        "===========================================================================\n"
    )
