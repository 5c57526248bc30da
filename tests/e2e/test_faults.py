"""Fault injection: Google failing 20% of the time, slow, and revoking a grant.

Every tool call must be answered correctly within the budget, or — when the budget cannot
absorb the retries — with a clear one-line `error`. None may be left to Vapi's timeout.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness.app import (
    FROZEN_NOW,
    VAPI_SECRET,
    Emulator,
    bookable_slots,
    metric,
    running_app,
    tool_calls_message,
)
from vapi_calendar.providers.google.retry import DEFAULT_POLICY
from vapi_calendar.tools.errors import CalendarUnavailable, ReconnectRequired, UserBusy

BUDGET = 10.0  # the default TOOL_BUDGET_SECONDS
CALLS = 160
CONCURRENCY = 12
CLEAR_ERRORS = {
    CalendarUnavailable.default_message,
    ReconnectRequired.default_message,
    "The calendar took too long to answer. Please try again in a moment.",
    "The calendar is busy with another booking. Please try again in a moment.",
    UserBusy.default_message,
}


async def _fire(
    url: str, jobs: list[tuple[str, str, dict[str, Any], str]]
) -> list[tuple[str, str, dict[str, Any], float]]:
    """Send each (assistant, tool, arguments, toolCallId) as its own webhook, concurrently."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(client: httpx.AsyncClient, job: tuple[str, str, dict[str, Any], str]) -> Any:
        assistant, tool, arguments, call_id = job
        body = tool_calls_message([(call_id, tool, arguments)], assistant_id=assistant)
        async with gate:
            started = time.perf_counter()
            response = await client.post(
                f"{url}/vapi/webhook", json=body, headers={"x-vapi-secret": VAPI_SECRET}
            )
            elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.text
        (result,) = response.json()["results"]
        assert result["toolCallId"] == call_id
        return assistant, tool, result, elapsed

    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(*(one(client, job) for job in jobs))


