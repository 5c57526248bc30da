"""Retrying Graph requests inside the tool call's time budget.

The same backoff as Google's (`support/backoff.py`): full-jitter exponential backoff, and
only while the remaining budget covers the wait and one more attempt. What Graph adds is
its throttling contract: "HTTP status code 429 … A suggested wait time is returned in the
response header" (concepts/throttling.md), also on 503 and 504; a `Retry-After` longer than the
budget left ends the call at once with a clear sentence rather than dead air.

Retried: 429, 500, 502, 503, 504, connection errors and timeouts. Every request this adapter
sends is safe to send again: reads and PATCH are idempotent, an event create carries its
`transactionId` ("to avoid redundant POST operations in case of client retries to create the
same event", event resource), and a DELETE or /cancel whose first attempt went through
answers 404 on the second, which the caller is told means done (`gone_is_done`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from vapi_calendar.providers.microsoft.errors import (
    RETRYABLE_STATUSES,
    TRANSPORT_ERRORS,
    GraphError,
)
from vapi_calendar.support.backoff import (
    DEFAULT_POLICY,
    RetryPolicy,
    budget_short_of,
    retry_delay,
)
from vapi_calendar.support.metrics import Metrics

log = logging.getLogger(__name__)

T = TypeVar("T")


class ResentGone(Exception):
    """A resent DELETE found nothing: the first attempt, whose answer was lost, did it."""


def retry_reason(exc: BaseException) -> str | None:
    if isinstance(exc, GraphError):
        return str(exc.status) if exc.status in RETRYABLE_STATUSES else None
    if isinstance(exc, TRANSPORT_ERRORS):
        return "connection"
    return None


def _status_label(exc: BaseException) -> str:
    if isinstance(exc, GraphError):
        return str(exc.status)
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "connection_error"


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    metrics: Metrics,
    gone_is_done: bool = False,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> T:
    """Run `attempt` until it succeeds, fails for good, or the budget cannot afford a retry.

    With `gone_is_done`, a 404 on a resend raises `ResentGone` instead of the 404.
    """
    for number in range(1, policy.max_attempts + 1):
        started = time.perf_counter()
        try:
            result = await attempt()
        except Exception as exc:
            metrics.graph_requests.labels(status=_status_label(exc)).inc()
            metrics.graph_seconds.observe(time.perf_counter() - started)
            if gone_is_done and number > 1 and isinstance(exc, GraphError) and exc.status == 404:
                raise ResentGone() from None
            reason = retry_reason(exc)
            if reason is None or number == policy.max_attempts:
                raise
            hinted = exc.retry_after if isinstance(exc, GraphError) else None
            delay = retry_delay(policy, number, hinted)
            if (left := budget_short_of(delay, policy)) is not None:
                log.warning(
                    "graph request failed; no budget left to retry",
                    extra={"reason": reason, "attempt": number, "budget_left_ms": int(left * 1000)},
                )
                raise
            metrics.graph_retries.labels(reason=reason).inc()
            log.info(
                "retrying graph request",
                extra={"reason": reason, "attempt": number, "delay_ms": int(delay * 1000)},
            )
            await asyncio.sleep(delay)
        else:
            metrics.graph_requests.labels(status="2xx").inc()
            metrics.graph_seconds.observe(time.perf_counter() - started)
            return result
    raise AssertionError("unreachable")  # pragma: no cover
