"""Per-user booking rules: the model, its defaults, and partial updates.

`User.rules` stores only what the owner set (plus `timezoneSource`, which the OAuth flow owns);
`BookingRules.for_user` fills in the defaults at read time, so improving a default reaches every
user who never chose otherwise.
"""

from __future__ import annotations

import json
import re
from datetime import date
from functools import lru_cache
from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from vapi_calendar.support.validation import first_error
from vapi_calendar.tools.errors import InvalidStoredRules

# The key of `User.rules` that is not a booking rule: where the user's time zone came from
# ("default" until the calendar tells us at connect time, "calendar", or "owner"). Written by
# the connection flow (`vapi_calendar.oauth.consent`) and the admin API, never by an owner.
TIMEZONE_SOURCE = "timezoneSource"
NON_RULE_KEYS = frozenset({TIMEZONE_SOURCE})

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
SendUpdates = Literal["all", "externalOnly", "none"]
AppointmentAccess = Literal["caller", "anyone"]

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class RulesError(ValueError):
    """A rules update was refused; `str()` names the field, e.g. "workingHours.monday[0]: …"."""


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class TimeRange(_Model):
    """Wall-clock opening hours within one local day, e.g. {"start": "09:00", "end": "17:00"}.

    "24:00" as the end means midnight at the end of the day.
    """

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError("use 24-hour HH:MM, e.g. 09:00 or 17:30")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.start == "24:00":
            raise ValueError("start must be before 24:00")
        if minutes(self.end) <= minutes(self.start):
            raise ValueError("end must be after start")
        return self


def minutes(clock: str) -> int:
    """Minutes after local midnight of "HH:MM" ("24:00" → 1440)."""
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


def _weekday_hours(start: str, end: str) -> list[TimeRange]:
    return [TimeRange(start=start, end=end)]


def _default_working_hours() -> dict[Weekday, list[TimeRange]]:
    week: dict[Weekday, list[TimeRange]] = {day: [] for day in WEEKDAYS}
    for day in WEEKDAYS[:5]:
        week[day] = _weekday_hours("09:00", "17:00")
    return week


def _check_ranges(day: str, ranges: list[TimeRange]) -> list[TimeRange]:
    ordered = sorted(ranges, key=lambda r: minutes(r.start))
    for before, after in pairwise(ordered):
        if minutes(after.start) < minutes(before.end):
            raise ValueError(
                f"{day}: {before.start}-{before.end} overlaps {after.start}-{after.end}"
            )
    return ordered