def test_tool_calls_survive_rate_limits_errors_latency_and_a_revoked_grant(
    tmp_path: Path, emulator: Emulator
) -> None:
    with running_app(tmp_path, emulator, tool_budget_seconds=BUDGET) as app:
        for user in ("ana", "bob", "zed"):
            app.create_user(user)
            app.link(f"asst_{user}", user)
        app.connect_google("ana", "ana@example.com")
        # bob's token is due for refresh: the token endpoint fails too (google-auth retries it)
        app.connect_google("bob", "bob@example.com", expires_in=120)
        # zed revoked access: the refresh is invalid_grant, which only a reconnect fixes
        app.connect_google("zed", "zed@example.com", expires_in=120)
        emulator.control.revoke_grants("zed@example.com")

        control = emulator.control
        for kind in ("freebusy", "events.insert"):
            control.add_fault(kind, 429, probability=0.08)
            control.add_fault(kind, 503, probability=0.08)
            control.add_fault(kind, 403, "rateLimitExceeded", probability=0.05)
        control.add_fault("token.refresh_token", 503, probability=0.2)
        control.set_latency(25)
        control.reset_requests()
        before = app.http.get(f"{app.url}/metrics").text

        slots = iter(bookable_slots(CALLS, now=FROZEN_NOW))
        jobs: list[tuple[str, str, dict[str, Any], str]] = []
        for i in range(CALLS):
            assistant = ("asst_ana", "asst_bob", "asst_ana", "asst_zed")[i % 4]
            start = next(slots)
            if (i // 4) % 2:  # every user both checks and books
                jobs.append((assistant, "scheduleAppointment", {"startDateTime": start}, f"c{i}"))
            else:
                jobs.append((assistant, "checkAvailability", {"startDateTime": start}, f"c{i}"))
        answers = asyncio.run(_fire(app.url, jobs))
        after = app.http.get(f"{app.url}/metrics").text
        requests = control.requests()

    correct, clear, booked = 0, 0, 0
    for assistant, tool, result, elapsed in answers:
        assert elapsed < BUDGET + 1.0, f"{tool} took {elapsed:.2f}s, past the budget"
        if "error" in result:
            assert "\n" not in result["error"]
            if assistant == "asst_zed" and result["error"] == ReconnectRequired.default_message:
                correct += 1  # the right answer for a revoked grant
            else:
                assert result["error"] in CLEAR_ERRORS, result["error"]
                clear += 1
            continue
        assert assistant != "asst_zed"
        payload = json.loads(result["result"])
        if tool == "checkAvailability":
            assert "available" in payload
        else:
            assert payload["booked"] is True, payload
            booked += 1
        correct += 1
    assert correct + clear == CALLS
    failed = [(a, t, r, round(e, 2)) for a, t, r, e in answers if "error" in r and a != "asst_zed"]
    assert correct >= 0.99 * CALLS, f"only {correct}/{CALLS} correct: {failed}"

    # Retries really happened, and every booking is one event: no retry inserted twice.
    retried = metric(after, "vapi_calendar_google_retries_total") - metric(
        before, "vapi_calendar_google_retries_total"
    )
    assert retried >= 10
    assert requests.get("freebusy", 0) > CALLS * 3 // 4  # zed's calls never reach the API
    state = emulator.state
    events = [
        event
        for email in ("ana@example.com", "bob@example.com")
        for event in state.list_events(state.get_calendar(email))
    ]
    assert len(events) == booked
    failures = metric(after, "vapi_calendar_google_requests_total", status="429") - metric(
        before, "vapi_calendar_google_requests_total", status="429"
    )
    assert failures > 0


def test_budget_exhausted_by_slow_google_is_a_clear_error_in_time(
    tmp_path: Path, emulator: Emulator
) -> None:
    with running_app(tmp_path, emulator, tool_budget_seconds=1.0) as app:
        app.create_user("ana")
        app.link("asst_ana", "ana")
        app.connect_google("ana", "ana@example.com")
        emulator.control.add_fault("freebusy", None, latency_ms=1500, times=1)
        started = time.perf_counter()
        answer = app.call_tool(
            "checkAvailability",
            {"startDateTime": bookable_slots(1, now=FROZEN_NOW)[0]},
            assistant_id="asst_ana",
        )
        elapsed = time.perf_counter() - started
    assert answer == {
        "error": "The calendar took too long to answer. Please try again in a moment."
    }
    assert elapsed < 1.5


def test_retries_stop_when_the_budget_cannot_afford_them(
    tmp_path: Path, emulator: Emulator
) -> None:
    """Google keeps failing: the call answers "not responding" before the budget, not after."""
    with running_app(tmp_path, emulator, tool_budget_seconds=1.5) as app:
        app.create_user("ana")
        app.link("asst_ana", "ana")
        app.connect_google("ana", "ana@example.com")
        emulator.control.add_fault("freebusy", 503, probability=1.0)
        emulator.control.reset_requests()
        started = time.perf_counter()
        answer = app.call_tool(
            "checkAvailability",
            {"startDateTime": bookable_slots(1, now=FROZEN_NOW)[0]},
            assistant_id="asst_ana",
        )
        elapsed = time.perf_counter() - started
        attempts = emulator.control.requests()["freebusy"]
    assert answer == {"error": CalendarUnavailable.default_message}
    assert elapsed < 1.5
    # It did retry, and no more than the policy's cap (the jittered delays are random, so the
    # exact count within the budget is too).
    assert 2 <= attempts <= DEFAULT_POLICY.max_attempts


@pytest.mark.parametrize("status", [400, 404])
def test_client_errors_are_not_retried(tmp_path: Path, emulator: Emulator, status: int) -> None:
    with running_app(tmp_path, emulator) as app:
        app.create_user("ana")
        app.link("asst_ana", "ana")
        app.connect_google("ana", "ana@example.com")
        emulator.control.add_fault("freebusy", status, times=1)
        emulator.control.reset_requests()
        answer = app.call_tool(
            "checkAvailability",
            {"startDateTime": bookable_slots(1, now=FROZEN_NOW)[0]},
            assistant_id="asst_ana",
        )
        assert emulator.control.requests()["freebusy"] == 1
    assert "error" in answer


def test_insert_without_its_own_id_is_never_retried() -> None:
    from vapi_calendar.providers.google.retry import request_is_retry_safe

    assert request_is_retry_safe("calendar.events.insert", json.dumps({"id": "abc123"}))
    assert not request_is_retry_safe("calendar.events.insert", json.dumps({"summary": "x"}))
    assert not request_is_retry_safe("calendar.events.quickAdd", None)
    assert request_is_retry_safe("calendar.freebusy.query", "{}")
