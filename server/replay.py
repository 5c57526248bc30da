"""Recorded requests replayed against a live server today (`vapi-calendar replay
--relative-to-now`).

The bundled fixtures ask about fixed dates (2031, so the frozen-clock golden test never sees
them pass). Against a live server those dates are beyond any booking horizon, so replay can move
them: every local date or date-time in the bodies (no `Z`, no offset: what an assistant sends;
timestamps Vapi adds carry a `Z` and stay) moves by the same whole number of weeks, chosen so
the earliest lands two to eight days from now. Weekdays and times of day stay what the fixture
meant, and one replay run shifts all its files alike, so a booking and the check that follows it
still talk about the same slot.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import date, timedelta

# A local date, alone or starting a date-time without offset: 2031-03-11, 2031-03-11T09:00:00.
LOCAL_DATE = re.compile(
    r"(?<![\d-])(\d{4})-(\d{2})-(\d{2})"
    r"(?=T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?![\d.:Z+-])|(?![\dT:-]))"
)
LEAD_DAYS = 2  # the earliest date lands at least this far ahead: "tomorrow" in every zone


def _date(match: re.Match[str]) -> date | None:
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def local_dates(text: str) -> list[date]:
    return [found for m in LOCAL_DATE.finditer(text) if (found := _date(m)) is not None]


def weeks_to_now(texts: Iterable[str], today: date) -> int:
    """Whole weeks that bring the earliest local date of `texts` to LEAD_DAYS..LEAD_DAYS+6
    days after `today` (0 when there is none)."""
    dates = [found for text in texts for found in local_dates(text)]
    if not dates:
        return 0
    target = today + timedelta(days=LEAD_DAYS)
    return math.ceil((target - min(dates)).days / 7)


def shifted(text: str, weeks: int) -> str:
    """`text` with every local date moved by `weeks` weeks."""

    def move(match: re.Match[str]) -> str:
        found = _date(match)
        return match[0] if found is None else (found + timedelta(weeks=weeks)).isoformat()

    return LOCAL_DATE.sub(move, text)
