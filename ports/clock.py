"""What the tools take as "now". Injected, so tests can freeze it instead of booking in fixed years.

Only the business clock is injectable: leases, record expiry and token lifetimes are shared with
other processes and with the provider, so they always use the real time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]  # returns an aware UTC datetime


def system_clock() -> datetime:
    return datetime.now(UTC)
