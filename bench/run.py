"""`make bench`: load the real server against the emulator on loopback, next to the baseline.

Three processes besides this one (the load generator, an async httpx client):
- the Google emulator (uvicorn, no access log), with injected latency per phase;
- the server, `vapi-calendar serve`, exactly as deployed (SQLite store, JSON logs at info);
- the baseline (`bench/baseline.py`): a bare Starlette handler making the same one freeBusy
  request with an async client — the physical limit of "one HTTP call per tool call".

Per injected Google latency (0 ms and 100 ms) and concurrency (1 and 100) it measures
`checkAvailability` and `scheduleAppointment` webhooks across many users, the baseline, and
"Google's own time" (the same Calendar requests sent straight to the emulator by this process).
It prints latency percentiles, throughput, overhead over Google's own time, ratios to the
baseline, Google requests per tool call (emulator counters), refreshes on the hot path and in
the background (server metrics), max event-loop lag (the server's lag monitor) and peak RSS
(/proc of the server), and writes the table into bench/README.md.

Bounded: every phase has a request count and a time cap (see PHASES / PHASE_CAP_SECONDS); the
whole run takes about 2-3 minutes. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "bench" / "README.md"
RESULTS = ROOT / "bench" / "results.json"
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
# A quarter of the users start with a token that the background refresher must renew during
# the run (fresh for calls for 40 s, inside the background horizon after 30 s).
SHORT_TOKEN_SECONDS = 340
BACKGROUND_REFRESH_SECONDS = 5
PHASE_CAP_SECONDS = 40.0
# (injected latency ms, concurrency) -> requests per measured series
PHASES: dict[tuple[int, int], dict[str, int]] = {
    (0, 1): {"availability": 300, "booking": 200, "baseline": 300, "direct": 300},
    (0, 100): {"availability": 3000, "booking": 1500, "baseline": 3000, "direct": 3000},
    (100, 1): {"availability": 40, "booking": 25, "baseline": 40, "direct": 40},
    (100, 100): {"availability": 2000, "booking": 1000, "baseline": 2000, "direct": 2000},
}


# -- processes ----------------------------------------------------------------------------------
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


def rss_kib(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


# -- load -----------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


@dataclass
class Series:
    name: str
    latencies: list[float] = field(default_factory=list)  # seconds
    seconds: float = 0.0
    errors: int = 0
    sample_error: str | None = None

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return pct(self.latencies, q) * 1000


Maker = Callable[[httpx.AsyncClient, int], Awaitable[tuple[bool, str | None]]]


async def drive(name: str, make: Maker, total: int, concurrency: int) -> Series:
    """Closed loop: `concurrency` workers send `total` requests (or stop at the time cap).

    Each worker has its own client and connection, like independent Vapi deliveries: one
    shared httpx pool serialises badly at 100 concurrent requests (measured: 190 req/s shared
    against 1500 req/s per worker, against the same emulator), and would measure httpx.
    """
    series = Series(name)
    counter = iter(range(total))
    clients = [httpx.AsyncClient(timeout=60) for _ in range(concurrency)]
    started = time.perf_counter()
    stop_at = started + PHASE_CAP_SECONDS

    async def worker(client: httpx.AsyncClient) -> None:
        for n in counter:
            if time.perf_counter() > stop_at:
                return
            began = time.perf_counter()
            ok, problem = await make(client, n)
            series.latencies.append(time.perf_counter() - began)
            if not ok:
                series.errors += 1
                series.sample_error = series.sample_error or problem

    try:
        await asyncio.gather(*(worker(client) for client in clients))
    finally:
        series.seconds = time.perf_counter() - started
        await asyncio.gather(*(client.aclose() for client in clients))
    return series


def tool_body(call_id: str, assistant: str, tool: str, arguments: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "message": {
                "type": "tool-calls",
                "call": {"id": f"bench-{call_id}", "assistantId": assistant},
                "toolCallList": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": tool, "arguments": arguments},
                    }
                ],
            }
        }
    ).encode()


def weekday_slots(first: date, days: int) -> list[str]:
    slots = []
    day = first
    for _ in range(days):
        if day.weekday() < 5:
            for half in range(16):
                hour, minute = divmod(9 * 60 + 30 * half, 60)
                slots.append(f"{day.isoformat()}T{hour:02d}:{minute:02d}:00")
        day += timedelta(days=1)
    return slots


# -- metrics -------------------------------------------------------------------------------------
def scrape(url: str) -> dict[tuple[str, str], float]:
    samples: dict[tuple[str, str], float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, _, value = line.rpartition(" ")
        name, _, labels = key.partition("{")
        samples[(name, labels.rstrip("}"))] = float(value)
    return samples


def total(samples: dict[tuple[str, str], float], name: str, **labels: str) -> float:
    return sum(
        v
        for (n, lab), v in samples.items()
        if n == name and all(f'{k}="{val}"' in lab for k, val in labels.items())
    )


def lag_bound_ms(before: dict, after: dict) -> float:
    """Upper bound of the largest loop lag seen between two scrapes (histogram buckets)."""
    name = "vapi_calendar_event_loop_lag_seconds_bucket"
    buckets = sorted(
        (float(re.search(r'le="([^"]+)"', lab).group(1)), after[(n, lab)] - before.get((n, lab), 0))
        for (n, lab) in after
        if n == name
    )
    in_total = buckets[-1][1] if buckets else 0
    for bound, count in buckets:
        if count >= in_total:
            return bound * 1000
    return float("inf")


# -- the run -------------------------------------------------------------------------------------
@dataclass
class Bench:
    tmp: Path
    emulator_url: str = ""
    server_url: str = ""
    baseline_url: str = ""
    server: subprocess.Popen[bytes] | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    assistants: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)  # email -> access token
    slots: dict[str, list[str]] = field(default_factory=dict)
    seq: int = 0

    def spawn(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            [sys.executable, *args],
            cwd=self.tmp,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def start(self) -> None:
        from vapi_calendar.oauth.vault import generate_key

        port = free_port()
        self.emulator_url = f"http://127.0.0.1:{port}"
        emulator = self.spawn(["-m", "bench.run", "--serve-emulator", str(port)])
        wait_healthy(f"{self.emulator_url}/_emulator/requests", emulator)
        port = free_port()
        self.server_url = f"http://127.0.0.1:{port}"
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
            "LOG_LEVEL": "info",
        }
        self.server = self.spawn(
            ["-m", "vapi_calendar.server.cli", "serve", "--port", str(port)], env
        )
        wait_healthy(f"{self.server_url}/healthz", self.server)

    def start_baseline(self) -> None:
        port = free_port()
        self.baseline_url = f"http://127.0.0.1:{port}"
        token = self.tokens["bench0@example.com"]
        args = ["-m", "bench.baseline", "--port", str(port), "--emulator", self.emulator_url]
        process = self.spawn([*args, "--token", token])
        wait_healthy(f"{self.baseline_url}/webhook", process)

    async def setup_users(self) -> None:
        from vapi_calendar.emulator.control import EmulatorControl
        from vapi_calendar.oauth.grants import seal
        from vapi_calendar.oauth.vault import TokenVault
        from vapi_calendar.ports.oauth import Grant
        from vapi_calendar.stores import store_from_url

        vault = TokenVault.from_setting(self.key)
        store = store_from_url(self.database_url)
        await store.open()
        first = datetime.now(ZoneInfo(TZ)).date() + timedelta(days=2)
        auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        with EmulatorControl(self.emulator_url) as control:
            async with httpx.AsyncClient(base_url=self.server_url, headers=auth) as admin:
                # the last two: direct-to-Google accounts for freeBusy and for inserts (kept
                # apart so freeBusy never scans thousands of inserted events)
                for i in range(USERS + 2):
                    email = f"bench{i}@example.com"
                    control.create_account(email, timezone=TZ)
                    expires = SHORT_TOKEN_SECONDS if i % 4 == 3 else 3600
                    minted = control.mint_tokens(email, CLIENT_ID, SCOPES, expires_in=expires)
                    self.tokens[email] = minted["access_token"]
                    if i >= USERS:
                        continue
                    user = f"user{i}"
                    r = await admin.post("/api/users", json={"id": user, "timezone": TZ})
                    r.raise_for_status()
                    r = await admin.put(f"/api/assistants/asst{i}", json={"userId": user})
                    r.raise_for_status()
                    grant = Grant(
                        minted["access_token"],
                        minted["refresh_token"],
                        datetime.now(UTC) + timedelta(seconds=expires),
                        tuple(minted["scope"].split()),
                    )
                    await store.save_connection(seal(vault, user, grant, email=email, subject=None))
                    self.assistants.append(f"asst{i}")
                    self.slots[f"asst{i}"] = weekday_slots(first, 40)
        await store.close()

    # -- request makers ---------------------------------------------------------------------
    def next_id(self) -> int:
        self.seq += 1
        return self.seq

    def webhook(self, tool: str) -> Maker:
        headers = {"x-vapi-secret": VAPI_SECRET, "content-type": "application/json"}
        url = f"{self.server_url}/vapi/webhook"

        async def make(client: httpx.AsyncClient, n: int) -> tuple[bool, str | None]:
            assistant = self.assistants[n % len(self.assistants)]
            call_id = f"c{self.next_id()}"
            if tool == "scheduleAppointment":
                arguments = {"startDateTime": self.slots[assistant].pop(0)}
            else:
                arguments = {"startDateTime": self.slots[assistant][0]}
            response = await client.post(
                url, content=tool_body(call_id, assistant, tool, arguments), headers=headers
            )
            if response.status_code != 200:
                return False, f"HTTP {response.status_code}"
            (result,) = response.json()["results"]
            if "error" in result:
                return False, result["error"]
            if tool == "scheduleAppointment" and '"booked":true' not in result["result"]:
                return False, result["result"][:120]
            return True, None

        return make

    def baseline(self) -> Maker:
        start = datetime.now(UTC) + timedelta(days=3)
        arguments = {
            "timeMin": start.isoformat(),
            "timeMax": (start + timedelta(hours=3)).isoformat(),
        }
        body = tool_body("b", "asst0", "checkAvailability", arguments)
        url = f"{self.baseline_url}/webhook"

        async def make(client: httpx.AsyncClient, n: int) -> tuple[bool, str | None]:
            response = await client.post(url, content=body)
            return response.status_code == 200, f"HTTP {response.status_code}"

        return make

    def direct(self, kind: str) -> Maker:
        """The Calendar request itself, straight to the emulator: Google's own time."""
        email = f"bench{USERS if kind == 'freebusy' else USERS + 1}@example.com"
        headers = {"authorization": f"Bearer {self.tokens[email]}"}
        start = datetime.now(UTC) + timedelta(days=3)
        base = f"{self.emulator_url}/calendar/v3"

        async def make(client: httpx.AsyncClient, n: int) -> tuple[bool, str | None]:
            if kind == "freebusy":
                body = {
                    "timeMin": start.isoformat(),
                    "timeMax": (start + timedelta(hours=6)).isoformat(),
                    "timeZone": TZ,
                    "items": [{"id": "primary"}],
                }
                response = await client.post(f"{base}/freeBusy", json=body, headers=headers)
            else:
                at = start + timedelta(minutes=30 * self.next_id())
                body = {
                    "id": f"direct{self.seq:08d}",
                    "summary": "x",
                    "start": {"dateTime": at.isoformat()},
                    "end": {"dateTime": (at + timedelta(minutes=30)).isoformat()},
                }
                response = await client.post(
                    f"{base}/calendars/primary/events", json=body, headers=headers
                )
            return response.status_code == 200, f"HTTP {response.status_code}"

        return make

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


