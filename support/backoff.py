"""Backoff between attempts of a provider request, inside the tool call's time budget.

Every provider adapter retries the same way: full-jitter exponential backoff (at least what the
provider asked for in `Retry-After`), and a retry only while the remaining budget still leaves
room for the wait *and* one more attempt. Otherwise the adapter raises the last failure at once,
so the caller hears a clear sentence instead of silence. What is worth retrying is each
provider's own decision (`providers/*/retry.py`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from vapi_calendar.support.budget import remaining


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8  # a safety net: the budget is what really bounds retries
    base_delay: float = 0.1  # first backoff is uniform in [0, 0.1 s], then 0.2, 0.4, ...
    max_delay: float = 2.0
    # Do not start a retry with less budget than this left: it would most likely be cut off
    # by the deadline anyway, and answering "not responding" now beats answering it later.
    min_attempt_seconds: float = 0.25


DEFAULT_POLICY = RetryPolicy()


def retry_delay(policy: RetryPolicy, attempt: int, hinted: float | None = None) -> float:
    """The wait after failed attempt number `attempt` (1-based); at least `hinted`."""
    cap = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
    delay = random.uniform(0, cap)  # noqa: S311 - jitter, not crypto
    return delay if hinted is None else max(delay, hinted)


def budget_short_of(delay: float, policy: RetryPolicy) -> float | None:
    """The budget left when it cannot cover `delay` and one more attempt; None when it can
    (or the call has no budget)."""
    left = remaining()
    if left is not None and left < delay + policy.min_attempt_seconds:
        return left
    return None
