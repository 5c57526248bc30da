"""Shared scheduling vocabulary: the requested window, search ranges and result shapes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tools.context import ToolContext
from tools.errors import InvalidArguments
from tools.slots import Interval
from tools.timeparse import parse_datetime, parse_timezone, spoken, to_iso

DEFAULT_DURATION = timedelta(minutes=30)
MAX_SLOTS = 6
MAX_ALTERNATIVES = 3
# Until per-user working hours exist, alternatives stay near the requested time rather than
# drifting to the middle of the night.
ALTERNATIVES_SPAN = timedelta(hours=3)
MAX_WINDOW = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class Request:
    window: Interval  # what the caller asked about
    duration: timedelta  # length of one appointment
    tz: ZoneInfo  # how to read and speak times


def read_request(
    ctx: ToolContext,
    *,
    start: str,
    end: str | None,
    duration_minutes: int | None,
    time_zone: str | None,
    end_is_appointment_end: bool,
) -> Request:
    """The window asked about and the appointment length.

    With `end_is_appointment_end` (booking) an end time fixes the appointment's length; for an
    availability question it only bounds the window searched for slots of `duration_minutes`
    (default 30).
    """
    input_tz = parse_timezone(time_zone, ctx.user_tz)
    # Arithmetic in UTC: aware datetimes sharing one ZoneInfo subtract by wall clock, which is
    # an hour off across a DST change.
    start_at = parse_datetime(start, input_tz, field="startDateTime").astimezone(UTC)
    end_at = parse_datetime(end, input_tz, field="endDateTime").astimezone(UTC) if end else None
    if end_at is not None and end_at <= start_at:
        raise InvalidArguments("The end time must be after the start time.")
    if duration_minutes is not None:
        duration = timedelta(minutes=duration_minutes)
    elif end_at is not None and (end_is_appointment_end or end_at - start_at < DEFAULT_DURATION):
        duration = end_at - start_at
    else:
        duration = DEFAULT_DURATION
    end_at = end_at or start_at + duration
    if end_at - start_at > MAX_WINDOW:
        raise InvalidArguments("Please ask about at most two weeks at a time.")
    if duration > end_at - start_at:
        raise InvalidArguments("The appointment is longer than the time range asked about.")
    if end_at <= ctx.now:
        raise InvalidArguments(
            f"That time has already passed; it is now {spoken(ctx.now, ctx.user_tz)}."
        )
    return Request(Interval(start_at, end_at), duration, ctx.user_tz)


def alternatives_range(target: Interval, now: datetime) -> Interval:
    return Interval(max(now, target.start - ALTERNATIVES_SPAN), target.end + ALTERNATIVES_SPAN)


def slot_json(slot: Interval, tz: ZoneInfo, now: datetime) -> dict[str, Any]:
    return {
        "start": to_iso(slot.start, tz),
        "end": to_iso(slot.end, tz),
        "spoken": spoken(slot.start, tz, now=now),
    }


def slot_step(duration: timedelta) -> timedelta:
    """Offer times on a grid a person would say: half hours, or quarters for short visits."""
    return timedelta(minutes=30) if duration >= timedelta(minutes=30) else timedelta(minutes=15)


def spoken_choices(slots: list[Interval], tz: ZoneInfo, now: datetime) -> str:
    """'Tuesday, March 11 at 9:00 AM, 9:30 AM or 11:00 AM EDT', naming each day once."""
    groups: list[tuple[str, list[str], str]] = []  # (day, clock times, zone)
    for slot in slots:
        day, _, clock = spoken(slot.start, tz, now=now).partition(" at ")
        time_of_day, _, zone = clock.rpartition(" ")
        if groups and groups[-1][0] == day and groups[-1][2] == zone:
            groups[-1][1].append(time_of_day)
        else:
            groups.append((day, [time_of_day], zone))
    phrases = [f"{day} at {_or_list(times)} {zone}" for day, times, zone in groups]
    return _or_list(phrases, separator="; ")


def _or_list(items: list[str], separator: str = ", ") -> str:
    if len(items) <= 1:
        return "".join(items)
    return separator.join(items[:-1]) + " or " + items[-1]