async def run_phase(
    bench: Bench, latency: int, concurrency: int, counts: dict[str, int], profile: bool
) -> dict[str, Any]:
    from vapi_calendar.emulator.control import EmulatorControl

    result: dict[str, Any] = {"latency_ms": latency, "concurrency": concurrency, "series": {}}
    with EmulatorControl(bench.emulator_url) as control:
        plan = [
            ("google freeBusy", bench.direct("freebusy"), counts["direct"]),
            ("google insert", bench.direct("insert"), counts["booking"]),
            ("baseline", bench.baseline(), counts["baseline"]),
            ("checkAvailability", bench.webhook("checkAvailability"), counts["availability"]),
            ("scheduleAppointment", bench.webhook("scheduleAppointment"), counts["booking"]),
        ]
        for name, make, n in plan:
            control.reset_requests()
            before = scrape(bench.server_url)
            spy = None
            if profile and concurrency > 1 and name == "checkAvailability":
                spy = start_profile(bench, f"profile-{latency}ms-c{concurrency}")
            series = await drive(name, make, n, concurrency)
            if spy is not None:
                stop_profile(spy)
            after = scrape(bench.server_url)
            requests = control.requests()
            calendar = sum(v for k, v in requests.items() if not k.startswith("token"))
            entry = {
                "count": series.count,
                "errors": series.errors,
                "sample_error": series.sample_error,
                "seconds": round(series.seconds, 2),
                "throughput": round(series.throughput, 1),
                "p50_ms": round(series.p(50), 2),
                "p95_ms": round(series.p(95), 2),
                "p99_ms": round(series.p(99), 2),
                "mean_ms": round(statistics.fmean(series.latencies) * 1000, 2)
                if series.latencies
                else None,
            }
            if name in ("checkAvailability", "scheduleAppointment"):
                refresh = "vapi_calendar_token_refreshes_total"
                entry.update(
                    google_requests_per_call=round(calendar / max(1, series.count), 3),
                    google_requests=requests,
                    hot_path_refreshes=total(after, refresh, path="call")
                    - total(before, refresh, path="call"),
                    background_refreshes=total(after, refresh, path="background")
                    - total(before, refresh, path="background"),
                    loop_lag_max_ms_at_most=lag_bound_ms(before, after),
                    server_rss_mib=round(rss_kib(bench.server.pid)["VmRSS"] / 1024, 1),
                )
            result["series"][name] = entry
            print(
                f"  {latency:>3} ms  c={concurrency:<3} {name:<20} "
                f"n={series.count:<5} p50={entry['p50_ms']:>7} p99={entry['p99_ms']:>8} "
                f"{entry['throughput']:>7}/s errors={series.errors}",
                flush=True,
            )
    return result


