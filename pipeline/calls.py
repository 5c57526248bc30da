"""What a platform adapter hands the pipeline, and what it gets back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from vapi_calendar.tools.context import CallContext
from vapi_calendar.tools.errors import ToolError

# Tool calls one message may carry: a real turn makes a handful; a thousand is an attack on
# the calendar's quota and this server's threads. Platform adapters refuse more (400).
MAX_CALLS_PER_REQUEST = 32


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str  # the platform's id for this tool call: what "answer once" is keyed on
    name: str
    arguments: Mapping[str, Any]
    # A sentence the assistant can say when the adapter could not read the arguments.
    arguments_error: str | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """A user id named in call metadata; `source` says where (logs, and which sources a
    deployment trusts). `token` is the proof sent next to it (`metadata.userToken`), if any:
    metadata can be set by whoever starts a call, so an unproven claim counts only where the
    deployment says so (CALL_METADATA_TRUST=any)."""

    source: str
    user_id: str
    token: str | None = field(default=None, repr=False)


# What an integrator can link to a user with the admin API: a Vapi assistant id, or the id of
# a Vapi phone number (one number per customer is a common set-up).
LinkKind = Literal["assistant", "phoneNumber"]


@dataclass(frozen=True, slots=True)
class Link:
    """An id the integrator may have linked to a user; `source` says where it was found."""

    kind: LinkKind
    id: str
    source: str


IdentitySource = Claim | Link


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """One message's tool calls, with what the platform (never the LLM) says about the call."""

    platform: str
    call: CallContext
    # Where the user may be named, in precedence order; the first that names one decides.
    identity: tuple[IdentitySource, ...]
    calls: tuple[ToolCall, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """Exactly one of `result` (the tool's answer) and `error` (what the caller hears)."""

    tool_call_id: str
    name: str
    result: dict[str, Any] | None = None
    error: ToolError | None = None
