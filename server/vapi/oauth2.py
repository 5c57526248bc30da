"""Vapi's OAuth2 webhook credential: a client-credentials token endpoint and its tokens.

With an OAuth2 plan (`OAuth2AuthenticationPlan`: `url`, `clientId`, `clientSecret`, `scope`)
Vapi "makes a token request to your OAuth endpoint with client credentials", then sends the
access token as `Authorization: Bearer …` on every webhook and fetches a new one when it expires
(docs.vapi.ai, server authentication). The request is a form post (Vapi's docs, 2025-05:
`application/x-www-form-urlencoded`); where the client credentials go is undocumented, so both
places RFC 6749 §2.3.1 allows are accepted: HTTP Basic and the form body.

Tokens are stateless: itsdangerous signatures under a key derived from ENCRYPTION_KEY (like
connect links), carrying the client id and the granted scope, valid for
VAPI_OAUTH2_TOKEN_SECONDS. Nothing is stored, so every replica accepts every token, and a
changed client id (or encryption key) invalidates them all at once.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote_plus

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vapi_calendar.oauth.vault import TokenVault
from vapi_calendar.support.signing import same

__all__ = ["OAuth2Client", "WebhookTokens", "token_endpoint"]

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path
GRANT_TYPE = "client_credentials"
_FORM = "application/x-www-form-urlencoded"
# RFC 6749 §5.1: "The authorization server MUST include the HTTP "Cache-Control" response
# header field with a value of "no-store" in any response containing tokens, credentials, or
# other sensitive information, as well as the "Pragma" response header field with a value of
# "no-cache"."
_NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


@dataclass(frozen=True, slots=True)
class OAuth2Client:
    """The one client allowed to fetch tokens: what the integrator put in Vapi's plan."""

    client_id: str
    client_secret: str
    scope: str | None = None  # the scopes that may be granted (space-separated); None: none


def _signer_on(clock: Callable[[], float]) -> type[TimestampSigner]:
    """A signer that dates tokens by `clock`, so a token's age is measured on the same clock
    that dated it (and a test need not wait for one to expire)."""

    class ClockSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock())

    return ClockSigner


class WebhookTokens:
    """Issues and checks the short-lived bearer tokens Vapi sends with each webhook."""

    def __init__(
        self,
        vault: TokenVault,
        client: OAuth2Client,
        lifetime_seconds: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._serializer = URLSafeTimedSerializer(
            vault.derived_keys("vapi-oauth2-token"),
            salt="vapi-calendar webhook token",
            signer=_signer_on(clock),
        )
        self.client = client
        self.lifetime_seconds = lifetime_seconds

    def issue(self, scope: str | None) -> str:
        return self._serializer.dumps({"c": self.client.client_id, "s": scope or ""})

    def check(self, token: str) -> str | None:
        """None when the token is one of ours, for this client and unexpired; else a reason."""
        try:
            data = self._serializer.loads(token, max_age=self.lifetime_seconds)
        except SignatureExpired:
            return "expired token"
        except BadSignature:
            return "invalid token"
        if not isinstance(data, dict) or not same(str(data.get("c", "")), self.client.client_id):
            return "invalid token"
        return None


class TokenServices(Protocol):
    webhook_tokens: WebhookTokens | None


class OAuthError(Exception):
    """An RFC 6749 §5.2 error response; every description is a fixed phrase."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> Response:
        headers = dict(_NO_STORE)
        if self.status == 401:
            # RFC 6749 §5.2: a 401 for invalid_client carries WWW-Authenticate.
            headers["www-authenticate"] = 'Basic realm="vapi-calendar"'
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=self.status, headers=headers)


def _form(request: Request, body: bytes) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != _FORM:
        raise OAuthError("invalid_request", f"the token request must be {_FORM}")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the token request is not a valid form") from None
    # RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once."
    if any(len(values) > 1 for values in fields.values()):
        raise OAuthError("invalid_request", "a parameter is repeated")
    return {name: values[0] for name, values in fields.items()}


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """client id and secret from `Authorization: Basic`, each form-decoded (RFC 6749 §2.3.1)."""
    scheme, _, encoded = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise OAuthError("invalid_client", "client authentication failed", 401) from None
    client_id, colon, client_secret = decoded.partition(":")
    if not colon:
        raise OAuthError("invalid_client", "client authentication failed", 401)
    return unquote_plus(client_id), unquote_plus(client_secret)


def _authenticate(request: Request, form: dict[str, str], client: OAuth2Client) -> None:
    basic = _basic_credentials(request.headers.get("authorization"))
    in_body = "client_id" in form or "client_secret" in form
    # RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in each
    # request."
    if basic is not None and in_body:
        raise OAuthError("invalid_request", "client credentials were sent in two ways")
    client_id, client_secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
    if not client_id or not client_secret:
        raise OAuthError("invalid_client", "client authentication failed", 401)
    # Both compared, always: the time taken says nothing about which one was wrong.
    id_ok = same(client_id, client.client_id)
    secret_ok = same(client_secret, client.client_secret)
    if not (id_ok and secret_ok):
        raise OAuthError("invalid_client", "client authentication failed", 401)


def _granted_scope(form: dict[str, str], client: OAuth2Client) -> str | None:
    requested = form.get("scope", "").split()
    if not requested:
        return client.scope
    allowed = set((client.scope or "").split())
    if not set(requested) <= allowed:
        raise OAuthError("invalid_scope", "the requested scope is not available")
    return " ".join(requested)


def _issue(request: Request, body: bytes, tokens: WebhookTokens) -> dict[str, Any]:
    form = _form(request, body)
    if not form.get("grant_type"):
        raise OAuthError("invalid_request", "grant_type is required")
    _authenticate(request, form, tokens.client)
    if form["grant_type"] != GRANT_TYPE:
        raise OAuthError("unsupported_grant_type", f"only {GRANT_TYPE} is supported")
    scope = _granted_scope(form, tokens.client)
    answer: dict[str, Any] = {
        "access_token": tokens.issue(scope),
        "token_type": "Bearer",
        "expires_in": tokens.lifetime_seconds,
    }
    if scope:
        answer["scope"] = scope
    return answer


async def token_endpoint(request: Request) -> Response:
    """POST /oauth/token: RFC 6749 §4.4 (client credentials), answers as §5.1 / §5.2."""
    services: TokenServices = request.app.state.services
    body = await request.body()
    tokens = services.webhook_tokens
    try:
        if tokens is None:
            raise OAuthError("invalid_client", "OAuth2 is not configured on this server", 401)
        answer = _issue(request, body, tokens)
    except OAuthError as exc:
        return exc.response()
    return JSONResponse(answer, headers=_NO_STORE)
