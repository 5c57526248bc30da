"""Parsing Retell's and ElevenLabs' requests into the pipeline's platform-neutral ToolRequest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vapi_calendar.pipeline.calls import Claim, Link, derived_call_id
from vapi_calendar.server.elevenlabs.protocol import parse_tool_call
from vapi_calendar.server.retell.protocol import MalformedRequest, parse_function_call

FIXTURES = Path(__file__).parent.parent / "fixtures"


def retell(name: str) -> bytes:
    return (FIXTURES / "retell" / name).read_bytes()


def test_a_derived_id_ignores_key_order_and_spacing_but_nothing_else() -> None:
    one = derived_call_id("retell", "call-1", "scheduleAppointment", {"a": 1, "b": [1, 2]})
    assert one == derived_call_id("retell", "call-1", "scheduleAppointment", {"b": [1, 2], "a": 1})
    for other in (
        derived_call_id("mcp", "call-1", "scheduleAppointment", {"a": 1, "b": [1, 2]}),
        derived_call_id("retell", "call-2", "scheduleAppointment", {"a": 1, "b": [1, 2]}),
        derived_call_id("retell", "call-1", "rescheduleAppointment", {"a": 1, "b": [1, 2]}),
        derived_call_id("retell", "call-1", "scheduleAppointment", {"a": 2, "b": [1, 2]}),
    ):
        assert other != one


def test_an_inbound_phone_call() -> None:
    request = parse_function_call(
        "checkAvailability", retell("checkAvailability.phone_call.json"), {}
    )
    assert request.platform == "retell"
    assert request.call.call_id == "Jx8c4QdR2vT7pLm0nWk5sYb3Hf9Ga1Ue"
    assert request.call.caller_number == "+14155550123"
    assert request.identity == (
        Link("retell", "agent", "ag_ana_haircuts_retell_0001", "call.agent_id"),
        Link("retell", "phoneNumber", "+14155550199", "call.to_number"),
    )
    (call,) = request.calls
    assert call.name == "checkAvailability" and call.derived_id is True
    assert dict(call.arguments) == {"startDateTime": "2031-03-11T09:00:00"}


def test_an_outbound_call_swaps_the_numbers() -> None:
    request = parse_function_call(
        "findAppointments", retell("findAppointments.outbound_phone_call.json"), {}
    )
    assert request.call.caller_number == "+14155550123"  # to_number: the customer
    assert request.identity[-1] == Link("retell", "phoneNumber", "+14155550199", "call.from_number")


def test_a_web_call_names_the_user_in_metadata_first() -> None:
    body = json.loads(retell("checkAvailability.web_call_metadata.json"))
    body["call"]["metadata"]["userToken"] = "t0ken"
    body["call"]["retell_llm_dynamic_variables"] = {"userId": "bob"}
    request = parse_function_call("checkAvailability", json.dumps(body).encode(), {})
    assert request.call.caller_number is None
    assert request.identity == (
        Claim("call.metadata", "ana", "t0ken"),
        Claim("call.retell_llm_dynamic_variables", "bob", None),
        Link("retell", "agent", "ag_shared_web_widget_0002", "call.agent_id"),
    )


def test_args_only_reads_the_call_from_headers() -> None:
    headers = {"X-Call-Id": "call-9", "X-Caller-Number": "+14155550123", "X-Agent-Id": "ag-1"}
    request = parse_function_call(
        "checkAvailability", retell("checkAvailability.args_only.json"), headers
    )
    assert request.call.call_id == "call-9"
    assert request.identity == (Link("retell", "agent", "ag-1", "X-Agent-Id"),)
    (call,) = request.calls
    assert call.id == derived_call_id("retell", "call-9", "checkAvailability", dict(call.arguments))
    bare = parse_function_call("checkAvailability", retell("checkAvailability.args_only.json"), {})
    assert bare.identity == () and bare.calls[0].derived_id is False


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "body is not valid JSON"),
        (b"[]", "body must be a JSON object"),
        (b"\xff", "body is not valid UTF-8"),
    ],
)
def test_unreadable_retell_bodies(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedRequest, match=reason):
        parse_function_call("checkAvailability", body, {})


def test_non_object_retell_args_are_a_sentence() -> None:
    body = {"name": "x", "call": {"call_id": "c"}, "args": "2031-03-11"}
    (call,) = parse_function_call("checkAvailability", json.dumps(body).encode(), {}).calls
    assert call.arguments_error == "The tool arguments were not a JSON object."


def test_elevenlabs_system_variables_are_not_arguments() -> None:
    body = (FIXTURES / "elevenlabs" / "scheduleAppointment.phone_call.json").read_bytes()
    request = parse_tool_call("scheduleAppointment", body)
    assert request.platform == "elevenlabs"
    assert request.call.call_id == "conv_2101k2xq7v9e8r3tz0m5n4b6c1da"
    assert request.call.caller_number == "+14155550123"
    assert request.identity == (
        Link("elevenlabs", "agent", "agent_4801k2ana0haircuts0el0001", "system__agent_id"),
        Link("elevenlabs", "phoneNumber", "+14155550199", "system__called_number"),
    )
    (call,) = request.calls
    assert not any(key.startswith("system__") for key in call.arguments)
    assert call.arguments["summary"] == "Haircut with Sam Lee"


def test_elevenlabs_falls_back_to_the_call_sid_and_ignores_empty_values() -> None:
    body = {"system__call_sid": "CA1", "system__conversation_id": "", "system__caller_id": 5}
    request = parse_tool_call("checkAvailability", json.dumps(body).encode())
    assert request.call.call_id == "CA1" and request.call.caller_number is None
    assert request.identity == ()


def test_a_retell_call_without_args_has_no_arguments() -> None:
    body = {"name": "findAppointments", "call": {"call_id": "c", "agent_id": "a"}}
    request = parse_function_call("findAppointments", json.dumps(body).encode(), {})
    (call,) = request.calls
    assert dict(call.arguments) == {} and call.arguments_error is None
    assert request.identity == (Link("retell", "agent", "a", "call.agent_id"),)
