"""Logging configuration: one JSON object per line, with the request id of the request at hand.

Every line carries `ts`, `level`, `logger`, `msg`, the `request_id` when logged while serving a
request, and the `extra` fields of the call (`call_id`, `tool`, `user_id`, `ms`, `outcome`, …).
Bodies, tokens and secrets are never passed to a logger in the first place; this module only
formats. `LOG_FORMAT=text` gives the plain format for reading by eye.

Some libraries log credentials or stored values at DEBUG: requests-oauthlib prints authorization
codes and token responses, oauthlib request bodies, urllib3/httplib2 full URLs, aiosqlite every
statement with its parameters (tokens, tool answers), PyMongo command documents, the MCP SDK
JSON-RPC messages (tool arguments: names, numbers, times). They are held at
WARNING whatever LOG_LEVEL says, so turning on debugging never writes a token or a caller's
appointment to a log.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

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


def configure_logging(level: str, fmt: str = "json") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in VALUE_LEAKING_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
