"""Vapi server messages: parse what arrives, render what we answer. Pure functions, no I/O.

Vapi's own sources disagree on the shape of a tool call (see docs/VAPI.md), so parsing is
defensive: every documented and observed variant is accepted, and anything that cannot be
executed safely raises `MalformedMessage`. Answers are built in the strictest documented form.

Identity comes only from fields Vapi or the integrator's backend set (`call`, `assistant`,
`customer`); tool arguments come from the LLM and are returned as data, never trusted here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vapi_calendar.pipeline.calls import (
    Claim,
    IdentitySource,
    Link,
    ToolCall,
    ToolOutcome,
    ToolRequest,
)
from vapi_calendar.tools.context import CallContext

__all__ = [
    "CallInfo",
    "MalformedMessage",
    "ServerMessage",
    "parse_server_message",
    "render_results",
    "results_body",
    "single_line",
    "tool_result",
]

INVALID_JSON_ARGUMENTS = "The tool arguments were not valid JSON."
NON_OBJECT_ARGUMENTS = "The tool arguments were not a JSON object."


class MalformedMessage(ValueError):
    """The body cannot be understood. `str()` is a short, safe reason for a 400 response."""


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What Vapi says about the call (never the LLM): its id, the caller, who may be named."""

    call_id: str | None = None
    assistant_id: str | None = None
    phone_number_id: str | None = None
    customer_number: str | None = None
    override_user_id: str | None = None  # call.assistantOverrides.metadata.userId
    assistant_user_id: str | None = None  # assistant.metadata.userId

    def identity(self) -> tuple[IdentitySource, ...]:
        """Where the user may be named, first decides: per-call override metadata, then the
        assistant's metadata, then the integrator's stored link for the assistant id."""
        sources: list[IdentitySource] = []
        if self.override_user_id:
            sources.append(Claim("call.assistantOverrides.metadata", self.override_user_id))
        if self.assistant_user_id:
            sources.append(Claim("assistant.metadata", self.assistant_user_id))
        if self.assistant_id:
            sources.append(Link("assistant", self.assistant_id))
        return tuple(sources)


@dataclass(frozen=True, slots=True)
class ServerMessage:
    type: str
    call: CallInfo
    tool_calls: tuple[ToolCall, ...]
    timestamp: datetime | None

    def tool_request(self) -> ToolRequest:
        return ToolRequest(
            platform="vapi",
            call=CallContext(call_id=self.call.call_id, caller_number=self.call.customer_number),
            identity=self.call.identity(),
            calls=self.tool_calls,
        )


def parse_server_message(body: bytes) -> ServerMessage:
    """Parse a raw webhook body. Raises `MalformedMessage` when it cannot be acted on."""
    message = _load_message(body)
    kind = message.get("type")
    if kind is None or kind == "":
        raise MalformedMessage("message.type is missing")
    if not isinstance(kind, str):
        raise MalformedMessage("message.type must be a string")
    tool_calls: tuple[ToolCall, ...] = ()
    if kind == "tool-calls":
        tool_calls = _tool_calls(message)
        if not tool_calls:
            raise MalformedMessage("tool-calls message has no tool calls")
    return ServerMessage(
        type=kind,
        call=_call_info(message),
        tool_calls=tool_calls,
        timestamp=_timestamp(message.get("timestamp")),
    )


def single_line(s: str) -> str:
    """Collapse every run of line separators to one space (Vapi's parser breaks on them)."""
    return _LINE_BREAKS.sub(" ", s)


def tool_result(
    call_id: str, name: str, *, result: str | None = None, error: str | None = None
) -> dict[str, str]:
    """One entry of the `results` list; exactly one of `result` / `error`."""
    # toolCallId is echoed verbatim: Vapi matches it exactly, so it must not be rewritten.
    entry = {"name": single_line(name), "toolCallId": call_id}
    if result is not None and error is None:
        entry["result"] = single_line(result)
    elif error is not None and result is None:
        entry["error"] = single_line(error)
    else:
        raise ValueError("exactly one of result or error must be given")
    return entry


