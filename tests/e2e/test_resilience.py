"""Abuse and faults at the process level: one greedy tenant, SIGTERM, kill -9 mid-booking."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.harness.app import (
    FROZEN_NOW,
    VAPI_SECRET,
    App,
    Emulator,
    app_settings,
    bookable_slots,
    metric,
    running_app,
    tool_calls_message,
)
from tests.harness.servers import free_port, wait_until_serving
from vapi_calendar.oauth.vault import generate_key
from vapi_calendar.tools.booking import event_id_for
from vapi_calendar.tools.errors import UserBusy


@contextmanager
def server_process(
    tmp_path: Path, emulator: Emulator, key: str, **env: str
) -> Iterator[tuple[App, subprocess.Popen[str]]]:
    """`vapi-calendar serve` in its own process against the test emulator; yields (app, proc).

    The caller may stop the process itself (SIGTERM, SIGKILL); otherwise it is terminated.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = app_settings(
        tmp_path, emulator.url, public_url=url, encryption_key=key, google_threads=8
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "VAPI_"))}
    values = {
        "DATABASE_URL": settings.database_url,
        "PUBLIC_URL": url,
        "ENCRYPTION_KEY": key,
        "VAPI_SECRET": VAPI_SECRET,
        "ADMIN_TOKEN": settings.admin_token.get_secret_value(),
        "GOOGLE_CLIENT_ID": settings.google_client_id,
        "GOOGLE_CLIENT_SECRET": settings.client_secret,
        "GOOGLE_EMULATOR_URL": emulator.url,
        "GOOGLE_THREADS": "8",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "vapi_calendar.server.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env={**clean, **values},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_serving(
            url, process, output=lambda: process.stdout.read() if process.stdout else ""
        )
        with httpx.Client(timeout=30) as http:
            app = App(url, settings, emulator, http)
            try:
                yield app, process
            finally:
                app.admin.close()
    finally:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=30)


