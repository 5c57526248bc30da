"""End-user routes: the connect landing page, the start of consent, and each provider's callback.

The landing page offers every configured provider ("Google Calendar", "Microsoft 365 /
Outlook"); the person picks one. Pressing Connect puts a random key in a short-lived cookie
(HttpOnly, SameSite=Lax, Secure under https) scoped to that provider's callback path, which the
consent is bound to; the callback must come back with it. Lax is what lets the cookie ride
along on the provider's top-level redirect back to us while staying off cross-site
subrequests.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from vapi_calendar.oauth.consent import STATE_LIFETIME, ConsentFailure
from vapi_calendar.oauth.links import LinkError
from vapi_calendar.oauth.registry import UnknownProvider
from vapi_calendar.ports.stores import GOOGLE, MICROSOFT
from vapi_calendar.server.pages import page
from vapi_calendar.server.services import Services
from vapi_calendar.tools.spoken import spoken

log = logging.getLogger(__name__)

CONSENT_COOKIE = "vapi_calendar_consent"
CALLBACK_PATHS = {GOOGLE: "/oauth/google/callback", MICROSOFT: "/oauth/microsoft/callback"}
# What a provider's callback may carry that the consent flow reads.
_CALLBACK_PARAMS = ("state", "code", "error")

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
    providers = list(services.providers)
    only = providers[0] if len(providers) == 1 else None
    return page(
        "connect.html",
        product=_product(services),
        title=f"Connect your {only.label}" if only else "Connect your calendar",
        asker=only.vendor if only else "your calendar provider",
        account=only.account if only else "account",
        providers=providers,
        microsoft=MICROSOFT in services.providers,
        action=request.url.path,
        expires=expires,
        form_targets=tuple(p.oauth.authorization_endpoint for p in providers),
    )


async def connect_start(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        link, _ = await services.consent.open_link(request.path_params["token"])
    except LinkError as error:
        return _link_failure(services, error)
    chosen = parse_qs((await request.body()).decode("utf-8", "replace")).get("provider")
    providers = list(services.providers)
    # A form without a choice (one provider offered) means that one.
    name = chosen[0] if chosen else (providers[0].name if len(providers) == 1 else "")
    browser_key = secrets.token_urlsafe(32)
    try:
        consent_url = await services.consent.start(link, browser_key, name)
    except UnknownProvider:
        return page(
            "result.html",
            status=400,
            ok=False,
            product=_product(services),
            title="Please choose a calendar",
            detail="Open your connect link again and press the button of your calendar.",
            retry_url=str(request.url),
        )
    response = RedirectResponse(consent_url, status_code=303)
    response.set_cookie(
        CONSENT_COOKIE,
        browser_key,
        max_age=int(STATE_LIFETIME.total_seconds()),
        path=CALLBACK_PATHS[name],
        secure=services.settings.public_url.startswith("https://"),
        httponly=True,
        samesite="lax",
    )
    return response


async def provider_callback(request: Request, provider: str) -> Response:
    services: Services = request.app.state.services
    query = request.query_params
    if provider == MICROSOFT and "admin_consent" in query and "state" not in query:
        # An administrator granted consent for the organization (the admin consent endpoint
        # answers here, v2-admin-consent): nothing to store, nothing changes.
        approved = query.get("admin_consent", "").lower() == "true"
        return page(
            "result.html",
            status=200 if approved else 403,
            ok=approved,
            product=_product(services),
            title="Approved for your organization" if approved else "Not approved",
            detail=(
                f"People in your organization can now connect their calendars to "
                f"{_product(services)} with their own links."
                if approved
                else "The administrator did not approve access. Nothing was changed."
            ),
        )
    params = {k: v for k, v in query.items() if k in _CALLBACK_PARAMS}
    try:
        connected = await services.consent.finish(
            params, request.cookies.get(CONSENT_COOKIE), provider
        )
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
        calendar = "Google Calendar" if provider == GOOGLE else "Outlook calendar"
        response = page(
            "result.html",
            ok=True,
            product=_product(services),
            title="Your calendar is connected",
            detail=f"{_product(services)} can now check your availability and book "
            f"appointments in your {calendar}{account}.",
        )
    response.delete_cookie(CONSENT_COOKIE, path=CALLBACK_PATHS[provider])
    return response


async def google_callback(request: Request) -> Response:
    return await provider_callback(request, GOOGLE)


async def microsoft_callback(request: Request) -> Response:
    return await provider_callback(request, MICROSOFT)


routes = [
    Route("/connect/{token}", connect_page, methods=["GET"]),
    Route("/connect/{token}", connect_start, methods=["POST"]),
    Route(CALLBACK_PATHS[GOOGLE], google_callback, methods=["GET"]),
    Route(CALLBACK_PATHS[MICROSOFT], microsoft_callback, methods=["GET"]),
]
