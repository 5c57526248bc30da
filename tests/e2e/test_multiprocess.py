"""Scale-out: two real server processes (`vapi-calendar serve`) on one database, per backend.

Everything that must be single across replicas — one event per slot, one token refresh per
user — is decided in the shared store, so it has to hold across processes, not just tasks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness.app import (
    ADMIN_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    VAPI_SECRET,
    App,
    Emulator,
    app_settings,
    bookable_slots,
)
from tests.harness.servers import free_port, wait_until_serving
from vapi_calendar.server.config import Settings

CAL = "ana@example.com"
CONCURRENT_CALLS = 20
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Cluster:
    apps: list[App]  # one handle per server process, all on the same database

    def spread(self, i: int) -> App:
        return self.apps[i % len(self.apps)]


def _server_env(settings: Settings, emulator_url: str) -> dict[str, str]:
    # Drop any configuration the developer's shell carries, so only what we set applies.
    setting_names = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in setting_names}
    assert settings.encryption_key is not None
    env.update(
        DATABASE_URL=settings.database_url,
        GOOGLE_EMULATOR_URL=emulator_url,
        GOOGLE_CLIENT_ID=CLIENT_ID,
        GOOGLE_CLIENT_SECRET=CLIENT_SECRET,
        VAPI_SECRET=VAPI_SECRET,
        ADMIN_TOKEN=ADMIN_TOKEN,
        ENCRYPTION_KEY=settings.encryption_key.get_secret_value(),
        LOG_LEVEL="warning",
    )
    return env


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    wait_until_serving(url, proc, path="/readyz", output=log.read_text)


@pytest.fixture
def cluster(tmp_path: Path, emulator: Emulator, database_url: str) -> Iterator[Cluster]:
    """Two `python -m server.cli serve` processes sharing `database_url`; `ana` connected."""
    settings = app_settings(tmp_path, emulator.url, database_url=database_url)
    env = _server_env(settings, emulator.url)
    procs: list[subprocess.Popen[bytes]] = []
    apps: list[App] = []
    with httpx.Client(timeout=30) as http:
        try:
            started: list[tuple[str, Path]] = []
            for n in range(2):
                port = free_port()
                log = tmp_path / f"server-{n}.log"
                with log.open("wb") as out:
                    procs.append(
                        subprocess.Popen(
                            [
                                sys.executable,
                                "-m",
                                "vapi_calendar.server.cli",
                                "serve",
                                "--port",
                                str(port),
                            ],
                            # Not the repo: a developer's .env there must not configure these.
                            cwd=tmp_path,
                            env=env | {"PYTHONPATH": str(REPO)},
                            stdout=out,
                            stderr=subprocess.STDOUT,
                        )
                    )
                started.append((f"http://127.0.0.1:{port}", log))
            for proc, (url, log) in zip(procs, started, strict=True):
                _wait_ready(url, proc, log)
                apps.append(App(url, settings, emulator, http))
            apps[0].create_user("ana")
            # Generous, so a slow machine's "two days from now" stays bookable.
            response = apps[0].admin.patch(
                "/api/users/ana", json={"rules": {"bookingHorizonDays": 3650}}
            )
            assert response.status_code == 200, response.text
            apps[1].link("asst_ana_haircuts", "ana")  # written by one, read by both
            yield Cluster(apps)
        finally:
            for running in apps:
                running.admin.close()
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _concurrently(cluster: Cluster, call: Any) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=CONCURRENT_CALLS) as pool:
        return list(pool.map(lambda i: call(cluster.spread(i), i), range(CONCURRENT_CALLS)))


def test_concurrent_bookings_of_one_slot_across_processes_make_one_event(
    cluster: Cluster, emulator: Emulator
) -> None:
    cluster.apps[0].connect_google("ana", CAL)
    emulator.control.reset_requests()
    # Server processes read the real clock: a weekday two days from now.
    start = bookable_slots(1, now=datetime.now(UTC))[0]
    args = {"startDateTime": start, "durationMinutes": 30, "summary": "Cut"}

    results = _concurrently(
        cluster,
        lambda app, i: app.call_tool("scheduleAppointment", args, tool_call_id=f"call_{i}"),
    )

    booked = [r for r in results if r.get("booked") is True]
    assert len(booked) == 1, json.dumps(results)[:2000]
    assert all(r.get("booked") is False for r in results if r is not booked[0]), results
    events = [e for e in emulator.control.events(CAL) if e.get("status") != "cancelled"]
    assert [e["id"] for e in events] == [booked[0]["eventId"]]
    assert emulator.control.requests().get("events.insert") == 1


def test_concurrent_calls_across_processes_refresh_an_expired_token_once(
    cluster: Cluster, emulator: Emulator
) -> None:
    cluster.apps[0].connect_google("ana", CAL, expires_in=0)
    emulator.control.reset_requests()
    args = {"startDateTime": bookable_slots(2, now=datetime.now(UTC))[1], "durationMinutes": 30}

    results = _concurrently(cluster, lambda app, i: app.call_tool("checkAvailability", args))

    assert all(r.get("available") is True for r in results), json.dumps(results)[:2000]
    assert emulator.control.requests().get("token.refresh_token") == 1
    # Both processes went on with the one refreshed token, stored for everyone.
    connection = cluster.apps[1].connection("ana")
    assert connection is not None and connection.expiry is not None
    assert connection.expiry.timestamp() > time.time() + 60


def test_early_revocation_under_rotation_across_processes_refreshes_at_most_once(
    cluster: Cluster, emulator: Emulator
) -> None:
    cluster.apps[0].connect_google("ana", CAL)
    emulator.control.set_rotate_refresh_tokens(True)
    emulator.control.expire_access_tokens(CAL)  # refused before its expiry, in both processes
    emulator.control.reset_requests()
    args = {"startDateTime": bookable_slots(3, now=datetime.now(UTC))[2], "durationMinutes": 30}

    results = _concurrently(
        cluster, lambda app, i: app.call_tool("checkAvailability", args, tool_call_id=f"x{i}")
    )

    assert all(r.get("available") is True for r in results), json.dumps(results)[:2000]
    assert emulator.control.requests().get("token.refresh_token", 0) <= 1
    connection = cluster.apps[1].connection("ana")
    assert connection is not None and connection.status == "connected"
