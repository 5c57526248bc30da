"""Every field of Vapi's webhook credential plans, checked against an independent signer.

The expected signatures come from `tests.harness.vapi` (standard library only, written from
Vapi's `HMACAuthenticationPlan` reference), never from the server's own signing code.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from pydantic import ValidationError
from vapi.types import CreateWebhookCredentialDto
from vapi.types.create_assistant_dto_credentials_item import (
    CreateAssistantDtoCredentialsItem_Webhook,
)

from tests.harness.vapi import bearer_plan_headers, hmac_plan_headers, unknown_keys
from vapi_calendar.oauth.vault import TokenVault, generate_key
from vapi_calendar.server.config import Settings
from vapi_calendar.server.services import ConfigError, check_settings, hmac_plan
from vapi_calendar.server.vapi.auth import (
    BearerPlan,
    HmacPlan,
    WebhookAuthenticator,
    WebhookAuthError,
)
from vapi_calendar.server.vapi.credentials import credential_body
from vapi_calendar.server.vapi.oauth2 import OAuth2Client, WebhookTokens

NOW = 1_900_000_000.0
BODY = b'{"message":{"type":"tool-calls"}}'
URL = "https://calendar.example.com/vapi/webhook"
SECRET = "plan-secret-0123456789"
BASE64_SECRET = base64.b64encode(b"\x00\x01binary key\xff\xfe").decode()


def authenticator(**plans: Any) -> WebhookAuthenticator:
    return WebhookAuthenticator(**plans, clock=lambda: NOW)


def reason(auth: WebhookAuthenticator, headers: dict[str, str], body: bytes = BODY) -> str:
    with pytest.raises(WebhookAuthError) as caught:
        auth.verify(headers, body, url=URL)
    return str(caught.value)


def as_vapi_json(plan: HmacPlan) -> dict[str, Any]:
    """The plan as Vapi holds it (what `vapi-tools` prints for Vapi's credential API)."""
    return credential_body(plan, URL)["authenticationPlan"]


# --- HMAC: every field ---------------------------------------------------------------------------

HMAC_PLANS = {
    "vapi-defaults": HmacPlan(SECRET),
    "sha512-base64": HmacPlan(SECRET, algorithm="sha512", signature_encoding="base64"),
    "sha1-hex": HmacPlan(SECRET, algorithm="sha1"),
    "base64-secret": HmacPlan(BASE64_SECRET, secret_is_base64=True),
    "github-style": HmacPlan(
        SECRET,
        signature_header="X-Hub-Signature-256",
        signature_prefix="sha256=",
        include_timestamp=False,
    ),
    "custom-headers": HmacPlan(
        SECRET,
        algorithm="sha512",
        signature_header="X-Vapi-Signature",
        timestamp_header="X-Vapi-Timestamp",
        signature_prefix="v1=",
    ),
    "method-url": HmacPlan(SECRET, payload_format="{method}\n{url}\n{timestamp}\n{body}"),
    "svix-style": HmacPlan(
        BASE64_SECRET,
        secret_is_base64=True,
        signature_header="svix-signature",
        timestamp_header="svix-timestamp",
        message_id_header="svix-id",
        signature_prefix="v1,",
        signature_encoding="base64",
        payload_format="{svix-id}.{timestamp}.{body}",
    ),
    "no-timestamp": HmacPlan(SECRET, include_timestamp=False),
    "milliseconds": HmacPlan(SECRET, algorithm="sha512"),
}


@pytest.mark.parametrize("name", sorted(HMAC_PLANS))
def test_a_signature_made_as_vapi_documents_it_passes(name: str) -> None:
    plan = HMAC_PLANS[name]
    timestamp = str(int(NOW * 1000)) if name == "milliseconds" else str(int(NOW))
    headers = hmac_plan_headers(as_vapi_json(plan), BODY, timestamp=timestamp, url=URL)
    assert authenticator(hmac=plan).verify(headers, BODY, url=URL) == "hmac"
    # ...and the server's own signer (`vapi-calendar replay`) agrees with it exactly.
    assert plan.headers(BODY, timestamp=timestamp, url=URL, message_id="msg_test_1") == headers


@pytest.mark.parametrize("name", sorted(HMAC_PLANS))
def test_a_tampered_body_fails_under_every_plan(name: str) -> None:
    plan = HMAC_PLANS[name]
    headers = hmac_plan_headers(as_vapi_json(plan), BODY, timestamp=str(int(NOW)), url=URL)
    assert reason(authenticator(hmac=plan), headers, BODY + b" ") == "invalid signature"


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("vapi-defaults", {"algorithm": "sha512"}),  # signed with another algorithm
        ("sha512-base64", {"signatureEncoding": "hex"}),  # sent in another encoding
        ("base64-secret", {"secretIsBase64": False}),  # the key text rather than its bytes
        ("method-url", {"payloadFormat": "{timestamp}.{body}"}),  # another payload
        ("custom-headers", {"signaturePrefix": "v2="}),  # another prefix
    ],
)
def test_a_signature_made_under_another_plan_fails(name: str, change: dict[str, Any]) -> None:
    plan = HMAC_PLANS[name]
    other = {**as_vapi_json(plan), **change}
    headers = hmac_plan_headers(other, BODY, timestamp=str(int(NOW)), url=URL)
    assert reason(authenticator(hmac=plan), headers) in ("invalid signature", "missing credentials")


