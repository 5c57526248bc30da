"""The body for Vapi's credential API that matches this server's webhook authentication.

`POST https://api.vapi.ai/credential` with `CreateWebhookCredentialDTO`: `provider: "webhook"`,
a `name` (1 to 40 characters) and an `authenticationPlan` (`bearer`, `hmac` or `oauth2`). Every
field of the plan is written out, so the result never depends on Vapi's defaults. The id Vapi
returns goes into each tool's `server.credentialId` (`vapi-tools --credential-id`).
"""

from __future__ import annotations

from typing import Any, Literal

from vapi_calendar.server.vapi.auth import BearerPlan, HmacPlan
from vapi_calendar.server.vapi.oauth2 import TOKEN_PATH, OAuth2Client
from vapi_calendar.server.vapi.tool_definitions import base_url

PlanName = Literal["bearer", "hmac", "oauth2"]
CREDENTIAL_NAME = "vapi-calendar webhooks"  # OAS: maxLength 40


def authentication_plan(
    plan: BearerPlan | HmacPlan | OAuth2Client, server_url: str
) -> dict[str, Any]:
    if isinstance(plan, BearerPlan):
        return {
            "type": "bearer",
            "token": plan.token,
            "headerName": plan.header_name,
            "bearerPrefixEnabled": plan.bearer_prefix_enabled,
        }
    if isinstance(plan, HmacPlan):
        body: dict[str, Any] = {
            "type": "hmac",
            "secretKey": plan.secret_key,
            "algorithm": plan.algorithm,
            "signatureHeader": plan.signature_header,
            "timestampHeader": plan.timestamp_header,
            "includeTimestamp": plan.include_timestamp,
            "payloadFormat": plan.format,
            "signatureEncoding": plan.signature_encoding,
            "secretIsBase64": plan.secret_is_base64,
        }
        if plan.signature_prefix:
            body["signaturePrefix"] = plan.signature_prefix
        if plan.message_id_header:
            body["messageIdHeader"] = plan.message_id_header
        return body
    body = {
        "type": "oauth2",
        "url": base_url(server_url) + TOKEN_PATH,
        "clientId": plan.client_id,
        "clientSecret": plan.client_secret,
    }
    if plan.scope:
        body["scope"] = plan.scope
    return body


def credential_body(plan: BearerPlan | HmacPlan | OAuth2Client, server_url: str) -> dict[str, Any]:
    """The whole `CreateWebhookCredentialDTO` for `POST /credential`."""
    return {
        "provider": "webhook",
        "name": CREDENTIAL_NAME,
        "authenticationPlan": authentication_plan(plan, server_url),
    }
