"""The Vapi fixtures are real wire format: each validates against Vapi's own SDK models.

`vapi_server_sdk` is the authority for field names and types. Two things make a naive check
worthless, so both are handled explicitly here:

- the SDK's envelope `ServerMessage` is a plain (non-discriminated) union whose members type
  `type` as `Literal[...] | Any`, so *any* object validates as some member (usually
  `ServerMessageAssistantRequest`). Each fixture is therefore validated against the specific
  class for its `message.type`, and the envelope must resolve to that same class;
- the SDK models allow unknown keys, so a misspelled field would pass silently. Unknown keys are
  collected and each must be one of the documented keys below, with the reason it is there.

Real bodies (the fixtures named after their public source, see the fixtures README) differ
from the SDK in a few ways the SDK cannot express. Each such deviation is named per fixture,
applied before validation (so the SDK still checks everything else), and proven necessary: the
fixture does *not* validate without it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pydantic
import pytest
from vapi.types import ServerMessage as SdkServerMessage
from vapi.types import (
    ServerMessageAssistantRequest,
    ServerMessageConversationUpdate,
    ServerMessageEndOfCallReport,
    ServerMessageResponseToolCalls,
    ServerMessageStatusUpdate,
    ServerMessageToolCalls,
    ToolCallResult,
)

from tests.harness.app import ANA_PHONE_NUMBER_ID
from tests.harness.vapi import SOURCED_FIXTURES, unknown_keys
from vapi_calendar.pipeline.calls import Claim, Link
from vapi_calendar.server.vapi.protocol import (
    ServerMessage,
    parse_server_message,
    results_body,
    tool_result,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "vapi"
FIXTURE_NAMES = sorted(path.name for path in FIXTURES.glob("*.json"))
VARIANT_NAMES = sorted(f"variants/{path.name}" for path in (FIXTURES / "variants").glob("*.json"))

SDK_MODEL: dict[str, type[pydantic.BaseModel]] = {
    "tool-calls": ServerMessageToolCalls,
    "status-update": ServerMessageStatusUpdate,
    "end-of-call-report": ServerMessageEndOfCallReport,
    "conversation-update": ServerMessageConversationUpdate,
    "assistant-request": ServerMessageAssistantRequest,
}

# Keys real payloads carry that the SDK does not model, and why.
DOCUMENTED_UNKNOWN_KEYS = {
    "message.toolCalls": "the legacy duplicate of toolCallList (every real capture has it)",
    **{
        f"message.assistant.{key}": "server-assigned fields of a saved assistant; the SDK types "
        "message.assistant as CreateAssistantDTO"
        for key in ("id", "orgId", "createdAt", "updatedAt", "isServerUrlSecretSet")
    },
    **{
        f"message.phoneNumber.{key}": "the stored phone number's fields; the SDK types "
        "message.phoneNumber as a Create DTO"
        for key in (
            "id",
            "orgId",
            "number",
            "status",
            "createdAt",
            "updatedAt",
            "credentialId",
            "providerResourceId",
            "smsEnabled",
        )
    },
    "message.assistant.variableValues": "a squad member's assistantOverrides.variableValues, "
    "merged into the active assistant (jtmuller5/wanda)",
    "message.assistant.serverUrl": "the pre-`server` field of 2024 assistants (vapi4k)",
    "message.call.squad.members.assistant.serverUrl": "the same, on inline squad members",
    "message.call.webCallUrl": "web calls' room URL, kept next to transport.callUrl",
    "message.call.transport.assistantVideoEnabled": "sent on Daily web calls (finzie)",
    "message.call.phoneCallProviderDetails": "SIP call details (jtmuller5/wanda)",
    "message.call.assistantOverride": "sent as null next to assistantOverrides on SIP calls "
    "(help-netizen)",
    "message.artifact.messagesOpenAIFormatted.tool_calls": "OpenAI's own snake_case key in "
    "the OpenAI-formatted history",
    "message.artifact.variables": "the artifact's variables map (jtmuller5/wanda)",
    "message.toolWithToolCallList.server.secret": "the legacy server secret, which 2024 Vapi "
    "sent back in the body (vapi4k)",
    "message.call.squad.members.assistant.model.tools.server.secret": "the same, on inline "
    "squad members' tools",
    "message.call.assistant.model.tools.server.secret": "the same, on a transient assistant's "
    "tools",
}


def _object_arguments(document: dict[str, Any]) -> None:
    """Every real capture sends `function.arguments` as an object; the SDK types it `str`."""
    for call in tool_call_dicts(document["message"]):
        if isinstance(call["function"]["arguments"], dict):
            call["function"]["arguments"] = json.dumps(call["function"]["arguments"])


def _iso_timestamp(document: dict[str, Any]) -> None:
    """2024-07 captures send `timestamp` as an ISO string; the SDK types it as a number."""
    stamp = datetime.fromisoformat(document["message"]["timestamp"])
    document["message"]["timestamp"] = stamp.timestamp() * 1000


def _stored_phone_number(document: dict[str, Any]) -> None:
    """2024 captures send the stored Twilio number without `twilioAccountSid`, which every
    variant of the SDK's phone-number union requires; it is checked on its own below."""
    del document["message"]["phoneNumber"]