def test_url_is_part_of_the_signature_when_the_format_says_so() -> None:
    plan = HMAC_PLANS["method-url"]
    headers = hmac_plan_headers(as_vapi_json(plan), BODY, timestamp=str(int(NOW)), url=URL)
    with pytest.raises(WebhookAuthError, match="invalid signature"):
        authenticator(hmac=plan).verify(headers, BODY, url=URL + "?x=1")


def test_without_a_timestamp_no_timestamp_header_is_needed_or_checked() -> None:
    plan = HMAC_PLANS["no-timestamp"]
    headers = hmac_plan_headers(as_vapi_json(plan), BODY, timestamp="1", url=URL)
    assert "x-timestamp" not in headers
    stale = {**headers, "x-timestamp": "1"}  # an old timestamp is not part of this plan
    assert authenticator(hmac=plan).verify(stale, BODY, url=URL) == "hmac"


def test_with_a_timestamp_a_stale_one_fails() -> None:
    plan = HMAC_PLANS["custom-headers"]
    headers = hmac_plan_headers(as_vapi_json(plan), BODY, timestamp=str(int(NOW) - 301), url=URL)
    assert reason(authenticator(hmac=plan), headers) == "timestamp outside the allowed window"


def test_the_configured_headers_are_the_ones_read() -> None:
    plan = HMAC_PLANS["custom-headers"]
    headers = hmac_plan_headers(as_vapi_json(plan), BODY, timestamp=str(int(NOW)), url=URL)
    moved = {"x-signature": headers["X-Vapi-Signature"], "x-timestamp": headers["X-Vapi-Timestamp"]}
    assert reason(authenticator(hmac=plan), moved) == "missing credentials"


def test_svix_style_needs_its_message_id() -> None:
    plan = HMAC_PLANS["svix-style"]
    headers = hmac_plan_headers(as_vapi_json(plan), BODY, timestamp=str(int(NOW)), url=URL)
    del headers["svix-id"]
    assert reason(authenticator(hmac=plan), headers) == "missing credentials"
    replayed = hmac_plan_headers(as_vapi_json(plan), BODY, timestamp=str(int(NOW)), url=URL)
    replayed["svix-id"] = "msg_other"
    assert reason(authenticator(hmac=plan), replayed) == "invalid signature"


@pytest.mark.parametrize(
    ("plan", "problem"),
    [
        (
            HmacPlan(SECRET, include_timestamp=False, payload_format="{timestamp}.{body}"),
            "{timestamp}",
        ),
        (HmacPlan(SECRET, payload_format="{svix-id}.{body}"), "messageIdHeader"),
        (HmacPlan("not base64!", secret_is_base64=True), "secretIsBase64"),
    ],
)
def test_an_unusable_plan_is_refused_at_start(plan: HmacPlan, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("{", r"\{").replace("}", r"\}")):
        WebhookAuthenticator(hmac=plan)


