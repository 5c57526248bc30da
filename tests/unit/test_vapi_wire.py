"""Unit tests of the Vapi message parser and the response formatting."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from vapi_calendar.pipeline.calls import Claim, Link
from vapi_calendar.server.vapi.protocol import (
    CallInfo,
    MalformedMessage,
    ToolCall,
    parse_server_message,
    results_body,
    single_line,
    tool_result,
)

CHECK_ARGS = {"startDateTime": "2031-03-11T09:00:00", "endDateTime": "2031-03-11T12:00:00"}


def body(message: dict[str, Any]) -> bytes:
    return json.dumps({"message": message}).encode()


def tool_calls(**fields: Any) -> bytes:
    return body({"type": "tool-calls", **fields})


def call_item(call_id: str, arguments: Any = None, name: str = "checkAvailability") -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# --- argument forms ----------------------------------------------------------------------------


def test_arguments_as_json_string() -> None:
    parsed = parse_server_message(
        tool_calls(toolCallList=[call_item("c1", json.dumps(CHECK_ARGS))])
    )
    assert parsed.tool_calls == (
        ToolCall(id="c1", name="checkAvailability", arguments=CHECK_ARGS, arguments_error=None),
    )


def test_arguments_as_object() -> None:
    parsed = parse_server_message(tool_calls(toolCallList=[call_item("c1", CHECK_ARGS)]))
    assert parsed.tool_calls[0].arguments == CHECK_ARGS
    assert parsed.tool_calls[0].arguments_error is None


@pytest.mark.parametrize("key", ["arguments", "parameters"])
def test_flattened_items(key: str) -> None:
    item = {"id": "c1", "name": "checkAvailability", key: CHECK_ARGS}
    [call] = parse_server_message(tool_calls(toolCallList=[item])).tool_calls
    assert (call.id, call.name, call.arguments) == ("c1", "checkAvailability", CHECK_ARGS)


def test_flattened_item_with_string_parameters() -> None:
    item = {"id": "c1", "name": "checkAvailability", "parameters": json.dumps(CHECK_ARGS)}
    [call] = parse_server_message(tool_calls(toolCallList=[item])).tool_calls
    assert call.arguments == CHECK_ARGS


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ('{"startDateTime": "2031-03-11T09:00', "The tool arguments were not valid JSON."),
        ("not json at all", "The tool arguments were not valid JSON."),
        ('["2031-03-11"]', "The tool arguments were not a JSON object."),
        ("42", "The tool arguments were not a JSON object."),
        (["a", "list"], "The tool arguments were not a JSON object."),
        (7, "The tool arguments were not a JSON object."),
    ],
)
def test_unreadable_arguments_become_an_error_the_assistant_can_say(
    arguments: Any, error: str
) -> None:
    [call] = parse_server_message(tool_calls(toolCallList=[call_item("c1", arguments)])).tool_calls
    assert call.arguments == {}
    assert call.arguments_error == error
    assert call.id == "c1"  # still answerable by id


@pytest.mark.parametrize("arguments", [None, "", "   "])
def test_absent_or_blank_arguments_mean_no_arguments(arguments: Any) -> None:
    [call] = parse_server_message(tool_calls(toolCallList=[call_item("c1", arguments)])).tool_calls
    assert (call.arguments, call.arguments_error) == ({}, None)


# --- where calls come from ---------------------------------------------------------------------


def test_legacy_duplicate_runs_once() -> None:
    item = call_item("c1", json.dumps(CHECK_ARGS))
    parsed = parse_server_message(tool_calls(toolCallList=[item], toolCalls=[item]))
    assert [c.id for c in parsed.tool_calls] == ["c1"]


def test_lists_are_merged_in_first_seen_order() -> None:
    parsed = parse_server_message(
        tool_calls(
            toolCallList=[call_item("a", {}), call_item("b", {})],
            toolCalls=[call_item("b", {}), call_item("c", {})],
        )
    )
    assert [c.id for c in parsed.tool_calls] == ["a", "b", "c"]


def test_duplicate_id_keeps_the_first_version() -> None:
    parsed = parse_server_message(
        tool_calls(toolCallList=[call_item("a", {"n": 1}), call_item("a", {"n": 2})])
    )
    assert [c.arguments for c in parsed.tool_calls] == [{"n": 1}]


def test_legacy_list_alone_is_enough() -> None:
    parsed = parse_server_message(tool_calls(toolCalls=[call_item("c1", CHECK_ARGS)]))
    assert [c.id for c in parsed.tool_calls] == ["c1"]


def test_tool_with_tool_call_list_only() -> None:
    wrappers = [
        {"type": "function", "function": {"name": "checkAvailability"}, "toolCall": call_item("x")},
        {"type": "function", "toolCall": call_item("y", CHECK_ARGS, name="scheduleAppointment")},
        {"type": "function", "toolCall": call_item("x")},
    ]
    parsed = parse_server_message(tool_calls(toolWithToolCallList=wrappers))
    assert [(c.id, c.name) for c in parsed.tool_calls] == [
        ("x", "checkAvailability"),
        ("y", "scheduleAppointment"),
    ]


def test_tool_with_tool_call_list_wrapper_names_a_nameless_call() -> None:
    wrappers = [{"name": "checkAvailability", "toolCall": {"id": "x", "parameters": CHECK_ARGS}}]
    [call] = parse_server_message(tool_calls(toolWithToolCallList=wrappers)).tool_calls
    assert (call.name, call.arguments) == ("checkAvailability", CHECK_ARGS)


def test_tool_with_tool_call_list_is_only_a_fallback() -> None:
    # It mirrors the plain lists; when those exist they are the authoritative set of calls.
    wrappers = [
        {"type": "function", "toolCall": call_item("c1", CHECK_ARGS)},
        {"type": "function", "toolCall": call_item("only-in-wrapper", CHECK_ARGS)},
    ]
    parsed = parse_server_message(
        tool_calls(toolCallList=[call_item("c1", CHECK_ARGS)], toolWithToolCallList=wrappers)
    )
    assert [c.id for c in parsed.tool_calls] == ["c1"]


def test_other_message_types_carry_no_tool_calls() -> None:
    parsed = parse_server_message(
        body({"type": "status-update", "status": "ended", "toolCallList": [call_item("c1", {})]})
    )
    assert parsed.type == "status-update"
    assert parsed.tool_calls == ()


def test_unknown_message_type_is_not_an_error() -> None:
    parsed = parse_server_message(body({"type": "something-new", "call": {"id": "call-1"}}))
    assert (parsed.type, parsed.call.call_id, parsed.tool_calls) == ("something-new", "call-1", ())


# --- identity ----------------------------------------------------------------------------------


def test_identity_fields() -> None:
    message = {
        "type": "tool-calls",
        "toolCallList": [call_item("c1", {})],
        "call": {
            "id": "call-1",
            "orgId": "org-1",
            "type": "inboundPhoneCall",
            "assistantId": "asst_ana_haircuts",
            "phoneNumberId": "pn-1",
            "customer": {"number": "+10000000000", "name": "Call Copy", "email": "c@example.com"},
            "assistantOverrides": {"metadata": {"userId": "ana"}},
        },
        "assistant": {"metadata": {"userId": "assistant-user"}},
        "customer": {"number": "+14155550123", "name": "Sam Lee"},
    }
    assert parse_server_message(body(message)).call == CallInfo(
        call_id="call-1",
        customer_number="+14155550123",  # the top-level customer wins
        identity=(
            Claim("call.assistantOverrides.metadata", "ana"),
            Claim("assistant.metadata", "assistant-user"),
            Link("vapi", "agent", "asst_ana_haircuts", "call.assistantId"),
            Link("vapi", "phoneNumber", "pn-1", "call.phoneNumberId"),
        ),
    )


def test_every_identity_source_in_precedence_order() -> None:
    message = {
        "type": "status-update",
        "call": {
            "id": "call-1",
            "assistantId": "a-call",
            "phoneNumberId": "pn-call",
            "assistantOverrides": {"metadata": {"userId": "u-override"}},
            "squadOverrides": {"metadata": {"userId": "u-squad"}},
            "assistant": {"metadata": {"userId": "u-inline"}},
        },
        "assistant": {"id": "a-active", "metadata": {"userId": "u-active"}},
        "chat": {"id": "chat-1", "assistantId": "a-chat", "assistant": {"metadata": {"userId": 7}}},
        "phoneNumber": {"id": "pn-message"},
    }
    assert parse_server_message(body(message)).call.identity == (
        Claim("call.assistantOverrides.metadata", "u-override"),
        Claim("call.squadOverrides.metadata", "u-squad"),
        Claim("assistant.metadata", "u-active"),
        Claim("call.assistant.metadata", "u-inline"),
        Claim("chat.assistant.metadata", "7"),
        Link("vapi", "agent", "a-active", "assistant.id"),
        Link("vapi", "agent", "a-call", "call.assistantId"),
        Link("vapi", "agent", "a-chat", "chat.assistantId"),
        Link("vapi", "phoneNumber", "pn-call", "call.phoneNumberId"),
        Link("vapi", "phoneNumber", "pn-message", "phoneNumber.id"),
    )


def test_an_id_named_twice_is_looked_up_once_under_its_first_name() -> None:
    message = {
        "type": "status-update",
        "call": {"id": "c", "assistantId": "a1", "phoneNumberId": "pn-1"},
        "assistant": {"id": "a1"},
        "phoneNumber": {"id": "pn-1"},
    }
    assert parse_server_message(body(message)).call.identity == (
        Link("vapi", "agent", "a1", "assistant.id"),
        Link("vapi", "phoneNumber", "pn-1", "call.phoneNumberId"),
    )


def test_an_assistant_id_and_a_phone_number_id_may_be_equal() -> None:
    message = {"type": "hang", "call": {"assistantId": "same", "phoneNumberId": "same"}}
    assert parse_server_message(body(message)).call.identity == (
        Link("vapi", "agent", "same", "call.assistantId"),
        Link("vapi", "phoneNumber", "same", "call.phoneNumberId"),
    )


def test_a_chat_has_no_call_and_is_named_by_its_chat_id() -> None:
    message = {
        "type": "tool-calls",
        "toolCallList": [call_item("c1", {})],
        "chat": {"id": "chat-1", "assistantId": "asst_ana_haircuts"},
        "assistant": {"id": "asst_ana_haircuts"},
    }
    parsed = parse_server_message(body(message))
    assert parsed.call == CallInfo(
        call_id="chat-1", identity=(Link("vapi", "agent", "asst_ana_haircuts", "assistant.id"),)
    )
    assert parsed.tool_request().call.call_id == "chat-1"


def test_explicit_nulls_are_absent() -> None:
    # Vapi sends every unused option of a SIP call as null (help-netizen capture).
    message = {
        "type": "status-update",
        "call": {
            "id": "c",
            "assistantId": None,
            "squad": None,
            "squadId": None,
            "squadOverrides": None,
            "assistantOverrides": {"variableValues": {"userId": "not-metadata"}},
            "phoneNumberId": "pn-1",
        },
    }
    assert parse_server_message(body(message)).call.identity == (
        Link("vapi", "phoneNumber", "pn-1", "call.phoneNumberId"),
    )


def test_customer_falls_back_to_the_call_customer() -> None:
    message = {"type": "status-update", "call": {"customer": {"number": "+14155550123"}}}
    assert parse_server_message(body(message)).call.customer_number == "+14155550123"


def test_phone_number_id_falls_back_to_the_phone_number_object() -> None:
    message = {"type": "status-update", "call": {"id": "c"}, "phoneNumber": {"id": "pn-9"}}
    assert parse_server_message(body(message)).call.identity == (
        Link("vapi", "phoneNumber", "pn-9", "phoneNumber.id"),
    )


def test_missing_parts_give_an_empty_call_info() -> None:
    assert parse_server_message(body({"type": "hang"})).call == CallInfo()


@pytest.mark.parametrize(
    "message",
    [
        {"call": None, "assistant": None, "customer": None, "chat": None},
        {"call": "call-1", "assistant": [], "customer": 5, "chat": "chat-1"},
        {
            "call": {
                "id": 12,
                "orgId": {"x": 1},
                "assistantId": ["a"],
                "phoneNumberId": 5,
                "type": True,
                "customer": "x",
                "assistantOverrides": {"metadata": "userId=ana"},
                "squadOverrides": [],
                "assistant": "inline",
            },
            "assistant": {"metadata": None, "id": 3},
            "chat": {"id": None, "assistantId": {}, "assistant": {"metadata": []}},
            "phoneNumber": {"id": False},
        },
        {"call": {"id": "", "assistantId": "", "assistantOverrides": None}},
    ],
)
def test_wrong_typed_parts_are_treated_as_absent(message: dict[str, Any]) -> None:
    assert parse_server_message(body({"type": "status-update", **message})).call == CallInfo()


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [("ana", "ana"), (42, "42"), (True, None), (4.5, None), ("", None), ({"id": "ana"}, None)],
)
def test_user_id_forms(user_id: Any, expected: str | None) -> None:
    message = {
        "type": "status-update",
        "call": {"assistantOverrides": {"metadata": {"userId": user_id}}},
        "assistant": {"metadata": {"userId": user_id}},
    }
    identity = parse_server_message(body(message)).call.identity
    assert identity == (
        ()
        if expected is None
        else (
            Claim("call.assistantOverrides.metadata", expected),
            Claim("assistant.metadata", expected),
        )
    )


# --- timestamps --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1795190585117, datetime(2026, 11, 20, 16, 3, 5, 117000, tzinfo=UTC)),
        (1795190585117.0, datetime(2026, 11, 20, 16, 3, 5, 117000, tzinfo=UTC)),
        ("2026-11-20T16:03:05.117Z", datetime(2026, 11, 20, 16, 3, 5, 117000, tzinfo=UTC)),
        ("2026-11-20T11:03:05-05:00", datetime(2026, 11, 20, 16, 3, 5, tzinfo=UTC)),
        ("2026-11-20T16:03:05", datetime(2026, 11, 20, 16, 3, 5, tzinfo=UTC)),  # naive = UTC
        ("yesterday", None),
        ("", None),
        (True, None),
        (float("inf"), None),
        (None, None),
        ({"ms": 1}, None),
    ],
)
def test_timestamp_forms(timestamp: Any, expected: datetime | None) -> None:
    parsed = parse_server_message(body({"type": "status-update", "timestamp": timestamp}))
    assert parsed.timestamp == expected
    if parsed.timestamp is not None:
        assert parsed.timestamp.utcoffset() is not None


def test_missing_timestamp() -> None:
    assert parse_server_message(body({"type": "status-update"})).timestamp is None


# --- malformed messages ------------------------------------------------------------------------

NOT_AN_ENVELOPE = "body must be a JSON object with a 'message' object"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"", "body is not valid JSON"),
        (b"[" * 100_000, "body is not valid JSON"),
        (b'{"message": {"type": "\xff"}}', "body is not valid UTF-8"),
        (b"[]", NOT_AN_ENVELOPE),
        (b'"tool-calls"', NOT_AN_ENVELOPE),
        (b'{"msg": {"type": "tool-calls"}}', NOT_AN_ENVELOPE),
        (b'{"message": "tool-calls"}', NOT_AN_ENVELOPE),
        (b'{"message": null}', NOT_AN_ENVELOPE),
        (b'{"message": {}}', "message.type is missing"),
        (b'{"message": {"type": ""}}', "message.type is missing"),
        (b'{"message": {"type": 3}}', "message.type must be a string"),
        (tool_calls(), "tool-calls message has no tool calls"),
        (tool_calls(toolCallList=[], toolCalls=[]), "tool-calls message has no tool calls"),
        (tool_calls(toolCallList={"id": "c1"}), "toolCallList must be a list"),
        (
            tool_calls(toolCallList=[call_item("a"), call_item("b"), {"function": {"name": "x"}}]),
            "toolCallList[2] has no id",
        ),
        (tool_calls(toolCallList=[{"id": 7, "name": "x"}]), "toolCallList[0] has no id"),
        (
            tool_calls(toolCallList=[{"id": "c1", "function": {}}]),
            "toolCallList[0] has no function name",
        ),
        (
            tool_calls(toolCallList=[{"id": "c1", "name": 5}]),
            "toolCallList[0] has no function name",
        ),
        (tool_calls(toolCalls=[call_item("a"), "c1"]), "toolCalls[1] is not an object"),
        (
            tool_calls(toolWithToolCallList=[{"type": "function"}]),
            "toolWithToolCallList[0] has no toolCall",
        ),
        (
            tool_calls(toolWithToolCallList=[{"toolCall": {"function": {"name": "x"}}}]),
            "toolWithToolCallList[0].toolCall has no id",
        ),
    ],
)
def test_malformed_messages(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedMessage) as caught:
        parse_server_message(raw)
    assert str(caught.value) == reason
    assert isinstance(caught.value, ValueError)


def test_one_bad_item_rejects_the_whole_message() -> None:
    # Running the good calls and dropping the bad one would answer with a missing result.
    with pytest.raises(MalformedMessage, match=r"toolCallList\[1\] has no id"):
        parse_server_message(tool_calls(toolCallList=[call_item("a", {}), {"name": "x"}]))


def test_reasons_never_echo_the_body() -> None:
    secret = "sk_live_do_not_echo"
    for raw in (
        body({"type": {"token": secret}}),
        tool_calls(toolCallList=[{"id": {"token": secret}, "name": secret}]),
        f'{{"message": "{secret}"'.encode(),
    ):
        with pytest.raises(MalformedMessage) as caught:
            parse_server_message(raw)
        assert secret not in str(caught.value)


def test_byte_order_mark_is_tolerated() -> None:
    parsed = parse_server_message(b"\xef\xbb\xbf" + body({"type": "status-update"}))
    assert parsed.type == "status-update"


# --- single_line and the response --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("one line", "one line"),
        ("a\nb", "a b"),
        ("a\r\nb", "a b"),
        ("a\rb", "a b"),
        ("a\n\n\nb", "a b"),
        ("a\u2028b\u2029c", "a b c"),
        ("a\x85b\x0bc\x0cd", "a b c d"),
        ("a\x1cb\x1dc\x1ed", "a b c d"),
        ("tabs\tstay", "tabs\tstay"),
        ("trailing\n", "trailing "),
        ("", ""),
    ],
)
def test_single_line(text: str, expected: str) -> None:
    assert single_line(text) == expected
    assert len(single_line(text).splitlines()) <= 1


def test_tool_result_success() -> None:
    assert tool_result("c1", "checkAvailability", result="Free at 9:00.\nAnd 9:30.") == {
        "name": "checkAvailability",
        "toolCallId": "c1",
        "result": "Free at 9:00. And 9:30.",
    }


def test_tool_result_error() -> None:
    assert tool_result("c1", "scheduleAppointment", error="That slot\r\nis taken.") == {
        "name": "scheduleAppointment",
        "toolCallId": "c1",
        "error": "That slot is taken.",
    }


def test_tool_result_allows_an_empty_result() -> None:
    assert tool_result("c1", "x", result="")["result"] == ""


@pytest.mark.parametrize(("result", "error"), [(None, None), ("ok", "failed"), ("", "")])
def test_tool_result_needs_exactly_one_of_result_and_error(
    result: str | None, error: str | None
) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        tool_result("c1", "x", result=result, error=error)


def test_results_body_keeps_order_and_forces_single_lines() -> None:
    hand_built = {"name": "x", "toolCallId": "c2", "result": "two\nlines", "metadata": {"n": 1}}
    assert results_body([tool_result("c1", "x", result="ok"), hand_built]) == {
        "results": [
            {"name": "x", "toolCallId": "c1", "result": "ok"},
            {"name": "x", "toolCallId": "c2", "result": "two lines", "metadata": {"n": 1}},
        ]
    }


def test_results_body_never_rewrites_the_tool_call_id() -> None:
    # Vapi matches results to calls by exact id; rewriting one would orphan the result.
    entry = {"name": "x", "toolCallId": "odd\nid", "result": "ok"}
    assert results_body([entry])["results"][0]["toolCallId"] == "odd\nid"


def test_results_body_of_nothing() -> None:
    assert results_body([]) == {"results": []}
