"""Error shapes, exactly as Google sends them, and the fault-injection gate every handler passes.

Three families: the OAuth endpoints answer `{"error": code, "error_description": ...}`, the
Calendar API answers `{"error": {"code", "message", "errors": [...], "status"}}`, and the browser
consent page answers with HTML.
"""

from __future__ import annotations

import asyncio
import html
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from vapi_calendar.emulator.state import EmulatorState

OAUTH_KINDS = frozenset({"token.authorization_code", "token.refresh_token", "revoke", "userinfo"})

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

# Reason and message Google uses when a fault names only a status.
_DEFAULT_API_REASONS: dict[int, tuple[str, str]] = {
    400: ("badRequest", "Bad Request"),
    401: ("authError", "Invalid Credentials"),
    403: ("rateLimitExceeded", "Rate Limit Exceeded"),
    404: ("notFound", "Not Found"),
    409: ("duplicate", "The requested identifier already exists."),
    410: ("deleted", "Resource has been deleted"),
    412: ("conditionNotMet", "Precondition Failed"),
    429: ("rateLimitExceeded", "Rate Limit Exceeded"),
    500: ("backendError", "Backend Error"),
    503: ("backendError", "Backend Error"),
}
_REASON_MESSAGES = {
    "rateLimitExceeded": "Rate Limit Exceeded",
    "userRateLimitExceeded": "User Rate Limit Exceeded",
    "quotaExceeded": "Calendar usage limits exceeded.",
    "backendError": "Backend Error",
    "requiredAccessLevel": "You need to have writer access to this calendar.",
    "forbiddenForNonOrganizer": (
        "Shared properties can only be changed by the organizer of the event."
    ),
    "invalid_grant": "Token has been expired or revoked.",
    "invalid_client": "Unauthorized",
    "unauthorized_client": "Unauthorized",
}
_USAGE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
# Reasons Google files under the `calendar` domain (Handle API errors guide; observed for
# requiredAccessLevel, google-reference.md §4).
_CALENDAR_DOMAIN_REASONS = frozenset({"requiredAccessLevel", "forbiddenForNonOrganizer"})


class ApiError(Exception):
    """A Calendar v3 error response."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.domain = domain
        self.extra = extra or {}
        self.headers = headers

    def body(self) -> dict[str, Any]:
        detail = {"domain": self.domain, "reason": self.reason, "message": self.message}
        detail.update(self.extra)
        error: dict[str, Any] = {"code": self.status, "message": self.message, "errors": [detail]}
        if self.status in _STATUS_NAMES:
            error["status"] = _STATUS_NAMES[self.status]
        return {"error": error}

    def response(self) -> Response:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


class OAuthError(Exception):
    """An OAuth endpoint error response (token, revoke, userinfo)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    def response(self) -> Response:
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
        )


class ConsentPageError(Exception):
    """An error shown in the browser instead of redirecting (bad client, bad request)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(f"{title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail

    def response(self) -> Response:
        page = (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>Error {html.escape(self.title)}</title></head>"
            "<body style='font-family:sans-serif;max-width:32rem;margin:3rem auto'>"
            "<h1>Access blocked: authorization error</h1>"
            f"<p>Error {html.escape(self.title)}</p>"
            f"<p>{html.escape(self.detail)}</p></body></html>"
        )
        return HTMLResponse(page, status_code=self.status)


async def handle_error(request: Request, exc: Exception) -> Response:
    """Starlette exception handler shared by the three error families."""
    if isinstance(exc, ApiError | OAuthError | ConsentPageError):
        return exc.response()
    raise exc


def invalid_credentials() -> ApiError:
    return ApiError(
        401,
        "authError",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project.",
        extra={"location": "Authorization", "locationType": "header"},
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )


def _fault_response(kind: str, status: int, error: str | None, description: str | None) -> Response:
    if kind == "authorize":
        return ConsentPageError(status, error or "server_error", description or "").response()
    if kind in OAUTH_KINDS:
        code = error or ("internal_failure" if status >= 500 else "invalid_request")
        text = description or _REASON_MESSAGES.get(code, "Injected failure")
        return OAuthError(status, code, text).response()
    reason, message = _DEFAULT_API_REASONS.get(status, ("backendError", "Injected failure"))
    if error:
        reason = error
        message = _REASON_MESSAGES.get(error, message)
    domain = "usageLimits" if reason in _USAGE_LIMIT_REASONS else "global"
    if reason in _CALENDAR_DOMAIN_REASONS:
        domain = "calendar"
    return ApiError(status, reason, description or message, domain=domain).response()


async def gate(state: EmulatorState, kind: str) -> Response | None:
    """Count the request, apply latency, and return the injected failure if one fires."""
    decision = state.begin_request(kind)
    if decision.delay_s > 0:
        await asyncio.sleep(decision.delay_s)
    fault = decision.fault
    if fault is None or fault.status is None:
        return None
    if fault.body is not None:
        return JSONResponse(fault.body, status_code=fault.status)
    return _fault_response(kind, fault.status, fault.error, fault.error_description)