# --- bearer: header name and prefix ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "accepted", "refused"),
    [
        (
            BearerPlan(SECRET),
            [{"Authorization": f"Bearer {SECRET}"}, {"X-Vapi-Secret": SECRET}],
            [{"Authorization": SECRET}, {"X-Api-Key": f"Bearer {SECRET}"}],
        ),
        (
            BearerPlan(SECRET, header_name="X-Api-Key", bearer_prefix_enabled=False),
            [{"X-Api-Key": SECRET}, {"x-api-key": f"  {SECRET} "}, {"X-Vapi-Secret": SECRET}],
            [{"X-Api-Key": f"Bearer {SECRET}"}, {"Authorization": f"Bearer {SECRET}"}],
        ),
        (
            BearerPlan(SECRET, header_name="X-Api-Key"),
            [{"X-Api-Key": f"Bearer {SECRET}"}, {"X-Vapi-Secret": SECRET}],
            [{"X-Api-Key": SECRET}, {"Authorization": f"Bearer {SECRET}"}],
        ),
        (
            BearerPlan(SECRET, bearer_prefix_enabled=False),
            [{"Authorization": SECRET}, {"X-Vapi-Secret": SECRET}],
            [{"Authorization": f"Bearer {SECRET}"}],
        ),
    ],
    ids=["vapi-defaults", "own-header-no-prefix", "own-header-with-prefix", "no-prefix"],
)
def test_bearer_plan(
    plan: BearerPlan, accepted: list[dict[str, str]], refused: list[dict[str, str]]
) -> None:
    auth = authenticator(bearer=plan)
    as_vapi = credential_body(plan, URL)["authenticationPlan"]
    assert auth.verify(bearer_plan_headers(as_vapi), BODY) == "secret"
    for headers in accepted:
        assert auth.verify(headers, BODY) == "secret", headers
    for headers in refused:
        assert reason(auth, headers) in ("invalid secret", "missing credentials"), headers


# --- OAuth2 tokens --------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def tokens(clock: Clock, *, key: str | None = None, client_id: str = "vapi") -> WebhookTokens:
    vault = TokenVault.from_setting(key or KEY)
    return WebhookTokens(vault, OAuth2Client(client_id, "s3cret"), 600, clock=clock)


KEY = generate_key()


def test_an_issued_token_authenticates_until_it_expires() -> None:
    clock = Clock()
    issuer = tokens(clock)
    token = issuer.issue(None)
    auth = authenticator(tokens=issuer)
    assert auth.verify({"Authorization": f"Bearer {token}"}, BODY) == "oauth2"
    clock.now += 600
    assert auth.verify({"Authorization": f"Bearer {token}"}, BODY) == "oauth2"
    clock.now += 2
    assert reason(auth, {"Authorization": f"Bearer {token}"}) == "expired token"


@pytest.mark.parametrize(
    "forged",
    [
        lambda clock: tokens(clock, key=generate_key()).issue(None),  # another server's key
        lambda clock: tokens(clock, client_id="someone-else").issue(None),  # another client
        lambda clock: "not-a-token",
        lambda clock: tokens(clock).issue(None)[:-2] + "xx",  # a tampered signature
    ],
    ids=["other-key", "other-client", "garbage", "tampered"],
)
def test_tokens_we_did_not_issue_fail(forged: Any) -> None:
    clock = Clock()
    auth = authenticator(tokens=tokens(clock))
    assert reason(auth, {"Authorization": f"Bearer {forged(clock)}"}) == "invalid token"


def test_a_bearer_secret_and_oauth2_tokens_together() -> None:
    clock = Clock()
    issuer = tokens(clock)
    auth = authenticator(bearer=BearerPlan(SECRET), tokens=issuer)
    assert auth.verify({"Authorization": f"Bearer {SECRET}"}, BODY) == "secret"
    assert auth.verify({"Authorization": f"Bearer {issuer.issue(None)}"}, BODY) == "oauth2"
    assert reason(auth, {"Authorization": "Bearer wrong"}) == "invalid secret"


