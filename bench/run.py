"""`make bench`: the server under load on loopback, next to the fastest plain handler.

Processes, all on 127.0.0.1:
- the Google stand-in (the bundled emulator, uvicorn, no access log) with injected latency;
- the server, `vapi-calendar serve`, exactly as deployed (SQLite store, JSON logs at info);
- the baseline (`bench/baseline.py`): a bare Starlette handler on the server's uvicorn settings
  that parses the webhook body and makes the one freeBusy request with aiohttp — and the same
  handler with httpx as an extra row;
- the load generator (`bench/load.py`: wrk with `bench/wrk.lua`, else Python).

For Google latency 0 and 100 ms and concurrency 1 and 50 it measures, in one run: Google's own
time (freeBusy and event insert straight to the stand-in), both baselines, and the server's
`checkAvailability` and `scheduleAppointment` for 200 users (multi-tenant) and for one user
(single-tenant; at c=50 with the default per-user cap of 8 and again with the cap raised to 64,
which needs a server restart, so those rows run last). Every booking asks for a new free slot.
Then, at c=50, Google freeBusy, the aiohttp baseline and the server's availability again with
Google at 100 ms ± 50 ms drawn per request (callers not kept in step by a fixed latency).

Per series: throughput (and its ratio to the aiohttp baseline), latency percentiles and their
overhead over Google's own time, Google requests per call (the stand-in's counters), refreshes
on the hot path, max event-loop lag and RSS (the server's /metrics and /proc), and CPU-ms per
call (utime+stime of the process over the series / calls it answered). The table goes to
stdout, `bench/results.json` and `bench/README.md` (between the results markers).

Bounded: each series stops after its request count or SERIES_CAP_SECONDS, whichever is first;
the run takes about 5 minutes (`--repeat N`: N times that). Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from bench import profile as profiling
from bench import report
from bench.load import SUCCESS, Load, Plan, run_load, wrk_available

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
BEFORE = ROOT / "bench" / "before.json"
CLIENT_ID = "bench-client.apps.googleusercontent.com"
CLIENT_SECRET = "bench-client-secret"  # noqa: S105 - emulator-only
VAPI_SECRET = "bench-vapi-secret"  # noqa: S105
ADMIN_TOKEN = "bench-admin-token"  # noqa: S105
SCOPES = (
    "openid",
    "email",
    "https://www.googleapis.com/auth/calendar.freebusy",
    "https://www.googleapis.com/auth/calendar.events.owned",
    "https://www.googleapis.com/auth/calendar.settings.readonly",
)
TZ = "America/New_York"
USERS = 200
DEFAULT_CAP = 8  # MAX_CONCURRENT_CALLS_PER_USER's default
RAISED_CAP = 64  # above every concurrency here: the cap never binds
# Single-tenant bookings go to a fresh user per series (each has ~640 free slots in the default
# 60-day horizon; every booking takes a new one): c=1 and c=50 at two latencies, and the two
# raised-cap series.
SOLO_BOOKING_SERIES = 6
SOLO_BOOKINGS_MAX = 600
# A quarter of the users start with a token that the background refresher must renew during
# the run (BACKGROUND_REFRESH_SECONDS=5 renews it ~30 s in); the rest last the whole run.
SHORT_TOKEN_SECONDS = 340
BACKGROUND_REFRESH_SECONDS = 5
SERIES_CAP_SECONDS = 15.0
LATENCIES = (0, 100)
# The jittered series: Google at 100 ms give or take up to this much, drawn per request, c=50.
JITTER_MS = 50
CONCURRENCY = (1, 50)
# Requests per series: (latency, concurrency) -> series kind -> count.
COUNTS: dict[tuple[int, int], dict[str, int]] = {
    (0, 1): {"freebusy": 400, "insert": 300, "baseline": 400, "availability": 400, "booking": 300},
    (0, 50): {
        "freebusy": 4000,
        "insert": 3000,
        "baseline": 4000,
        "availability": 3000,
        "booking": 2000,
    },
    (100, 1): {"freebusy": 50, "insert": 30, "baseline": 50, "availability": 50, "booking": 30},
    (100, 50): {
        "freebusy": 3000,
        "insert": 2000,
        "baseline": 3000,
        "availability": 3000,
        "booking": 2000,
    },
}
WEBHOOK_HEADERS = {"x-vapi-secret": VAPI_SECRET, "content-type": "application/json"}


# -- processes --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_emulator(port: int) -> None:
    """Child process: the emulator with the bench client registered and no access log."""
    import uvicorn

    from vapi_calendar.emulator.app import create_emulator_app

    app = create_emulator_app(clients={CLIENT_ID: CLIENT_SECRET})
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (every core), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def rss_kib(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


# -- server metrics ---------------------------------------------------------------------------
Samples = dict[tuple[str, str], float]


def scrape(url: str) -> Samples:
    samples: Samples = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, _, value = line.rpartition(" ")
        name, _, labels = key.partition("{")
        samples[(name, labels.rstrip("}"))] = float(value)
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        v
        for (n, lab), v in samples.items()
        if n == name and all(f'{k}="{val}"' in lab for k, val in labels.items())
    )


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


def max_lag_ms(before: Samples, after: Samples) -> tuple[float, bool]:
    """The largest event-loop lag between two scrapes: (ms, exact).

    Exact when the server's all-time maximum rose during the series (then it is that new
    maximum); otherwise an upper bound: the smallest histogram bucket holding every sample.
    """
    gauge = "vapi_calendar_event_loop_lag_max_seconds"
    high_before, high_after = before.get((gauge, ""), 0.0), after.get((gauge, ""), 0.0)
    if high_after > high_before:
        return high_after * 1000, True
    name = "vapi_calendar_event_loop_lag_seconds_bucket"
    buckets = sorted(
        (float(lab.split('le="')[1].split('"')[0]), after[(n, lab)] - before.get((n, lab), 0))
        for (n, lab) in after
        if n == name
    )
    count = buckets[-1][1] if buckets else 0
    for bound, seen in buckets:
        if seen >= count:
            return bound * 1000, False
    return float("inf"), False


# -- the series -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    name: str  # the row's label
    target: str  # "google" | "aiohttp" | "httpx" | "server"
    kind: str  # COUNTS key: freebusy, insert, baseline, availability, booking
    tenancy: str | None = None  # "multi" | "single"
    cap: int | None = None  # the server's per-user cap when it matters (single-tenant)


def specs_for(concurrency: int) -> list[Spec]:
    series = [
        Spec("Google freeBusy", "google", "freebusy"),
        Spec("Google insert", "google", "insert"),
        Spec("baseline (aiohttp)", "aiohttp", "baseline"),
        Spec("baseline (httpx)", "httpx", "baseline"),
        Spec("checkAvailability", "server", "availability", "multi"),
        Spec("scheduleAppointment", "server", "booking", "multi"),
    ]
    series.append(Spec("checkAvailability", "server", "availability", "single", DEFAULT_CAP))
    series.append(Spec("scheduleAppointment", "server", "booking", "single", DEFAULT_CAP))
    return series


def jittered_specs() -> list[Spec]:
    """With a fixed latency, callers answered in the same instant call again together, so
    bursts of callers stay in lock step from one round to the next; these rows measure the
    same calls with Google's answers spread the way a real service spreads them."""
    return [
        Spec("Google freeBusy", "google", "freebusy"),
        Spec("baseline (aiohttp)", "aiohttp", "baseline"),
        Spec("checkAvailability", "server", "availability", "multi"),
    ]


