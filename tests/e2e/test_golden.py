"""Golden answers: every webhook fixture and a scripted conversation, byte for byte.

Written before the layered restructure (issue #9) to prove it changes nothing a caller or Vapi
can see. Each step posts one body to the running server (SQLite and MongoDB legs) and compares
the HTTP status and the raw response bytes with `tests/golden/webhook_answers.json`.

The server runs with the production defaults (e.g. `CALL_METADATA_TRUST=signed`, so fixtures
that name their user in metadata without a `userToken` are refused). The recorded answers are
about 2031 and were recorded while it was 2026, so the spoken years are
part of them; the test therefore pins the server's clock (never the machine's) to a fixed
instant. Regenerate deliberately with `GOLDEN_UPDATE=1 pytest tests/test_golden.py` and review
the diff: a changed byte is a changed answer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.harness.app import FIXTURES, App, tool_calls_message

GOLDEN = Path(__file__).parent.parent / "golden" / "webhook_answers.json"

CALLER = {"customer": {"number": "+14155550123"}}


def _fixture_steps() -> list[tuple[str, bytes]]:
    paths = sorted(FIXTURES.glob("*.json")) + sorted((FIXTURES / "variants").glob("*.json"))
    return [(f"fixture:{path.relative_to(FIXTURES)}", path.read_bytes()) for path in paths]


def _call(
    tool_call_id: str,
    name: str,
    arguments: dict[str, Any] | str,
    *,
    assistant_id: str | None = "asst_ana_haircuts",
    call: dict[str, Any] | None = None,
) -> bytes:
    body = tool_calls_message([(tool_call_id, name, {})], assistant_id=assistant_id, call=call)
    function = body["message"]["toolCallList"][0]["function"]
    function["arguments"] = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return json.dumps(body).encode()


def _conversation_steps(event_id: str) -> list[tuple[str, bytes]]:
    """Every tool, its refusals and its caller-facing errors, in one deterministic order."""
    day = "2031-03-18"
    return [
        ("check:free", _call("g1", "checkAvailability", {"startDateTime": f"{day}T09:00:00"})),
        (
            "check:range",
            _call(
                "g2",
                "checkAvailability",
                {
                    "startDateTime": f"{day}T09:00:00",
                    "endDateTime": f"{day}T17:00:00",
                    "durationMinutes": 45,
                },
            ),
        ),
        (
            "check:closed-sunday",
            _call("g3", "checkAvailability", {"startDateTime": "2031-03-16T10:00:00"}),
        ),
        (
            "check:outside-hours",
            _call("g4", "checkAvailability", {"startDateTime": f"{day}T07:00:00"}),
        ),
        (
            "check:other-zone",
            _call(
                "g5",
                "checkAvailability",
                {"startDateTime": f"{day}T09:00:00", "timeZone": "America/Chicago"},
            ),
        ),
        (
            "check:bad-zone",
            _call(
                "g6", "checkAvailability", {"startDateTime": f"{day}T09:00:00", "timeZone": "EST"}
            ),
        ),
        ("check:unreadable", _call("g7", "checkAvailability", {"startDateTime": "next tuesday"})),
        ("check:missing", _call("g8", "checkAvailability", {})),
        (
            "check:duration-range",
            _call(
                "g9",
                "checkAvailability",
                {"startDateTime": f"{day}T09:00:00", "durationMinutes": 2},
            ),
        ),
        (
            "check:spring-forward-gap",
            _call("g10", "checkAvailability", {"startDateTime": "2031-03-09T02:30:00"}),
        ),
        ("check:arguments-not-json", _call("g11", "checkAvailability", "{not json")),
        ("unknown-tool", _call("g12", "bookFlight", {})),
        (
            "not-linked",
            _call(
                "g13", "checkAvailability", {"startDateTime": f"{day}T09:00:00"}, assistant_id="x"
            ),
        ),
        (
            "book",
            _call(
                "g14",
                "scheduleAppointment",
                {
                    "startDateTime": f"{day}T10:00:00",
                    "summary": "Haircut with Sam Lee",
                    "attendeeName": "Sam Lee",
                },
                call=CALLER,
            ),
        ),
        (
            "book:redelivered",
            _call(
                "g14",
                "scheduleAppointment",
                {
                    "startDateTime": f"{day}T10:00:00",
                    "summary": "Haircut with Sam Lee",
                    "attendeeName": "Sam Lee",
                },
                call=CALLER,
            ),
        ),
        (
            "book:taken",
            _call(
                "g15",
                "scheduleAppointment",
                {"startDateTime": f"{day}T10:00:00", "summary": "Beard trim"},
                call=CALLER,
            ),
        ),
        (
            "book:end-before-start",
            _call(
                "g16",
                "scheduleAppointment",
                {"startDateTime": f"{day}T10:00:00", "endDateTime": f"{day}T09:00:00"},
            ),
        ),
        (
            "book:bad-email",
            _call(
                "g17",
                "scheduleAppointment",
                {"startDateTime": f"{day}T11:00:00", "attendees": ["not-an-email"]},
            ),
        ),
        (
            "check:after-booking",
            _call("g18", "checkAvailability", {"startDateTime": f"{day}T10:00:00"}),
        ),
        ("find:caller", _call("g19", "findAppointments", {}, call=CALLER)),
        ("find:nobody", _call("g20", "findAppointments", {})),
        (
            "find:other-number",
            _call("g21", "findAppointments", {"attendeePhone": "+1 212 555 0100"}, call=CALLER),
        ),
        (
            "reschedule",
            _call(
                "g22",
                "rescheduleAppointment",
                {"eventId": event_id, "startDateTime": f"{day}T14:00:00"},
                call=CALLER,
            ),
        ),
        (
            "reschedule:outside-hours",
            _call(
                "g23",
                "rescheduleAppointment",
                {"eventId": event_id, "startDateTime": f"{day}T20:00:00"},
                call=CALLER,
            ),
        ),
        (
            "reschedule:unknown-id",
            _call(
                "g24",
                "rescheduleAppointment",
                {"eventId": "zzz-not-ours", "startDateTime": f"{day}T15:00:00"},
            ),
        ),
        ("cancel", _call("g25", "cancelAppointment", {"eventId": event_id}, call=CALLER)),
        ("cancel:again", _call("g26", "cancelAppointment", {"eventId": event_id}, call=CALLER)),
        ("cancel:redelivered", _call("g25", "cancelAppointment", {"eventId": event_id})),
        ("cancel:missing-id", _call("g27", "cancelAppointment", {})),
        (
            "reschedule:cancelled",
            _call(
                "g28",
                "rescheduleAppointment",
                {"eventId": event_id, "startDateTime": f"{day}T15:00:00"},
            ),
        ),
        (
            "two-calls",
            json.dumps(
                tool_calls_message(
                    [
                        ("g29", "checkAvailability", {"startDateTime": f"{day}T09:00:00"}),
                        ("g30", "cancelAppointment", {"eventId": event_id}),
                    ]
                )
            ).encode(),
        ),
    ]


def _transport_steps() -> list[tuple[str, bytes, dict[str, str]]]:
    """Refusals before any tool runs: authentication and malformed bodies."""
    check = _call("t1", "checkAvailability", {"startDateTime": "2031-03-18T09:00:00"})
    return [
        ("transport:no-secret", check, {"x-vapi-secret": ""}),
        ("transport:wrong-secret", check, {"x-vapi-secret": "wrong"}),
        ("transport:not-json", b"{nope", {}),
        ("transport:no-message", b'{"type": "tool-calls"}', {}),
        ("transport:no-type", b'{"message": {}}', {}),
        ("transport:no-calls", b'{"message": {"type": "tool-calls", "toolCallList": []}}', {}),
        (
            "transport:call-without-id",
            b'{"message": {"type": "tool-calls", "toolCallList": [{}]}}',
            {},
        ),
    ]


def _transcript(app: App) -> dict[str, dict[str, Any]]:
    from vapi_calendar.tools.booking import event_id_for

    answers: dict[str, dict[str, Any]] = {}
    for name, body, headers in _transport_steps():
        response = app.webhook(body, **headers)
        answers[name] = {"status": response.status_code, "body": response.text}
    for name, body in _fixture_steps() + _conversation_steps(event_id_for("ana", "g14")):
        response = app.webhook(body)
        answers[name] = {"status": response.status_code, "body": response.text}
    return answers


def test_every_answer_is_byte_for_byte_the_recorded_one(app: App) -> None:
    answers = _transcript(app)
    if os.environ.get("GOLDEN_UPDATE") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(answers, indent=1, ensure_ascii=False) + "\n")
    recorded = json.loads(GOLDEN.read_text())
    assert list(answers) == list(recorded)
    for name, answer in answers.items():
        assert answer == recorded[name], name