def in_background(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except Exception as exc:  # reported to the test through the box
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _real_now() -> datetime:
    return datetime.now(UTC)


def test_one_greedy_user_cannot_starve_the_others(tmp_path: Path, emulator: Emulator) -> None:
    with running_app(
        tmp_path, emulator, max_concurrent_calls_per_user=2, tool_budget_seconds=2.0
    ) as app:
        for user in ("ana", "bob"):
            app.create_user(user)
            app.link(f"asst_{user}", user)
            app.connect_google(user, f"{user}@example.com")
        emulator.control.set_latency(1200, "freebusy")  # each call holds its slot 1.2 s
        start = bookable_slots(1, now=FROZEN_NOW)[0]

        async def burst() -> list[tuple[str, dict[str, Any], float]]:
            async with httpx.AsyncClient(timeout=30) as client:

                async def call(assistant: str, n: int, delay: float) -> Any:
                    await asyncio.sleep(delay)
                    body = tool_calls_message(
                        [(f"t{n}", "checkAvailability", {"startDateTime": start})],
                        assistant_id=assistant,
                    )
                    began = time.perf_counter()
                    response = await client.post(
                        f"{app.url}/vapi/webhook",
                        json=body,
                        headers={"x-vapi-secret": VAPI_SECRET},
                    )
                    (result,) = response.json()["results"]
                    return assistant, result, time.perf_counter() - began

                calls = [call("asst_ana", n, 0) for n in range(6)]
                calls.append(call("asst_bob", 99, 0.2))  # arrives while ana is over her cap
                return await asyncio.gather(*calls)

        answers = asyncio.run(burst())
        text = app.http.get(f"{app.url}/metrics").text

    ana = [result for who, result, _ in answers if who == "asst_ana"]
    ok = [r for r in ana if "result" in r]
    busy = [r for r in ana if r.get("error") == UserBusy.default_message]
    assert len(ok) == 2 and len(busy) == 4, ana
    ((_, bob, bob_seconds),) = [a for a in answers if a[0] == "asst_bob"]
    assert "result" in bob, bob  # bob went straight through
    assert bob_seconds < 1.9
    assert metric(text, "vapi_calendar_tool_calls_total", outcome="busy") >= 4


def test_sigterm_lets_the_call_in_flight_finish(tmp_path: Path, emulator: Emulator) -> None:
    with server_process(tmp_path, emulator, generate_key()) as (app, process):
        app.create_user("ana")
        app.link("asst_ana_haircuts", "ana")
        app.connect_google("ana", "ana@example.com")
        emulator.control.set_latency(1500, "freebusy")
        emulator.control.reset_requests()
        thread, box = in_background(
            lambda: app.call_tool(
                "checkAvailability", {"startDateTime": bookable_slots(1, now=_real_now())[0]}
            )
        )
        wait_for(lambda: emulator.control.requests().get("freebusy", 0) >= 1)
        process.send_signal(signal.SIGTERM)
        thread.join(timeout=15)
        assert "error" not in box, box
        assert "available" in box["value"], box["value"]
        # uvicorn re-raises the signal after its graceful shutdown: -SIGTERM, not a crash.
        assert process.wait(timeout=15) in (0, -signal.SIGTERM)
        output = process.stdout.read() if process.stdout else ""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    messages = [line["msg"] for line in lines]
    assert "tool calls answered" in messages
    assert messages.index("tool calls answered") < messages.index("Application shutdown complete.")


def test_a_log_output_nobody_reads_does_not_stall_the_server(
    tmp_path: Path, emulator: Emulator
) -> None:
    """The server's output is a pipe (as under a container's log driver) that stops being read.
    Once its buffer is full a line cannot be written; calls are still answered, and every line
    is written once the pipe is read again."""
    requests = 2000  # access lines of ~200 bytes: several times a 64 KiB pipe buffer
    with server_process(tmp_path, emulator, generate_key()) as (app, process):
        app.create_user("ana")
        app.link("asst_ana_haircuts", "ana")
        app.connect_google("ana", "ana@example.com")
        for _ in range(requests):
            assert app.http.get(f"{app.url}/healthz").status_code == 200
        answer = app.call_tool(
            "checkAvailability", {"startDateTime": bookable_slots(1, now=_real_now())[0]}
        )
        assert "available" in answer, answer
        process.terminate()
        output = process.stdout.read() if process.stdout else ""  # read again, at last
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert [line.get("path") for line in lines].count("/healthz") >= requests
    assert "tool calls answered" in [line["msg"] for line in lines]
    assert not [line for line in lines if "dropped" in line["msg"]]  # the queue held them all


def test_kill_9_mid_booking_loses_nothing_and_the_lock_frees_itself(
    tmp_path: Path, emulator: Emulator
) -> None:
    key = generate_key()
    lease_seconds = "3"
    first, second = bookable_slots(2, now=_real_now())  # a server process: the real clock
    with server_process(tmp_path, emulator, key, BOOKING_LEASE_SECONDS=lease_seconds) as (
        app,
        process,
    ):
        app.create_user("ana")
        app.link("asst_ana_haircuts", "ana")
        app.connect_google("ana", "ana@example.com")
        emulator.control.set_latency(1500, "events.insert")
        emulator.control.reset_requests()
        thread, box = in_background(
            lambda: app.call_tool(
                "scheduleAppointment", {"startDateTime": first}, tool_call_id="call_crash"
            )
        )
        # The insert has reached Google (which will complete it); the server dies holding
        # the booking lock, before it could store its answer.
        wait_for(lambda: emulator.control.requests().get("events.insert", 0) >= 1)
        process.kill()
        process.wait(timeout=10)
        killed_at = time.monotonic()
        thread.join(timeout=15)
        assert "error" in box  # the caller never got an answer

        async def lease_is_held() -> bool:
            store = app.store()
            await store.open()
            try:
                return not await store.acquire_lease("booking:ana:primary", "probe", 0.001)
            finally:
                await store.close()

        assert asyncio.run(lease_is_held())
        wait_for(lambda: len(emulator.control.events("ana@example.com")) == 1, timeout=5)

    emulator.control.clear_faults()
    with server_process(tmp_path, emulator, key, BOOKING_LEASE_SECONDS=lease_seconds) as (
        app,
        _,
    ):
        # Vapi (or the assistant) retries the same tool call: booked once, the same event.
        again = app.call_tool(
            "scheduleAppointment", {"startDateTime": first}, tool_call_id="call_crash"
        )
        assert again["booked"] is True, again
        assert again["eventId"] == event_id_for("ana", "call_crash")
        # Another booking on the same calendar goes through once the dead holder's lease
        # expires (it waits for it rather than failing).
        other = app.call_tool(
            "scheduleAppointment", {"startDateTime": second}, tool_call_id="call_next"
        )
        assert other["booked"] is True, other
        assert time.monotonic() - killed_at >= float(lease_seconds) - 0.5
    events = [e for e in emulator.control.events("ana@example.com") if e["status"] != "cancelled"]
    assert sorted(e["id"] for e in events) == sorted(
        [event_id_for("ana", "call_crash"), event_id_for("ana", "call_next")]
    )
