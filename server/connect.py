"""End-user routes: the connect landing page, the start of consent, and Google's callback."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from vapi_calendar.oauth.consent import ConsentFailure
from vapi_calendar.oauth.links import LinkError
from vapi_calendar.ports.stores import User
from vapi_calendar.server.pages import page
from vapi_calendar.server.services import Services
from vapi_calendar.tools.spoken import spoken

log = logging.getLogger(__name__)


def _product(services: Services) -> str:
    return services.settings.product_name


def _link_failure(services: Services, error: LinkError) -> Response:
    title = "This link has expired" if error.expired else "This link is not valid"
    return page(
        "result.html",
        status=410 if error.expired else 400,
        ok=False,
        product=_product(services),
        title=title,
        detail="Please ask for a new link to connect your calendar.",
    )


async def _linked_user(services: Services, token: str) -> tuple[User, datetime]:
    user_id, expires_at = services.links.verify(token)
    user = await services.store.get_user(user_id)
    if user is None:
        raise LinkError(expired=False)
    return user, expires_at


async def connect_page(request: Request) -> Response:
    services: Services = request.app.state.services
    token = request.path_params["token"]
    try:
        user, expires_at = await _linked_user(services, token)
    except LinkError as error:
        return _link_failure(services, error)
    expires = spoken(expires_at, ZoneInfo(user.timezone), now=datetime.now(UTC))
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
        user, _ = await _linked_user(services, request.path_params["token"])
    except LinkError as error:
        return _link_failure(services, error)
    return RedirectResponse(await services.consent.start(user.id), status_code=303)


async def google_callback(request: Request) -> Response:
    services: Services = request.app.state.services
    params = {k: v for k, v in request.query_params.items() if k in ("state", "code", "error")}
    try:
        connected = await services.consent.finish(params)
    except ConsentFailure as failure:
        retry = services.links.create(failure.retry_user).url if failure.retry_user else None
        return page(
            "result.html",
            status=failure.status,
            ok=False,
            product=_product(services),
            title=failure.title,
            detail=failure.detail,
            retry_url=retry,
        )
    account = f" ({connected.email})" if connected.email else ""
    return page(
        "result.html",
        ok=True,
        product=_product(services),
        title="Your calendar is connected",
        detail=f"{_product(services)} can now check your availability and book appointments "
        f"in your Google Calendar{account}.",
    )


routes = [
    Route("/connect/{token}", connect_page, methods=["GET"]),
    Route("/connect/{token}", connect_start, methods=["POST"]),
    Route("/oauth/google/callback", google_callback, methods=["GET"]),
]
