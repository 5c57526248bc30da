"""The one place Microsoft's failures become the domain's caller-facing errors.

Graph answers errors as `{"error": {"code", "message", "innerError": {...}}}` and its reference
says to "code against error codes returned in code properties", never the message
(concepts/errors.md). The identity platform's token endpoint answers OAuth errors
(`{"error", "error_description": "AADSTSnnnnn: …", "error_codes", …}`). Both, and transport
failures, are translated here and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from vapi_calendar.ports.calendar import DuplicateEvent
from vapi_calendar.providers.microsoft.http import Reply
from vapi_calendar.tools.errors import (
    CalendarAccessDenied,
    CalendarNotFound,
    CalendarRejected,
    CalendarUnavailable,
    EventGone,
    EventNotFound,
    OrganizerOnly,
    ReconnectRequired,
    ServiceMisconfigured,
    UsageLimitReached,
)

log = logging.getLogger(__name__)

# A refused connection, a reset or a cut-off reply, and timeouts (TimeoutError is an OSError).
TRANSPORT_ERRORS = (aiohttp.ClientError, OSError)

# "HTTP status code 429 … A suggested wait time is returned in the response header" — and 503
# and 504 can carry Retry-After too (concepts/throttling.md); 500 and 502 are passing faults.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

# Operations, as `graph_error` tells them apart.
BUSY = "busy"  # calendarView of one calendar for busy time
LIST = "list"  # events of the booking calendar
GET = "get"
CREATE = "create"
MOVE = "move"
DELETE = "delete"  # DELETE or /cancel of an event just read
SETTINGS = "settings"  # mailboxSettings
_EVENT_OPERATIONS = frozenset({GET, MOVE})
_READ_OPERATIONS = frozenset({BUSY, LIST, GET, SETTINGS})

# No Exchange Online mailbox behind the account (unlicensed, inactive, on-premises, some
# consumer accounts): nothing the caller or a retry can change.
_NO_MAILBOX = frozenset({"MailboxNotEnabledForRESTAPI", "MailboxNotSupportedForRESTAPI"})

# The token endpoint refused this deployment's own app registration, not the user's grant:
# a wrong or expired client secret (AADSTS7000215, AADSTS7000222) is `invalid_client`; an
# app id unknown to the tenant (AADSTS700016) is `unauthorized_client`.
_CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})
CLIENT_FIX = (
    "check MICROSOFT_CLIENT_ID and MICROSOFT_CLIENT_SECRET against the app registration in the "
    "Microsoft Entra admin center (a deleted registration, or a client secret that expired or "
    "was replaced: create a new secret under Certificates & secrets)"
)
# The grant is dead for good: revoked, expired (AADSTS70008, 700082), or the user must sign in
# again interactively (multi-factor, Conditional Access, consent withdrawn: AADSTS50076,
# 50079, 53003, 65001) — only a new consent helps.
_RECONNECT_ERRORS = frozenset({"invalid_grant", "interaction_required", "consent_required"})


class GraphError(Exception):
    """A Graph answer outside 2xx, as read off the wire (before translation)."""

    def __init__(self, status: int, code: str | None, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.retry_after = retry_after


class TokenRejected(Exception):
    """Graph answered 401: the access token is no longer accepted."""


class UnreadableCalendar(Exception):
    """A calendar asked about for busy time cannot be read; `reason` is Graph's code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds (Graph sends delta-seconds); None when absent or a date."""
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def graph_failure(reply: Reply) -> GraphError:
    error = reply.body.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    failure = GraphError(reply.status, code if isinstance(code, str) else None)
    failure.retry_after = retry_after(reply.headers)
    # Graph's request ids let Microsoft support find the request; never the body.
    log.warning(
        "graph error",
        extra={
            "status": reply.status,
            "code": failure.code,
            "graph_request_id": reply.headers.get("request-id"),
        },
    )
    return failure


def graph_error(exc: Exception, operation: str) -> Exception:
    """What a failed Graph request means, as a domain error (or a port signal)."""
    if not isinstance(exc, GraphError):
        log.warning("microsoft graph unreachable", extra={"operation": operation})
        return CalendarUnavailable()
    status, code = exc.status, exc.code
    if status == 401:
        return TokenRejected()
    if code == "ErrorDuplicateTransactionId":
        # The transaction id already made a different event (a retried create whose body
        # changed). Seen as 400 in the wild and 409 in some fakes; the code decides.
        return DuplicateEvent()
    if status in RETRYABLE_STATUSES:
        return CalendarUnavailable()  # retried within the budget already; it may pass soon
    if code in _NO_MAILBOX:
        return CalendarNotFound()
    if operation == BUSY and status in (400, 403, 404):
        return UnreadableCalendar(code or str(status))
    if operation == DELETE and (status == 404 or code == "ErrorCannotDeleteObject"):
        # Gone already: a DELETE of an item that is already in Deleted Items can answer
        # 403 ErrorCannotDeleteObject with immutable ids (msgraph-sdk-dotnet#3047).
        return EventGone()
    if operation == DELETE and status == 400:
        # /cancel: "An attendee calling this action gets an error (HTTP 400 Bad Request)…
        # 'You need to be an organizer to cancel a meeting.'" (event-cancel)
        return OrganizerOnly()
    if status == 404 or code in ("ErrorItemNotFound", "ErrorInvalidIdMalformed"):
        if operation in _EVENT_OPERATIONS:
            return EventNotFound()
        return CalendarNotFound()
    if status == 403:
        return _forbidden(code, operation)
    return CalendarRejected()


def _forbidden(code: str | None, operation: str) -> Exception:
    if code == "ErrorQuotaExceeded":
        return UsageLimitReached(UsageLimitReached.microsoft_message)
    if code == "ErrorAccessDenied":
        # A permission the owner did not grant (or a tenant policy), or a calendar shared
        # without the needed access: either way not something a retry or the caller changes.
        if operation in _READ_OPERATIONS:
            return CalendarAccessDenied(CalendarAccessDenied.reading_message)
        return CalendarAccessDenied()
    return CalendarRejected()


def token_error(status: int, body: Mapping[str, Any]) -> Exception:
    """What a failed refresh means: a dead grant, our own app registration refused, or a
    token endpoint we cannot use right now."""
    code = body.get("error") if isinstance(body.get("error"), str) else None
    if code in _RECONNECT_ERRORS:
        return ReconnectRequired()
    if code in _CLIENT_ERRORS:
        return ServiceMisconfigured(cause=str(code), fix=CLIENT_FIX)
    log.warning("microsoft token refresh failed", extra={"status": status, "reason": code})
    return CalendarUnavailable()


def token_unreachable() -> Exception:
    log.warning("microsoft token endpoint unreachable")
    return CalendarUnavailable()