# -- profiling (optional: py-spy) ----------------------------------------------------------------
def start_profile(bench: Bench, name: str) -> tuple[subprocess.Popen[bytes], Path] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("  (py-spy not installed: pip install py-spy to profile)")
        return None
    out = bench.tmp / f"{name}.txt"
    assert bench.server is not None
    process = subprocess.Popen(  # noqa: S603
        [
            spy,
            "record",
            "--pid",
            str(bench.server.pid),
            "--format",
            "raw",
            "--rate",
            "250",
            "--threads",
            "--gil",  # only samples holding the GIL: where Python CPU goes
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, out


def stop_profile(spy: tuple[subprocess.Popen[bytes], Path] | None) -> None:
    if spy is None:
        return
    process, out = spy
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    target = ROOT / "bench" / out.name
    summarize_profile(out, target)
    print(f"  profile written to {target.relative_to(ROOT)}")


def summarize_profile(raw: Path, target: Path, top: int = 25) -> None:
    """py-spy raw (collapsed stacks) → where the server's CPU goes, by package and function."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    packages: dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        if any("idle" in f for f in frames[:1]):
            continue
        samples += count
        leaf = frames[-1]
        own[leaf] = own.get(leaf, 0) + count
        package = _package(leaf)
        packages[package] = packages.get(package, 0) + count
        for frame in set(frames[1:]):
            inclusive[frame] = inclusive.get(frame, 0) + count
    lines = [
        f"# {target.stem}: {samples} busy samples (py-spy --gil, 250 Hz)",
        "",
    ]
    lines.append("## own time by package")
    for name, count in sorted(packages.items(), key=lambda kv: -kv[1])[:15]:
        lines.append(f"{100 * count / max(1, samples):5.1f}%  {name}")
    lines.append("")
    lines.append("## own time by function")
    for name, count in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * count / max(1, samples):5.1f}%  {name}")
    lines.append("")
    lines.append("## inclusive time (selected project and library entry points)")
    keys = (
        "execute (googleapiclient",
        "_run_tool",
        "credentials_for",
        "vapi_webhook",
        "request (httplib2",
        "method (googleapiclient",
        "busy (tools",
        "hold_lease",
        "get_record",
        "put_record",
        "acquire_lease",
        "format (server/logs",
        "AuthorizedHttp",
    )
    for name, count in sorted(inclusive.items(), key=lambda kv: -kv[1]):
        if any(k in name for k in keys):
            lines.append(f"{100 * count / max(1, samples):5.1f}%  {name}")
    target.write_text("\n".join(lines) + "\n")


def _package(frame: str) -> str:
    match = re.search(r"\(([^)]*?)(?::\d+)?\)$", frame)
    path = match.group(1) if match else frame
    if "site-packages/" in path:
        return path.split("site-packages/")[1].split("/")[0]
    if "/lib/python3" in path:
        return "stdlib:" + path.rsplit("/", 1)[-1]
    return path.split("/")[0] if "/" in path else path


# -- report ---------------------------------------------------------------------------------------
def report(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    rows = []
    head = (
        "| Google latency | conc. | series | n | p50 ms | p95 ms | p99 ms | req/s | "
        "overhead p50 / p99 ms | vs baseline (thr. / p50 over.) | Google req/call | "
        "hot-path refreshes | max loop lag | RSS MiB |"
    )
    rows.append(head)
    rows.append("|" + "---|" * (head.count("|") - 1))
    for phase in results:
        s = phase["series"]
        fb, ins, base = s["google freeBusy"], s["google insert"], s["baseline"]
        for name in ("baseline", "checkAvailability", "scheduleAppointment"):
            e = s[name]
            if name == "scheduleAppointment":
                g50, g99 = fb["p50_ms"] + ins["p50_ms"], fb["p99_ms"] + ins["p99_ms"]
            else:
                g50, g99 = fb["p50_ms"], fb["p99_ms"]
            over = f"{e['p50_ms'] - g50:.1f} / {e['p99_ms'] - g99:.1f}"
            if name == "baseline":
                ratio = "1.00 / -"
                extra = "| 1 | - | - | - |"
            else:
                base_over = base["p50_ms"] - fb["p50_ms"]
                ratio = (
                    f"{e['throughput'] / base['throughput']:.2f} / "
                    f"{(e['p50_ms'] - g50) - base_over:+.1f} ms"
                )
                extra = (
                    f"| {e['google_requests_per_call']} | {int(e['hot_path_refreshes'])} "
                    f"| ≤{e['loop_lag_max_ms_at_most']:g} ms | {e['server_rss_mib']} |"
                )
            err = f" ({e['errors']} err)" if e["errors"] else ""
            rows.append(
                f"| {phase['latency_ms']} ms | {phase['concurrency']} | {name}{err} | {e['count']} "
                f"| {e['p50_ms']:.1f} | {e['p95_ms']:.1f} | {e['p99_ms']:.1f} "
                f"| {e['throughput']:.0f} | {over} | {ratio} {extra}"
            )
    lines = [
        f"Machine: {meta['machine']}; Python {meta['python']}; {meta['date']}; "
        f"{meta['users']} users; run took {meta['seconds']:.0f} s.",
        "",
        *rows,
        "",
        "Google's own time (straight to the emulator from the load generator): "
        + "; ".join(
            f"{p['latency_ms']} ms/c={p['concurrency']}: freeBusy p50 "
            f"{p['series']['google freeBusy']['p50_ms']:.1f} / p99 "
            f"{p['series']['google freeBusy']['p99_ms']:.1f} ms, insert p50 "
            f"{p['series']['google insert']['p50_ms']:.1f} ms"
            for p in results
        ),
        f"Background refreshes during the run: {meta['background_refreshes']:.0f}; "
        f"hot-path refreshes: {meta['hot_path_refreshes']:.0f}. "
        f"Max event-loop lag (whole run): {meta['max_lag_ms']:.1f} ms. "
        f"Peak server RSS: {meta['peak_rss_mib']:.1f} MiB.",
    ]
    return "\n".join(lines)


def write_readme(table: str) -> None:
    text = README.read_text() if README.exists() else ""
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    block = f"{start}\n{table}\n{end}"
    if start in text and end in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _m: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n## Latest results\n\n" + block + "\n"
    README.write_text(text)


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


async def main_async(args: argparse.Namespace) -> None:
    began = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="vapi-bench-"))
    bench = Bench(tmp)
    results = []
    try:
        bench.start()
        print(f"server {bench.server_url}, emulator {bench.emulator_url}; setting up {USERS} users")
        await bench.setup_users()
        bench.start_baseline()
        start_metrics = scrape(bench.server_url)
        from vapi_calendar.emulator.control import EmulatorControl

        for latency in (0, 100):
            with EmulatorControl(bench.emulator_url) as control:
                control.clear_faults()
                control.set_latency(latency)
            # warm up: every worker thread builds its service, connections open
            await drive("warm-up", bench.webhook("checkAvailability"), 300, 50)
            await drive("warm-up", bench.baseline(), 200, 50)
            for concurrency in (1, 100):
                counts = PHASES[(latency, concurrency)]
                if args.quick:
                    counts = {k: max(10, v // 10) for k, v in counts.items()}
                results.append(await run_phase(bench, latency, concurrency, counts, args.profile))
        end_metrics = scrape(bench.server_url)
        assert bench.server is not None
        refresh = "vapi_calendar_token_refreshes_total"
        meta = {
            "machine": machine(),
            "python": platform.python_version(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "users": USERS,
            "seconds": time.monotonic() - began,
            "background_refreshes": total(end_metrics, refresh, path="background")
            - total(start_metrics, refresh, path="background"),
            "hot_path_refreshes": total(end_metrics, refresh, path="call")
            - total(start_metrics, refresh, path="call"),
            "max_lag_ms": end_metrics.get(("vapi_calendar_event_loop_lag_max_seconds", ""), 0)
            * 1000,
            "peak_rss_mib": rss_kib(bench.server.pid)["VmHWM"] / 1024,
        }
    finally:
        bench.stop()
    table = report(results, meta)
    print()
    print(table)
    RESULTS.write_text(json.dumps({"meta": meta, "phases": results}, indent=2) + "\n")
    if not args.quick:
        write_readme(table)
        print(f"\nwritten to {README.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}")
    if args.keep:
        print(f"logs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests; no README")
    parser.add_argument("--profile", action="store_true", help="py-spy the server at c=100")
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs")
    parser.add_argument("--serve-emulator", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_emulator:
        serve_emulator(args.serve_emulator)
        return
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
