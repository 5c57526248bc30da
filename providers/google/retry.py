"""Retrying Google requests inside the tool call's time budget.

A tool call is dead air on a phone line, and Vapi gives up after the tool's `timeoutSeconds`.
The pipeline therefore gives every tool call a deadline (`support.budget`, a context variable, so
it follows the call into every coroutine it awaits), and `with_retries` retries only the failures
worth retrying — 429, 5xx, 403 `rateLimitExceeded` / `userRateLimitExceeded`, connection errors
and socket timeouts — with full-jitter exponential backoff, and only while the remaining budget
still leaves room for the wait *and* one more attempt. Otherwise the last failure is raised at
once, so the caller hears a clear error instead of silence.

What is never retried:
- 4xx other than the above (the request itself is wrong, or a refusal such as 403
  `quotaExceeded`, `requiredAccessLevel`, `forbiddenForNonOrganizer` or a 404 that stays until
  someone changes something: a retry gives the same answer);
- `RefreshError` (google-auth already retries the token endpoint itself; `invalid_grant` is
  final);
- a create that is not idempotent. `events.insert` is retried only when the event carries its
  own id: booking always sends the deterministic `event_id_for(user, toolCallId)`, so a retry
  after a lost response is a 409 `duplicate` that booking answers from the existing event —
  never a second event. `events.quickAdd` and an insert without an id are tried once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from google.auth.exceptions import RefreshError
from googleapiclient.errors import HttpError

from vapi_calendar.providers.google.errors import (
    RATE_LIMIT_REASONS,
    TRANSPORT_ERRORS,
    http_reason,
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

# Creates that make a new resource each time unless the body names it.
_CREATES_NEEDING_ID = frozenset({"calendar.events.insert", "calendar.events.import"})
_NEVER_RETRY = frozenset({"calendar.events.quickAdd"})


def retry_reason(exc: BaseException) -> str | None:
    """A short label if `exc` is worth retrying, else None."""
    if isinstance(exc, HttpError):
        status = exc.status_code or 0
        if status == 429 or status >= 500:
            return str(status)
        if status == 403 and http_reason(exc) in RATE_LIMIT_REASONS:
            return "403"
        return None
    if isinstance(exc, RefreshError):
        return None
    if isinstance(exc, TRANSPORT_ERRORS):
        return "connection"
    return None


def request_is_retry_safe(method_id: str | None, body: str | bytes | None) -> bool:
    """May this API request be sent again after a failure whose effect is unknown?"""
    if method_id in _NEVER_RETRY:
        return False
    if method_id in _CREATES_NEEDING_ID:
        try:
            return bool(json.loads(body or "{}").get("id"))
        except (ValueError, AttributeError):
            return False
    return True


def _status_label(exc: BaseException | None) -> str:
    if exc is None:
        return "2xx"
    if isinstance(exc, HttpError):
        return str(exc.status_code)
    if isinstance(exc, RefreshError):
        return "refresh_error"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "connection_error"


def _retry_after(exc: BaseException) -> float | None:
    if not isinstance(exc, HttpError):
        return None
    value = getattr(exc.resp, "get", lambda _k: None)("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: ignore, use our own backoff


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    metrics: Metrics,
    retry_safe: Callable[[], bool] = lambda: True,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
) -> T:
    """Run `attempt` until it succeeds, fails for good, or the budget cannot afford a retry.

    `retry_safe` is asked after a failure (the request has been built by then) whether sending
    it again could duplicate an effect.
    """
    sleep = sleep or asyncio.sleep
    for number in range(1, policy.max_attempts + 1):
        started = time.perf_counter()
        try:
            result = await attempt()
        except Exception as exc:
            metrics.google_requests.labels(status=_status_label(exc)).inc()
            metrics.google_seconds.observe(time.perf_counter() - started)
            reason = retry_reason(exc)
            if reason is None or number == policy.max_attempts or not retry_safe():
                raise
            delay = retry_delay(policy, number, _retry_after(exc))
            if (left := budget_short_of(delay, policy)) is not None:
                log.warning(
                    "google request failed; no budget left to retry",
                    extra={"reason": reason, "attempt": number, "budget_left_ms": int(left * 1000)},
                )
                raise
            metrics.google_retries.labels(reason=reason).inc()
            log.info(
                "retrying google request",
                extra={"reason": reason, "attempt": number, "delay_ms": int(delay * 1000)},
            )
            await sleep(delay)
        else:
            metrics.google_requests_ok.inc()
            metrics.google_seconds.observe(time.perf_counter() - started)
            return result
    raise AssertionError("unreachable")  # pragma: no cover
