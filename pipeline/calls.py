"""What a platform adapter hands the pipeline, and what it gets back."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vapi_calendar.ports.stores import LinkKind
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
    # The platform sent no id for the call (Retell, ElevenLabs, MCP): `id` is `derived_call_id`
    # of the conversation, the tool and the arguments, so a retry has the same id, and so
    # does the same question asked again later in the conversation.
    derived_id: bool = False


def derived_call_id(platform: str, conversation_id: str, tool: str, arguments: Any) -> str:
    """A stable tool call id for a platform that sends none: the same conversation, tool and
    arguments (compared as canonical JSON: key order and spacing do not matter) give the same
    id, so a retried request is answered once."""
    canonical = json.dumps(
        [platform, conversation_id, tool, arguments],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return "derived-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class Claim:
    """A user id named in call metadata; `source` says where (logs, and which sources a
    deployment trusts). `token` is the proof sent next to it (`metadata.userToken`), if any:
    metadata can be set by whoever starts a call, so an unproven claim counts only where the
    deployment says so (CALL_METADATA_TRUST=any)."""

    source: str
    user_id: str
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Link:
    """An id the integrator may have linked to a user with the admin API: a platform's agent
    (a Vapi assistant, a Retell or ElevenLabs agent) or one of its phone numbers (Vapi's by id,
    the others' by number: one number per customer is a common set-up). `source` says where
    it was found."""

    platform: str
    kind: LinkKind
    id: str
    source: str


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A user the adapter proved itself before anything ran (an MCP API key, which belongs to
    exactly one user): trusted as it is."""

    source: str
    user_id: str


IdentitySource = Claim | Link | Authenticated


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