class BookingRules(_Model):
    """What a receptionist knows about when this calendar can be booked."""

    # Wall-clock ranges per weekday in the user's time zone; a missing or empty day is closed.
    working_hours: dict[Weekday, list[TimeRange]] = Field(
        default_factory=_default_working_hours, max_length=7
    )
    # Replace a weekday's hours on one date; an empty list closes the day.
    date_overrides: dict[date, list[TimeRange]] = Field(default_factory=dict, max_length=1000)
    buffer_before_minutes: int = Field(default=0, ge=0, le=240)
    buffer_after_minutes: int = Field(default=0, ge=0, le=240)
    minimum_notice_minutes: int = Field(default=60, ge=0, le=60 * 24 * 90)
    slot_interval_minutes: int = Field(default=30, ge=5, le=240)
    default_duration_minutes: int = Field(default=30, ge=5, le=720)
    booking_horizon_days: int = Field(default=60, ge=1, le=3650)
    max_bookings_per_day: int | None = Field(default=None, ge=1, le=1000)
    busy_calendar_ids: list[str] = Field(
        default_factory=lambda: ["primary"], min_length=1, max_length=20
    )
    booking_calendar_id: str = Field(default="primary", min_length=1, max_length=256)
    # A video meeting link on every booking: Google Meet on Google Calendar, Microsoft Teams on
    # Microsoft 365. `addGoogleMeet` is the older name of the same rule; either turns it on.
    add_online_meeting: bool = False
    add_google_meet: bool = False
    # Used only when the event has attendees; without attendees there is nobody to notify.
    send_updates: SendUpdates = "all"
    # Whose appointments a call may find, move or cancel: `caller` — only those booked with the
    # number the call comes from, or earlier in the same call; `anyone` — any the caller can
    # name by phone or email (a staff line).
    appointment_access: AppointmentAccess = "caller"

    @field_validator("working_hours")
    @classmethod
    def _week(cls, week: dict[Weekday, list[TimeRange]]) -> dict[Weekday, list[TimeRange]]:
        # A day left out of a replacement map is closed, not "default".
        return {day: _check_ranges(day, week.get(day, [])) for day in WEEKDAYS}

    @field_validator("date_overrides")
    @classmethod
    def _overrides(cls, days: dict[date, list[TimeRange]]) -> dict[date, list[TimeRange]]:
        return {day: _check_ranges(day.isoformat(), ranges) for day, ranges in days.items()}

    @field_validator("busy_calendar_ids")
    @classmethod
    def _distinct(cls, ids: list[str]) -> list[str]:
        if any(not cid.strip() for cid in ids):
            raise ValueError("calendar ids must not be blank")
        return list(dict.fromkeys(ids))

    @property
    def online_meeting(self) -> bool:
        return self.add_online_meeting or self.add_google_meet

    @property
    def freebusy_calendar_ids(self) -> list[str]:
        """Busy calendars plus the booking calendar: our own bookings always block time."""
        return list(dict.fromkeys([*self.busy_calendar_ids, self.booking_calendar_id]))

    def hours_on(self, day: date) -> list[TimeRange]:
        if day in self.date_overrides:
            return self.date_overrides[day]
        return self.working_hours[WEEKDAYS[day.weekday()]]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def for_user(cls, stored: dict[str, Any]) -> BookingRules:
        """The effective rules of a user (stored choices over defaults).

        Validated once per distinct stored value, not on every call: the result is frozen, and
        a change of the stored rules is a different key.
        """
        try:
            return _validated(json.dumps(stored, sort_keys=True, separators=(",", ":")))
        except RulesError:
            raise InvalidStoredRules() from None


@lru_cache(maxsize=1024)
def _validated(stored_json: str) -> BookingRules:
    stored: dict[str, Any] = json.loads(stored_json)
    return validate_rules(stored)


def validate_rules(stored: dict[str, Any], *, strict: bool = False) -> BookingRules:
    """Validate the booking-rule keys of a `User.rules` mapping; raise RulesError naming a field.

    `strict`: each value must be of exactly its JSON type (no `0` for false, no `"5"` for 5),
    for what an owner sends now; rules stored before are read as they were accepted then.
    """
    rules = {k: v for k, v in stored.items() if k not in NON_RULE_KEYS}
    try:
        if strict:
            # JSON strict mode: dates stay ISO strings, as JSON carries them.
            return BookingRules.model_validate_json(json.dumps(rules), strict=True)
        return BookingRules.model_validate(rules)
    except ValidationError as exc:
        error = first_error(exc)
        # Model-level checks (TimeRange ordering) report "Value error, …"; keep only the reason.
        raise RulesError(f"{error.path(empty='rules')}: {error.reason}") from None


def merge_rules(stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply a partial update: top-level keys replace, `null` resets a key to its default.

    Returns the new mapping to store (validated). Maps such as `workingHours` are replaced as a
    whole, so an owner who sends only Monday's hours gets a calendar open only on Mondays —
    exactly what they wrote, with no hidden leftovers.
    """
    if not isinstance(patch, dict):
        raise RulesError("rules: must be an object")
    foreign = sorted(set(patch) & NON_RULE_KEYS)
    if foreign:
        raise RulesError(f"rules.{foreign[0]}: is managed by the server")
    merged = dict(stored)
    for name, value in patch.items():
        # Store camelCase only, whichever spelling was sent, so one key cannot appear twice.
        field = BookingRules.model_fields.get(name)
        key = field.alias if field is not None and field.alias else name
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    validate_rules(merged, strict=True)
    return merged
