"""`--profile`: sample the server with py-spy and summarise where its Python time goes.

py-spy records collapsed stacks (`--format raw`) of the thread that holds the GIL (`--gil`),
whichever it is — the event loop, a Google worker thread, aiosqlite's thread; `--nonblocking`
keeps it from pausing the server. The summary is own time (the leaf frame of each sample) per
package, per module and per function, plus the inclusive time of the project's functions.
C code that runs without the GIL (uvloop's I/O, SQLite's engine, socket reads) is not sampled;
CPU ms per call in the table counts it.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

RATE = 250
_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")
# Folders of the repository that are sub-packages of `vapi_calendar` (pyproject package-dir).
AREAS: tuple[tuple[str, frozenset[str]], ...] = (
    ("tools (domain: rules, hours, slots, times, spoken text)", frozenset({"vapi_calendar.tools"})),
    ("server (edge: webhook, protocol, logs, metrics)", frozenset({"vapi_calendar.server"})),
    ("pipeline", frozenset({"vapi_calendar.pipeline"})),
    ("oauth (grants, vault)", frozenset({"vapi_calendar.oauth"})),
    ("providers.google (our adapter)", frozenset({"vapi_calendar.providers"})),
    ("stores", frozenset({"vapi_calendar.stores"})),
    ("support, ports", frozenset({"vapi_calendar.support", "vapi_calendar.ports"})),
    (
        "Google client stack (googleapiclient, httplib2, google-auth, http.client, socket, "
        "email headers, threads)",
        frozenset(
            {
                "googleapiclient",
                "httplib2",
                "google",
                "google_auth_httplib2",
                "uritemplate",
                "stdlib http",
                "stdlib socket",
                "stdlib email",
                "stdlib ssl",
                "stdlib concurrent",
                "stdlib threading",
                "stdlib queue",
                "stdlib urllib",
            }
        ),
    ),
    ("store driver (aiosqlite, sqlite3)", frozenset({"aiosqlite", "stdlib sqlite3"})),
    (
        "HTTP server and asyncio (uvicorn, starlette, event loop)",
        frozenset({"uvicorn", "starlette", "anyio", "stdlib asyncio", "uvloop", "httptools"}),
    ),
    (
        "logging, JSON, metrics",
        frozenset({"stdlib logging", "stdlib json", "prometheus_client"}),
    ),
    ("validation (pydantic)", frozenset({"pydantic", "pydantic_core"})),
    ("time zones, dates", frozenset({"stdlib zoneinfo", "stdlib datetime", "stdlib _strptime"})),
)
PROJECT = frozenset(
    {"emulator", "oauth", "pipeline", "ports", "providers", "server", "stores", "support", "tools"}
)


def start(pid: int, raw: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("  (py-spy is not installed: pip install -e '.[bench]' to profile)")
        return None
    command = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(RATE)]
    command += ["--gil", "--nonblocking", "--output", str(raw)]
    process = subprocess.Popen(  # noqa: S603 - py-spy from our own environment
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    process.raw = raw  # type: ignore[attr-defined]
    return process


def stop(process: subprocess.Popen[bytes], target: Path, title: str) -> None:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    raw: Path = process.raw  # type: ignore[attr-defined]
    if not raw.exists():
        raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}")
    target.write_text(summarise(raw.read_text(), title))


def where(frame: str) -> tuple[str, str, str]:
    """(package, module, function) of one py-spy frame "function (path:line)".

    py-spy shortens each path to its name below the sys.path entry it was imported from:
    "tools/hours.py" (a project folder, i.e. `vapi_calendar.tools`), "uvicorn/main.py",
    "asyncio/events.py" (the standard library).
    """
    match = _FRAME.match(frame)
    if not match:
        return frame, frame, frame
    function, path = match["function"], match["path"]
    for marker in ("site-packages/", "dist-packages/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    path = re.split(r"/lib/python3\.\d+/", path, maxsplit=1)[-1]
    parts = path.split("/")
    top = parts[0].removesuffix(".py")
    if top in PROJECT:
        package = ".".join(["vapi_calendar", *parts[:-1]])
        path = "vapi_calendar/" + path
    elif top in sys.stdlib_module_names:
        package = f"stdlib {top}"
    else:
        package = top
    return package, path, f"{function} ({path})"


def area(package: str) -> str:
    """A coarse bucket for a package, to read the profile at a glance."""
    for name, members in AREAS:
        if package in members or package.startswith(tuple(m + "." for m in members)):
            return name
    return "other"


def summarise(collapsed: str, title: str, top: int = 30) -> str:
    areas: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    modules: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        samples += count
        package, module, function = where(frames[-1])
        areas[area(package)] += count
        packages[package] += count
        modules[module] += count
        functions[function] += count
        match = _FRAME.match(frames[-1])
        lines[f"{function}:{match['line'] if match else '?'}"] += count
        seen = set()
        for frame in frames:
            package, _, function = where(frame)
            if package.startswith("vapi_calendar.") and function not in seen:
                seen.add(function)
                inclusive[function] += count

    def share(counter: Counter[str], limit: int) -> list[str]:
        return [
            f"{100 * count / max(1, samples):5.1f}%  {name}"
            for name, count in counter.most_common(limit)
        ]

    return "\n".join(
        [
            f"# {title}",
            f"# {samples} samples of the thread holding the GIL (py-spy --gil, {RATE} Hz): where",
            "# the server's Python time goes, every thread included. Own time = the sampled leaf",
            "# frame; C code counts under the Python frame that called it, so Runner.run",
            "# (asyncio/runners.py) is uvloop's own loop. A statement that wakes another thread",
            "# or process (uvicorn's transport.write waking the load generator, aiosqlite's queue",
            "# put waking its thread) also counts the time its thread is descheduled with the GIL",
            "# held: not CPU time, but time in which no other thread runs Python. CPU ms/call in",
            "# the benchmark's table is the CPU measure.",
            "",
            "## own time by area",
            *share(areas, 20),
            "",
            "## own time by package",
            *share(packages, 25),
            "",
            "## own time by module",
            *share(modules, top),
            "",
            "## own time by function",
            *share(functions, top),
            "",
            "## own time by line (the statement each leaf frame was running)",
            *share(lines, 20),
            "",
            "## inclusive time of the project's functions (a sample counts once per function)",
            *share(inclusive, 45),
            "",
        ]
    )
