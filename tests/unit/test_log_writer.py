"""Log lines are formatted where they are logged and written by a thread of their own
(`server/logs.py`): a stalled stderr never holds the thread that logs, lines carry the request
id of where they were logged, and what is queued is written before the process exits."""

from __future__ import annotations

import io
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from vapi_calendar.server import logs

# Generous bounds for "it did not hang": none of these waits is expected to take long.
NOT_STUCK_SECONDS = 60


class Output(io.TextIOBase):
    """A stand-in for stderr that records each write and its thread, and can be stalled."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []
        self.threads: set[str] = set()
        self.entered = threading.Event()
        self.flowing = threading.Event()
        self.flowing.set()
        self.refuse_next = False

    def write(self, text: str) -> int:
        self.threads.add(threading.current_thread().name)
        self.entered.set()
        self.flowing.wait()
        if self.refuse_next:
            self.refuse_next = False
            raise BlockingIOError(11, "Resource temporarily unavailable")
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    @property
    def lines(self) -> list[str]:
        return "".join(self.writes).splitlines()

    def messages(self) -> list[str]:
        return [json.loads(line)["msg"] for line in self.lines]


@pytest.fixture
def output() -> Iterator[Output]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stand_in = Output()
    try:
        yield stand_in
    finally:
        stand_in.flowing.set()
        logs.drain()
        # Set directly, not through monkeypatch (whose undo would bring the test's setting
        # back): a later fork in this process must not reconfigure logging to a stand-in.
        logs._configured = None
        root.handlers[:] = handlers
        root.setLevel(level)
        for name in logs.VALUE_LEAKING_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


def drained() -> None:
    logs.drain()
    assert logs._writer is None


def finishes(work: Callable[[], None]) -> bool:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(NOT_STUCK_SECONDS)
    return not thread.is_alive()


def test_lines_are_written_by_another_thread_with_the_request_id_of_where_they_were_logged(
    output: Output,
) -> None:
    logs.configure_logging("info", stream=output)
    log = logging.getLogger("vapi_calendar.test")
    token = logs.request_id.set("req-1")
    try:
        log.info("answered %s", "checkAvailability", extra={"tool": "checkAvailability"})
        try:
            raise ValueError("the calendar said no")
        except ValueError:
            log.exception("failed")
    finally:
        logs.request_id.reset(token)
    log.info("outside any request")
    drained()

    answered, failed, outside = (json.loads(line) for line in output.lines)
    assert answered["msg"] == "answered checkAvailability"
    assert answered["request_id"] == failed["request_id"] == "req-1"
    assert answered["tool"] == "checkAvailability" and answered["level"] == "info"
    assert "ValueError: the calendar said no" in failed["exc"]
    assert "request_id" not in outside
    assert threading.current_thread().name not in output.threads


def test_plain_text_is_written_in_order_with_the_log_lines(output: Output) -> None:
    logs.configure_logging("info", stream=output)
    log = logging.getLogger("vapi_calendar.test")
    log.info("before")
    logs.write_text("A BANNER\nof two lines")
    log.info("after")
    drained()
    before, *text, after = output.lines
    assert text == ["A BANNER", "of two lines"]
    assert json.loads(before)["msg"] == "before" and json.loads(after)["msg"] == "after"
    assert threading.current_thread().name not in output.threads


def test_the_text_format_goes_through_the_same_writer(output: Output) -> None:
    logs.configure_logging("info", "text", output)
    logging.getLogger("vapi_calendar.test").warning("plain %d", 7)
    drained()
    (line,) = output.lines
    assert line.rstrip("\n").endswith("WARNING vapi_calendar.test plain 7")


def test_a_stalled_output_never_holds_the_logging_thread_and_dropped_lines_are_counted(
    output: Output, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = logging.getLogger("vapi_calendar.test")
    # Room for five lines: the messages are all as long, and so are the lines.
    record = logging.LogRecord(log.name, logging.INFO, __file__, 0, "line %02d", (1,), None)
    monkeypatch.setattr(logs, "QUEUE_CHARS", 5 * len(logs.JsonFormatter().format(record)))
    logs.configure_logging("info", stream=output)
    output.flowing.clear()
    log.info("first")
    assert output.entered.wait(NOT_STUCK_SECONDS)  # the writer holds "first", stalled

    assert finishes(lambda: [log.info("line %02d", i) for i in range(1, 20)])
    output.flowing.set()
    drained()
    log.info("after")  # once drained, lines are written directly

    assert output.messages() == [
        "first",
        *(f"line {i:02d}" for i in range(1, 6)),  # what the queue held
        "14 log line(s) dropped: the log output was not keeping up",
        "after",
    ]
    # What gathered while the output was stalled went out in one write, the count with it.
    assert len(output.writes) == 3


def test_lines_the_output_refused_are_counted_as_dropped(output: Output) -> None:
    logs.configure_logging("info", stream=output)
    log = logging.getLogger("vapi_calendar.test")
    output.refuse_next = True
    log.info("refused")
    assert output.entered.wait(NOT_STUCK_SECONDS)
    log.info("next")
    drained()
    assert output.messages() == [
        "next",
        "1 log line(s) dropped: the log output was not keeping up",
    ]


def test_draining_a_stalled_output_gives_up_after_its_bound(
    output: Output, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "DRAIN_SECONDS", 0.01)
    logs.configure_logging("info", stream=output)
    log = logging.getLogger("vapi_calendar.test")
    output.flowing.clear()
    log.info("stuck")
    assert output.entered.wait(NOT_STUCK_SECONDS)
    assert finishes(logs.drain)
    # Lines logged after it still never wait for the stalled output: they stay queued.
    assert finishes(lambda: log.info("after the drain"))
    assert output.lines == []


def test_what_is_queued_is_written_before_the_process_exits() -> None:
    script = (
        "import logging\n"
        "from vapi_calendar.server.logs import configure_logging\n"
        "configure_logging('info')\n"
        "for i in range(3000):\n"
        "    logging.getLogger('vapi_calendar.test').info('line %d', i)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=NOT_STUCK_SECONDS
    )
    assert done.returncode == 0, done.stderr
    messages = [json.loads(line)["msg"] for line in done.stderr.splitlines()]
    assert messages == [f"line {i}" for i in range(3000)]


def test_a_forked_child_gets_a_writer_of_its_own(output: Output) -> None:
    read, write = os.pipe()
    with os.fdopen(write, "w") as stream:
        logs.configure_logging("info", stream=stream)
        pid = os.fork()
        if pid == 0:  # the child: its line must be written by its own writer, not an exit hook
            try:
                logging.getLogger("vapi_calendar.test").info("from the child")
                time.sleep(NOT_STUCK_SECONDS)
            finally:
                os._exit(0)
        try:
            ready, _, _ = select.select([read], [], [], NOT_STUCK_SECONDS)
            assert ready, "the child's line was never written"
            first = os.read(read, 65536).decode().splitlines()[0]
            assert json.loads(first)["msg"] == "from the child"
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read)
            logs.drain()
