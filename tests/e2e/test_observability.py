"""Metrics at /metrics, request ids, health endpoints, and refreshes kept off the hot path."""

from __future__ import annotations

import time
from pathlib import Path

from tests.harness.app import FROZEN_NOW, App, Emulator, bookable_slots, metric, running_app


def _connected(app: App, user: str, expires_in: int = 3600) -> None:
    app.create_user(user)
    app.link(f"asst_{user}", user)
    app.connect_google(user, f"{user}@example.com", expires_in=expires_in)


def test_metrics_count_tool_calls_google_requests_refreshes_and_lock_waits(
    tmp_path: Path, emulator: Emulator
) -> None:
    with running_app(tmp_path, emulator, background_refresh_seconds=0) as app:
        _connected(app, "ana", expires_in=60)  # due for refresh: the first call does it
        before = app.http.get(f"{app.url}/metrics").text
        start, other = bookable_slots(2, now=FROZEN_NOW)
        assert "available" in app.call_tool(
            "checkAvailability", {"startDateTime": start}, assistant_id="asst_ana"
        )
        booked = app.call_tool(
            "scheduleAppointment", {"startDateTime": other}, assistant_id="asst_ana"
        )
        assert booked["booked"] is True
        emulator.control.add_fault("freebusy", 503, times=1)
        assert "available" in app.call_tool(
            "checkAvailability", {"startDateTime": start}, assistant_id="asst_ana"
        )
        assert "error" in app.call_tool("noSuchTool", {}, assistant_id="asst_ana")
        response = app.http.get(f"{app.url}/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        after = response.text

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    calls = "vapi_calendar_tool_calls_total"
    assert delta(calls, tool="checkAvailability", outcome="ok") == 2
    assert delta(calls, tool="scheduleAppointment", outcome="ok") == 1
    assert delta(calls, tool="unknown", outcome="error") == 1  # caller-chosen names: one label
    assert delta("vapi_calendar_tool_call_seconds_count", tool="checkAvailability") == 2
    # availability: 1 request each (+1 retried 503); booking: freeBusy + insert
    assert delta("vapi_calendar_google_requests_total", status="2xx") == 4
    assert delta("vapi_calendar_google_requests_total", status="503") == 1
    assert delta("vapi_calendar_google_retries_total", reason="503") == 1
    assert delta("vapi_calendar_token_refreshes_total", path="call", outcome="ok") == 1
    assert delta("vapi_calendar_lock_wait_seconds_count", lock="booking") == 1
    assert metric(after, "vapi_calendar_event_loop_lag_seconds_count") > 0
    assert "vapi_calendar_event_loop_lag_max_seconds" in after
    assert "process_resident_memory_bytes" in after


def test_active_users_tokens_are_refreshed_in_the_background(
    tmp_path: Path, emulator: Emulator
) -> None:
    # The background looks 2 intervals (4 s) past the 300 s margin of the hot path.
    with running_app(tmp_path, emulator, background_refresh_seconds=2) as app:
        # Fresh enough for calls for 3 s, but already inside the background horizon.
        _connected(app, "ana", expires_in=303)
        _connected(app, "idle", expires_in=303)  # never calls: left alone
        before = app.http.get(f"{app.url}/metrics").text
        start = bookable_slots(1, now=FROZEN_NOW)[0]
        app.call_tool("checkAvailability", {"startDateTime": start}, assistant_id="asst_ana")
        deadline = time.monotonic() + 10
        while app.connection("ana").expiry.timestamp() < time.time() + 600:
            assert time.monotonic() < deadline, "the background refresh did not happen"
            time.sleep(0.1)
        app.call_tool("checkAvailability", {"startDateTime": start}, assistant_id="asst_ana")
        after = app.http.get(f"{app.url}/metrics").text
        assert app.connection("idle").expiry.timestamp() < time.time() + 400

    def delta(**labels: str) -> float:
        name = "vapi_calendar_token_refreshes_total"
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta(path="background", outcome="ok") == 1
    assert delta(path="call") == 0  # no call ever waited for a refresh


def test_request_ids_and_health(tmp_path: Path, emulator: Emulator) -> None:
    with running_app(tmp_path, emulator) as app:
        given = app.http.get(f"{app.url}/healthz", headers={"x-request-id": "abc-123"})
        assert given.headers["x-request-id"] == "abc-123"
        made = app.http.get(f"{app.url}/healthz", headers={"x-request-id": "bad id; drop" * 30})
        assert made.headers["x-request-id"] not in ("", "bad id")
        assert len(made.headers["x-request-id"]) == 32
        assert app.http.get(f"{app.url}/readyz").json() == {"status": "ready"}
