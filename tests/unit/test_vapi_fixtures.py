"""The Vapi fixtures are real wire format: each validates against Vapi's own SDK models.

`vapi_server_sdk` is the authority for field names and types. Two things make a naive check
worthless, so both are handled explicitly here:

- the SDK's envelope `ServerMessage` is a plain (non-discriminated) union whose members type
  `type` as `Literal[...] | Any`, so *any* object validates as some member (usually
  `ServerMessageAssistantRequest`). Each fixture is therefore validated against the specific
  class for its `message.type`, and the envelope must resolve to that same class;
- the SDK models allow unknown keys, so a misspelled field would pass silently. Unknown keys are
  collected and must be on the short, documented list below.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pydantic
import pytest
from vapi.types import ServerMessage as SdkServerMessage
from vapi.types import (
    ServerMessageConversationUpdate,
    ServerMessageEndOfCallReport,
    ServerMessageResponseToolCalls,
    ServerMessageStatusUpdate,
    ServerMessageToolCalls,
    ToolCallResult,
)

from vapi_calendar.server.vapi.protocol import (
    ServerMessage,
    parse_server_message,
    results_body,
    tool_result,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "vapi"
FIXTURE_NAMES = sorted(path.name for path in FIXTURES.glob("*.json"))

SDK_MODEL: dict[str, type[pydantic.BaseModel]] = {
    "tool-calls": ServerMessageToolCalls,
    "status-update": ServerMessageStatusUpdate,
    "end-of-call-report": ServerMessageEndOfCallReport,
    "conversation-update": ServerMessageConversationUpdate,
}

# Keys real payloads carry that the SDK does not model:
# - the legacy duplicate list `toolCalls`;
# - server-assigned fields of `phoneNumber` / `assistant`, which the SDK types with the *Create*
#   DTOs (CreateVapiPhoneNumberDTO, CreateAssistantDTO) rather than the stored objects.
ALLOWED_UNKNOWN_KEYS = {
    "message.toolCalls",
    *(
        f"message.phoneNumber.{key}"
        for key in ("id", "orgId", "number", "status", "createdAt", "updatedAt")
    ),
    *(
        f"message.assistant.{key}"
        for key in ("id", "orgId", "createdAt", "updatedAt", "isServerUrlSecretSet")
    ),
}

# Real payloads and Vapi's docs send `function.arguments` as an object; the SDK types it `str`.
# These fixtures keep the object form on purpose; they must differ from the SDK in nothing else.
OBJECT_ARGUMENT_FIXTURES = {"tool_calls_schedule_object_args.json"}

EXPECTED_FIXTURES = {
    "tool_calls_check_availability.json",
    "tool_calls_schedule_object_args.json",
    "tool_calls_legacy_duplicate.json",
    "tool_calls_two_calls.json",
    "tool_calls_transient_assistant.json",
    "tool_calls_override_metadata.json",
    "tool_calls_unlinked_assistant.json",
    "status_update.json",
    "end_of_call_report.json",
    "conversation_update.json",
}


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def tool_call_dicts(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Every tool-call object in a message, wherever the wire format puts one."""
    calls = [*message.get("toolCallList", []), *message.get("toolCalls", [])]
    calls += [item["toolCall"] for item in message.get("toolWithToolCallList", [])]
    return calls


def with_string_arguments(document: dict[str, Any]) -> dict[str, Any]:
    converted = copy.deepcopy(document)
    for call in tool_call_dicts(converted["message"]):
        call["function"]["arguments"] = json.dumps(call["function"]["arguments"])
    return converted


