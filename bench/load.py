"""Closed-loop load: `wrk` when it is installed, else a Python (httpx) generator.

A `Plan` is the whole series written down before it starts: method, path, headers and one
body per request (unique tool call ids, a distinct slot per booking). `C` callers each send
their share in turn — caller k sends bodies k, k+C, k+2C, … — waiting for each answer before
the next (closed loop, one kept-alive connection each), until their share is sent or the
series' time cap ends it.

wrk is the preferred generator: on a 2-core machine a Python client would spend about as much
CPU as the server under test. It runs with one connection per wrk thread so that
`bench/wrk.lua` can time every request itself (see there). The Python generator is the
fallback, with the same plan, classification and output.

Throughput is counted over the window where all C callers are running (from the last one's
first request to the first one's last answer), so ramp-up and stragglers do not count;
latency percentiles are over every answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk.lua"
THREAD_DONE = b"bench-thread-done"

# What an answer counted as (wrk.lua's letters): ok, booked, refused, a tool error (a sentence
# for the caller), an HTTP status other than 200, anything unexpected.
CLASSES = {"o": "ok", "b": "booked", "r": "refused", "e": "error", "h": "http", "x": "unexpected"}
SUCCESS = frozenset({"ok", "booked"})


@dataclass
class Plan:
    method: str
    path: str
    kind: str  # "plain" | "availability" | "booking"
    headers: dict[str, str]
    bodies: list[bytes]

    def write(self, target: Path) -> None:
        with target.open("wb") as out:
            out.write(f"{self.method}\t{self.path}\t{self.kind}\n".encode())
            for name, value in self.headers.items():
                out.write(f"{name}: {value}\n".encode())
            out.write(b"\n")
            for body in self.bodies:
                if b"\n" in body:
                    raise ValueError("a plan body must be one line")
                out.write(body + b"\n")


@dataclass
class Caller:
    first_start: float = 0.0  # monotonic seconds
    ends: list[float] = field(default_factory=list)  # monotonic seconds
    latencies: list[float] = field(default_factory=list)  # seconds
    classes: list[str] = field(default_factory=list)


@dataclass
class Load:
    generator: str
    callers: list[Caller]
    sample: str | None = None
    transport_errors: int = 0
    cpu_seconds: float = 0.0  # the generator's own CPU time
    error_sentences: Counter[str] = field(default_factory=Counter)  # tool errors, by sentence

    @property
    def latencies(self) -> list[float]:
        return [v for c in self.callers for v in c.latencies]

    @property
    def answered(self) -> int:
        return sum(len(c.latencies) for c in self.callers)

    @property
    def classes(self) -> Counter[str]:
        return Counter(CLASSES[k] for c in self.callers for k in c.classes)

    def window(self) -> tuple[float, float]:
        """Where every caller was running: the last first request to the first last answer."""
        active = [c for c in self.callers if c.ends]
        if not active:
            return 0.0, 0.0
        start = max(c.first_start for c in active)
        end = min(c.ends[-1] for c in active)
        if end <= start:  # callers that hardly overlapped: the whole run instead
            start, end = min(c.first_start for c in active), max(c.ends[-1] for c in active)
        return start, end

    @property
    def seconds(self) -> float:
        active = [c for c in self.callers if c.ends]
        if not active:
            return 0.0
        return max(c.ends[-1] for c in active) - min(c.first_start for c in active)

    @property
    def throughput(self) -> float:
        start, end = self.window()
        if end <= start:
            return 0.0
        inside = sum(1 for c in self.callers for t in c.ends if start < t <= end)
        return inside / (end - start)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


async def run_load(
    base_url: str, plan: Plan, concurrency: int, cap_seconds: float, workdir: Path, *, use_wrk: bool
) -> Load:
    if len(plan.bodies) < concurrency:
        raise ValueError(f"{len(plan.bodies)} requests cannot keep {concurrency} callers busy")
    # wrk's CPU shows in RUSAGE_CHILDREN once asyncio has reaped it; the Python generator's is
    # this process's own.
    who = resource.RUSAGE_CHILDREN if use_wrk else resource.RUSAGE_SELF
    before = resource.getrusage(who)
    if use_wrk:
        load = await _wrk(base_url, plan, concurrency, cap_seconds, workdir)
    else:
        load = await _python(base_url, plan, concurrency, cap_seconds)
    after = resource.getrusage(who)
    load.cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return load


# -- wrk --------------------------------------------------------------------------------------
async def _wrk(
    base_url: str, plan: Plan, concurrency: int, cap_seconds: float, workdir: Path
) -> Load:
    plan_file, out_file = workdir / "plan.txt", workdir / "wrk-out.txt"
    plan.write(plan_file)
    out_file.unlink(missing_ok=True)
    env = {
        **os.environ,
        "BENCH_PLAN": str(plan_file),
        "BENCH_OUT": str(out_file),
        "BENCH_THREADS": str(concurrency),
    }
    process = await asyncio.create_subprocess_exec(
        "wrk",
        "-t",
        str(concurrency),
        "-c",
        str(concurrency),
        "-d",
        f"{max(1, round(cap_seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(WRK_SCRIPT),
        base_url + plan.path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    done, output = 0, []
    try:
        async with asyncio.timeout(cap_seconds + 60):
            while line := await process.stdout.readline():
                if line.strip() == THREAD_DONE:
                    done += 1
                    if done == concurrency:  # every share sent: no need to wait out -d
                        process.send_signal(signal.SIGINT)
                else:
                    output.append(line.decode(errors="replace").rstrip())
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError("wrk did not finish:\n" + "\n".join(output[-20:])) from None
    if process.returncode != 0 or not out_file.exists():
        raise RuntimeError(f"wrk exited with {process.returncode}:\n" + "\n".join(output[-20:]))
    return _read_wrk(out_file)


def _read_wrk(out_file: Path) -> Load:
    load = Load("wrk", [])
    caller: Caller | None = None
    for line in out_file.read_text().splitlines():
        tag, _, rest = line.partition(" ")
        if tag == "t":
            _, first, _ = rest.split()
            caller = Caller(first_start=float(first) / 1e6)
            load.callers.append(caller)
        elif tag == "r" and caller is not None:
            end, latency, cls = rest.split()
            caller.ends.append(float(end) / 1e6)
            caller.latencies.append(float(latency) / 1e6)
            caller.classes.append(cls)
        elif tag == "m":
            count, _, sentence = rest.partition(" ")
            load.error_sentences[sentence] += int(count)
        elif tag == "s":
            load.sample = load.sample or rest
        elif tag == "e":
            connect, read, write, _status, timeout = (int(v) for v in rest.split())
            load.transport_errors = connect + read + write + timeout
    return load


# -- Python fallback ---------------------------------------------------------------------------
def classify(kind: str, status: int, body: str) -> str:
    """The same reading of an answer as wrk.lua's `classify`."""
    if status != 200:
        return "h"
    if kind == "plain":
        return "o"
    if '"error":"' in body:
        return "e"
    if '"result":"' not in body:
        return "x"
    if kind == "booking":
        if '\\"booked\\":true' in body:
            return "b"
        if '\\"booked\\":false' in body:
            return "r"
        return "x"
    return "o"


