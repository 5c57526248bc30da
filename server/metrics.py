"""Prometheus metrics (`GET /metrics`) and the event-loop lag monitor.

Labels are small closed sets (tool name, outcome, status, lock kind): never a user id, call id
or anything a caller controls beyond the tool name, which is clamped to the known tools.
The process collector of `prometheus-client` adds RSS, CPU and open file descriptors.
"""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

_LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5, 1, 2, 5, 10, 20,
)  # fmt: skip
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)

TOOL_CALLS = Counter(
    "vapi_calendar_tool_calls_total",
    "Tool calls answered, by tool and outcome (ok, error, timeout, busy, unexpected).",
    ["tool", "outcome"],
)
TOOL_SECONDS = Histogram(
    "vapi_calendar_tool_call_seconds",
    "Time to answer one tool call, from the start of its budget.",
    ["tool"],
    buckets=_LATENCY_BUCKETS,
)
TOOL_CALLS_IN_FLIGHT = Gauge(
    "vapi_calendar_tool_calls_in_flight", "Tool calls being worked on right now."
)
GOOGLE_REQUESTS = Counter(
    "vapi_calendar_google_requests_total",
    "Calendar API requests by result (2xx, an HTTP status, timeout, connection_error).",
    ["status"],
)
GOOGLE_RETRIES = Counter(
    "vapi_calendar_google_retries_total",
    "Calendar API requests sent again after a retryable failure, by what failed.",
    ["reason"],
)
GOOGLE_SECONDS = Histogram(
    "vapi_calendar_google_request_seconds",
    "One Calendar API request as the server sees it (queueing for a thread included).",
    buckets=_LATENCY_BUCKETS,
)
GOOGLE_THREADS_BUSY = Gauge(
    "vapi_calendar_google_threads_busy", "Google worker threads running a request."
)
REFRESHES = Counter(
    "vapi_calendar_token_refreshes_total",
    "Access-token refreshes by who needed them (call = on a tool call's hot path, "
    "background = ahead of time) and outcome.",
    ["path", "outcome"],
)
LOCK_WAIT_SECONDS = Histogram(
    "vapi_calendar_lock_wait_seconds",
    "Time spent waiting for a lock (booking lease, refresh lease, per-user call slot).",
    ["lock"],
    buckets=(*_LAG_BUCKETS, 2, 5, 10),
)
LOOP_LAG_SECONDS = Histogram(
    "vapi_calendar_event_loop_lag_seconds",
    "How late the event loop woke a timer (0 = never blocked).",
    buckets=_LAG_BUCKETS,
)
LOOP_LAG_MAX_SECONDS = Gauge(
    "vapi_calendar_event_loop_lag_max_seconds", "Largest event-loop lag since the process started."
)


def tool_label(name: str, known: frozenset[str] | set[str] | dict) -> str:
    """Tool names come from the request: unknown ones share one label."""
    return name if name in known else "unknown"


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def monitor_loop_lag(interval: float = 0.05) -> None:
    """Sleep `interval` again and again; any extra delay is time the loop was blocked."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    while True:
        started = loop.time()
        await asyncio.sleep(interval)
        lag = max(0.0, loop.time() - started - interval)
        LOOP_LAG_SECONDS.observe(lag)
        if lag > worst:
            worst = lag
            LOOP_LAG_MAX_SECONDS.set(lag)
