"""The one place Google's exceptions become the domain's caller-facing errors.

Calendar API failures (`HttpError`), token-endpoint failures (`RefreshError`) and transport
failures (socket errors, httplib2, a cut-off reply) are translated here and nowhere else, so no
module above this package ever sees a Google or transport exception.
"""

from __future__ import annotations

import http.client
import json
import logging

import httplib2
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.errors import HttpError

from vapi_calendar.ports.calendar import DuplicateEvent
from vapi_calendar.tools.errors import (
    CalendarRejected,
    CalendarUnavailable,
    EventGone,
    EventNotFound,
    ReconnectRequired,
)

log = logging.getLogger(__name__)

# OSError includes socket timeouts; HTTPException covers a malformed or cut-off reply.
TRANSPORT_ERRORS = (TransportError, httplib2.HttpLib2Error, http.client.HTTPException, OSError)


class TokenRejected(Exception):
    """The Calendar API answered 401: the access token is no longer accepted."""


def http_reason(exc: HttpError) -> str | None:
    """Google's machine reason, e.g. "duplicate", from the error body."""
    try:
        return str(json.loads(exc.content)["error"]["errors"][0]["reason"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def is_invalid_grant(exc: RefreshError) -> bool:
    """google-auth puts the token endpoint's JSON body in args[1]."""
    detail = exc.args[1] if len(exc.args) > 1 else None
    return isinstance(detail, dict) and detail.get("error") == "invalid_grant"


def calendar_error(exc: Exception) -> Exception:
    """What a failed Calendar API request means, as a domain error (or a port signal)."""
    if isinstance(exc, HttpError):
        return _http_error(exc)
    log.warning("calendar API unreachable")
    return CalendarUnavailable()


def _http_error(exc: HttpError) -> Exception:
    status, reason = exc.status_code, http_reason(exc)
    log.warning("calendar API error", extra={"status": status, "reason": reason})
    if status == 409 and reason == "duplicate":
        return DuplicateEvent()
    if status == 401:
        return TokenRejected()
    if status == 403 and reason in ("insufficientPermissions", "forbidden"):
        return CalendarRejected(
            "The calendar owner did not grant the permission this needs; "
            "they must reconnect their calendar."
        )
    if status == 404:
        return EventNotFound()
    if status == 410:
        return EventGone()
    if status in (403, 429) or (status is not None and status >= 500):
        return CalendarUnavailable()
    return CalendarRejected()


def refresh_error(exc: Exception) -> Exception:
    """What a failed token refresh means: a dead grant, or a token endpoint we cannot use now."""
    if isinstance(exc, RefreshError):
        if is_invalid_grant(exc):
            return ReconnectRequired()
        log.warning("token refresh failed")
        return CalendarUnavailable()
    log.warning("token endpoint unreachable")
    return CalendarUnavailable()
