"""`replay --relative-to-now`: the fixtures' local dates move together, by whole weeks."""

from __future__ import annotations

import json
from datetime import date

from tests.harness.app import FIXTURES
from vapi_calendar.server.replay import LEAD_DAYS, local_dates, shifted, weeks_to_now


def test_local_dates_move_and_timestamps_stay() -> None:
    text = json.dumps(
        {
            "timestamp": "2031-03-01T09:05:22.146Z",
            "createdAt": "2031-03-01T09:05:22+00:00",
            "arguments": '{"startDateTime": "2031-03-11T09:00:00", "day": "2031-03-12"}',
            "endDateTime": "2031-03-11T12:00",
        }
    )
    moved = json.loads(shifted(text, -1))
    assert moved["timestamp"] == "2031-03-01T09:05:22.146Z"
    assert moved["createdAt"] == "2031-03-01T09:05:22+00:00"
    assert json.loads(moved["arguments"]) == {
        "startDateTime": "2031-03-04T09:00:00",
        "day": "2031-03-05",
    }
    assert moved["endDateTime"] == "2031-03-04T12:00"


def test_the_earliest_fixture_date_lands_in_the_coming_week_on_its_weekday() -> None:
    texts = [p.read_text() for p in sorted(FIXTURES.rglob("*.json"))]
    earliest = min(d for t in texts for d in local_dates(t))
    for today in (date(2026, 12, 1), date(2027, 6, 6), date(2031, 3, 10), date(2035, 1, 1)):
        weeks = weeks_to_now(texts, today)
        after = min(d for t in texts for d in local_dates(shifted(t, weeks)))
        assert LEAD_DAYS <= (after - today).days < LEAD_DAYS + 7
        assert after.weekday() == earliest.weekday()


def test_nothing_to_move_moves_nothing() -> None:
    assert weeks_to_now(['{"type": "status-update"}'], date(2026, 12, 1)) == 0
