"""Property-based fuzzing of everything a stranger can send: no input yields a 500.

The app publishes no OpenAPI description, so the inputs are generated with hypothesis: raw
bytes, arbitrary JSON, and JSON shaped like Vapi's messages and the admin API's bodies with
every field replaced by arbitrary values. Examples are bounded so the file stays quick.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness.app import ADMIN_TOKEN, VAPI_SECRET, App, Emulator, running_app
from vapi_calendar.server.vapi.protocol import MalformedMessage, parse_server_message
from vapi_calendar.tools.errors import Unexpected

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
# Values the tools actually parse, mixed with garbage.
datetimes = st.sampled_from(
    ["2031-03-11T09:00:00", "2031-03-11T09:00:00Z", "2031-02-30T25:61:00", "tomorrow", "", "9am"]
) | st.text(max_size=30)
tool_arguments = st.fixed_dictionaries(
    {},
    optional={
        "startDateTime": datetimes | json_values,
        "endDateTime": datetimes | json_values,
        "durationMinutes": st.integers(-10, 10_000) | json_values,
        "timeZone": st.sampled_from(["America/New_York", "EST", "Mars/Base", ""]) | json_values,
        "summary": st.text(max_size=400) | json_values,
        "attendees": st.lists(st.emails() | st.text(max_size=20), max_size=3) | json_values,
        "attendeeName": st.text(max_size=50),
        "attendeePhone": st.text(max_size=50),
        "description": st.text(max_size=100),
    },
)
tool_names = st.sampled_from(["checkAvailability", "scheduleAppointment"]) | st.text(max_size=70)

UNEXPECTED = Unexpected.default_message


@st.composite
def tool_call_items(draw: st.DrawFn) -> Any:
    arguments = draw(tool_arguments | json_values)
    if draw(st.booleans()) and isinstance(arguments, dict):
        arguments = json.dumps(arguments)  # Vapi's SDK sends a JSON string
    function = {"name": draw(tool_names), "arguments": arguments}
    item = {"id": draw(st.text(max_size=40) | json_values), "type": "function"}
    item["function"] = draw(st.just(function) | json_values)
    return draw(st.just(item) | json_values)


@st.composite
def vapi_messages(draw: st.DrawFn) -> Any:
    message = {
        "type": draw(st.sampled_from(["tool-calls", "status-update", "end-of-call-report"])),
        "call": draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "id": st.text(max_size=20) | json_values,
                    "assistantId": st.sampled_from(["asst_ana", "nobody"]) | json_values,
                    "assistantOverrides": json_values,
                },
            )
            | json_values
        ),
        "toolCallList": draw(st.lists(tool_call_items(), max_size=3) | json_values),
        "timestamp": draw(json_values),
    }
    if draw(st.booleans()):
        message["assistant"] = draw(json_values)
    return draw(st.just({"message": message}) | st.just(message) | json_values)


@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
@FUZZ
def test_parser_accepts_or_refuses_cleanly(body: bytes) -> None:
    with contextlib.suppress(MalformedMessage):
        parse_server_message(body)


@given(vapi_messages())
@FUZZ
def test_parser_on_vapi_shaped_garbage(body: Any) -> None:
    try:
        message = parse_server_message(json.dumps(body).encode())
    except MalformedMessage:
        return
    for call in message.tool_calls:
        assert isinstance(call.id, str) and isinstance(call.name, str)
        assert isinstance(call.arguments, dict)


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory, _emulator_server: Emulator) -> Iterator[App]:
    emulator = _emulator_server
    emulator.control.reset()
    with running_app(tmp_path_factory.mktemp("fuzz"), emulator) as app:
        app.create_user("ana")
        app.link("asst_ana", "ana")
        app.connect_google("ana", "ana@example.com")
        yield app


def _post_webhook(app: App, content: bytes) -> httpx.Response:
    return app.http.post(
        f"{app.url}/vapi/webhook",
        content=content,
        headers={"content-type": "application/json", "x-vapi-secret": VAPI_SECRET},
    )


@given(vapi_messages())
@FUZZ
def test_webhook_never_fails_with_500(fuzz_app: App, body: Any) -> None:
    response = _post_webhook(fuzz_app, json.dumps(body).encode())
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        answer = response.json()
        for result in answer.get("results", []):
            assert set(result) >= {"name", "toolCallId"}
            text = result.get("error", result.get("result"))
            assert isinstance(text, str) and "\n" not in text
            assert result.get("error") != UNEXPECTED, result  # no unhandled exception inside


@given(
    st.lists(
        st.tuples(tool_names.filter(lambda name: name.strip() != ""), tool_arguments),
        min_size=1,
        max_size=3,
    )
)
@FUZZ
def test_tools_answer_any_arguments_without_crashing(
    fuzz_app: App, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    body = {
        "message": {
            "type": "tool-calls",
            "call": {"id": "fuzz", "assistantId": "asst_ana"},
            "toolCallList": [
                {"id": f"f{i}", "type": "function", "function": {"name": n, "arguments": a}}
                for i, (n, a) in enumerate(calls)
            ],
        }
    }
    response = _post_webhook(fuzz_app, json.dumps(body).encode())
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["toolCallId"] for r in results] == [f"f{i}" for i in range(len(calls))]
    for result in results:
        assert result.get("error") != UNEXPECTED, (calls, result)


@given(st.binary(max_size=200))
@FUZZ
def test_webhook_raw_bytes(fuzz_app: App, body: bytes) -> None:
    assert _post_webhook(fuzz_app, body).status_code in (200, 400)


admin_requests = st.tuples(
    st.sampled_from(
        [
            ("POST", "/api/users"),
            ("GET", "/api/users/{}"),
            ("PATCH", "/api/users/{}"),
            ("POST", "/api/users/{}/connect-link"),
            ("DELETE", "/api/users/{}/google"),
            ("PUT", "/api/assistants/{}"),
            ("DELETE", "/api/assistants/{}"),
        ]
    ),
    st.sampled_from(["ana", "nobody"]) | st.text(min_size=1, max_size=30),
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.text(max_size=300) | json_values,
            "userId": st.sampled_from(["ana", "nobody"]) | json_values,
            "timezone": st.sampled_from(["America/New_York", "EST", "Nowhere/Land"]) | json_values,
            "rules": json_values,
        },
    )
    | json_values,
)


@given(admin_requests, st.booleans())
@FUZZ
def test_admin_api_never_fails_with_500(fuzz_app: App, request: Any, authorized: bool) -> None:
    (method, template), ident, body = request
    path = template.format(quote(ident, safe=""))
    headers = {"authorization": f"Bearer {ADMIN_TOKEN if authorized else 'wrong'}"}
    response = fuzz_app.http.request(
        method, f"{fuzz_app.url}{path}", content=json.dumps(body).encode(), headers=headers
    )
    assert response.status_code < 500, (method, path, body, response.text)
    if not authorized:
        assert response.status_code == 401


def test_oversized_body_is_refused(fuzz_app: App, tmp_path: Path) -> None:
    response = _post_webhook(fuzz_app, b"[" + b"1," * 600_000 + b"1]")
    assert response.status_code == 413
