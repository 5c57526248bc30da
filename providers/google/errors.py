"""The one place Google's exceptions become the domain's caller-facing errors.

Calendar API failures (`HttpError`), token-endpoint failures (`RefreshError`) and transport
failures (socket errors, httplib2, a cut-off reply) are translated here and nowhere else, so no
module above this package ever sees a Google or transport exception.
"""

from __future__ import annotations

import http.client
import json
import logging

import aiohttp
import httplib2
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.errors import HttpError

from vapi_calendar.ports.calendar import DuplicateEvent
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

# OSError includes socket and aiohttp timeouts; HTTPException and aiohttp's ClientError cover a
# refused connection or a malformed or cut-off reply.
TRANSPORT_ERRORS = (
    TransportError,
    httplib2.HttpLib2Error,
    http.client.HTTPException,
    aiohttp.ClientError,
    OSError,
)

# Only these 403 reasons are worth a retry (retry.py retries exactly these, within the budget);
# "rateLimitExceeded errors can return either 403 or 429 error codes" (Handle API errors guide).
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
# Methods (google-api-python-client's methodId) whose 404 means "no such event": on any other
# request a 404 is the calendar itself ("when accessing a calendar that the user can not
# access", Handle API errors guide) — freeBusy's 404 is never "that appointment".
_EVENT_METHODS = frozenset(
    {
        "calendar.events.get",
        "calendar.events.patch",
        "calendar.events.update",
        "calendar.events.delete",
        "calendar.events.move",
        "calendar.events.instances",
    }
)
_READ_METHODS = frozenset(
    {
        "calendar.freebusy.query",
        "calendar.events.get",
        "calendar.events.list",
        "calendar.events.instances",
        "calendar.settings.get",
        "calendar.calendars.get",
    }
)
# The token endpoint refused our OAuth client, not the user's grant: `invalid_client` (client
# deleted, wrong id or secret) or `unauthorized_client` (the refresh token was issued to another
# client id). Both are 401 with a JSON body (observed; google-reference.md §5).
_CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})
CLIENT_FIX = (
    "check GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET against the OAuth client in Google Cloud "
    "Console (deleted client or rotated secret: invalid_client; refresh tokens issued to "
    "another client id: unauthorized_client, restore that client or have users reconnect)"
)


class TokenRejected(Exception):
    """The Calendar API answered 401: the access token is no longer accepted."""


def http_reason(exc: HttpError) -> str | None:
    """Google's machine reason, e.g. "duplicate", from the error body."""
    try:
        return str(json.loads(exc.content)["error"]["errors"][0]["reason"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def token_error_code(exc: RefreshError) -> str | None:
    """The token endpoint's `error`, e.g. "invalid_grant". google-auth puts the JSON body in
    args[1], but raises with one argument for a non-JSON body, a reauth-required
    `invalid_grant` subtype or missing fields (google-reference.md §5), so guard."""
    detail = exc.args[1] if len(exc.args) > 1 else None
    code = detail.get("error") if isinstance(detail, dict) else None
    return code if isinstance(code, str) else None


def calendar_error(exc: Exception, method: str | None = None) -> Exception:
    """What a failed Calendar API request means, as a domain error (or a port signal).

    `method` is the request's methodId (e.g. "calendar.events.insert"): the same status means
    different things for different requests.
    """
    if isinstance(exc, HttpError):
        return _http_error(exc, method)
    log.warning("calendar API unreachable")
    return CalendarUnavailable()


def _http_error(exc: HttpError, method: str | None) -> Exception:
    status, reason = exc.status_code, http_reason(exc)
    log.warning("calendar API error", extra={"status": status, "reason": reason, "method": method})
    if status == 409 and reason == "duplicate":
        return DuplicateEvent()
    if status == 401:
        return TokenRejected()
    if status == 403:
        return _forbidden(reason, method)
    if status == 404:
        return EventNotFound() if method in _EVENT_METHODS else CalendarNotFound()
    if status == 410:
        return EventGone()
    if status == 429 or (status is not None and status >= 500):
        return CalendarUnavailable()  # retried within the budget already; it may pass soon
    return CalendarRejected()


def _forbidden(reason: str | None, method: str | None) -> Exception:
    """403s, by reason. Only rate limits are retried and may pass in a moment; each other
    reason is a refusal that stays until someone changes something, with its own sentence."""
    if reason in RATE_LIMIT_REASONS:
        return CalendarUnavailable()
    if reason in ("insufficientPermissions", "forbidden"):
        return CalendarRejected(
            "The calendar owner did not grant the permission this needs; "
            "they must reconnect their calendar."
        )
    if reason == "quotaExceeded":
        # "Calendar usage limits exceeded." (Handle API errors guide): a daily-scale limit such
        # as invitations to external guests; no retry advice, and none would help in a call.
        return UsageLimitReached()
    if reason == "requiredAccessLevel":
        # "You need to have writer access to this calendar." (not on Google's errors page;
        # observed, google-reference.md §4)
        if method in _READ_METHODS:
            return CalendarAccessDenied(CalendarAccessDenied.reading_message)
        return CalendarAccessDenied()
    if reason == "forbiddenForNonOrganizer":
        # "Shared properties can only be changed by the organizer of the event."
        return OrganizerOnly()
    return CalendarRejected()


def refresh_error(exc: Exception) -> Exception:
    """What a failed token refresh means: a dead grant, our own OAuth client refused, or a
    token endpoint we cannot use now."""
    if isinstance(exc, RefreshError):
        code = token_error_code(exc)
        if code == "invalid_grant":
            return ReconnectRequired()
        if code in _CLIENT_ERRORS:
            return ServiceMisconfigured(cause=code, fix=CLIENT_FIX)
        log.warning("token refresh failed", extra={"reason": code})
        return CalendarUnavailable()
    log.warning("token endpoint unreachable")
    return CalendarUnavailable()
