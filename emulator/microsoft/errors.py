"""Microsoft's error shapes, and the gate every Microsoft handler passes.

Graph: `{"error": {"code", "message", "innerError": {"date", "request-id",
"client-request-id"}}}` (concepts/errors.md). The identity platform's token endpoint:
`{"error", "error_description": "AADSTSnnnnn: …", "error_codes", "timestamp", "trace_id",
"correlation_id"}` with 400 (401 for a refused client). The authorize endpoint shows errors in
the browser, or redirects them to the app.
"""

from __future__ import annotations

import asyncio
import html
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from vapi_calendar.emulator.microsoft.state import MicrosoftState

# Codes and messages Graph uses when a fault names only a status.
_DEFAULT_GRAPH: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Bad request."),
    401: ("InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
    403: ("ErrorAccessDenied", "Access is denied. Check credentials and try again."),
    404: ("ErrorItemNotFound", "The specified object was not found in the store."),
    409: ("ErrorIrresolvableConflict", "The change key passed in the request does not match."),
    429: ("ApplicationThrottled", "Application is over its MailboxConcurrency limit."),
    500: ("generalException", "An internal server error occurred."),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable."),
    504: ("GatewayTimeout", "The gateway timed out."),
}
_GRAPH_MESSAGES = {
    "ErrorQuotaExceeded": "The mailbox quota has been exceeded.",
    "MailboxNotEnabledForRESTAPI": (
        "The mailbox is either inactive, soft-deleted, or is hosted on-premise."
    ),
    "ErrorDuplicateTransactionId": (
        "Your request can't be completed. The TransactionId specified in the request has "
        "already been used to create a different event."
    ),
}
# AADSTS codes the token endpoint pairs with each OAuth error.
_ENTRA_CODES: dict[str, tuple[int, str]] = {
    "invalid_grant": (70000, "The provided value for the 'refresh_token' is not valid."),
    "interaction_required": (
        50076,
        "Due to a configuration change made by your administrator, or because you moved to a "
        "new location, you must use multi-factor authentication to access the resource.",
    ),
    "invalid_client": (7000215, "Invalid client secret provided."),
    "unauthorized_client": (
        700016,
        "Application was not found in the directory.",
    ),
    "invalid_request": (900144, "The request body must contain the following parameter."),
    "temporarily_unavailable": (90033, "A transient error has occurred. Please try again."),
    "server_error": (90000, "An internal error occurred."),
}


class GraphApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str | None = None, *, retry_after: int | None = None
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = (
            message
            or _GRAPH_MESSAGES.get(code)
            or _DEFAULT_GRAPH.get(status, ("", "Injected failure"))[1]
        )
        self.retry_after = retry_after

    def response(self) -> Response:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        request_id = str(uuid.uuid4())
        body = {
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": now,
                    "request-id": request_id,
                    "client-request-id": request_id,
                },
            }
        }
        headers = {"request-id": request_id, "client-request-id": request_id}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            headers["WWW-Authenticate"] = (
                'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/'
                'oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'
            )
        return JSONResponse(body, status_code=self.status, headers=headers)


class EntraError(Exception):
    """A token endpoint error answer."""

    def __init__(self, error: str, description: str | None = None, *, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        code, text = _ENTRA_CODES.get(error, (90000, "The request failed."))
        self.aadsts = code
        self.description = description or text
        self.status = status

    def response(self) -> Response:
        now = datetime.now(UTC)
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.aadsts}: {self.description} Trace ID: {trace} "
                f"Correlation ID: {correlation} Timestamp: {stamp}"
            ),
            "error_codes": [self.aadsts],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": "https://login.microsoftonline.com/error?code=" + str(self.aadsts),
        }
        return JSONResponse(body, status_code=self.status)


class SignInPageError(Exception):
    """An error the authorize endpoint shows in the browser (bad client or request)."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def response(self) -> Response:
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Sign in to your account"
            "</title></head><body style='font-family:sans-serif;max-width:32rem;margin:3rem auto'>"
            "<h1>Sorry, but we're having trouble signing you in.</h1>"
            f"<p id='error'>AADSTS{self.code}: {html.escape(self.detail)}</p></body></html>"
        )
        return HTMLResponse(page, status_code=400)


async def handle_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, GraphApiError | EntraError | SignInPageError):
        return exc.response()
    raise exc


def fault_response(kind: str, fault: Any) -> Response:
    """An injected failure (the shared emulator's `Fault`) in the shape of its endpoint family
    (`entra.*` token endpoint, `graph.*` Graph), with the fault's extra headers (Retry-After)."""
    assert fault.status is not None
    headers: dict[str, Any] = dict(fault.headers or {})
    if fault.body is not None:
        return JSONResponse(fault.body, status_code=fault.status, headers=headers)
    if kind.startswith("entra."):
        error = fault.error or (
            "temporarily_unavailable" if fault.status >= 500 else "invalid_request"
        )
        response = EntraError(error, fault.error_description, status=fault.status).response()
    else:
        code = fault.error or _DEFAULT_GRAPH.get(fault.status, ("generalException", ""))[0]
        response = GraphApiError(fault.status, code, fault.error_description).response()
    response.headers.update(headers)
    return response


async def gate(state: MicrosoftState, kind: str) -> Response | None:
    """Count the request, apply latency, and answer the injected failure if one fires."""
    decision = state.begin_request(kind)
    if decision.delay_s > 0:
        await asyncio.sleep(decision.delay_s)
    fault = decision.fault
    if fault is None or fault.status is None:
        return None
    return fault_response(kind, fault)
