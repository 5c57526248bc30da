"""One log line per request: fields deeper layers add to the line the edge writes at its end.

The access log (`server/access_log.py`) opens a line for each HTTP request and writes it once
the response is sent. A layer below that has something to say about the request — the tool
pipeline: which tools, whose calendar, how each call ended — adds it to that line instead of
writing a second one (each line costs a record, a JSON encoding and a write). Outside a
request (a test, the demo's own booking, a task the request did not start), there is no line
to add to, and the layer writes its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_line: ContextVar[dict[str, object] | None] = ContextVar("vapi_calendar_log_line", default=None)


@contextmanager
def request_line() -> Iterator[dict[str, object]]:
    """The fields added to this request's line while the body runs (`msg` among them if a
    layer below named the line)."""
    fields: dict[str, object] = {}
    token = _line.set(fields)
    try:
        yield fields
    finally:
        _line.reset(token)


def add_to_request_line(msg: str, fields: dict[str, object]) -> bool:
    """Name this request's line `msg` and add `fields` to it; False when there is no line to
    add to (or it already has a name), and the caller should log its own."""
    line = _line.get()
    if line is None or "msg" in line:
        return False
    line.update(fields)
    line["msg"] = msg
    return True