def results_body(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The response body for a tool-calls message; re-applies the single-line rule defensively."""
    return {"results": [_single_line_entry(entry) for entry in results]}


def render_results(outcomes: list[ToolOutcome]) -> dict[str, list[dict[str, Any]]]:
    """The pipeline's outcomes as Vapi's `results`: the answer as a compact JSON string, or the
    sentence the caller should hear as `error`."""
    entries = []
    for outcome in outcomes:
        if outcome.error is not None:
            entry = tool_result(outcome.tool_call_id, outcome.name, error=outcome.error.message)
        else:
            result = json.dumps(outcome.result, separators=(",", ":"))
            entry = tool_result(outcome.tool_call_id, outcome.name, result=result)
        entries.append(entry)
    return results_body(entries)


# str.splitlines() boundaries: \n \r \v \f, file/group/record separators, NEL, LS, PS.
_LINE_BREAKS = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]+")


def _single_line_entry(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        key: single_line(value) if isinstance(value, str) and key != "toolCallId" else value
        for key, value in entry.items()
    }


def _load_message(body: bytes) -> dict[str, Any]:
    try:
        # utf-8-sig: a stray BOM is harmless, anything else that is not UTF-8 is rejected.
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MalformedMessage("body is not valid UTF-8") from None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedMessage("body is not valid JSON") from None
    message = document.get("message") if isinstance(document, dict) else None
    if not isinstance(message, dict):
        raise MalformedMessage("body must be a JSON object with a 'message' object")
    return message


# --- tool calls --------------------------------------------------------------------------------


def _tool_calls(message: dict[str, Any]) -> tuple[ToolCall, ...]:
    """Merge every list Vapi may put calls in, first occurrence of an id wins.

    The same call routinely appears in `toolCallList` and the legacy `toolCalls`; running it
    twice would double-book, so de-duplication by id is a correctness rule, not tidiness.
    """
    candidates: list[tuple[str, Any, str | None]] = [
        (label, item, None)
        for key in ("toolCallList", "toolCalls")
        for label, item in _labelled_items(message, key)
    ]
    if not candidates:
        # Only consulted when neither plain list is there: it carries the same calls.
        for label, wrapper in _labelled_items(message, "toolWithToolCallList"):
            if not isinstance(wrapper, dict) or not isinstance(wrapper.get("toolCall"), dict):
                raise MalformedMessage(f"{label} has no toolCall")
            # Docs examples name the tool on the wrapper and leave it off the inner call.
            tool_name = _first_text([_dig(wrapper, "function", "name"), wrapper.get("name")])
            candidates.append((f"{label}.toolCall", wrapper["toolCall"], tool_name))

    calls: dict[str, ToolCall] = {}
    for label, item, default_name in candidates:
        call = _tool_call(label, item, default_name)
        calls.setdefault(call.id, call)
    return tuple(calls.values())


def _labelled_items(message: dict[str, Any], key: str) -> Iterator[tuple[str, Any]]:
    items = message.get(key)
    if items is None:
        return
    if not isinstance(items, list):
        raise MalformedMessage(f"{key} must be a list")
    for index, item in enumerate(items):
        yield f"{key}[{index}]", item


def _tool_call(label: str, item: Any, default_name: str | None) -> ToolCall:
    if not isinstance(item, dict):
        raise MalformedMessage(f"{label} is not an object")
    call_id = item.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise MalformedMessage(f"{label} has no id")
    function = item.get("function")
    function = function if isinstance(function, dict) else {}
    name = _first_text([function.get("name"), item.get("name"), default_name])
    if name is None:
        raise MalformedMessage(f"{label} has no function name")
    raw = _first_present(
        (function, "arguments"), (item, "arguments"), (item, "parameters"), (function, "parameters")
    )
    arguments, error = _arguments(raw)
    return ToolCall(id=call_id, name=name, arguments=arguments, arguments_error=error)


def _first_present(*places: tuple[dict[str, Any], str]) -> Any:
    for mapping, key in places:
        if mapping.get(key) is not None:
            return mapping[key]
    return None


def _arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    """Arguments arrive as an object (docs, real payloads) or a JSON string (spec, SDK)."""
    if raw is None:
        return {}, None
    if isinstance(raw, str):
        if not raw.strip():
            return {}, None  # some models send "" for a call without arguments
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            return {}, INVALID_JSON_ARGUMENTS
    if not isinstance(raw, dict):
        return {}, NON_OBJECT_ARGUMENTS
    return raw, None


# --- identity ----------------------------------------------------------------------------------


def _call_info(message: dict[str, Any]) -> CallInfo:
    call = _obj(message.get("call"))
    customer = _obj(message.get("customer"))
    call_customer = _obj(call.get("customer"))
    return CallInfo(
        call_id=_text(call.get("id")),
        assistant_id=_text(call.get("assistantId")),
        phone_number_id=_first_text(
            [call.get("phoneNumberId"), _obj(message.get("phoneNumber")).get("id")]
        ),
        # The top-level customer is the resolved one; the call's copy is the fallback.
        customer_number=_first_text([customer.get("number"), call_customer.get("number")]),
        override_user_id=_user_id(_dig(call, "assistantOverrides", "metadata", "userId")),
        assistant_user_id=_user_id(_dig(message, "assistant", "metadata", "userId")),
    )


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        value = _obj(value).get(key)
    return value


def _text(value: Any) -> str | None:
    """A wrong-typed or empty field is treated as absent rather than guessed at."""
    return value if isinstance(value, str) and value else None


def _first_text(values: Iterable[Any]) -> str | None:
    return next((text for text in map(_text, values) if text is not None), None)


def _user_id(value: Any) -> str | None:
    # Integrators sometimes store numeric ids; bool is an int subclass and never an id.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def _timestamp(value: Any) -> datetime | None:
    """Epoch milliseconds per spec; ISO 8601 strings have been seen. Unreadable → None."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        if isinstance(value, str) and value:
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    return None