# --- settings named after Vapi's fields -----------------------------------------------------------


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_hmac_settings_map_to_vapis_fields() -> None:
    configured = settings(
        vapi_hmac_secret=BASE64_SECRET,
        vapi_hmac_algorithm="sha512",
        vapi_hmac_signature_header="svix-signature",
        vapi_hmac_timestamp_header="svix-timestamp",
        vapi_hmac_signature_prefix="v1,",
        vapi_hmac_include_timestamp=True,
        vapi_hmac_payload_format="{svix-id}.{timestamp}.{body}",
        vapi_hmac_message_id_header="svix-id",
        vapi_hmac_signature_encoding="base64",
        vapi_hmac_secret_is_base64=True,
    )
    check_settings(configured)
    plan = hmac_plan(configured)
    assert plan is not None
    assert as_vapi_json(plan) == {
        "type": "hmac",
        "secretKey": BASE64_SECRET,
        "algorithm": "sha512",
        "signatureHeader": "svix-signature",
        "timestampHeader": "svix-timestamp",
        "signaturePrefix": "v1,",
        "includeTimestamp": True,
        "payloadFormat": "{svix-id}.{timestamp}.{body}",
        "messageIdHeader": "svix-id",
        "signatureEncoding": "base64",
        "secretIsBase64": True,
    }


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"vapi_hmac_algorithm": "md5"}, "vapi_hmac_algorithm"),
        ({"vapi_hmac_signature_encoding": "base32"}, "vapi_hmac_signature_encoding"),
        ({"vapi_hmac_signature_header": "x signature"}, "HTTP header name"),
        ({"vapi_bearer_header_name": "Auth:orization"}, "HTTP header name"),
        ({"vapi_hmac_payload_format": "{timestamp}.{payload}"}, "unknown placeholder {payload}"),
        ({"vapi_hmac_payload_format": "{timestamp}"}, "must contain {body}"),
        ({"vapi_oauth2_token_seconds": 10}, "vapi_oauth2_token_seconds"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(values: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle.replace("{", r"\{").replace("}", r"\}")):
        settings(**values)


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"vapi_oauth2_client_id": "vapi"}, "VAPI_OAUTH2_CLIENT_SECRET"),
        ({"vapi_oauth2_client_secret": "s"}, "VAPI_OAUTH2_CLIENT_ID"),
        (
            {
                "vapi_hmac_secret": SECRET,
                "vapi_hmac_include_timestamp": False,
                "vapi_hmac_payload_format": "{timestamp}.{body}",
            },
            "includeTimestamp",
        ),
        (
            {"vapi_hmac_secret": SECRET, "vapi_hmac_payload_format": "{svix-id}.{body}"},
            "messageIdHeader",
        ),
        ({"vapi_hmac_secret": "not base64!", "vapi_hmac_secret_is_base64": True}, "secretIsBase64"),
    ],
)
def test_unusable_combinations_stop_the_server_with_a_clear_error(
    values: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ConfigError, match=needle):
        check_settings(settings(**values))


# --- the credential body for Vapi's credential API ------------------------------------------------


@pytest.mark.parametrize(
    "plan",
    [
        BearerPlan(SECRET, header_name="X-Api-Key", bearer_prefix_enabled=False),
        *HMAC_PLANS.values(),
        OAuth2Client("vapi", "s3cret", scope="webhooks"),
    ],
    ids=lambda plan: type(plan).__name__,
)
def test_the_credential_body_is_vapis_create_webhook_credential_dto(plan: Any) -> None:
    body = json.loads(json.dumps(credential_body(plan, URL)))
    # With `provider`: the variant of Vapi's credential union (`provider: "webhook"`).
    as_variant = CreateAssistantDtoCredentialsItem_Webhook.model_validate(body)
    assert as_variant.provider == "webhook" and not unknown_keys(as_variant)
    # The DTO itself leaves `provider` to the union, as the SDK's tool DTO does with `type`.
    dto = CreateWebhookCredentialDto.model_validate(body)
    assert unknown_keys(dto) == {"message.provider"}
    assert dto.authentication_plan.type == body["authenticationPlan"]["type"]
    assert dto.name is not None and 1 <= len(dto.name) <= 40


def test_the_oauth2_plan_points_at_the_token_endpoint() -> None:
    plan = credential_body(OAuth2Client("vapi", "s3cret"), URL)["authenticationPlan"]
    assert plan == {
        "type": "oauth2",
        "url": "https://calendar.example.com/oauth/token",
        "clientId": "vapi",
        "clientSecret": "s3cret",
    }