def raised_cap_specs() -> list[Spec]:
    return [
        Spec("checkAvailability", "server", "availability", "single", RAISED_CAP),
        Spec("scheduleAppointment", "server", "booking", "single", RAISED_CAP),
    ]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def weekday_slots(first: date, days: int) -> list[str]:
    """Half-hour starts inside the default working hours (Mon-Fri 9-17) as local wall times."""
    slots = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        if day.weekday() < 5:
            for half in range(16):
                hour, minute = divmod(9 * 60 + 30 * half, 60)
                slots.append(f"{day.isoformat()}T{hour:02d}:{minute:02d}:00")
    return slots


def freebusy_window(slot: str) -> tuple[str, str]:
    """What the server asks freeBusy for a one-slot question: the slot's local day and the
    seven days after it (`tools.scheduling.search_span`), midnight to midnight."""
    day = date.fromisoformat(slot[:10])
    tz = ZoneInfo(TZ)
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    end_day = day + timedelta(days=8)
    end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=tz)
    return start.isoformat(), end.isoformat()


def tool_body(call_id: str, assistant: str, tool: str, arguments: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "message": {
                "type": "tool-calls",
                "call": {"id": f"call-{call_id}", "assistantId": assistant},
                "toolCallList": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": tool, "arguments": arguments},
                    }
                ],
            }
        },
        separators=(",", ":"),
    ).encode()


