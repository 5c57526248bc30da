"""Logging configuration: one JSON object per line, with the request id of the request at hand.

Every line carries `ts`, `level`, `logger`, `msg`, the `request_id` when logged while serving a
request, and the `extra` fields of the call (`call_id`, `tool`, `user_id`, `ms`, `outcome`, …).
Bodies, tokens and secrets are never passed to a logger in the first place; this module only
formats. `LOG_FORMAT=text` gives the plain format for reading by eye.

A line is formatted where it is logged (so it carries that request's id) and written by a
thread of its own, in batches: a slow or blocked stderr (a container's log driver, a full pipe
nobody reads) would otherwise stall the event loop, and with it every call in flight. The
lines waiting are bounded; when the output cannot keep up for that long, further lines are
dropped and counted, and the next batch written ends with a line saying how many were lost.
At exit and before a SIGTERM ends the server, what waits is written (`drain`).

Some libraries log credentials or stored values at DEBUG: requests-oauthlib prints authorization
codes and token responses, oauthlib request bodies, urllib3/httplib2 full URLs, aiosqlite every
statement with its parameters (tokens, tool answers), PyMongo command documents, the MCP SDK
JSON-RPC messages (tool arguments: names, numbers, times). They are held at
WARNING whatever LOG_LEVEL says, so turning on debugging never writes a token or a caller's
appointment to a log.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

VALUE_LEAKING_LOGGERS = (
    "aiosqlite",
    "pymongo",
    "requests_oauthlib",
    "oauthlib",
    "urllib3",
    "httplib2",
    "google_auth_httplib2",
    "google.auth",
    "google.oauth2",
    "googleapiclient",
    "httpx",
    "httpcore",
    "mcp",
    "httpx2",
)

# Set by the access-log middleware for the duration of each HTTP request.
request_id: ContextVar[str | None] = ContextVar("vapi_calendar_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came in through `extra`.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if (rid := request_id.get()) is not None:
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"), ensure_ascii=False)


# Characters of lines waiting for the writer thread: some 7,000 access lines, tens of seconds of
# a busy server's output. About 2 MB of memory as ASCII; the batch being written holds at most
# as much again.
QUEUE_CHARS = 2_000_000
# The writer thread wakes up at most this often under load and writes what gathered in one go.
# Woken for every line (as the standard library's QueueListener is), it contended with the
# event loop for the interpreter lock: fewer calls per second and more loop lag (item 10 of
# bench/README.md's *After optimisation*).
BATCH_SECONDS = 0.05
# When stopping, how long the writer may take to drain the queue before the process goes anyway.
DRAIN_SECONDS = 5.0
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class LineWriter:
    """The thread that writes formatted lines to the output, a batch at a time. `put` never
    waits for the output: past `capacity` characters waiting, a line is dropped and counted
    (as is a batch the output refused), and the next batch ends with a line (from `notice`)
    saying how many were. After `finish`, lines are written directly, as logging's own
    handlers do."""

    def __init__(self, stream: TextIO, capacity: int, notice: Callable[[int], str]) -> None:
        self.stream = stream
        self._capacity = capacity
        self._notice = notice
        self._lines: list[str] = []
        self._waiting = 0  # characters in _lines
        self._dropped = 0
        self._direct = False
        self._lock = threading.Lock()
        self._pending = threading.Event()  # set while lines wait
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def put(self, line: str) -> None:
        with self._lock:
            if self._direct:
                self._write([line], 0)
            elif self._waiting + len(line) > self._capacity:
                self._dropped += 1
            else:
                self._lines.append(line)
                self._waiting += len(line)
                self._pending.set()

    def finish(self) -> bool:
        """Write what waits, within `DRAIN_SECONDS`, then write directly from here on; False
        if the output did not take it in time. A stalled output must not hold a stopping
        server: the thread is a daemon, abandoned then (lines keep queueing for it)."""
        self._stopping.set()
        self._pending.set()
        self._thread.join(DRAIN_SECONDS)
        if self._thread.is_alive():
            return False
        with self._lock:
            self._direct = True
            lines, dropped = self._take()
            if lines or dropped:  # put after the thread's last look
                self._write(lines, dropped)
        return True

    def _take(self) -> tuple[list[str], int]:
        lines, dropped = self._lines, self._dropped
        self._lines, self._waiting, self._dropped = [], 0, 0
        return lines, dropped

    def _run(self) -> None:
        while True:
            self._pending.wait()
            self._stopping.wait(BATCH_SECONDS)  # let a batch gather (not when stopping)
            with self._lock:
                lines, dropped = self._take()
                if not self._stopping.is_set():
                    self._pending.clear()
            written = self._write(lines, dropped) if lines or dropped else True
            with self._lock:
                if not written:
                    self._dropped += len(lines) + dropped
                if self._stopping.is_set() and (not written or not self._lines):
                    return

    def _write(self, lines: list[str], dropped: int) -> bool:
        text = "\n".join([*lines, self._notice(dropped)] if dropped else lines) + "\n"
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:  # a closed or broken output: the thread must live on; count them
            return False
        return True


class QueuedLines(logging.Handler):
    """Formats a record on the thread that logs it (so a line carries that request's id) and
    hands the line to the writer."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # as logging's own handlers do: report it, never raise into a call
            self.handleError(record)
            return
        self.writer.put(line)


def _dropped_line(formatter: logging.Formatter) -> Callable[[int], str]:
    def notice(dropped: int) -> str:
        message = "%d log line(s) dropped: the log output was not keeping up"
        record = logging.LogRecord(
            __name__, logging.WARNING, __file__, 0, message, (dropped,), None
        )
        return formatter.format(record)

    return notice


_writer: LineWriter | None = None
_configured: tuple[str, str, TextIO | None] | None = None


def configure_logging(level: str, fmt: str = "json", stream: TextIO | None = None) -> None:
    """Log at `level` in `fmt` ("json" or "text") to `stream`, stderr unless given."""
    global _writer, _configured
    drain()  # configured again (tests, a second serve in one process)
    _configured = (level, fmt, stream)
    formatter = JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)
    _writer = LineWriter(
        sys.stderr if stream is None else stream, QUEUE_CHARS, _dropped_line(formatter)
    )
    handler = QueuedLines(_writer)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in VALUE_LEAKING_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def write_text(text: str) -> None:
    """Write `text` (plain, not a log record) to the log output, in order with the log lines and
    off the event loop; straight to stderr where `configure_logging` has not run."""
    if _writer is not None:
        _writer.put(text)
    else:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _writer_in_child() -> None:
    # A forked child (a pre-forking server's worker) inherits the waiting lines but not the thread
    # that writes them, and perhaps a lock some other thread held: it gets a writer of its own.
    global _writer
    if _configured is not None:
        _writer = None
        configure_logging(*_configured)


os.register_at_fork(after_in_child=_writer_in_child)


@atexit.register
def drain() -> None:
    """Write what is queued and stop the writer thread; lines logged after it are written
    directly (unless the output is stalled: then they keep queueing for the abandoned thread).
    Runs at exit (registered after `logging`'s own exit hook, so before it flushes and closes
    the stream), and before a SIGTERM ends the server (`server/cli.py`)."""
    global _writer
    if _writer is not None:
        writer, _writer = _writer, None
        writer.finish()
