"""End-user routes: the connect landing page, the start of consent, and Google's callback.

Pressing Connect puts a random key in a short-lived cookie (HttpOnly, SameSite=Lax, Secure
under https) that the consent is bound to; the callback must come back with it. Lax is what lets
the cookie ride along on Google's top-level redirect back to us while staying off cross-site
subrequests.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from vapi_calendar.oauth.consent import STATE_LIFETIME, ConsentFailure
from vapi_calendar.oauth.links import LinkError
from vapi_calendar.server.pages import page
from vapi_calendar.server.services import Services
from vapi_calendar.tools.spoken import spoken

log = logging.getLogger(__name__)

CONSENT_COOKIE = "vapi_calendar_consent"
CALLBACK_PATH = "/oauth/google/callback"

_LINK_PAGES = {
    "expired": (
        410,
        "This link has expired",
        "Please ask for a new link to connect your calendar.",
    ),
    "invalid": (
        400,
        "This link is not valid",
        "Please ask for a new link to connect your calendar.",
    ),
    "used": (
        410,
        "This link was already used",
        "Your calendar was connected with it. Ask for a new link if you need to connect again.",
    ),
}


def _product(services: Services) -> str:
    return services.settings.product_name


def _link_failure(services: Services, error: LinkError) -> Response:
    status, title, detail = _LINK_PAGES[error.problem]
    return page(
        "result.html",
        status=status,
        ok=False,
        product=_product(services),
        title=title,
        detail=detail,
    )


async def connect_page(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        link, user = await services.consent.open_link(request.path_params["token"])
    except LinkError as error:
        return _link_failure(services, error)
    expires = spoken(link.expires_at, ZoneInfo(user.timezone), now=datetime.now(UTC))
    return page(
        "connect.html",
        product=_product(services),
        title="Connect your Google Calendar",
        action=request.url.path,
        expires=expires,
        form_targets=(services.oauth.authorization_endpoint,),
    )


async def connect_start(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        link, _ = await services.consent.open_link(request.path_params["token"])
    except LinkError as error:
        return _link_failure(services, error)
    browser_key = secrets.token_urlsafe(32)
    response = RedirectResponse(await services.consent.start(link, browser_key), status_code=303)
    response.set_cookie(
        CONSENT_COOKIE,
        browser_key,
        max_age=int(STATE_LIFETIME.total_seconds()),
        path=CALLBACK_PATH,
        secure=services.settings.public_url.startswith("https://"),
        httponly=True,
        samesite="lax",
    )
    return response


async def google_callback(request: Request) -> Response:
    services: Services = request.app.state.services
    params = {k: v for k, v in request.query_params.items() if k in ("state", "code", "error")}
    try:
        connected = await services.consent.finish(params, request.cookies.get(CONSENT_COOKIE))
    except ConsentFailure as failure:
        response = page(
            "result.html",
            status=failure.status,
            ok=False,
            product=_product(services),
            title=failure.title,
            detail=failure.detail,
            retry_url=failure.retry_url,
        )
    else:
        account = f" ({connected.email})" if connected.email else ""
        response = page(
            "result.html",
            ok=True,
            product=_product(services),
            title="Your calendar is connected",
            detail=f"{_product(services)} can now check your availability and book "
            f"appointments in your Google Calendar{account}.",
        )
    response.delete_cookie(CONSENT_COOKIE, path=CALLBACK_PATH)
    return response


routes = [
    Route("/connect/{token}", connect_page, methods=["GET"]),
    Route("/connect/{token}", connect_start, methods=["POST"]),
    Route(CALLBACK_PATH, google_callback, methods=["GET"]),
]
