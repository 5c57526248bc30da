"""The application's Prometheus metrics, on a registry of its own.

Each app instance creates one `Metrics` (a fresh `CollectorRegistry`), so two apps in one
process — tests, a benchmark next to a server — never share counters. Labels are small closed
sets (tool name, outcome, status, lock kind): never a user id, call id or anything a caller
controls beyond the tool name, which is clamped to the known tools.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cached_property

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5, 1, 2, 5, 10, 20,
)  # fmt: skip
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        # RSS, CPU and open file descriptors of this process.
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.tool_calls = Counter(
            "vapi_calendar_tool_calls_total",
            "Tool calls answered, by tool and outcome (ok, error, timeout, busy, unexpected).",
            ["tool", "outcome"],
            registry=r,
        )
        self.tool_seconds = Histogram(
            "vapi_calendar_tool_call_seconds",
            "Time to answer one tool call, from the start of its budget.",
            ["tool"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tool_calls_in_flight = Gauge(
            "vapi_calendar_tool_calls_in_flight",
            "Tool calls being worked on right now.",
            registry=r,
        )
        self.google_requests = Counter(
            "vapi_calendar_google_requests_total",
            "Calendar API requests by result (2xx, an HTTP status, timeout, connection_error).",
            ["status"],
            registry=r,
        )
        self.google_retries = Counter(
            "vapi_calendar_google_retries_total",
            "Calendar API requests sent again after a retryable failure, by what failed.",
            ["reason"],
            registry=r,
        )
        self.google_seconds = Histogram(
            "vapi_calendar_google_request_seconds",
            "One Calendar API request as the server sees it (queueing for a thread included).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.google_threads_busy = Gauge(
            "vapi_calendar_google_threads_busy",
            "Google worker threads running a request.",
            registry=r,
        )
        self.graph_requests = Counter(
            "vapi_calendar_graph_requests_total",
            "Microsoft Graph requests by result (2xx, an HTTP status, timeout, connection_error).",
            ["status"],
            registry=r,
        )
        self.graph_retries = Counter(
            "vapi_calendar_graph_retries_total",
            "Microsoft Graph requests sent again after a retryable failure, by what failed.",
            ["reason"],
            registry=r,
        )
        self.graph_seconds = Histogram(
            "vapi_calendar_graph_request_seconds",
            "One Microsoft Graph request as the server sees it.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.refreshes = Counter(
            "vapi_calendar_token_refreshes_total",
            "Access-token refreshes by who needed them (call = on a tool call's hot path, "
            "background = ahead of time) and outcome.",
            ["path", "outcome"],
            registry=r,
        )
        self.unreadable_calendars = Counter(
            "vapi_calendar_unreadable_calendars_total",
            "Calendars a freeBusy answer could not give busy time for, by the provider's "
            "reason (notFound, internalError, notReturned = left out of the answer, other).",
            ["reason"],
            registry=r,
        )
        self.oauth_client_rejected = Gauge(
            "vapi_calendar_oauth_client_rejected",
            "1 while the provider's token endpoint refuses this process's OAuth client "
            "(invalid_client / unauthorized_client: fix the client settings); 0 after the next "
            "successful refresh.",
            registry=r,
        )
        self.lock_wait_seconds = Histogram(
            "vapi_calendar_lock_wait_seconds",
            "Time spent waiting for a lock (booking lease, refresh lease, per-user call slot).",
            ["lock"],
            buckets=(*LAG_BUCKETS, 2, 5, 10),
            registry=r,
        )
        self.loop_lag_seconds = Histogram(
            "vapi_calendar_event_loop_lag_seconds",
            "How late the event loop woke a timer (0 = never blocked).",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.loop_lag_max_seconds = Gauge(
            "vapi_calendar_event_loop_lag_max_seconds",
            "Largest event-loop lag since the process started.",
            registry=r,
        )

    @cached_property
    def google_requests_ok(self) -> Counter:
        """The 2xx child of `google_requests`, looked up once (every successful request)."""
        return self.google_requests.labels(status="2xx")


# Per-calendar freeBusy reasons Google documents ("Additional error types may be added"), plus
# our own for a calendar left out of the answer; anything else shares one label.
UNREADABLE_REASONS = frozenset(
    {
        "notFound",
        "internalError",
        "groupTooBig",
        "tooManyCalendarsRequested",
        "notReturned",
        # Microsoft Graph's codes for a calendar it will not give events of.
        "ErrorItemNotFound",
        "ErrorAccessDenied",
        "ErrorInvalidIdMalformed",
    }
)


def unreadable_label(reason: str) -> str:
    return reason if reason in UNREADABLE_REASONS else "other"


def tool_label(name: str, known: Collection[str]) -> str:
    """Tool names come from the request: unknown ones share one label."""
    return name if name in known else "unknown"