def unknown_keys(value: Any, path: str = "message") -> set[str]:
    found: set[str] = set()
    if isinstance(value, pydantic.BaseModel):
        found |= {f"{path}.{key}" for key in value.model_extra or {}}
        for name, field in type(value).model_fields.items():
            found |= unknown_keys(getattr(value, name), f"{path}.{field.alias or name}")
    elif isinstance(value, list | tuple):
        for item in value:
            found |= unknown_keys(item, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            found |= unknown_keys(item, f"{path}.{key}")
    return found


def validate_with_sdk(document: dict[str, Any]) -> pydantic.BaseModel:
    message = document["message"]
    model = SDK_MODEL[message["type"]]
    validated = model.model_validate(message)
    envelope = SdkServerMessage.model_validate(document)
    assert type(envelope.message) is model
    return validated


def test_every_expected_fixture_exists() -> None:
    assert set(FIXTURE_NAMES) >= EXPECTED_FIXTURES
    assert (FIXTURES / "variants" / "tool_calls_flattened.json").is_file()


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_validates_against_sdk_models(name: str) -> None:
    document = load(name)
    if name in OBJECT_ARGUMENT_FIXTURES:
        document = with_string_arguments(document)
    validated = validate_with_sdk(document)
    unexpected = unknown_keys(validated) - ALLOWED_UNKNOWN_KEYS
    assert not unexpected, f"{name}: keys the SDK does not know: {sorted(unexpected)}"


@pytest.mark.parametrize("name", sorted(OBJECT_ARGUMENT_FIXTURES))
def test_object_arguments_are_the_only_difference_from_the_sdk(name: str) -> None:
    message = load(name)["message"]
    assert all(isinstance(c["function"]["arguments"], dict) for c in tool_call_dicts(message))
    with pytest.raises(pydantic.ValidationError) as caught:
        ServerMessageToolCalls.model_validate(message)
    # toolWithToolCallList is an undiscriminated union, so its errors are one per variant; the
    # toolCallList errors are unambiguous and must all be about the arguments' type.
    list_errors = [e for e in caught.value.errors() if e["loc"][0] == "toolCallList"]
    assert list_errors
    assert all(e["loc"][-2:] == ("function", "arguments") for e in list_errors)
    assert all(e["type"] == "string_type" for e in list_errors)


def test_flattened_variant_is_outside_the_sdk_schema() -> None:
    # Why it lives in variants/: items lack `type` and `function`, which SDK ToolCall requires.
    message = json.loads((FIXTURES / "variants" / "tool_calls_flattened.json").read_text())
    with pytest.raises(pydantic.ValidationError) as caught:
        ServerMessageToolCalls.model_validate(message["message"])
    missing = {e["loc"] for e in caught.value.errors() if e["loc"][0] == "toolCallList"}
    assert missing == {("toolCallList", 0, "type"), ("toolCallList", 0, "function")}


def test_flattened_variant_parses() -> None:
    parsed = parse_server_message(
        (FIXTURES / "variants" / "tool_calls_flattened.json").read_bytes()
    )
    [call] = parsed.tool_calls
    assert (call.id, call.name, call.arguments_error) == (
        "call_check_flat_1",
        "checkAvailability",
        None,
    )
    assert call.arguments["startDateTime"] == "2031-03-11T09:00:00"
    assert parsed.call.assistant_id == "asst_ana_haircuts"


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_parser_agrees_with_sdk(name: str) -> None:
    document = load(name)
    sdk = validate_with_sdk(
        with_string_arguments(document) if name in OBJECT_ARGUMENT_FIXTURES else document
    )
    parsed = parse_server_message((FIXTURES / name).read_bytes())

    assert parsed.type == document["message"]["type"]
    assert sdk.call is not None
    assert parsed.call.call_id == sdk.call.id
    assert parsed.call.assistant_id == sdk.call.assistant_id
    assert parsed.call.phone_number_id == sdk.call.phone_number_id
    assert parsed.timestamp is not None
    assert parsed.timestamp.timestamp() * 1000 == pytest.approx(sdk.timestamp)

    if isinstance(sdk, ServerMessageToolCalls):
        sdk_calls = {c.id: c for c in sdk.tool_call_list}
        assert [c.id for c in parsed.tool_calls] == list(sdk_calls)
        for call in parsed.tool_calls:
            assert call.name == sdk_calls[call.id].function.name
            assert call.arguments == json.loads(sdk_calls[call.id].function.arguments)
            assert call.arguments_error is None
    else:
        assert parsed.tool_calls == ()


def parse_fixture(name: str) -> ServerMessage:
    return parse_server_message((FIXTURES / name).read_bytes())


def test_check_availability_fixture() -> None:
    [raw_call] = load("tool_calls_check_availability.json")["message"]["toolCallList"]
    assert isinstance(raw_call["function"]["arguments"], str)  # the SDK's documented form
    parsed = parse_fixture("tool_calls_check_availability.json")
    assert parsed.call.assistant_id == "asst_ana_haircuts"
    assert parsed.call.customer_number == "+14155550123"
    [call] = parsed.tool_calls
    assert call.name == "checkAvailability"
    assert call.arguments == {
        "startDateTime": "2031-03-11T09:00:00",
        "endDateTime": "2031-03-11T12:00:00",
        "durationMinutes": 30,
    }


def test_schedule_fixture_keeps_object_arguments() -> None:
    parsed = parse_fixture("tool_calls_schedule_object_args.json")
    assert parsed.call.assistant_id == "asst_ana_haircuts"
    [call] = parsed.tool_calls
    assert (call.id, call.name) == ("call_schedule_1", "scheduleAppointment")
    assert call.arguments == {
        "startDateTime": "2031-03-11T10:00:00",
        "durationMinutes": 30,
        "summary": "Haircut with Sam",
        "attendeeName": "Sam Lee",
        "attendeePhone": "+14155550123",
    }


def test_legacy_duplicate_fixture_runs_once() -> None:
    message = load("tool_calls_legacy_duplicate.json")["message"]
    assert message["toolCalls"] == message["toolCallList"]
    assert len(parse_fixture("tool_calls_legacy_duplicate.json").tool_calls) == 1


def test_two_calls_fixture_keeps_both_in_order() -> None:
    calls = parse_fixture("tool_calls_two_calls.json").tool_calls
    assert [c.arguments["startDateTime"] for c in calls] == [
        "2031-03-12T09:00:00",
        "2031-03-13T09:00:00",
    ]
    assert len({c.id for c in calls}) == 2


@pytest.mark.parametrize(
    ("name", "assistant_id", "override_user_id", "assistant_user_id"),
    [
        ("tool_calls_transient_assistant.json", None, None, "ana"),
        ("tool_calls_override_metadata.json", "asst_unlinked", "ana", None),
        ("tool_calls_unlinked_assistant.json", "asst_nobody", None, None),
    ],
)
def test_identity_fixtures(
    name: str, assistant_id: str | None, override_user_id: str | None, assistant_user_id: str | None
) -> None:
    call = parse_fixture(name).call
    assert (call.assistant_id, call.override_user_id, call.assistant_user_id) == (
        assistant_id,
        override_user_id,
        assistant_user_id,
    )


@pytest.mark.parametrize("name", sorted(n for n in FIXTURE_NAMES if n.startswith("tool_calls_")))
def test_requested_times_are_in_2031(name: str) -> None:
    for call in parse_fixture(name).tool_calls:
        assert call.arguments["startDateTime"].startswith("2031-")


def test_results_body_validates_against_sdk_response_model() -> None:
    body = results_body(
        [
            tool_result("call_check_1", "checkAvailability", result='{"slots":["09:00"]}'),
            tool_result("call_schedule_1", "scheduleAppointment", error="That time\nis taken."),
        ]
    )
    # Round-trip through JSON: the SDK must accept exactly what goes over the wire.
    response = ServerMessageResponseToolCalls.model_validate(json.loads(json.dumps(body)))
    assert response.results is not None
    first, second = response.results
    assert isinstance(first, ToolCallResult)
    assert (first.tool_call_id, first.name, first.result, first.error) == (
        "call_check_1",
        "checkAvailability",
        '{"slots":["09:00"]}',
        None,
    )
    assert (second.tool_call_id, second.result, second.error) == (
        "call_schedule_1",
        None,
        "That time is taken.",
    )
    assert not unknown_keys(response)