def error_sentence(body: str) -> str:
    try:
        return json.loads(body)["results"][0]["error"]
    except (ValueError, KeyError, IndexError, TypeError):
        return "?"


async def _python(base_url: str, plan: Plan, concurrency: int, cap_seconds: float) -> Load:
    url = base_url + plan.path
    load = Load("python", [Caller() for _ in range(concurrency)])
    stop_at = time.monotonic() + cap_seconds

    async def call(k: int) -> None:
        caller = load.callers[k]
        # One client (one kept-alive connection) per caller: a shared httpx pool serialises
        # badly at tens of concurrent requests and would measure httpx.
        async with httpx.AsyncClient(timeout=30) as client:
            for body in plan.bodies[k::concurrency]:
                if time.monotonic() > stop_at:
                    return
                began = time.monotonic()
                if not caller.first_start:
                    caller.first_start = began
                try:
                    response = await client.request(
                        plan.method, url, content=body, headers=plan.headers
                    )
                except httpx.TransportError as exc:
                    load.transport_errors += 1
                    load.sample = load.sample or repr(exc)
                    continue
                finished = time.monotonic()
                cls = classify(plan.kind, response.status_code, response.text)
                caller.ends.append(finished)
                caller.latencies.append(finished - began)
                caller.classes.append(cls)
                if cls == "e":
                    load.error_sentences[error_sentence(response.text)] += 1
                if cls not in ("o", "b") and load.sample is None:
                    load.sample = f"HTTP {response.status_code} {response.text[:300]}"

    await asyncio.gather(*(call(k) for k in range(concurrency)))
    return load
