"""Vapi server messages: parse what arrives, render what we answer. Pure functions, no I/O.

Vapi's own sources disagree on the shape of a tool call (see docs/VAPI.md), so parsing is
defensive: every documented and observed variant is accepted, and anything that cannot be
executed safely raises `MalformedMessage`. Answers are built in the strictest documented form.

Identity comes only from fields Vapi or the integrator's backend set (`call`, `assistant`,
`chat`, `phoneNumber`); tool arguments come from the LLM and are returned as data, never trusted
here. Which fields may name the user, and in which order, is the table `IDENTITY_SOURCES`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vapi_calendar.pipeline.calls import (
    MAX_CALLS_PER_REQUEST,
    Claim,
    IdentitySource,
    Link,
    ToolCall,
    ToolOutcome,
    ToolRequest,
)
from vapi_calendar.ports.stores import LinkKind
from vapi_calendar.server.fields import dig as _dig
from vapi_calendar.server.fields import first_text as _first_text
from vapi_calendar.server.fields import obj as _obj
from vapi_calendar.server.fields import text as _text
from vapi_calendar.server.fields import user_id as _user_id
from vapi_calendar.tools.context import CallContext
from vapi_calendar.tools.errors import ErrorKind, ToolError

__all__ = [
    "IDENTITY_SOURCES",
    "CallInfo",
    "MalformedMessage",
    "ServerMessage",
    "error_result",
    "parse_server_message",
    "render_results",
    "results_body",
    "single_line",
    "spoken_failure",
    "tool_result",
]

INVALID_JSON_ARGUMENTS = "The tool arguments were not valid JSON."
NON_OBJECT_ARGUMENTS = "The tool arguments were not a JSON object."
# OAS `ToolMessageFailed.content`: maxLength 1000.
MAX_MESSAGE_CONTENT = 1000


class MalformedMessage(ValueError):
    """The body cannot be understood. `str()` is a short, safe reason for a 400 response."""


@dataclass(frozen=True, slots=True)
class ClaimAt:
    """A user id written at `path` of the message (integrator-set metadata)."""

    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LinkAt:
    """An id at `path` of the message that the integrator may have linked to a user."""

    kind: LinkKind
    path: tuple[str, ...]


# Where the user may be named, first that names one decides (README: "Whose calendar").
# Labels are paths inside `message`; `pipeline.identity` resolves them in this order.
# - per-call overrides first: they are the most specific thing the integrator set;
# - then the assistant answering now (`message.assistant`: a transient assistant's copy, a
#   squad's active member with its overrides merged, a chat's assistant), then assistants
#   given inline in the call or chat;
# - then stored links: the active assistant's saved id (the only id a squad call carries, Vapi
#   sends no `call.assistantId` for squads), the call's or chat's assistant id, and last the
#   Vapi phone number the call came in on (or went out from).
IDENTITY_SOURCES: tuple[tuple[str, ClaimAt | LinkAt], ...] = (
    (
        "call.assistantOverrides.metadata",
        ClaimAt(("call", "assistantOverrides", "metadata", "userId")),
    ),
    ("call.squadOverrides.metadata", ClaimAt(("call", "squadOverrides", "metadata", "userId"))),
    ("assistant.metadata", ClaimAt(("assistant", "metadata", "userId"))),
    ("call.assistant.metadata", ClaimAt(("call", "assistant", "metadata", "userId"))),
    ("chat.assistant.metadata", ClaimAt(("chat", "assistant", "metadata", "userId"))),
    ("assistant.id", LinkAt("agent", ("assistant", "id"))),
    ("call.assistantId", LinkAt("agent", ("call", "assistantId"))),
    ("chat.assistantId", LinkAt("agent", ("chat", "assistantId"))),
    ("call.phoneNumberId", LinkAt("phoneNumber", ("call", "phoneNumberId"))),
    ("phoneNumber.id", LinkAt("phoneNumber", ("phoneNumber", "id"))),
)


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What Vapi says about the conversation (never the LLM): its id, the caller, and where
    the user may be named, in precedence order."""

    call_id: str | None = None  # `call.id`; for a chat (no `call`), `chat.id`
    customer_number: str | None = None
    identity: tuple[IdentitySource, ...] = ()


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
            identity=self.call.identity,
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
        if len(tool_calls) > MAX_CALLS_PER_REQUEST:
            raise MalformedMessage(
                f"a message may carry at most {MAX_CALLS_PER_REQUEST} tool calls, "
                f"this one has {len(tool_calls)}"
            )
    return ServerMessage(
        type=kind,
        call=_call_info(message),
        tool_calls=tool_calls,
        timestamp=_timestamp(message.get("timestamp")),
    )


