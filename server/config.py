"""Configuration from environment variables and an optional `.env` file.

Every setting is documented in `.env.example` and the README's configuration table; keep the
three in step. Secrets are `SecretStr` so they never render in a repr, a log line or a traceback.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vapi_calendar.server.inputs import TimeZone
from vapi_calendar.support.signing import PAYLOAD_PLACEHOLDERS, Algorithm, Encoding, placeholders

DEFAULT_SCOPES = (
    "openid",
    "email",
    "https://www.googleapis.com/auth/calendar.freebusy",
    "https://www.googleapis.com/auth/calendar.events.owned",
    "https://www.googleapis.com/auth/calendar.settings.readonly",
)

# In demo mode the bundled emulator is mounted here and plays Google with this client.
DEMO_EMULATOR_PATH = "/emulator"
DEMO_CLIENT_ID = "demo-client.apps.googleusercontent.com"
DEMO_CLIENT_SECRET = "demo-client-secret"  # noqa: S105 - a public, emulator-only value
# …and Microsoft 365 with this app registration.
DEMO_MICROSOFT_CLIENT_ID = "00000000-0000-4000-8000-00000000d3e0"
DEMO_MICROSOFT_CLIENT_SECRET = "demo-microsoft-secret"  # noqa: S105 - emulator-only
# A Microsoft tenant as the authority path takes it: common / organizations / consumers, a
# tenant id (GUID) or a verified domain.
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,253}$")

# An HTTP header name (RFC 9110 `token`).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    database_url: str = "sqlite:///data/vapi-calendar.db"
    public_url: str = "http://127.0.0.1:8000"

    # Webhook credentials, named after the fields of Vapi's credential plans
    # (`CreateWebhookCredentialDTO.authenticationPlan`); any configured plan authenticates.
    # Bearer plan: `token`, `headerName`, `bearerPrefixEnabled`. The legacy `X-Vapi-Secret`
    # header (no prefix) is accepted too.
    vapi_secret: SecretStr | None = None
    vapi_bearer_header_name: str = "Authorization"
    vapi_bearer_prefix_enabled: bool = True
    # HMAC plan: `secretKey`, `algorithm`, `signatureHeader`, `timestampHeader`,
    # `signaturePrefix`, `includeTimestamp`, `payloadFormat`, `messageIdHeader`,
    # `signatureEncoding`, `secretIsBase64`.
    vapi_hmac_secret: SecretStr | None = None
    vapi_hmac_algorithm: Algorithm = "sha256"
    vapi_hmac_signature_header: str = "x-signature"
    vapi_hmac_timestamp_header: str = "x-timestamp"
    vapi_hmac_signature_prefix: str = ""
    vapi_hmac_include_timestamp: bool = True
    # None: Vapi's default, "{timestamp}.{body}" (just "{body}" without a timestamp).
    vapi_hmac_payload_format: str | None = None
    vapi_hmac_message_id_header: str | None = None
    vapi_hmac_signature_encoding: Encoding = "hex"
    vapi_hmac_secret_is_base64: bool = False
    # OAuth2 plan: `clientId`, `clientSecret`, `scope`; Vapi fetches tokens from
    # POST {PUBLIC_URL}/oauth/token and sends them as bearer tokens, valid this long.
    vapi_oauth2_client_id: str | None = None
    vapi_oauth2_client_secret: SecretStr | None = None
    vapi_oauth2_scope: str | None = None
    vapi_oauth2_token_seconds: int = Field(default=3600, ge=60, le=24 * 3600)
    admin_token: SecretStr | None = None
    # Retell custom functions (`POST /retell/functions/{tool}`): `X-Retell-Signature` is an
    # HMAC keyed with a Retell API key (one with the webhook badge). Unset: every call is 401.
    retell_api_key: SecretStr | None = None
    # ElevenLabs webhook tools (`POST /elevenlabs/tools/{tool}`) carry no signature: the tool
    # sends `Authorization: Bearer <this>` from a workspace secret. Unset: every call is 401.
    elevenlabs_tool_secret: SecretStr | None = None
    # MCP (`/mcp`): headers naming the call (Vapi's MCP tool sends X-Call-Id) and the caller's
    # number (whatever header the integrator configures on the platform, if any).
    mcp_call_id_header: str = "X-Call-Id"
    mcp_caller_number_header: str = "X-Caller-Number"

    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    google_scopes: str = " ".join(DEFAULT_SCOPES)
    google_emulator_url: str | None = None

    # Microsoft 365 / Outlook: an app registration in Microsoft Entra (a confidential web app).
    microsoft_client_id: str | None = None
    microsoft_client_secret: SecretStr | None = None
    # Whose accounts may connect: `common` (work, school and personal Microsoft accounts),
    # `organizations`, `consumers`, or one tenant (its id or domain).
    microsoft_tenant: str = "common"
    microsoft_emulator_url: str | None = None
    # Whether Outlook events shown as "tentative" block booking (free and workingElsewhere
    # never do; busy, oof and unknown always do).
    microsoft_tentative_is_busy: bool = True

    encryption_key: SecretStr | None = None

    # End-user pages: the name people see, and how long a connect link works.
    product_name: str = "Calendar assistant"
    connect_link_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    # Optional signed POST when a user connects, must reconnect, or disconnects.
    connection_webhook_url: str | None = None
    connection_webhook_secret: SecretStr | None = None

    # Calendar API requests in flight at once (kept-alive connections, on the event loop).
    google_connections: int = Field(default=100, ge=1, le=1000)
    # Threads for Google's synchronous token endpoint (refresh, code exchange, revocation):
    # rare next to Calendar requests, which do not use threads.
    google_threads: int = Field(default=4, ge=1, le=512)
    google_timeout_seconds: float = Field(default=8.0, gt=0, le=60)
    # Refresh access tokens this long before they expire, so tool calls never wait for one. At
    # least google-auth's own threshold (225 s): below it the client library would refresh
    # inside calls, bypassing the single-flight refresh.
    refresh_margin_seconds: int = Field(default=300, ge=225, le=3000)
    # Every tool call answers within this budget (below Vapi's default 20 s tool timeout),
    # with a clear error rather than silence when Google is too slow.
    tool_budget_seconds: float = Field(default=10.0, gt=0, le=290)
    # Tool calls one user may have in flight; more wait briefly, then answer "busy", so one
    # tenant cannot take every Google thread from the others.
    max_concurrent_calls_per_user: int = Field(default=8, ge=1, le=1000)
    # How often tokens of recently active users are refreshed ahead of expiry in the
    # background, so a tool call never waits for a refresh (0 = off).
    background_refresh_seconds: float = Field(default=30.0, ge=0, le=600)
    # A booking holds a per-calendar lease in the store; if its process dies mid-booking the
    # lease frees itself after this long. Keep it above TOOL_BUDGET_SECONDS +
    # GOOGLE_TIMEOUT_SECONDS (the longest a live holder can still be inserting).
    booking_lease_seconds: float = Field(default=30.0, ge=1, le=600)
    # Whether a user id in call metadata needs its `userToken` (`signed`) or counts as it is
    # (`any`). Unset: `signed`, except in demo mode. Metadata can be set by whoever starts a
    # call (a web widget's visitor, with Vapi's public key), so `any` is for closed set-ups.
    call_metadata_trust: Literal["signed", "any"] | None = None
    # Stored tool answers (what callers said and heard) are kept this long for redeliveries of
    # the same tool call, then purged.
    answer_retention_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    # The whole request (headers and body) must arrive within this, or the connection is closed:
    # a client that never finishes its request holds nothing for long.
    request_read_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    default_timezone: TimeZone = "UTC"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # `json` (one object per line: request id, call id, tool, user id, latency, outcome) or
    # `text` for reading by eye.
    log_format: Literal["json", "text"] = "json"

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("microsoft_tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        if not _TENANT.fullmatch(value):
            raise ValueError(
                "must be common, organizations, consumers, a tenant id or a tenant's domain"
            )
        return value

    @field_validator("public_url", "google_emulator_url", "microsoft_emulator_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None if value == "" else value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator(
        "vapi_bearer_header_name",
        "vapi_hmac_signature_header",
        "vapi_hmac_timestamp_header",
        "vapi_hmac_message_id_header",
        "mcp_call_id_header",
        "mcp_caller_number_header",
    )
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is not None and not _HEADER_NAME.fullmatch(value):
            raise ValueError("must be an HTTP header name")
        return value

    @field_validator("vapi_hmac_payload_format")
    @classmethod
    def _payload_format(cls, value: str | None) -> str | None:
        if value is None:
            return None
        unknown = sorted(placeholders(value) - PAYLOAD_PLACEHOLDERS)
        if unknown:
            known = ", ".join(f"{{{name}}}" for name in sorted(PAYLOAD_PLACEHOLDERS))
            raise ValueError(f"unknown placeholder {{{unknown[0]}}} (known: {known})")
        if "body" not in placeholders(value):
            raise ValueError(
                "must contain {body}: a signature that leaves out the body proves nothing"
            )
        return value

    @field_validator(
        "vapi_secret",
        "vapi_hmac_secret",
        "vapi_oauth2_client_secret",
        "admin_token",
        "retell_api_key",
        "elevenlabs_tool_secret",
        "google_client_secret",
        "microsoft_client_secret",
        "encryption_key",
        "connection_webhook_secret",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator(
        "google_client_id",
        "microsoft_client_id",
        "connection_webhook_url",
        "vapi_hmac_payload_format",
        "vapi_hmac_message_id_header",
        "vapi_oauth2_client_id",
        "vapi_oauth2_scope",
        mode="before",
    )
    @classmethod
    def _empty_text_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @cached_property
    def demo_mode(self) -> bool:
        """No calendar provider configured: the bundled emulator plays Google and Microsoft."""
        return self.google_client_id is None and self.microsoft_client_id is None

    @cached_property
    def google_enabled(self) -> bool:
        return self.demo_mode or self.google_client_id is not None

    @cached_property
    def microsoft_enabled(self) -> bool:
        return self.demo_mode or self.microsoft_client_id is not None

    @cached_property
    def metadata_trust(self) -> Literal["signed", "any"]:
        if self.call_metadata_trust is not None:
            return self.call_metadata_trust
        return "any" if self.demo_mode else "signed"

    @cached_property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.google_scopes.split())

    @cached_property
    def emulator_mounted(self) -> bool:
        """Demo mode without an external emulator: the app serves the bundled one itself."""
        return self.demo_mode and not (self.google_emulator_url or self.microsoft_emulator_url)

    @cached_property
    def demo_emulator_url(self) -> str | None:
        if not self.demo_mode:
            return None
        # One emulator plays both providers: an external one named for either serves both.
        return (
            self.google_emulator_url
            or self.microsoft_emulator_url
            or self.public_url + DEMO_EMULATOR_PATH
        )

    @cached_property
    def google_base_url(self) -> str | None:
        """Base of every Google endpoint when not talking to Google itself."""
        return self.google_emulator_url or self.demo_emulator_url

    @cached_property
    def microsoft_base_url(self) -> str | None:
        """Base of the Microsoft endpoints when not talking to Microsoft itself."""
        return self.microsoft_emulator_url or self.demo_emulator_url

    @cached_property
    def microsoft_app_id(self) -> str:
        return self.microsoft_client_id or DEMO_MICROSOFT_CLIENT_ID

    @cached_property
    def microsoft_app_secret(self) -> str:
        if self.microsoft_client_secret is not None:
            return self.microsoft_client_secret.get_secret_value()
        return DEMO_MICROSOFT_CLIENT_SECRET if self.demo_mode else ""

    @cached_property
    def client_id(self) -> str:
        return self.google_client_id or DEMO_CLIENT_ID

    @cached_property
    def client_secret(self) -> str:
        if self.google_client_secret is not None:
            return self.google_client_secret.get_secret_value()
        return DEMO_CLIENT_SECRET if self.demo_mode else ""