DEVIATION: dict[str, Callable[[dict[str, Any]], None]] = {
    "object-arguments": _object_arguments,
    "iso-timestamp": _iso_timestamp,
    "stored-phone-number": _stored_phone_number,
}

# Which deviations each fixture shows (the fixtures README lists the same).
DEVIATIONS: dict[str, tuple[str, ...]] = {
    "tool_calls_schedule_object_args.json": ("object-arguments",),
    "vapi4k_transient_assistant_phone.json": (
        "object-arguments",
        "iso-timestamp",
        "stored-phone-number",
    ),
    "vapi4k_squad_inline_phone.json": ("object-arguments", "iso-timestamp", "stored-phone-number"),
    "vapi4k_squad_member_webcall.json": ("object-arguments", "iso-timestamp"),
    "finzie_saved_assistant_tool_calls.json": ("object-arguments",),
    "help_netizen_sip_tool_calls.json": ("object-arguments",),
    "wanda_squad_saved_members_sip.json": ("object-arguments",),
    "ellie_chat_tool_calls.json": ("object-arguments",),
}

AUTHORED_FIXTURES = {
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
# mattbobambrose/vapi4k is the earlier repository of vapi4k/vapi4k: one source, not two.
SAME_SOURCE = {"mattbobambrose/vapi4k": "vapi4k/vapi4k"}

OTHER_PHONE_NUMBER_ID = "9b1e7c3a-2d4f-4a8b-b6c5-0e9d8f7a6b5c"  # linked to nobody


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def tool_call_dicts(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Every tool-call object in a message, wherever the wire format puts one."""
    calls = [*message.get("toolCallList", []), *message.get("toolCalls", [])]
    calls += [item["toolCall"] for item in message.get("toolWithToolCallList", [])]
    return calls


def sdk_form(name: str, *, leave_out: str | None = None) -> dict[str, Any]:
    """The fixture with its documented deviations applied (all but `leave_out`)."""
    document = copy.deepcopy(load(name))
    for deviation in DEVIATIONS.get(name, ()):
        if deviation != leave_out:
            DEVIATION[deviation](document)
    return document


def validate_with_sdk(document: dict[str, Any]) -> Any:
    message = document["message"]
    model = SDK_MODEL[message["type"]]
    validated = model.model_validate(message)
    envelope = SdkServerMessage.model_validate(document)
    assert type(envelope.message) is model
    return validated


def test_every_expected_fixture_exists() -> None:
    assert set(FIXTURE_NAMES) == AUTHORED_FIXTURES | {
        name for name in SOURCED_FIXTURES if not name.startswith("variants/")
    }
    assert set(VARIANT_NAMES) == {
        "variants/tool_calls_flattened.json",
        "variants/keey_pretty_string_arguments.json",
    }


def test_real_bodies_come_from_at_least_five_public_sources() -> None:
    sources = {SAME_SOURCE.get(repo, repo) for repo in SOURCED_FIXTURES.values()}
    assert len(sources) >= 5
    readme = (FIXTURES / "README.md").read_text()
    for name, repo in SOURCED_FIXTURES.items():
        assert f"`{name}`" in readme and repo in readme, name
    for name in DEVIATIONS:
        for deviation in DEVIATIONS[name]:
            assert f"`{deviation}`" in readme


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_validates_against_sdk_models(name: str) -> None:
    validated = validate_with_sdk(sdk_form(name))
    unexpected = unknown_keys(validated) - set(DOCUMENTED_UNKNOWN_KEYS)
    assert not unexpected, f"{name}: keys the SDK does not know: {sorted(unexpected)}"


@pytest.mark.parametrize(
    ("name", "deviation"),
    [(name, deviation) for name, deviations in DEVIATIONS.items() for deviation in deviations],
)
def test_each_documented_deviation_is_real(name: str, deviation: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        validate_with_sdk(sdk_form(name, leave_out=deviation))


@pytest.mark.parametrize(
    "name", ["vapi4k_transient_assistant_phone.json", "vapi4k_squad_inline_phone.json"]
)
def test_stored_phone_numbers_lack_only_what_the_create_dto_requires(name: str) -> None:
    number = load(name)["message"]["phoneNumber"]
    assert number["provider"] == "twilio" and "twilioAccountSid" not in number
    # With the one field the capture lacks, it is the SDK's Twilio number.
    with_sid = {**number, "twilioAccountSid": "AC0"}
    checked = ServerMessageToolCalls.model_validate(
        {**sdk_form(name)["message"], "phoneNumber": with_sid}
    )
    assert checked.phone_number is not None


def test_flattened_variant_is_outside_the_sdk_schema() -> None:
    # Why it lives in variants/: items lack `type` and `function`, which SDK ToolCall requires.
    message = load("variants/tool_calls_flattened.json")["message"]
    with pytest.raises(pydantic.ValidationError) as caught:
        ServerMessageToolCalls.model_validate(message)
    missing = {e["loc"] for e in caught.value.errors() if e["loc"][0] == "toolCallList"}
    assert missing == {("toolCallList", 0, "type"), ("toolCallList", 0, "function")}


def test_keey_variant_is_a_partial_copy_outside_the_sdk_schema() -> None:
    # Why it lives in variants/: copied by hand from Vapi's dashboard, it lacks the required
    # toolWithToolCallList and the call's orgId / createdAt / updatedAt.
    message = load("variants/keey_pretty_string_arguments.json")["message"]
    with pytest.raises(pydantic.ValidationError) as caught:
        ServerMessageToolCalls.model_validate(message)
    assert {e["loc"] for e in caught.value.errors()} == {
        ("toolWithToolCallList",),
        ("call", "orgId"),
        ("call", "createdAt"),
        ("call", "updatedAt"),
    }


def test_flattened_variant_parses() -> None:
    parsed = parse_fixture("variants/tool_calls_flattened.json")
    [call] = parsed.tool_calls
    assert (call.id, call.name, call.arguments_error) == (
        "call_check_flat_1",
        "checkAvailability",
        None,
    )
    assert call.arguments["startDateTime"] == "2031-03-11T09:00:00"
    assert Link("vapi", "agent", "asst_ana_haircuts", "call.assistantId") in parsed.call.identity


def test_pretty_printed_string_arguments_parse() -> None:
    [call] = parse_fixture("variants/keey_pretty_string_arguments.json").tool_calls
    assert call.arguments == {"startDateTime": "2031-03-20T18:00:00", "timeZone": "Europe/London"}
    assert call.arguments_error is None


def _links(parsed: ServerMessage, kind: str) -> list[str]:
    """The ids of one kind the parser found (each once, whichever field named it first)."""
    return [s.id for s in parsed.call.identity if isinstance(s, Link) and s.kind == kind]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_parser_agrees_with_sdk(name: str) -> None:
    document = load(name)
    sdk = validate_with_sdk(sdk_form(name))
    parsed = parse_server_message((FIXTURES / name).read_bytes())

    assert parsed.type == document["message"]["type"]
    conversation = sdk.call if sdk.call is not None else sdk.chat
    assert conversation is not None
    assert parsed.call.call_id == conversation.id
    if sdk.call is not None and sdk.call.assistant_id:
        assert sdk.call.assistant_id in _links(parsed, "agent")
    if sdk.call is not None and sdk.call.phone_number_id:
        assert _links(parsed, "phoneNumber")[0] == sdk.call.phone_number_id
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
    assert _links(parsed, "agent") == ["asst_ana_haircuts"]
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
    assert _links(parsed, "agent") == ["asst_ana_haircuts"]
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


# Whose calendar each fixture names, in the order the pipeline tries the sources.
IDENTITY = {
    "tool_calls_transient_assistant.json": (
        Claim("assistant.metadata", "ana"),
        Claim("call.assistant.metadata", "ana"),
    ),
    "tool_calls_override_metadata.json": (
        Claim("call.assistantOverrides.metadata", "ana"),
        Link("vapi", "agent", "asst_unlinked", "assistant.id"),
        Link("vapi", "phoneNumber", OTHER_PHONE_NUMBER_ID, "call.phoneNumberId"),
    ),
    "tool_calls_unlinked_assistant.json": (
        Link("vapi", "agent", "asst_nobody", "assistant.id"),
        Link("vapi", "phoneNumber", OTHER_PHONE_NUMBER_ID, "call.phoneNumberId"),
    ),
    # A transient assistant given inline when the call was created (no message.assistant in
    # 2024 phone captures), on a number that is not Ana's.
    "vapi4k_transient_assistant_phone.json": (
        Claim("call.assistant.metadata", "ana"),
        Link("vapi", "phoneNumber", "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "call.phoneNumberId"),
    ),
    # An inline squad on Ana's number: no assistant id, no metadata; only the number names her.
    "vapi4k_squad_inline_phone.json": (
        Link("vapi", "phoneNumber", ANA_PHONE_NUMBER_ID, "call.phoneNumberId"),
    ),
    # An inline squad on a web call: the active member, as Vapi sends it, carries metadata.
    "vapi4k_squad_member_webcall.json": (Claim("assistant.metadata", "ana"),),
    # A saved assistant: its id twice (call.assistantId = assistant.id), looked up once.
    "finzie_saved_assistant_tool_calls.json": (
        Link("vapi", "agent", "asst_ana_haircuts", "assistant.id"),
    ),
    # A SIP call whose assistant came from an assistant-request: only the Vapi number.
    "help_netizen_sip_tool_calls.json": (
        Link("vapi", "phoneNumber", ANA_PHONE_NUMBER_ID, "call.phoneNumberId"),
    ),
    # A squad of saved assistants: no call.assistantId; the active member's saved id.
    "wanda_squad_saved_members_sip.json": (
        Link("vapi", "agent", "asst_ana_haircuts", "assistant.id"),
        Link("vapi", "phoneNumber", "0eac8823-cc7f-4e85-8d05-000000000006", "call.phoneNumberId"),
    ),
    # A chat: no call at all; the chat's assistant.
    "ellie_chat_tool_calls.json": (Link("vapi", "agent", "asst_ana_haircuts", "assistant.id"),),
    "variants/keey_pretty_string_arguments.json": (),
}


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_identity_fixtures(name: str) -> None:
    assert parse_fixture(name).call.identity == IDENTITY[name]


def test_a_chat_is_identified_by_its_chat_id() -> None:
    parsed = parse_fixture("ellie_chat_tool_calls.json")
    assert "call" not in load("ellie_chat_tool_calls.json")["message"]
    assert parsed.call.call_id == "6a1c3e5f-7b9d-4f1a-8c3e-5a7c9e1b3d07"
    assert parsed.tool_request().call.call_id == parsed.call.call_id


@pytest.mark.parametrize(
    "name",
    sorted(n for n in [*FIXTURE_NAMES, *VARIANT_NAMES] if parse_fixture(n).tool_calls),
)
def test_requested_times_are_in_2031(name: str) -> None:
    for call in parse_fixture(name).tool_calls:
        for key, value in call.arguments.items():
            if key.endswith("DateTime"):
                assert value.startswith("2031-"), (call.id, key)


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