# -- the run ----------------------------------------------------------------------------------
@dataclass
class Bench:
    tmp: Path
    use_wrk: bool
    solo_bookers_wanted: int = SOLO_BOOKING_SERIES
    emulator_url: str = ""
    server_url: str = ""
    baseline_urls: dict[str, str] = field(default_factory=dict)
    emulator: subprocess.Popen[bytes] | None = None
    server: subprocess.Popen[bytes] | None = None
    baselines: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    assistants: list[str] = field(default_factory=list)
    slots: dict[str, list[str]] = field(default_factory=dict)
    next_slot: dict[str, int] = field(default_factory=dict)
    solo_bookers: list[str] = field(default_factory=list)
    direct_tokens: dict[str, str] = field(default_factory=dict)
    seq: int = 0
    server_port: int = 0
    key: str = ""
    database_url: str = ""

    # -- processes ----------------------------------------------------------------------------
    def spawn(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"process-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            [sys.executable, *args],
            cwd=self.tmp,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def start_emulator(self) -> None:
        port = free_port()
        self.emulator_url = f"http://127.0.0.1:{port}"
        self.emulator = self.spawn(["-m", "bench.run", "--serve-emulator", str(port)])
        wait_healthy(f"{self.emulator_url}/_emulator/requests", self.emulator)

    def start_server(self, cap: int = DEFAULT_CAP) -> None:
        from vapi_calendar.oauth.vault import generate_key

        if not self.server_port:
            self.server_port = free_port()
            self.server_url = f"http://127.0.0.1:{self.server_port}"
            self.key = generate_key()
            self.database_url = f"sqlite:///{self.tmp / 'data' / 'bench.db'}"
        env = {
            "DATABASE_URL": self.database_url,
            "PUBLIC_URL": self.server_url,
            "ENCRYPTION_KEY": self.key,
            "VAPI_SECRET": VAPI_SECRET,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "GOOGLE_CLIENT_ID": CLIENT_ID,
            "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
            "GOOGLE_EMULATOR_URL": self.emulator_url,
            "BACKGROUND_REFRESH_SECONDS": str(BACKGROUND_REFRESH_SECONDS),
            "MAX_CONCURRENT_CALLS_PER_USER": str(cap),
            "LOG_LEVEL": "info",
        }
        args = ["-m", "vapi_calendar.server.cli", "serve", "--port", str(self.server_port)]
        self.server = self.spawn(args, env)
        wait_healthy(f"{self.server_url}/healthz", self.server)

    def stop_server(self) -> None:
        assert self.server is not None
        self.server.send_signal(signal.SIGTERM)
        self.server.wait(timeout=30)

    def start_baselines(self) -> None:
        token = self.direct_tokens["freebusy"]
        for client in ("aiohttp", "httpx"):
            port = free_port()
            self.baseline_urls[client] = f"http://127.0.0.1:{port}"
            args = ["-m", "bench.baseline", "--client", client, "--port", str(port)]
            process = self.spawn([*args, "--emulator", self.emulator_url, "--token", token])
            self.baselines[client] = process
            wait_healthy(f"{self.baseline_urls[client]}/stats", process)

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    # -- users ----------------------------------------------------------------------------------
    async def setup_users(self) -> None:
        """200 users (assistants asst0..199), one single-tenant user, fresh single-tenant
        bookers, and two Google accounts the bench itself talks to."""
        from vapi_calendar.emulator.control import EmulatorControl
        from vapi_calendar.oauth.grants import seal
        from vapi_calendar.oauth.vault import TokenVault
        from vapi_calendar.ports.oauth import Grant
        from vapi_calendar.stores import store_from_url

        vault = TokenVault.from_setting(self.key)
        store = store_from_url(self.database_url)
        await store.open()
        first = datetime.now(ZoneInfo(TZ)).date() + timedelta(days=1)
        # 57 days: the last slot ends well inside the default 60-day booking horizon.
        slots = weekday_slots(first, 57)
        users = [(f"user{i}", f"asst{i}", i % 4 == 3) for i in range(USERS)]
        users.append(("solo", "solo", False))
        bookers = range(self.solo_bookers_wanted)
        users += [(f"solobook{k}", f"solobook{k}", False) for k in bookers]
        auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        with EmulatorControl(self.emulator_url) as control:
            async with httpx.AsyncClient(base_url=self.server_url, headers=auth) as admin:
                for user, assistant, short in users:
                    email = f"{user}@example.com"
                    control.create_account(email, timezone=TZ)
                    expires = SHORT_TOKEN_SECONDS if short else 3600
                    minted = control.mint_tokens(email, CLIENT_ID, SCOPES, expires_in=expires)
                    r = await admin.post("/api/users", json={"id": user, "timezone": TZ})
                    r.raise_for_status()
                    r = await admin.put(f"/api/assistants/{assistant}", json={"userId": user})
                    r.raise_for_status()
                    grant = Grant(
                        minted["access_token"],
                        minted["refresh_token"],
                        datetime.now(UTC) + timedelta(seconds=expires),
                        tuple(minted["scope"].split()),
                    )
                    await store.save_connection(seal(vault, user, grant, email=email, subject=None))
                    self.slots[assistant] = list(slots)
                    self.next_slot[assistant] = 0
                    if user.startswith("user"):
                        self.assistants.append(assistant)
                    elif user.startswith("solobook"):
                        self.solo_bookers.append(assistant)
                # Kept apart so that freeBusy never scans the thousands of direct inserts.
                for purpose in ("freebusy", "insert"):
                    email = f"direct-{purpose}@example.com"
                    control.create_account(email, timezone=TZ)
                    minted = control.mint_tokens(email, CLIENT_ID, SCOPES, expires_in=3600)
                    self.direct_tokens[purpose] = minted["access_token"]
        await store.close()

    # -- plans ----------------------------------------------------------------------------------
    def call_id(self) -> str:
        self.seq += 1
        return f"bench{self.seq:07d}"

    def plan(self, spec: Spec, n: int) -> Plan:
        if spec.target == "google":
            return self.google_plan(spec.kind, n)
        if spec.target in ("aiohttp", "httpx"):
            return self.baseline_plan(n)
        tool = "checkAvailability" if spec.kind == "availability" else "scheduleAppointment"
        kind = spec.kind
        bodies = []
        if spec.tenancy == "multi":
            for i in range(n):
                assistant = self.assistants[i % len(self.assistants)]
                bodies.append(self.webhook_body(tool, assistant, book=kind == "booking"))
        elif kind == "availability":
            for _ in range(n):
                bodies.append(self.webhook_body(tool, "solo", book=False, rotate=True))
        else:
            assistant = self.solo_bookers.pop(0)
            n = min(n, SOLO_BOOKINGS_MAX)
            bodies = [self.webhook_body(tool, assistant, book=True) for _ in range(n)]
        return Plan("POST", "/vapi/webhook", kind, WEBHOOK_HEADERS, bodies)

    def webhook_body(self, tool: str, assistant: str, *, book: bool, rotate: bool = False) -> bytes:
        """A new free slot for a booking; the next free slot as the question otherwise."""
        slots, at = self.slots[assistant], self.next_slot[assistant]
        if at >= len(slots):
            raise RuntimeError(f"{assistant} has no free slot left; lower the booking counts")
        if book or rotate:
            self.next_slot[assistant] = (at + 1) % len(slots) if rotate else at + 1
        return tool_body(self.call_id(), assistant, tool, {"startDateTime": slots[at]})

    def baseline_plan(self, n: int) -> Plan:
        bodies = []
        for i in range(n):
            assistant = self.assistants[i % len(self.assistants)]
            slot = self.slots[assistant][self.next_slot[assistant]]
            time_min, time_max = freebusy_window(slot)
            arguments = {"startDateTime": slot, "timeMin": time_min, "timeMax": time_max}
            bodies.append(tool_body(self.call_id(), assistant, "checkAvailability", arguments))
        headers = {"content-type": "application/json"}
        return Plan("POST", "/webhook", "availability", headers, bodies)

    def google_plan(self, kind: str, n: int) -> Plan:
        """The Calendar requests themselves, as the server sends them, straight to Google."""
        headers = {
            "authorization": f"Bearer {self.direct_tokens[kind]}",
            "content-type": "application/json",
        }
        slots = self.slots[self.assistants[0]]
        bodies = []
        for i in range(n):
            slot = slots[i % len(slots)]
            if kind == "freebusy":
                time_min, time_max = freebusy_window(slot)
                body: dict[str, Any] = {
                    "timeMin": time_min,
                    "timeMax": time_max,
                    "timeZone": TZ,
                    "items": [{"id": "primary"}],
                }
            else:
                start = datetime.fromisoformat(slot)
                body = {
                    "id": f"direct{self.call_id()[5:]}",  # unique: a new call id each
                    "summary": "Appointment",
                    "description": "Booked by phone through the voice assistant.",
                    "start": {"dateTime": slot, "timeZone": TZ},
                    "end": {
                        "dateTime": (start + timedelta(minutes=30)).isoformat(),
                        "timeZone": TZ,
                    },
                    "extendedProperties": {"private": {"createdBy": "bench"}},
                }
            bodies.append(json.dumps(body, separators=(",", ":")).encode())
        if kind == "freebusy":
            return Plan("POST", "/calendar/v3/freeBusy", "plain", headers, bodies)
        path = "/calendar/v3/calendars/primary/events?sendUpdates=none"
        return Plan("POST", path, "plain", headers, bodies)

    # -- measuring ------------------------------------------------------------------------------
    def our_cpu(self) -> float:
        """CPU seconds of this process and every process it started that is still running."""
        own = resource.getrusage(resource.RUSAGE_SELF)
        total_seconds = own.ru_utime + own.ru_stime
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(OSError):  # it ended just now
                    total_seconds += cpu_seconds(process.pid)
        return total_seconds

    def target(self, spec: Spec) -> tuple[str, int]:
        if spec.target == "google":
            assert self.emulator is not None
            return self.emulator_url, self.emulator.pid
        if spec.target == "server":
            assert self.server is not None
            return self.server_url, self.server.pid
        return self.baseline_urls[spec.target], self.baselines[spec.target].pid

    def answered(self, spec: Spec) -> tuple[float, float]:
        """(calls answered so far, calls in flight) as the target counts them."""
        if spec.target == "server":
            samples = scrape(self.server_url)
            calls = total(samples, "vapi_calendar_tool_calls_total")
            return calls, samples.get(("vapi_calendar_tool_calls_in_flight", ""), 0.0)
        if spec.target in ("aiohttp", "httpx"):
            stats = httpx.get(f"{self.baseline_urls[spec.target]}/stats", timeout=10).json()
            return stats["answered"], stats["in_flight"]
        return 0.0, 0.0

    async def drain(self, spec: Spec) -> None:
        """Wait for calls a time-capped generator left behind (they still cost CPU)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.answered(spec)[1] == 0:
                return
            await asyncio.sleep(0.1)

    def metrics_url(self, spec: Spec) -> str | None:
        if spec.target == "server":
            return self.server_url
        return self.baseline_urls.get(spec.target)

    async def run_series(
        self,
        spec: Spec,
        latency: int,
        concurrency: int,
        n: int,
        cap_seconds: float,
        *,
        jitter: int = 0,
    ) -> dict[str, Any]:
        from vapi_calendar.emulator.control import EmulatorControl

        url, pid = self.target(spec)
        plan = self.plan(spec, n)
        with EmulatorControl(self.emulator_url) as control:
            control.reset_requests()
            # The server's metrics, or a baseline's (its event-loop lag).
            metrics_url = self.metrics_url(spec)
            metrics_before = scrape(metrics_url) if metrics_url else {}
            calls_before, _ = self.answered(spec)
            cpu_before = cpu_seconds(pid)
            machine_before, ours_before, wall_before = (
                machine_busy(),
                self.our_cpu(),
                time.monotonic(),
            )
            load = await run_load(
                url, plan, concurrency, cap_seconds, self.tmp, use_wrk=self.use_wrk
            )
            complete = load.answered == len(plan.bodies)
            if not complete:
                await self.drain(spec)
            cpu = cpu_seconds(pid) - cpu_before
            machine, wall = machine_busy() - machine_before, time.monotonic() - wall_before
            ours = self.our_cpu() - ours_before + (load.cpu_seconds if self.use_wrk else 0.0)
            calls_after, _ = self.answered(spec)
            requests = control.requests()
        calls = calls_after - calls_before if spec.target != "google" else load.answered
        entry = summarise(spec, load, latency, concurrency, len(plan.bodies), cap_seconds)
        entry["jitter_ms"] = jitter
        calendar = sum(v for k, v in requests.items() if not k.startswith("token"))
        entry.update(
            # CPU that processes other than the bench's used meanwhile, in cores: other work on
            # the machine competes for the same 2 cores and makes every figure worse.
            other_load_cores=round(max(0.0, machine - ours) / wall, 2),
            calls_answered=int(calls),
            cpu_ms_per_call=round(1000 * cpu / calls, 3) if calls else None,
            google_requests=requests,
            google_requests_per_call=round(calendar / calls, 3) if calls else None,
            rss_mib=round(rss_kib(pid)["VmRSS"] / 1024, 1),
        )
        if metrics_url:
            after = scrape(metrics_url)
            lag, exact = max_lag_ms(metrics_before, after)
            entry.update(max_loop_lag_ms=round(lag, 1), max_loop_lag_exact=exact)
        if spec.target == "server":
            refreshes = "vapi_calendar_token_refreshes_total"
            entry.update(
                hot_path_refreshes=int(delta(metrics_before, after, refreshes, path="call")),
                background_refreshes=int(
                    delta(metrics_before, after, refreshes, path="background")
                ),
            )
        print(report.progress_line(entry), flush=True)
        return entry

    async def warm_up(self, *, baselines: bool) -> None:
        """Not measured: every Google worker thread builds its service and connection."""
        warm = [Spec("warm-up", "server", "availability", "multi")]
        warm.append(Spec("warm-up", "server", "booking", "multi"))
        if baselines:
            warm += [Spec("warm-up", "aiohttp", "baseline"), Spec("warm-up", "httpx", "baseline")]
        for spec in warm:
            n = 100 if spec.kind == "booking" else 300
            url, _ = self.target(spec)
            await run_load(url, self.plan(spec, n), 50, 10, self.tmp, use_wrk=self.use_wrk)


# Columns that are the median of the repetitions; counts add up; the loop lag is the worst.
MEDIANS = (
    "seconds",
    "throughput",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "generator_cpu_ms_per_call",
    "other_load_cores",
    "cpu_ms_per_call",
    "google_requests_per_call",
    "rss_mib",
)
SUMS = (
    "planned",
    "answered",
    "booked",
    "refused",
    "errors",
    "calls_answered",
    "hot_path_refreshes",
    "background_refreshes",
)


def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row for the repetitions of a series: medians, sums and the worst loop lag."""
    if len(runs) == 1:
        return runs[0]
    entry = dict(runs[0])
    for key in MEDIANS:
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            entry[key] = round(statistics.median(values), 3)
    for key in SUMS:
        if key in entry:
            entry[key] = sum(r[key] for r in runs)
    for key in ("outcomes", "error_sentences", "google_requests"):
        merged: Counter[str] = Counter()
        for r in runs:
            merged.update(r.get(key) or {})
        entry[key] = dict(merged)
    if "max_loop_lag_ms" in entry:
        worst = max(runs, key=lambda r: (r["max_loop_lag_ms"], not r["max_loop_lag_exact"]))
        entry["max_loop_lag_ms"] = worst["max_loop_lag_ms"]
        entry["max_loop_lag_exact"] = worst["max_loop_lag_exact"]
    entry["time_capped"] = any(r["time_capped"] for r in runs)
    entry["sample_error"] = next((r["sample_error"] for r in runs if r["sample_error"]), None)
    for key in ("throughput", "cpu_ms_per_call"):
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            entry[f"{key}_range"] = [min(values), max(values)]
    entry["repetitions"] = runs
    return entry


def summarise(
    spec: Spec, load: Load, latency: int, concurrency: int, planned: int, cap: float
) -> dict[str, Any]:
    latencies = load.latencies
    classes = load.classes
    errors = sum(v for k, v in classes.items() if k not in SUCCESS and k != "refused")
    return {
        "name": spec.name,
        "target": spec.target,
        "kind": spec.kind,
        "tenancy": spec.tenancy,
        "cap": spec.cap,
        "latency_ms": latency,
        "concurrency": concurrency,
        "generator": load.generator,
        "planned": planned,
        "answered": load.answered,
        "time_capped": load.answered < planned,
        "cap_seconds": cap,
        "seconds": round(load.seconds, 2),
        "throughput": round(load.throughput, 1),
        "p50_ms": round(pct(latencies, 50) * 1000, 2),
        "p95_ms": round(pct(latencies, 95) * 1000, 2),
        "p99_ms": round(pct(latencies, 99) * 1000, 2),
        "max_ms": round(max(latencies, default=float("nan")) * 1000, 2),
        "booked": classes.get("booked", 0),
        "refused": classes.get("refused", 0),
        "errors": errors + load.transport_errors,
        "outcomes": dict(classes),
        "error_sentences": dict(load.error_sentences),
        "sample_error": load.sample,
        "generator_cpu_ms_per_call": round(1000 * load.cpu_seconds / load.answered, 3)
        if load.answered
        else None,
    }


async def main_async(args: argparse.Namespace) -> None:
    began = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="vapi-bench-"))
    use_wrk = wrk_available() and not args.python_load
    if not use_wrk:
        print(
            "note: wrk is not installed (apt-get install wrk), so the load comes from the Python "
            "generator, which competes with the server for the 2 cores: throughput figures are "
            "lower than with wrk and not comparable to the committed ones."
        )
    bench = Bench(tmp, use_wrk, solo_bookers_wanted=SOLO_BOOKING_SERIES * args.repeat)
    scale = 10 if args.quick else 1
    cap_seconds = 5.0 if args.quick else SERIES_CAP_SECONDS
    series: list[dict[str, Any]] = []
    meta: dict[str, Any] = {}
    try:
        bench.start_emulator()
        bench.start_server()
        print(f"server {bench.server_url}, emulator {bench.emulator_url}; setting up users")
        await bench.setup_users()
        bench.start_baselines()
        from vapi_calendar.emulator.control import EmulatorControl

        assert bench.server is not None
        start_metrics = scrape(bench.server_url)

        def counts(latency: int, concurrency: int) -> dict[str, int]:
            return {
                k: max(2 * concurrency, v // scale)
                for k, v in COUNTS[(latency, concurrency)].items()
            }

        async def measure(
            spec: Spec, latency: int, concurrency: int, n: int, *, jitter: int = 0
        ) -> None:
            """One row of the table: the series `--repeat` times in a row, merged."""
            runs = [
                await bench.run_series(spec, latency, concurrency, n, cap_seconds, jitter=jitter)
                for _ in range(args.repeat)
            ]
            series.append(merge(runs))

        for latency in LATENCIES:
            with EmulatorControl(bench.emulator_url) as control:
                control.clear_faults()
                control.set_latency(latency)
            await bench.warm_up(baselines=True)
            for concurrency in CONCURRENCY:
                for spec in specs_for(concurrency):
                    n = counts(latency, concurrency)[spec.kind]
                    await measure(spec, latency, concurrency, n)
                    profiled = spec.tenancy == "multi" and spec.kind == "availability"
                    if args.profile and concurrency > 1 and profiled:
                        await profile_pass(bench, spec, latency, concurrency, n, cap_seconds)
        with EmulatorControl(bench.emulator_url) as control:
            control.set_latency(100, jitter_ms=JITTER_MS)
        for spec in jittered_specs():
            n = counts(100, 50)[spec.kind]
            await measure(spec, 100, 50, n, jitter=JITTER_MS)
        end_metrics, refreshes = scrape(bench.server_url), "vapi_calendar_token_refreshes_total"
        meta["hot_path_refreshes"] = delta(start_metrics, end_metrics, refreshes, path="call")
        meta["background_refreshes"] = delta(
            start_metrics, end_metrics, refreshes, path="background"
        )
        meta["max_loop_lag_ms"] = round(
            end_metrics.get(("vapi_calendar_event_loop_lag_max_seconds", ""), 0.0) * 1000, 1
        )
        meta["peak_rss_mib"] = round(rss_kib(bench.server.pid)["VmHWM"] / 1024, 1)
        # One whole background-refresh interval, so the window holds exactly one round.
        idle_before, idle_at = cpu_seconds(bench.server.pid), time.monotonic()
        await asyncio.sleep(BACKGROUND_REFRESH_SECONDS)
        idle_ms_per_s = (
            1000 * (cpu_seconds(bench.server.pid) - idle_before) / (time.monotonic() - idle_at)
        )

        # The per-user cap is read at start: the raised-cap rows need their own server.
        bench.stop_server()
        bench.start_server(cap=RAISED_CAP)
        for latency in LATENCIES:
            with EmulatorControl(bench.emulator_url) as control:
                control.clear_faults()
                control.set_latency(latency)
            await bench.warm_up(baselines=False)
            for spec in raised_cap_specs():
                n = counts(latency, 50)[spec.kind]
                await measure(spec, latency, 50, n)
        meta.update(
            machine=machine(),
            python=platform.python_version(),
            date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            commit=git_commit(),
            users=USERS,
            generator="wrk" if use_wrk else "python",
            wrk=wrk_version() if use_wrk else None,
            cap_seconds=cap_seconds,
            quick=args.quick,
            repeat=args.repeat,
            idle_server_cpu_ms_per_s=round(idle_ms_per_s, 2),
            seconds=round(time.monotonic() - began),
        )
    finally:
        bench.stop()
    results = {"meta": meta, "series": series}
    before = json.loads(BEFORE.read_text()) if BEFORE.exists() else None
    table = report.render(results, before)
    print()
    print(table)
    if args.quick:
        out = tmp / "results.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\n(quick run: nothing committed is rewritten; results in {out})")
    else:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        report.write_readme("results", table)
        written = ["bench/README.md", "bench/results.json"]
        if args.record_before:
            BEFORE.write_text(json.dumps(results, indent=2) + "\n")
            report.write_readme("before", report.render(results, None, targets=False))
            written.append("bench/before.json")
        print(f"\nwritten to {', '.join(written)}")
    if args.keep:
        print(f"logs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


async def profile_pass(
    bench: Bench, spec: Spec, latency: int, concurrency: int, n: int, cap_seconds: float
) -> None:
    """The same series again under py-spy, not measured (sampling slows the server)."""
    assert bench.server is not None
    name = f"profile-availability-{latency}ms-c{concurrency}"
    spy = profiling.start(bench.server.pid, bench.tmp / f"{name}.raw")
    if spy is None:
        return
    url, _ = bench.target(spec)
    load = await run_load(
        url, bench.plan(spec, n), concurrency, cap_seconds, bench.tmp, use_wrk=bench.use_wrk
    )
    target = ROOT / "bench" / f"{name}.txt"
    title = (
        f"checkAvailability, 200 users, Google latency {latency} ms, concurrency {concurrency}, "
        f"{load.answered} calls at {load.throughput:.0f}/s while sampled"
    )
    profiling.stop(spy, target, title)
    print(f"  profile written to {target.relative_to(ROOT)}", flush=True)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}"


# What the server runs: a change anywhere else (bench/, docs) does not make the commit "modified".
APP = ("emulator", "oauth", "pipeline", "ports", "providers", "server", "stores", "support")
APP += ("tools", "pyproject.toml")


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        dirty = subprocess.run(  # noqa: S603 - fixed arguments
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *APP],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip() + (" (modified)" if dirty.stdout.strip() else "")


def wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)  # noqa: S607
    return (out.stdout or out.stderr).splitlines()[0].split(" Copyright")[0].strip()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a tenth of the requests; rewrites nothing"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the server during availability at c=50"
    )
    parser.add_argument(
        "--record-before",
        action="store_true",
        help="also keep this run as the 'before optimisation' figures (bench/before.json)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="measure every series N times in a row and report per-column medians",
    )
    parser.add_argument("--python-load", action="store_true", help="use the Python generator")
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs")
    parser.add_argument("--serve-emulator", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_emulator:
        serve_emulator(args.serve_emulator)
        return
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
