"""Vapi's side of the wire, as tests need it: SDK checks, and requests as Vapi would send them.

Request signing here is written from Vapi's documented credential plans (`HMACAuthenticationPlan`
and `OAuth2AuthenticationPlan` in Vapi's OpenAPI), with the standard library and a real OAuth2
client library, independently of the server's own code, so a test proves the two agree.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pydantic

# Fixture → the public repository whose real body it reproduces (README: path and commit).
SOURCED_FIXTURES = {
    "vapi4k_transient_assistant_phone.json": "vapi4k/vapi4k",
    "vapi4k_squad_inline_phone.json": "vapi4k/vapi4k",
    "vapi4k_squad_member_webcall.json": "mattbobambrose/vapi4k",
    "finzie_saved_assistant_status_update.json": "itsvineetkr/finzie-assignment",
    "finzie_saved_assistant_tool_calls.json": "itsvineetkr/finzie-assignment",
    "help_netizen_assistant_request_sip.json": "help-netizen/twilio-front-integration",
    "help_netizen_sip_tool_calls.json": "help-netizen/twilio-front-integration",
    "wanda_squad_saved_members_sip.json": "jtmuller5/wanda",
    "ellie_chat_tool_calls.json": "anupama4you/Ellie-dashboard",
    "variants/keey_pretty_string_arguments.json": "arvanittelaku/vapi-keey-voice-assistant",
}


def unknown_keys(value: Any, path: str = "message") -> set[str]:
    """Keys an SDK model did not recognise (its models allow extras, so check explicitly)."""
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


def hmac_plan_headers(
    plan: dict[str, Any],
    body: bytes,
    *,
    timestamp: str,
    url: str,
    message_id: str = "msg_test_1",
    method: str = "POST",
) -> dict[str, str]:
    """The headers Vapi sends under an HMAC plan given as Vapi's JSON (`authenticationPlan`),
    with Vapi's documented defaults for what the plan leaves out."""
    secret = plan["secretKey"]
    key = base64.b64decode(secret) if plan.get("secretIsBase64", False) else secret.encode()
    include_timestamp = plan.get("includeTimestamp", True)
    payload = plan.get("payloadFormat", "{timestamp}.{body}" if include_timestamp else "{body}")
    parts = {
        "{timestamp}": timestamp.encode(),
        "{method}": method.encode(),
        "{url}": url.encode(),
        "{svix-id}": message_id.encode(),
    }
    signed = payload.encode()
    for placeholder, value in parts.items():
        signed = signed.replace(placeholder.encode(), value)
    signed = signed.replace(b"{body}", body)
    raw = hmac.new(key, signed, getattr(hashlib, plan["algorithm"])).digest()
    encoded = (
        base64.b64encode(raw).decode() if plan.get("signatureEncoding") == "base64" else raw.hex()
    )
    headers = {
        plan.get("signatureHeader", "x-signature"): plan.get("signaturePrefix", "") + encoded
    }
    if include_timestamp:
        headers[plan.get("timestampHeader", "x-timestamp")] = timestamp
    if plan.get("messageIdHeader"):
        headers[plan["messageIdHeader"]] = message_id
    return headers


def bearer_plan_headers(plan: dict[str, Any]) -> dict[str, str]:
    """The header Vapi sends under a bearer plan given as Vapi's JSON."""
    prefix = "Bearer " if plan.get("bearerPrefixEnabled", True) else ""
    return {plan.get("headerName", "Authorization"): prefix + plan["token"]}