def single_line(s: str) -> str:
    """Collapse every run of line separators to one space (Vapi's parser breaks on them)."""
    # Every line separator is unprintable: most strings are then returned after one C scan.
    return s if s.isprintable() else _LINE_BREAKS.sub(" ", s)


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


def spoken_failure(error: ToolError) -> dict[str, str]:
    """The `message` (type `request-failed`) that decides what the caller hears for an error.

    Vapi's `ToolCallResult.error` contract: the caller hears (1) the result's own
    `request-failed` message, else (2) the tool's, else (3) a reply the model writes — and a
    `request-failed` message means the model is not asked to respond. So every error carries
    its own message, and the tool definition's generic line is heard only when this server
    cannot be reached at all. A caller-fixable refusal is a `role: "system"` hint (since
    2026-06, `ToolMessageFailed.role`): the model phrases the sentence and the conversation goes
    on. Anything else is said exactly as written (`role` left out: "assistant", the default, so
    a platform that predates `role` says the same words).
    """
    content = single_line(error.message)[:MAX_MESSAGE_CONTENT]
    message = {"type": "request-failed", "content": content}
    if error.kind is ErrorKind.FIXABLE:
        message["role"] = "system"
    return message


def error_result(call_id: str, name: str, error: ToolError) -> dict[str, Any]:
    """One failed entry of `results`: the sentence as `error` (kept in the conversation
    history) and the `message` that makes the caller hear it."""
    entry: dict[str, Any] = tool_result(call_id, name, error=error.message)
    entry["message"] = spoken_failure(error)
    return entry


def render_results(outcomes: list[ToolOutcome]) -> dict[str, list[dict[str, Any]]]:
    """The pipeline's outcomes as Vapi's `results`: the answer as a compact JSON string, or the
    error with the message the caller hears."""
    entries = []
    for outcome in outcomes:
        if outcome.error is not None:
            entry = error_result(outcome.tool_call_id, outcome.name, outcome.error)
        else:
            result = json.dumps(outcome.result, separators=(",", ":"))
            entry = tool_result(outcome.tool_call_id, outcome.name, result=result)
        entries.append(entry)
    return results_body(entries)


# str.splitlines() boundaries: \n \r \v \f, file/group/record separators, NEL, LS, PS.
_LINE_BREAKS = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]+")


def _single_line_entry(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _single_line_value(value) if key != "toolCallId" else value
        for key, value in entry.items()
    }


def _single_line_value(value: Any) -> Any:
    if isinstance(value, str):
        return single_line(value)
    if isinstance(value, dict):  # the spoken `message`
        return {key: _single_line_value(item) for key, item in value.items()}
    return value


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
        # A chat carries no `call`; its id stands for the conversation (logs, event tags).
        call_id=_first_text([call.get("id"), _dig(message, "chat", "id")]),
        # The top-level customer is the resolved one; the call's copy is the fallback.
        customer_number=_first_text([customer.get("number"), call_customer.get("number")]),
        identity=_identity(message),
    )


def _identity(message: dict[str, Any]) -> tuple[IdentitySource, ...]:
    sources: list[IdentitySource] = []
    seen_links: set[tuple[str, str]] = set()
    for label, place in IDENTITY_SOURCES:
        if isinstance(place, ClaimAt):
            if (user_id := _user_id(_dig(message, *place.path))) is not None:
                # The proof sits next to the id, in the same metadata object.
                token = _text(_dig(message, *place.path[:-1], "userToken"))
                sources.append(Claim(label, user_id, token))
        elif (linked := _text(_dig(message, *place.path))) is not None and (
            # The same id often arrives twice (`call.assistantId` = `assistant.id`): look once.
            (place.kind, linked) not in seen_links
        ):
            seen_links.add((place.kind, linked))
            sources.append(Link("vapi", place.kind, linked, label))
    return tuple(sources)


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
